"""Lecture demos for the engine itself (tinygrad_lite).

    worked-example   e = (a + b)(b + 1) at a = 2, b = 1: its graph, backprop vs finite differences
    gradcheck        gradient-check a small MLP, then watch gradcheck catch a planted wrong backward rule
    spirals-mlp      train an MLP on two interleaved spirals; loss curve and decision boundary

Every random number comes from a seeded `tinygrad_lite.Generator`, so each run prints the same
numbers. The MLP here is written with bare Tensors (a list of weight matrices and biases) on
purpose: it shows everything a layer library will later hide.
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_lite as tg
from nn.files import atomic_write_text
from tinygrad_lite import Function, Generator, Tensor
from tinygrad_lite import functional as F

from ..files import save_figure
from ..tour import register

Params = list[tuple[str, Tensor]]
Printer = Callable[[str], None]


# ------------------------------------------------------------------ worked example
@dataclass
class WorkedExample:
    values: dict[str, float]  # a, b, c, d, e
    backprop: dict[str, float]
    numerical: dict[str, float]
    dot: str
    graph: Tensor  # e, its graph kept alive (retain_graph) with every gradient: tg.plot_graph(graph) draws it


def worked_example(a_value: float = 2.0, b_value: float = 1.0) -> WorkedExample:
    """e = (a + b)(b + 1): de/da = b + 1 and de/db = (b + 1) + (a + b), since b is used twice."""
    a = tg.tensor(a_value, dtype=tg.float64, requires_grad=True)
    b = tg.tensor(b_value, dtype=tg.float64, requires_grad=True)
    c = a + b
    d = b + 1.0
    e = c * d
    for t, name in ((a, "a"), (b, "b"), (c, "c = a + b"), (d, "d = b + 1"), (e, "e = c * d")):
        t.name = name
    c.retain_grad()  # keep the gradients of the intermediate results too, to show them in the graph
    d.retain_grad()
    e.retain_grad()  # and the output's own gradient, de/de = 1
    # retain_graph keeps the graph alive after backward so we can still draw it, with its grads.
    e.backward(retain_graph=True)
    dot = tg.draw_graph(e, show_values=True)

    def f(a_: Tensor, b_: Tensor) -> Tensor:
        return (a_ + b_) * (b_ + 1.0)

    # Central finite differences, one input at a time; the other input is held constant.
    a2, b2 = a.detach(), b.detach()
    da = tg.numerical_grad(lambda x: f(x, b2), tg.tensor(a_value, dtype=tg.float64, requires_grad=True))
    db = tg.numerical_grad(lambda x: f(a2, x), tg.tensor(b_value, dtype=tg.float64, requires_grad=True))
    return WorkedExample(
        values={k: t.item() for k, t in zip("abcde", (a, b, c, d, e))},
        backprop={"a": a.grad.item(), "b": b.grad.item()},
        numerical={"a": float(da), "b": float(db)},
        dot=dot,
        graph=e,
    )


@register("worked-example")
def worked_example_step(out_dir: Path, quick: bool) -> str:
    ex = worked_example()
    v = ex.values
    print(f"e = (a + b) * (b + 1) at a = {v['a']:g}, b = {v['b']:g}:   c = a + b = {v['c']:g},  "
          f"d = b + 1 = {v['d']:g},  e = c * d = {v['e']:g}")
    print(f"{'':8}{'backprop':>12}{'finite diff.':>15}   by hand")
    hand = {"a": f"de/da = d = {v['d']:g}",
            "b": f"de/db = d + c = {v['d'] + v['c']:g}  (b feeds c and d: the two paths add up)"}
    for k in ("a", "b"):
        print(f"de/d{k:<4}{ex.backprop[k]:12.6f}{ex.numerical[k]:15.6f}   {hand[k]}")
    # The picture needs matplotlib only (no Graphviz); the DOT text is kept for Graphviz users.
    figure = tg.plot_graph(ex.graph, show_values=True, title="e = (a + b)(b + 1): values and gradients after backward")
    png_path = save_figure(figure, out_dir / "worked_example.png")
    dot_path = atomic_write_text(out_dir / "worked_example.dot", ex.dot + "\n")
    print(f"graph saved as {png_path} (picture) and {dot_path.name} (Graphviz DOT text)")
    agree = all(math.isclose(ex.backprop[k], ex.numerical[k], rel_tol=1e-6) for k in "ab")
    if not agree:
        raise AssertionError(f"backprop {ex.backprop} disagrees with finite differences {ex.numerical}")
    return f"de/da = {ex.backprop['a']:g}, de/db = {ex.backprop['b']:g}; backprop = finite differences"


# ------------------------------------------------------------------ a bare-Tensor MLP
def init_mlp(sizes: list[int], gen: Generator, dtype: Any = tg.float32) -> Params:
    """Weights W_i (fan_in, fan_out) ~ N(0, 1/fan_in), which keeps tanh units out of saturation;
    small random biases (random rather than zero, so a gradient check sees a generic point)."""
    params: Params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
        w = gen.normal((n_in, n_out), tg.dtypes.to_dtype(dtype), std=1.0 / math.sqrt(n_in))
        b = gen.normal((n_out,), tg.dtypes.to_dtype(dtype), std=0.1)
        params += [(f"W{i}", Tensor(w, requires_grad=True)), (f"b{i}", Tensor(b, requires_grad=True))]
    return params


def mlp(weights: list[Tensor], x: Tensor) -> Tensor:
    """x -> tanh(x W1 + b1) -> ... -> h Wn + bn (the last layer is linear: logits or outputs)."""
    h = x
    n_layers = len(weights) // 2
    for i in range(n_layers):
        h = h @ weights[2 * i] + weights[2 * i + 1]
        if i < n_layers - 1:
            h = h.tanh()
    return h


# ------------------------------------------------------------------ gradcheck demo
class PlantedSquare(Function):
    """x², with a deliberately WRONG backward: it forgets the 2 in d(x²)/dx = 2x."""

    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        return x.data * x.data

    def backward(self, g: Tensor) -> Tensor:
        (x,) = self.saved_tensors
        return g * x  # the planted mistake: the right rule is g * 2 * x


@dataclass
class GradcheckDemo:
    correct_passed: bool
    mistake_caught: bool
    diagnosis: str | None


def gradcheck_demo(out: Printer = print, seed: int = 0) -> GradcheckDemo:
    """Gradient-check every parameter of a 3-5-2 tanh MLP under a mean-squared-error loss, then
    the same loss with `PlantedSquare`, whose backward rule is wrong."""
    gen = Generator(seed)
    params = init_mlp([3, 5, 2], gen, tg.float64)  # gradient checks need float64: see docs/engine.md
    weights = [p for _, p in params]
    x = Tensor(gen.normal((4, 3), tg.float64))
    target = Tensor(gen.normal((4, 2), tg.float64))

    def loss_fn(*ws: Tensor) -> Tensor:
        diff = mlp(list(ws), x) - target
        return (diff * diff).mean()

    def planted_loss_fn(*ws: Tensor) -> Tensor:
        return PlantedSquare.apply(mlp(list(ws), x) - target).mean()

    out("Model: 3 -> 5 (tanh) -> 2, loss = mean((mlp(x) - target)^2), float64, batch of 4")
    out(f"Parameters: {', '.join(f'{n} {tuple(p.shape)}' for n, p in params)} "
        f"({sum(p.size for _, p in params)} numbers)")

    # 1. A readable per-parameter table: backprop vs central finite differences.
    loss = loss_fn(*weights)
    loss.backward()
    out("\nBackprop vs central finite differences (eps = 1e-6), per parameter:")
    out(f"  {'param':<6}{'shape':<9}{'max |grad|':>12}{'max |backprop - numerical|':>29}")
    for name, p in params:
        numerical = tg.numerical_grad(lambda _p: loss_fn(*weights), p)
        err = float(np.abs(p.grad.numpy() - numerical).max())
        out(f"  {name:<6}{str(tuple(p.shape)):<9}{float(np.abs(numerical).max()):12.4g}{err:29.2e}")
        p.grad = None

    # 2. The official verdict: tinygrad_lite.gradcheck compares the full Jacobians.
    correct_passed = tg.gradcheck(loss_fn, weights, raise_exception=False)
    out(f"\ntinygrad_lite.gradcheck(loss_fn, all parameters): {'PASSED' if correct_passed else 'FAILED'}")

    # 3. The planted mistake: the same loss, squared by PlantedSquare.
    out("\nNow the same loss with PlantedSquare, whose backward returns g * x instead of g * 2 * x.")
    out("gradcheck says:\n")
    diagnosis = None
    try:
        tg.gradcheck(planted_loss_fn, weights)
        mistake_caught = False
        out("  nothing! The planted mistake was NOT caught.")
    except tg.GradcheckError as e:
        mistake_caught = True
        diagnosis = e.result.diagnosis
        out("\n".join("  " + line for line in str(e).splitlines()))
        i = e.result.input_index
        if i is not None:
            out(f"  (input {i} is the parameter {params[i][0]})")
        out(f"\ngradcheck caught the planted mistake (diagnosis: {diagnosis}).")
    return GradcheckDemo(bool(correct_passed), mistake_caught, diagnosis)


@register("gradcheck")
def gradcheck_step(out_dir: Path, quick: bool) -> str:
    lines: list[str] = []

    def out(line: str) -> None:
        print(line)
        lines.append(line)

    result = gradcheck_demo(out)
    path = atomic_write_text(out_dir / "gradcheck_report.txt", "\n".join(lines) + "\n")
    print(f"report saved as {path}")
    if not (result.correct_passed and result.mistake_caught):
        raise AssertionError("the gradcheck demo did not behave as expected (see above)")
    return f"MLP gradients pass; planted mistake caught (diagnosis: {result.diagnosis})"


# ------------------------------------------------------------------ two spirals
def make_spirals(n_per_class: int, gen: Generator, noise: float = 0.04,
                 turns: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spiral arms in the plane: X (2n, 2) float32, labels y (2n,) int64.

    A point at position t in [0, 1) along arm k sits at radius 0.1 + 0.9 t and angle
    2π·turns·t + π·k (the second arm is the first rotated by half a turn), plus Gaussian noise.
    No straight line separates the classes: the model has to learn a curved boundary.
    """
    xs, ys = [], []
    for k in range(2):
        t = gen.uniform((n_per_class,), np.float64)
        radius = 0.1 + 0.9 * t
        angle = 2 * math.pi * turns * t + math.pi * k
        arm = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        xs.append(arm + gen.normal(arm.shape, np.float64, std=noise))
        ys.append(np.full(n_per_class, k, dtype=np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


@dataclass
class TrainResult:
    losses: list[float]
    accuracy: float
    weights: list[Tensor]


def train_spirals(X: np.ndarray, y: np.ndarray, steps: int, gen: Generator, hidden: int = 32,
                  lr: float = 0.02, show_progress: bool = True) -> TrainResult:
    """Full-batch Adam (Kingma & Ba, 2015) on the softmax cross-entropy of a 2-h-h-2 tanh MLP."""
    from ..extras import progress

    weights = [p for _, p in init_mlp([2, hidden, hidden, 2], gen)]
    inputs = Tensor(X)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    m = [np.zeros_like(w.data) for w in weights]  # running mean of the gradient
    v = [np.zeros_like(w.data) for w in weights]  # running mean of its square
    losses: list[float] = []
    bar = progress(range(1, steps + 1), desc="spirals", unit="step", disable=not show_progress)
    for t in bar:
        loss = F.cross_entropy(mlp(weights, inputs), y)
        for w in weights:
            w.grad = None
        loss.backward()
        with tg.no_grad():  # the update itself must not be recorded in the graph
            for w, m_i, v_i in zip(weights, m, v):
                g = w.grad.data
                m_i *= beta1
                m_i += (1 - beta1) * g
                v_i *= beta2
                v_i += (1 - beta2) * g * g
                # bias-corrected step: early on m and v are biased towards their zero start
                w.sub_(lr * (m_i / (1 - beta1**t)) / (np.sqrt(v_i / (1 - beta2**t)) + eps))
        losses.append(loss.item())
        if t % 25 == 0 or t == steps:
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)  # drawn at the next update
    bar.close()
    return TrainResult(losses, accuracy(weights, X, y), weights)


def _plot_loss(losses: list[float], path: Path) -> None:
    from ..extras import new_figure

    fig = new_figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss (log scale)")
    ax.set_title("Two spirals: training loss")
    ax.grid(True, alpha=0.3)
    save_figure(fig, path)


def _plot_boundary(weights: list[Tensor], X: np.ndarray, y: np.ndarray, title: str, path: Path) -> None:
    from ..extras import new_figure

    lo, hi = X.min(axis=0) - 0.2, X.max(axis=0) + 0.2
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    with tg.no_grad():
        p1 = mlp(weights, Tensor(grid)).softmax(axis=-1).numpy()[:, 1].reshape(gx.shape)
    fig = new_figure(5.5, 5)
    ax = fig.add_subplot()
    filled = ax.contourf(gx, gy, p1, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.7)
    ax.contour(gx, gy, p1, levels=[0.5], colors="k", linewidths=1.5)
    for k, color in ((0, "tab:blue"), (1, "tab:red")):
        ax.scatter(X[y == k, 0], X[y == k, 1], s=10, c=color, edgecolors="white", linewidths=0.3,
                   label=f"class {k} (training points)")
    ax.plot([], [], color="k", lw=1.5, label="decision boundary, P(class 1) = 0.5")  # the contour's legend entry
    # a colour bar of its own width and a wrapped title: a long title no longer runs into the bar's label
    fig.colorbar(filled, ax=ax, label="P(class 1) predicted by the MLP", fraction=0.046, pad=0.04)
    ax.set_aspect("equal")
    ax.set_xlabel("x₁ (input coordinate, unitless)")
    ax.set_ylabel("x₂ (input coordinate, unitless)")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    ax.set_title(textwrap.fill(title, 34), fontsize=10)
    save_figure(fig, path)


def accuracy(weights: list[Tensor], X: np.ndarray, y: np.ndarray) -> float:
    with tg.no_grad():
        return float((mlp(weights, Tensor(X)).argmax(axis=-1).numpy() == y).mean())


@register("spirals-mlp")
def spirals_step(out_dir: Path, quick: bool) -> str:
    gen = Generator(0)
    n_per_class, steps = (100, 300) if quick else (200, 1500)
    X, y = make_spirals(n_per_class, gen)
    X_test, y_test = make_spirals(200, Generator(1))  # held out: never seen in training
    print(f"Two spirals: {len(X)} training points, {len(X_test)} test points; "
          f"MLP 2 -> 32 -> 32 -> 2 (tanh), Adam, {steps} full-batch steps")
    result = train_spirals(X, y, steps, gen)
    test_accuracy = accuracy(result.weights, X_test, y_test)
    loss_png, boundary_png = out_dir / "spirals_loss.png", out_dir / "spirals_boundary.png"
    _plot_loss(result.losses, loss_png)
    _plot_boundary(result.weights, X, y, f"Decision boundary (train {result.accuracy:.1%}, test {test_accuracy:.1%})",
                   boundary_png)
    print(f"final loss {result.losses[-1]:.4f}; accuracy: training {result.accuracy:.1%}, test {test_accuracy:.1%}")
    print(f"figures saved as {loss_png} and {boundary_png.name}")
    return f"accuracy {result.accuracy:.1%} train, {test_accuracy:.1%} test after {steps} steps"
