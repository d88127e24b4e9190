"""The word-vector lecture's figures, drawn from plain arrays.

Every function returns a matplotlib `Figure` (the object API: no pyplot, no global "current
figure", so a notebook's backend is never changed) and, given `path`, also saves it as a PNG,
atomically.

    plot_word_pca        a few words projected on their first two principal components, labels
                         placed so they do not overlap, and arrows for analogy pairs (a -> a*)
    plot_k_occurrence    the N_k (k-occurrence) histogram that shows hubness, one series per method
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nn.files import atomic_write
from tinygrad_lite.extras import require

from .geometry import skewness


def _figure(width: float, height: float) -> Any:
    figure = require("matplotlib.figure", "course", "embeddings.plots")
    backend_agg = require("matplotlib.backends.backend_agg", "course", "embeddings.plots")
    fig = figure.Figure(figsize=(width, height))
    backend_agg.FigureCanvasAgg(fig)  # a renderer, so label sizes can be measured before saving
    return fig


def _finish(fig: Any, path: str | Path | None) -> Any:
    if path is not None:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    return fig


def _overlap(a: Any, b: Any) -> float:
    """Area (pixels²) shared by two display-space bounding boxes."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


# candidate label positions around a point, in points: right, left, above, below, then diagonals
_OFFSETS = [(5, -4, "left"), (-5, -4, "right"), (0, 6, "center"), (0, -14, "center"),
            (5, 5, "left"), (-5, 5, "right"), (5, -13, "left"), (-5, -13, "right"),
            (12, -4, "left"), (-12, -4, "right"), (0, 16, "center"), (0, -24, "center")]


def _place_labels(fig: Any, ax: Any, words: Sequence[str], xy: np.ndarray) -> list[Any]:
    """Greedy placement: each label takes the first candidate position whose box overlaps no
    label placed before it and no point marker (or, failing that, the one overlapping least)."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    points = [Bbox.from_extents(px - 4, py - 4, px + 4, py + 4) for px, py in ax.transData.transform(xy)]
    placed: list[Any] = []
    texts = []
    for i, (word, (x, y)) in enumerate(zip(words, xy)):
        best = None
        for dx, dy, ha in _OFFSETS:
            text = ax.annotate(word, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, fontsize=8)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            cost = sum(_overlap(box, b) for b in placed) + sum(_overlap(box, b) for j, b in enumerate(points) if j != i)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        assert best is not None
        placed.append(best[2])
        texts.append(best[1])
    return texts


def plot_word_pca(words: Sequence[str], vectors: np.ndarray, pairs: Sequence[tuple[str, str]] = (),
                  path: str | Path | None = None) -> Any:
    """The rows of `vectors` (one per word) centred and projected on their first two principal
    components; an arrow a -> a* for each analogy pair, e.g. ("man", "woman"), ("king", "queen").
    If the analogy held as a parallelogram, the arrows would be parallel and of equal length."""
    words = list(words)
    X = np.asarray(vectors, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(words):
        raise ValueError(f"plot_word_pca: vectors must be (len(words), dim) = ({len(words)}, dim), got {X.shape}")
    missing = sorted({w for p in pairs for w in p} - set(words))
    if missing:
        raise ValueError(f"plot_word_pca: the pairs use words that are not plotted: {missing}")
    Xc = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    P = Xc @ vt[:2].T
    share = s**2 / max(float((s**2).sum()), 1e-300)
    fig = _figure(6.5, 6)
    ax = fig.add_subplot()
    ax.scatter(P[:, 0], P[:, 1], s=14, color="C0", zorder=3, label="a word's vector, projected")
    where = {w: i for i, w in enumerate(words)}
    for a, b in pairs:
        ax.annotate("", xy=P[where[b]], xytext=P[where[a]], zorder=2,
                    arrowprops={"arrowstyle": "->", "color": "C3", "lw": 1.2, "alpha": 0.8})
    if pairs:
        shown = ", ".join(f"{a}→{b}" for a, b in pairs[:4]) + (", ..." if len(pairs) > 4 else "")
        ax.plot([], [], color="C3", lw=1.2, label=f"analogy offset a → a* ({shown})")
    pad = 0.12 * (P.max(axis=0) - P.min(axis=0) + 1e-12)
    ax.set_xlim(P[:, 0].min() - pad[0], P[:, 0].max() + pad[0])
    ax.set_ylim(P[:, 1].min() - pad[1], P[:, 1].max() + pad[1])
    _place_labels(fig, ax, words, P)
    ax.set_xlabel(f"principal component 1 (unitless; {100 * share[0]:.0f}% of the variance)")
    ax.set_ylabel(f"principal component 2 (unitless; {100 * share[1]:.0f}% of the variance)")
    ax.set_title("2-D PCA of a few word vectors, with analogy offsets")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1))  # below the plot: covers no word
    return _finish(fig, path)


def plot_k_occurrence(series: Mapping[str, np.ndarray], k: int, path: str | Path | None = None,
                      bins: int = 50) -> Any:
    """Histogram of N_k, the number of times each row is among the other rows' k nearest
    neighbours, for each neighbour rule in `series` (e.g. {"cosine": ..., "CSLS": ...}).
    A long right tail (large skewness) means hubs: a few rows are everybody's neighbour."""
    if not series:
        raise ValueError("plot_k_occurrence: give at least one series of k-occurrence counts")
    top = max(int(np.max(v)) for v in series.values())
    edges = np.linspace(0, max(top, 1) + 1, bins + 1)
    fig = _figure(6, 3.8)
    ax = fig.add_subplot()
    for name, counts in series.items():
        counts = np.asarray(counts)
        ax.hist(counts, bins=edges, alpha=0.6,
                label=f"{name}: skewness {skewness(counts):.2f}, max N{k} {int(counts.max())}")
    ax.set_yscale("log")
    ax.set_xlabel(f"N{k}: times a word is among the others' {k} nearest neighbours (count)")
    ax.set_ylabel("number of words (log scale)")
    ax.set_title(f"Hubness: the k-occurrence distribution (k = {k})")
    ax.legend(fontsize=8)
    return _finish(fig, path)
