"""Every figure has a title, axis labels and a legend that explains its lines (issue 14, item 1).

Each test draws one figure from tiny synthetic data, catches the matplotlib Figure as it is saved
and checks the objects on it (titles, labels, legend entries, lines, text boxes)."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures saved while the test runs, in order."""
    figures: list[Any] = []
    original = Figure.savefig

    def savefig(self: Any, *args: Any, **kwargs: Any) -> Any:
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return figures


def plot_axes(fig: Any) -> list[Any]:
    """The figure's visible axes, colour bars left out (a colour bar's label is its only text)."""
    return [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")]


def legend_texts(ax: Any) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def assert_labelled(fig: Any, path: Path) -> None:
    """A PNG was written; every plot has a title (its own or the figure's), both axis labels and a
    legend with an entry for every labelled line."""
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    axes = plot_axes(fig)
    assert axes
    for ax in axes:
        assert ax.get_title() or suptitle, ax
        assert ax.get_xlabel() and ax.get_ylabel(), ax
        texts = legend_texts(ax)
        assert texts, f"{ax.get_title()!r} has no legend"
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                assert line.get_label() in texts


def test_spirals_boundary_has_axis_labels_and_title_clear_of_colour_bar(tmp_path: Path, saved: list[Any]) -> None:
    from tglite.demos import engine

    X, y = engine.make_spirals(20, engine.Generator(0))
    weights = [p for _, p in engine.init_mlp([2, 8, 8, 2], engine.Generator(1))]
    path = tmp_path / "spirals_boundary.png"
    engine._plot_boundary(weights, X, y, "Decision boundary (train 100.0%, test 98.5%)", path)
    fig = saved[-1]
    assert_labelled(fig, path)
    (ax,) = plot_axes(fig)
    assert any("boundary" in t for t in legend_texts(ax)), "the black 0.5 contour needs a legend entry"
    colorbars = [a for a in fig.axes if hasattr(a, "_colorbar")]
    assert colorbars
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    title = ax.title.get_window_extent(renderer)
    for bar in colorbars:
        assert not title.overlaps(bar.get_tightbbox(renderer)), "the title runs into the colour bar"


def _sweep() -> dict[str, Any]:
    steps = 30
    runs = []
    for method, r, end in (("full", None, 2.2), ("lora", 8, 2.6)):
        curve = list(np.linspace(3.2, end - 0.3, steps))
        runs.append({"method": method, "r": r, "curve": curve, "val_loss": end, "val_curve": [[0, 3.0], [steps, end]]})
    return {"config": {"finetune_steps": steps}, "base_val_loss": 3.0, "runs": runs}


def test_lora_finetune_plots_validation_against_validation(tmp_path: Path, saved: list[Any]) -> None:
    from lora import experiments as E

    sweep = _sweep()
    path = E.plot_finetune(sweep, tmp_path / "lora_finetune.png")
    fig = saved[-1]
    assert_labelled(fig, path)
    axes = plot_axes(fig)
    val_axes = [ax for ax in axes if "val" in ax.get_ylabel().lower()]
    assert len(val_axes) == 1, "validation loss needs its own panel"
    (val,) = val_axes
    assert "train" not in val.get_ylabel().lower()
    # every run's validation curve, from the loss before fine-tuning to the loss after it
    for x in sweep["runs"]:
        name = x["method"] + (f" r={x['r']}" if x["r"] else "")
        (line,) = [ln for ln in val.get_lines() if ln.get_label().startswith(name + ":")]
        assert list(line.get_ydata()) == [3.0, x["val_loss"]]
        assert line.get_marker() not in (None, "", "None")
    # the "before" reference sits only where validation losses are plotted
    for ax in axes:
        if ax is not val:
            assert not any("before" in t for t in legend_texts(ax))


def test_lora_finetune_plot_reads_results_without_val_curve(tmp_path: Path, saved: list[Any]) -> None:
    from lora import experiments as E

    sweep = _sweep()
    for x in sweep["runs"]:
        del x["val_curve"]  # a single `tglite lora finetune` run, or a sweep saved before val_curve
    E.plot_finetune(sweep, tmp_path / "f.png")
    assert_labelled(saved[-1], tmp_path / "f.png")


def test_gpt_loss_plot_marks_and_counts_its_evaluations(tmp_path: Path, saved: list[Any]) -> None:
    from nn.train import Trainer

    history = [SimpleNamespace(step=s, loss=4.0 - s / 20) for s in range(1, 41)]
    evals = [{"step": s, "train": 4.0 - s / 20, "val": 4.1 - s / 25} for s in (8, 16, 24, 32, 40)]
    fake = SimpleNamespace(history=history, evals=evals, tokenizer=SimpleNamespace(vocab_size=65),
                           config=SimpleNamespace(n_layer=2, n_embd=64, tokenizer="char", eval_interval=8))
    path = Trainer.plot(fake, tmp_path / "loss.png")  # type: ignore[arg-type]
    fig = saved[-1]
    assert_labelled(fig, path)
    (ax,) = plot_axes(fig)
    evaluated = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [8, 16, 24, 32, 40]]
    assert len(evaluated) == 2
    for line in evaluated:
        assert line.get_marker() not in (None, "", "None"), "evaluations are points: mark them"
        assert "5 evaluations" in line.get_label(), "the legend should say how many evaluations there are"


def test_gpt_tour_step_evaluates_more_than_twice() -> None:
    import inspect

    from tglite.demos import gpt

    # the tour's eval_interval: steps // 5, five evaluations in quick and full runs alike
    assert '"eval_interval": str(steps // 5)' in inspect.getsource(gpt.gpt_step)


WORDS = ["king", "queen", "man", "woman", "lord", "lady", "father", "mother", "son", "daughter",
         "brother", "sister", "he", "she", "his", "her"]
PAIRS = [("man", "woman"), ("king", "queen"), ("father", "mother"), ("he", "she")]


def test_word_pca_has_arrows_and_no_overlapping_labels(tmp_path: Path, saved: list[Any]) -> None:
    from embeddings.plots import plot_word_pca

    # clumped vectors: most labels would collide if each sat at the same offset from its point
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 20))
    vectors = centres[np.arange(len(WORDS)) % 4] + 0.05 * rng.normal(size=(len(WORDS), 20))
    path = tmp_path / "w2v_pca.png"
    fig = plot_word_pca(WORDS, vectors, PAIRS, path)
    assert saved[-1] is fig
    assert_labelled(fig, path)
    (ax,) = plot_axes(fig)
    assert "%" in ax.get_xlabel() and "%" in ax.get_ylabel()
    arrows = [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == len(PAIRS)
    assert any("man→woman" in t for t in legend_texts(ax))
    labels = [t for t in ax.texts if t.get_text() in WORDS]
    assert sorted(t.get_text() for t in labels) == sorted(WORDS)
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())


def test_word_pca_rejects_pairs_of_unplotted_words() -> None:
    from embeddings.plots import plot_word_pca

    with pytest.raises(ValueError, match="not plotted"):
        plot_word_pca(["a", "b"], np.eye(2), [("a", "zebra")])


def test_hubness_histogram_is_labelled(tmp_path: Path, saved: list[Any]) -> None:
    from embeddings.plots import plot_k_occurrence

    rng = np.random.default_rng(0)
    series = {"cosine": rng.poisson(10, 300) * (rng.random(300) < 0.5) * 3, "CSLS": rng.poisson(10, 300)}
    path = tmp_path / "w2v_hubness.png"
    fig = plot_k_occurrence(series, 10, path)
    assert saved[-1] is fig
    assert_labelled(fig, path)
    (ax,) = plot_axes(fig)
    texts = legend_texts(ax)
    assert len(texts) == 2 and texts[0].startswith("cosine") and texts[1].startswith("CSLS")
    assert "N10" in ax.get_xlabel() and "words" in ax.get_ylabel()


def test_backprop_cost_marks_where_measurement_ends(tmp_path: Path, saved: list[Any]) -> None:
    from tglite.demos.backprop import CostResult, CostRow, _plot_cost

    rows = [CostRow(params=P, hidden=0, t_forward=1e-5 * P**0.5, t_backprop=3e-5 * P**0.5) for P in (100, 1000, 10000)]
    rows[0].t_fd, rows[1].t_fd = 2 * 100 * rows[0].t_forward, 2 * 1000 * rows[1].t_forward
    rows[2].t_fd_extrapolated = 2 * 10000 * rows[2].t_forward
    result = CostResult(rows=rows, backprop_constant=3.0, backprop_slope=0.0, fd_coef=2.0, fd_slope=1.0,
                        fd_stopped_at=10000, fd_stop_estimate_s=1.0, extrapolated=[(10**6, 2 * 10**6 / 3)],
                        week_equivalent_s=1.0, table="")
    path = _plot_cost(result, tmp_path / "backprop_cost.png")
    fig = saved[-1]
    assert_labelled(fig, path)
    for ax in plot_axes(fig):
        boundary = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [1000, 1000]]
        assert boundary, f"{ax.get_title()!r}: no line where the measurements end"
        assert any("measured" in t and "1,000" in t for t in legend_texts(ax))
        spans = [p for p in ax.patches if "extrapolated" in p.get_label()]
        assert spans, f"{ax.get_title()!r}: the extrapolated range is not shaded"
        span = spans[0]  # a Rectangle (matplotlib >= 3.9) or a Polygon
        x0 = span.get_x() if hasattr(span, "get_x") else min(v[0] for v in span.get_xy())
        assert math.isclose(x0, 1000)
