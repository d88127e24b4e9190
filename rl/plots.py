"""The lectures' figures, drawn from the plain data the studies return.

Every function returns a matplotlib `Figure` (the object API: no pyplot, no global "current
figure", so a notebook's backend is never changed) and, given `path`, also saves it as a PNG,
atomically. In a notebook the returned figure shows inline; the CLI and the tour save it.

    plot_sft_curves          held-out loss and greedy accuracy during supervised fine-tuning
    plot_coverage            pass@k against the independent-samples prediction 1 - (1 - p)^k
    plot_accuracy_vs_flops   every selection rule, beam search / DVTS and the greedy baselines
    plot_aggregation_bias    min / prod / last PRM aggregates of correct solutions against length
    plot_kl_estimators       the per-sample k1, k2, k3 KL estimates and the true KL
    plot_grpo_runs           several GRPO runs side by side: held-out accuracy, reward, KL, length
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nn.files import atomic_write
from tinygrad_lite.extras import require


def _figure(width: float, height: float) -> Any:
    figure = require("matplotlib.figure", "course", "rl.plots")
    return figure.Figure(figsize=(width, height), layout="constrained")


def _finish(fig: Any, path: str | Path | None) -> Any:
    if path is not None:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    return fig


def _colors(n: int) -> list[Any]:
    """n distinct colours from matplotlib's default cycle (tab10), repeating past 10."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _level_key(level: str) -> tuple[int, str]:
    return (int(level), level) if str(level).isdigit() else (10**9, str(level))


# ----------------------------------------------------------------------------- SFT
def plot_sft_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path | None = None) -> Any:
    """Left: held-out loss per policy; right: greedy accuracy per level and policy, against the step.

    `runs` maps a policy name ("small", "large") to the `evals` rows `PolicyRun` records:
    {step, val_loss, accuracy: {level: accuracy}, mean_accuracy}."""
    from matplotlib.ticker import FormatStrFormatter

    fig = _figure(12, 4.5)
    loss_ax, acc_ax = fig.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    levels = sorted({lv for rows in runs.values() for r in rows for lv in r["accuracy"]}, key=_level_key)
    colors = dict(zip(levels, _colors(len(levels))))
    for i, (name, rows) in enumerate(runs.items()):
        style = styles[i % len(styles)]
        steps = [r["step"] for r in rows]
        loss_ax.plot(steps, [r["val_loss"] for r in rows], style, marker="o", ms=3, color="k" if i == 0 else "grey",
                     label=f"{name} policy")
        for lv in levels:
            pts = [(r["step"], r["accuracy"][lv]) for r in rows if lv in r["accuracy"]]
            if pts:
                xs, ys = zip(*pts)
                acc_ax.plot(xs, ys, style, marker="o", ms=3, color=colors[lv], label=f"{name}, level {lv}")
    loss_ax.set_yscale("log")
    for axis in (loss_ax.yaxis.set_major_formatter, loss_ax.yaxis.set_minor_formatter):
        axis(FormatStrFormatter("%g"))  # 0.3, 1, 3 rather than 3x10^-1, 10^0, 3x10^0
    loss_ax.set_title("Held-out loss of the canonical solutions")
    loss_ax.set_xlabel("training step")
    loss_ax.set_ylabel("cross-entropy (nats per completion token, log scale)")
    loss_ax.legend(fontsize="small")
    acc_ax.set_ylim(-0.03, 1.03)
    acc_ax.set_title("Greedy accuracy on held-out problems")
    acc_ax.set_xlabel("training step")
    acc_ax.set_ylabel("accuracy (fraction of problems right)")
    acc_ax.legend(fontsize="x-small", ncol=max(1, len(runs)), title="policy, level (line style = policy)",
                  title_fontsize="x-small")
    fig.suptitle("Supervised fine-tuning of the policies on canonical solutions")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- coverage
def plot_coverage(levels: Mapping[str, Mapping[str, Any]], path: str | Path | None = None) -> Any:
    """pass@k (solid) and the per-problem prediction 1 - (1 - p̂)^k (dashed) against k, one colour per level.

    `levels` is `run_compute_claims(...)["levels"]` (each row's "coverage") or maps a level straight
    to a coverage dict {k, pass_at_k, predicted}."""
    fig = _figure(6.5, 4.5)
    ax = fig.subplots()
    names = sorted(levels, key=_level_key)
    for color, lv in zip(_colors(len(names)), names):
        cov = levels[lv].get("coverage", levels[lv])
        ax.plot(cov["k"], cov["pass_at_k"], "-", marker="o", ms=4, color=color, label=f"level {lv}: pass@k")
        ax.plot(cov["k"], cov["predicted"], "--", color=color, label=f"level {lv}: 1 - (1 - p)^k")
    ax.set_xscale("log", base=2)
    ks = sorted({k for lv in names for k in levels[lv].get("coverage", levels[lv])["k"]})
    ax.set_xticks(ks, [str(k) for k in ks])  # 1, 2, 4, ... rather than 2^0, 2^1, 2^2
    ax.set_xticks([], minor=True)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("k, samples per problem (log2 scale)")
    ax.set_ylabel("coverage (fraction of problems solved by some sample)")
    ax.set_title("Coverage: pass@k (solid) vs the per-problem prediction (dashed)")
    ax.legend(fontsize="x-small", ncol=2)
    return _finish(fig, path)


# ----------------------------------------------------------------------------- accuracy vs FLOPs
def plot_accuracy_vs_flops(levels: Mapping[str, Mapping[str, Any]], path: str | Path | None = None,
                           without_verifier: bool = False) -> Any:
    """One panel per level: each selection rule's accuracy (± standard error over seeds) against
    FLOPs per problem as N grows, beam search / DVTS points, and the small and large policies'
    greedy accuracy.

    `levels` is `run_compute_claims(...)["levels"]`: per level "curves" (label -> {ns, mean,
    stderr, flops}), and optionally "curves_without_verifier_flops", "search" (label -> {accuracy,
    flops}), "greedy_small" and "greedy_large" ({accuracy, flops}). `without_verifier=True` draws
    the curves whose FLOPs leave the verifier's reading out (search-and-learn's convention);
    beam search and DVTS always count it."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    names = sorted(levels, key=_level_key)
    key = "curves_without_verifier_flops" if without_verifier else "curves"
    labels: list[str] = []
    for lv in names:
        labels += [k for k in levels[lv].get(key, {}) if k not in labels]
    colors = dict(zip(labels, _colors(len(labels))))
    ncols = min(len(names), 3)
    nrows = math.ceil(len(names) / ncols)
    fig = _figure(max(4.6 * ncols, 8.5), 3.6 * nrows + 1.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    handles: dict[str, Any] = {}
    search_markers = ["*", "P", "X", "D", "v", "<", ">"]
    for ax, lv in zip(axes, names):
        row = levels[lv]
        for label, curve in row.get(key, {}).items():
            h = ax.errorbar(curve["flops"], curve["mean"], yerr=curve["stderr"], marker="o", ms=3, capsize=2,
                            color=colors[label], label=label)
            handles.setdefault(label, h)
        for i, (label, s) in enumerate(row.get("search", {}).items()):
            name = f"{label} (PRM-guided; verifier counted)" if without_verifier else f"{label} (PRM-guided)"
            h = ax.plot([s["flops"]], [s["accuracy"]], search_markers[i % len(search_markers)], ms=11, ls="none",
                        color="tab:purple" if i % 2 == 0 else "tab:olive", mec="k", label=name)[0]
            handles.setdefault(name, h)
        for which, marker, color, name in (("greedy_small", "s", "white", "small policy, greedy"),
                                           ("greedy_large", "^", "k", "large policy, greedy")):
            if which in row:
                g = row[which]
                h = ax.plot([g["flops"]], [g["accuracy"]], marker, ms=10, ls="none", color=color, mec="k",
                            label=name)[0]
                handles.setdefault(name, h)
        ax.set_xscale("log")
        # Ticks at 1, 2 and 5 per decade, written 2e7: a curve often spans less than one decade.
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0e}".replace("e+0", "e").replace("e+", "e")))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"level {lv}")
        ax.set_xlabel("inference FLOPs per problem (log scale)")
        ax.set_ylabel("accuracy (fraction of problems right)")
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=4, fontsize="x-small",
               title="selection over N samples of the small policy (points: N grows left to right; error bars: "
               "± standard error over seeds),\nstep-level search and greedy decoding", title_fontsize="x-small")
    counted = ("verifier FLOPs NOT counted for the selection curves" if without_verifier
               else "verifier FLOPs counted")
    fig.suptitle(f"Accuracy against inference compute per problem\n({counted})")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- PRM aggregation
def plot_aggregation_bias(rows: Sequence[Mapping[str, float]], path: str | Path | None = None) -> Any:
    """Mean aggregated PRM score of fully correct solutions against their number of lines, for min,
    prod and last (`evaluate_reward_models(...)["aggregation_bias"]`). A product of per-step
    probabilities falls with every extra line even when every line is right."""
    fig = _figure(6.5, 4.5)
    ax = fig.subplots()
    formulas = {"min": "min: min_t s_t", "prod": "prod: Π_t s_t", "last": "last: s_T"}
    lines = [r["lines"] for r in rows]
    for (how, label), marker in zip(formulas.items(), "osD"):
        ax.plot(lines, [r[how] for r in rows], marker=marker, label=label)
    for r in rows:
        ax.annotate(f"n={r['solutions']}", (r["lines"], r["min"]), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize="x-small")
    if not rows:
        ax.text(0.5, 0.5, "no fully correct solution to score", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("lines in the solution (steps + answer line)")
    ax.set_ylabel("mean aggregated PRM score (probability)")
    ax.set_title("Aggregated PRM score of fully correct solutions against their length")
    ax.legend(title="aggregation of step scores s_t (n = solutions)", fontsize="small", title_fontsize="small")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- KL estimators
def plot_kl_estimators(values: Mapping[str, np.ndarray], true_kl: float | None,
                       path: str | Path | None = None) -> Any:
    """Histograms of the per-sample KL estimates (`rl.kl_study.kl_estimator_samples(...)["values"]`):
    k1 = -log r, k2 = (log r)^2 / 2, k3 = r - 1 - log r with r = π_ref(x) / π(x) (Schulman 2020),
    each with its sample mean and the true KL."""
    names = list(values)
    fig = _figure(4.2 * len(names), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=True))
    formulas = {"k1": "k1 = -log r", "k2": "k2 = (log r)² / 2", "k3": "k3 = r - 1 - log r"}
    for ax, name, color in zip(axes, names, _colors(len(names))):
        v = np.asarray(values[name], dtype=np.float64).ravel()
        ax.hist(v, bins=50, color=color, alpha=0.7, label=f"{formulas.get(name, name)} ({v.size:,} samples)")
        ax.axvline(float(v.mean()), color=color, lw=2, label=f"sample mean {v.mean():.4f}")
        if true_kl is not None:
            ax.axvline(true_kl, color="k", ls="--", lw=1.5, label=f"true KL {true_kl:.4f}")
        ax.set_title(name)
        ax.set_xlabel("per-sample estimate (nats)")
        ax.set_ylabel("samples (count)")
        ax.legend(fontsize="x-small")
    fig.suptitle("Per-sample estimates of KL(π ‖ π_ref), samples x ~ π")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- GRPO runs
def log_series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one key of a run's log rows, skipping the rows that lack it."""
    pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
    xs, ys = zip(*pts) if pts else ((), ())
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _moving_mean(ys: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at every point (fewer at the start)."""
    c = np.cumsum(np.concatenate([[0.0], ys]))
    lo = np.maximum(np.arange(1, ys.size + 1) - window, 0)
    return (c[1:] - c[lo]) / (np.arange(1, ys.size + 1) - lo)


def plot_grpo_runs(runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path | None = None,
                   window: int = 25, title: str = "GRPO runs from policy-small-mid") -> Any:
    """Four panels against the GRPO step, one line per run: held-out greedy accuracy (mean over the
    evaluated levels), the mean sampled reward and the KL to the start (each a moving mean over
    `window` steps, the raw values being noisy), and the mean length of wrong completions.

    `runs` maps a label to a run's log rows (GRPOTrainer.logs, or a checkpoint's `extra["logs"]`)."""
    fig = _figure(15, 4.2)
    axes = fig.subplots(1, 4)
    colors = _colors(len(runs))

    for color, (label, rows) in zip(colors, runs.items()):
        xs, ys = log_series(rows, "accuracy_mean")
        axes[0].plot(xs, ys, marker="o", ms=3, color=color, label=label)
        for ax, key in zip(axes[1:], ("reward", "kl", "completion_length_wrong")):
            xs, ys = log_series(rows, key)
            if xs.size:
                ax.plot(xs, _moving_mean(ys, window), color=color, label=label)
    labels = [("Held-out greedy accuracy", "accuracy (mean over levels)"),
              (f"Sampled reward ({window}-step moving mean)", "mean reward"),
              (f"KL to the start ({window}-step moving mean)", "KL (nats per token, k3)"),
              (f"Length of wrong completions ({window}-step mean)", "tokens")]
    axes[2].set_yscale("symlog", linthresh=1e-2)  # one run far from the rest must not flatten the others
    labels[2] = (labels[2][0], "KL (nats per token, k3; log above 0.01)")
    for ax, (subtitle, ylabel) in zip(axes, labels):
        ax.set_title(subtitle, fontsize="medium")
        ax.set_xlabel("GRPO step")
        ax.set_ylabel(ylabel)
        if ax.get_lines():
            ax.legend(fontsize="x-small")
    fig.suptitle(title)
    return _finish(fig, path)
