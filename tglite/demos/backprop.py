"""The backprop lecture demo: why we differentiate in reverse mode instead of numerically.

    1. cost          one full gradient of an MLP with P parameters: backprop vs central finite
                     differences (2P forward passes), measured, fitted and extrapolated
    2. accuracy      gradient error against the step h: truncation vs round-off (the U-shape)
    3. fwd vs rev    the cost of a full Jacobian, n inputs -> m outputs, in each mode
    4. worked example  e = (a + b)(b + 1): the graph, sum over paths, the factored reverse pass

Every number printed comes from a run on this machine. All defaults live in
`BackpropDemoSettings`; `BackpropDemoSettings.quick()` is the small version used by CI and
`tglite tour --quick`.

History, for the lecture: the reverse accumulation of derivatives goes back to Kelley (1960)
and Linnainmaa (1970), whose master's thesis described reverse-mode automatic differentiation
of computer programs; Rumelhart, Hinton & Williams (1986) made it the way to train neural nets.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_lite as tg
from nn.files import atomic_write_text
from tinygrad_lite import Generator, Tensor
from tinygrad_lite.graph import topological_order

from ..files import save_figure
from ..tour import register

Printer = Callable[[str], None]

SECONDS_PER_WEEK = 7 * 24 * 3600.0
SECONDS_PER_YEAR = 365.25 * 24 * 3600.0


@dataclass
class BackpropDemoSettings:
    """Every default of the demo, in one place. Change a field, or use `replace(settings, ...)`."""

    seed: int = 0
    progress: bool = True  # tqdm bars for the long loops (finite differences)
    # 1. cost: an MLP n_inputs -> hidden (tanh) -> 1 on a fixed batch, squared error loss,
    #    P = (n_inputs + 2)·hidden + 1 parameters; hidden is chosen to reach each P below.
    cost_params: tuple[int, ...] = (10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000)
    n_inputs: int = 8
    batch: int = 32
    cost_dtype: str = "float64"  # float64 so the finite-difference gradient can be checked too
    fd_step: float = 1e-6
    fd_budget_s: float = 60.0  # finite differences stop at the first P that would not fit
    min_time_s: float = 0.05  # a timing loops a call until it has run at least this long ...
    repeats: int = 5  # ... and keeps the fastest of this many loops (noise only adds time)
    extrapolate_to: tuple[int, ...] = (1_000_000, 10_000_000)
    training_time_s: float = SECONDS_PER_WEEK  # "a week of training"
    # 1b. the same measurement on a small GPT from nn (float64, random tokens): forward, backprop, and
    #     finite differences on a random sample of its parameters, scaled to all P
    gpt_layers: int = 2
    gpt_embd: int = 64
    gpt_heads: int = 2
    gpt_block: int = 32
    gpt_vocab: int = 65
    gpt_batch: int = 4
    gpt_fd_sample: int = 24
    # 2. accuracy: a small MLP, gradient error against the step h
    accuracy_hidden: int = 4
    accuracy_h_range: tuple[float, float] = (1e-14, 1.0)
    accuracy_h_points: int = 57  # 4 points per decade
    # 3. forward vs reverse: the Jacobian of x -> tanh(x A + a) B, R^n -> R^m
    jacobian_shapes: tuple[tuple[int, int], ...] = (
        (1, 1024), (4, 256), (16, 64), (32, 32), (64, 16), (256, 4), (1024, 1), (4096, 1),
    )
    jacobian_hidden: int = 32
    # 4. the worked example
    a: float = 2.0
    b: float = 1.0
    path_depths: tuple[int, ...] = (1, 2, 5, 10, 20, 40)

    @classmethod
    def quick(cls) -> BackpropDemoSettings:
        """Small settings for CI and `tglite tour --quick`: a few seconds on 2 cores."""
        return cls(
            progress=False,
            cost_params=(10, 100, 1_000, 10_000, 100_000),
            fd_budget_s=2.0,
            min_time_s=0.01,
            repeats=3,
            accuracy_h_points=29,
            jacobian_shapes=((1, 256), (4, 64), (16, 16), (64, 4), (256, 1)),
            jacobian_hidden=16,
            path_depths=(1, 5, 20),
            gpt_layers=1, gpt_embd=16, gpt_block=16, gpt_batch=2, gpt_fd_sample=8,
        )

    @classmethod
    def tour(cls) -> BackpropDemoSettings:
        """`tglite tour` (without --quick): the full demo with a smaller finite-difference budget."""
        return cls(fd_budget_s=15.0, repeats=3, min_time_s=0.03)


# ------------------------------------------------------------------------ helpers
def _fmt_time(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"  # pragma: no cover


def _sig(x: float, digits: int = 3) -> str:
    """x to `digits` significant digits, with thousands separators: 174,000 rather than 1.74e+05."""
    if not math.isfinite(x) or x == 0:
        return f"{x:g}"
    if abs(x) >= 1e15 or abs(x) < 1:
        return f"{x:.{digits}g}"
    rounded = round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))
    return f"{rounded:,.{max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))}f}"


def _fmt_duration(seconds: float) -> str:
    """A long duration in the unit a person would use."""
    for unit, scale in (("years", SECONDS_PER_YEAR), ("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= scale:
            return f"{_sig(seconds / scale)} {unit}"
    return f"{seconds:.3g} s"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def time_call(fn: Callable[[], Any], min_time: float, repeats: int) -> float:
    """Seconds per call of `fn`: loop it until a loop lasts `min_time`, keep the fastest of
    `repeats` loops (other processes can only make a run slower, never faster)."""
    n, best = 1, math.inf
    while True:  # calibrate the loop length
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or n >= 1 << 20:
            break
        n = max(2 * n, int(n * min_time / max(dt, 1e-9) * 1.2))
    best = dt / n
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def _loglog_fit(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least squares of log y = log k + b·log x; returns (k, b)."""
    if len(x) < 2:
        return (float(y[0]) / float(x[0]) if x else math.nan), 1.0
    b, logk = np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)
    return float(math.exp(logk)), float(b)


# -------------------------------------------------------------------------- model
@dataclass
class MLP:
    """n_in -> hidden (tanh) -> 1, mean squared error on a fixed batch (X, Y).
    P = n_in·hidden + hidden + hidden + 1 = (n_in + 2)·hidden + 1."""

    params: list[Tensor]
    X: Tensor
    Y: Tensor

    @property
    def num_params(self) -> int:
        return sum(p.size for p in self.params)

    def loss(self) -> Tensor:
        W1, b1, W2, b2 = self.params
        d = (self.X @ W1 + b1).tanh() @ W2 + b2 - self.Y
        return (d * d).mean()

    def astype(self, dtype: Any) -> MLP:
        cast = [Tensor(p.numpy(), dtype=dtype, requires_grad=True) for p in self.params]
        return MLP(cast, Tensor(self.X.numpy(), dtype=dtype), Tensor(self.Y.numpy(), dtype=dtype))


def make_mlp(target_params: int, n_in: int, batch: int, dtype: Any, gen: Generator) -> MLP:
    hidden = max(1, round((target_params - 1) / (n_in + 2)))
    dt = tg.dtypes.to_dtype(dtype)

    def param(*shape: int, scale: float) -> Tensor:
        return Tensor(gen.normal(shape, dt) * scale, dtype=dt, requires_grad=True)

    params = [param(n_in, hidden, scale=1 / math.sqrt(n_in)), param(hidden, scale=0.1),
              param(hidden, 1, scale=1 / math.sqrt(hidden)), param(1, scale=0.1)]
    return MLP(params, Tensor(gen.normal((batch, n_in), dt), dtype=dt), Tensor(gen.normal((batch, 1), dt), dtype=dt))


def backprop_gradient(model: MLP) -> list[np.ndarray]:
    """One full gradient by reverse mode: a forward pass that records the graph, one backward."""
    for p in model.params:
        p.grad = None
    model.loss().backward()
    return [p.grad.numpy() for p in model.params]


def fd_gradient(model: MLP, h: float, central: bool = True, bar: Any = None) -> list[np.ndarray]:
    """The gradient by finite differences: nudge one parameter at a time.
    central:  (L(θ + h·e_k) - L(θ - h·e_k)) / 2h   (2P forward passes)
    forward:  (L(θ + h·e_k) - L(θ)) / h           (P + 1 forward passes)"""
    grads = []
    with tg.no_grad():
        base = None if central else float(model.loss().item())
        for p in model.params:
            flat = p.data.reshape(-1)  # a view: writing into it moves the parameter
            g = np.empty(flat.size)
            for k in range(flat.size):
                orig = flat[k]
                flat[k] = orig + h
                plus = float(model.loss().item())
                if central:
                    flat[k] = orig - h
                    g[k] = (plus - float(model.loss().item())) / (2 * h)
                else:
                    g[k] = (plus - base) / h
                flat[k] = orig
                if bar is not None:
                    bar.update(1)
            grads.append(g.reshape(p.shape))
    return grads


def _rel_error(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    fa = np.concatenate([x.ravel() for x in a]).astype(np.float64)
    fb = np.concatenate([x.ravel() for x in b]).astype(np.float64)
    return float(np.linalg.norm(fa - fb) / max(np.linalg.norm(fb), 1e-300))


# ------------------------------------------------------------------------ 1. cost
@dataclass
class CostRow:
    params: int
    hidden: int
    t_forward: float
    t_backprop: float
    t_fd: float | None = None  # measured
    t_fd_extrapolated: float | None = None  # with the fitted exponent: k·P^b forward passes
    t_fd_theory: float | None = None  # with the theoretical count: 2P forward passes
    fd_vs_backprop_error: float | None = None  # relative L2 difference of the two gradients

    @property
    def fd_measured(self) -> bool:
        return self.t_fd is not None


@dataclass
class CostResult:
    rows: list[CostRow]
    backprop_constant: float  # one full gradient ≈ this many forward passes (the median over all sizes)
    backprop_slope: float  # log-log slope of (backprop / forward) against P: ≈ 0
    fd_coef: float  # finite differences ≈ fd_coef · P^fd_slope forward passes
    fd_slope: float  # ≈ 1
    fd_stopped_at: int | None  # the first P whose finite differences did not fit the budget
    fd_stop_estimate_s: float | None
    extrapolated: list[tuple[int, float]]  # (P, finite differences / backprop) with the fitted exponent
    week_equivalent_s: float  # a week of backprop training, with finite differences, at the last P (fitted)
    table: str
    plot: Path | None = None
    gpt: GPTCost | None = None
    # Beyond the measured sizes, backprop costs what it cost at the largest ones: the median of
    # backprop/forward over the LARGE_SIZES largest P (at small P, per-op overhead inflates it).
    backprop_large: float = math.nan
    extrapolated_theory: list[tuple[int, float]] = field(default_factory=list)  # (P, ratio) with 2P forward passes
    week_equivalent_theory_s: float = math.nan

    def fd_over_backprop(self, P: float, exponent: str = "fitted") -> float:
        """Finite differences / backprop at P, extrapolated: k·P^b (fitted) or 2P (theory) forward
        passes, over `backprop_large` forward passes (the backprop constant when that is not set)."""
        if exponent not in ("fitted", "theory"):
            raise ValueError(f"fd_over_backprop: exponent must be 'fitted' or 'theory', got {exponent!r}")
        passes = self.fd_coef * P**self.fd_slope if exponent == "fitted" else 2.0 * P
        backprop = self.backprop_large if math.isfinite(self.backprop_large) else self.backprop_constant
        return passes / backprop

    def band(self, P: float) -> tuple[float, float]:
        """(low, high) of the two extrapolations of finite differences / backprop at P."""
        a, b = self.fd_over_backprop(P, "fitted"), self.fd_over_backprop(P, "theory")
        return min(a, b), max(a, b)


LARGE_SIZES = 3  # how many of the largest P give the backprop constant used beyond the measurements


@dataclass
class GPTCost:
    params: int
    t_forward: float
    t_backprop: float
    sample: int  # how many parameters finite differences nudged
    t_fd_per_param: float  # measured: two forward passes per nudged parameter
    fd_vs_backprop_error: float  # relative difference on the sampled entries

    @property
    def t_fd_extrapolated(self) -> float:
        return self.t_fd_per_param * self.params


def gpt_cost(settings: BackpropDemoSettings, say: Printer = print) -> GPTCost:
    """Backprop against finite differences on a small GPT (the `nn` layer). A full finite-difference
    gradient is out of reach even here, so it is measured on a random sample of parameters (the cost
    per parameter is the same for every parameter: two forward passes) and scaled to all P."""
    import tinygrad_lite.functional as F
    from nn import GPT, GPTConfig

    s = settings
    gen = Generator(s.seed)
    config = GPTConfig(block_size=s.gpt_block, vocab_size=s.gpt_vocab, n_layer=s.gpt_layers,
                       n_head=s.gpt_heads, n_embd=s.gpt_embd, dropout=0.0)
    model = GPT(config, dtype="float64", generator=gen)
    tokens = gen.integers(0, s.gpt_vocab, (s.gpt_batch, s.gpt_block + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    params = model.parameters()
    P = sum(p.size for p in params)

    def loss() -> Tensor:
        logits, _ = model(x)
        return F.cross_entropy(logits, y)

    def forward() -> None:
        with tg.no_grad():
            loss().item()

    def gradient() -> None:
        model.zero_grad()
        loss().backward()

    t_fwd = t_bp = math.inf
    for _ in range(max(1, s.repeats)):
        t_fwd = min(t_fwd, time_call(forward, s.min_time_s, 1))
        t_bp = min(t_bp, time_call(gradient, s.min_time_s, 1))
    gradient()
    # A seeded random sample of (parameter tensor, flat index) pairs, uniform over all P entries.
    sizes = np.array([p.size for p in params])
    picks = gen.permutation(P)[: s.gpt_fd_sample]
    owners = np.searchsorted(np.cumsum(sizes), picks, side="right")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    g_fd, g_bp = [], []
    t0 = time.perf_counter()
    with tg.no_grad():
        for i, k in zip(owners, picks - starts[owners]):
            flat = params[i].data.reshape(-1)  # a view: writing into it moves the parameter
            orig = flat[k]
            flat[k] = orig + s.fd_step
            plus = float(loss().item())
            flat[k] = orig - s.fd_step
            minus = float(loss().item())
            flat[k] = orig
            g_fd.append((plus - minus) / (2 * s.fd_step))
            g_bp.append(float(params[i].grad.data.reshape(-1)[k]))
    per_param = (time.perf_counter() - t0) / len(picks)
    result = GPTCost(P, t_fwd, t_bp, len(picks), per_param, _rel_error([np.array(g_fd)], [np.array(g_bp)]))
    say(f"   a small GPT from nn ({s.gpt_layers} layer(s), n_embd {s.gpt_embd}, block {s.gpt_block}, batch "
        f"{s.gpt_batch}, float64): P = {P:,}")
    say(f"      forward {_fmt_time(t_fwd)}, backprop {_fmt_time(t_bp)} = {t_bp / t_fwd:.2f} forward passes")
    say(f"      finite differences measured on {len(picks)} randomly chosen parameters: "
        f"{_fmt_time(per_param)} per parameter; |g_FD - g_BP| / |g_BP| on them = "
        f"{result.fd_vs_backprop_error:.1e}")
    say(f"      all {P:,} parameters (extrapolated): {_fmt_duration(result.t_fd_extrapolated)}, "
        f"{_sig(result.t_fd_extrapolated / t_bp)}× backprop")
    return result


def cost_demo(settings: BackpropDemoSettings, out_dir: Path | None = None, say: Printer = print) -> CostResult:
    s = settings
    say("1. COST OF ONE FULL GRADIENT: backprop vs central finite differences")
    say(f"   model: MLP {s.n_inputs} -> hidden (tanh) -> 1, batch {s.batch}, {s.cost_dtype}; "
        f"timings: fastest of {s.repeats} loops of >= {s.min_time_s * 1e3:.0f} ms")
    gen = Generator(s.seed)
    rows: list[CostRow] = []
    budget_left, stopped_at, stop_estimate = s.fd_budget_s, None, None
    for target in s.cost_params:
        model = make_mlp(target, s.n_inputs, s.batch, s.cost_dtype, gen)
        P = model.num_params

        def forward(model: MLP = model) -> None:  # exactly what finite differences repeat 2P times
            with tg.no_grad():
                model.loss().item()

        def gradient(model: MLP = model) -> None:
            backprop_gradient(model)

        # Interleave the two timings so a burst of load from elsewhere hits both alike.
        t_fwd = t_bp = math.inf
        for _ in range(max(1, s.repeats)):
            t_fwd = min(t_fwd, time_call(forward, s.min_time_s, 1))
            t_bp = min(t_bp, time_call(gradient, s.min_time_s, 1))
        row = CostRow(P, model.params[0].shape[1], t_fwd, t_bp)
        estimate = 2 * P * t_fwd
        if stopped_at is None and estimate <= budget_left:
            from ..extras import progress

            bar = progress(total=P, desc=f"finite differences P={P:,}", unit="param", disable=not s.progress)
            t0 = time.perf_counter()
            g_fd = fd_gradient(model, s.fd_step, central=True, bar=bar)
            row.t_fd = time.perf_counter() - t0
            bar.close()
            budget_left -= row.t_fd
            row.fd_vs_backprop_error = _rel_error(g_fd, backprop_gradient(model))
        elif stopped_at is None:
            stopped_at, stop_estimate = P, estimate
        rows.append(row)
        say(f"   P = {P:>9,}: forward {_fmt_time(t_fwd):>9}, backprop {_fmt_time(t_bp):>9}, "
            f"finite differences {_fmt_time(row.t_fd) if row.fd_measured else 'not run':>9}")

    measured = [r for r in rows if r.fd_measured]
    # Fit in units of forward passes: that removes the growth of the forward pass itself.
    fd_coef, fd_slope = _loglog_fit([r.params for r in measured], [r.t_fd / r.t_forward for r in measured])
    bp_ratios = [r.t_backprop / r.t_forward for r in rows]
    _, bp_slope = _loglog_fit([r.params for r in rows], bp_ratios)
    c = float(np.median(bp_ratios))
    largest = sorted(rows, key=lambda r: r.params)[-LARGE_SIZES:]
    c_large = float(np.median([r.t_backprop / r.t_forward for r in largest]))
    for r in rows:
        if not r.fd_measured:  # forward and backprop were measured at this P: only the pass count is a model
            r.t_fd_extrapolated = fd_coef * r.params**fd_slope * r.t_forward
            r.t_fd_theory = 2.0 * r.params * r.t_forward
    result = CostResult(rows, c, bp_slope, fd_coef, fd_slope, stopped_at, stop_estimate, [], 0.0, "",
                        backprop_large=c_large)
    result.extrapolated = [(P, result.fd_over_backprop(P, "fitted")) for P in s.extrapolate_to]
    result.extrapolated_theory = [(P, result.fd_over_backprop(P, "theory")) for P in s.extrapolate_to]
    last_P = s.extrapolate_to[-1] if s.extrapolate_to else rows[-1].params
    low, high = result.band(last_P)
    result.week_equivalent_s = s.training_time_s * result.fd_over_backprop(last_P, "fitted")
    result.week_equivalent_theory_s = s.training_time_s * result.fd_over_backprop(last_P, "theory")

    def band(a: float, b: float, fmt: Callable[[float], str]) -> str:
        lo, hi = sorted((a, b))
        return f"{fmt(lo)}–{fmt(hi)} *"

    def seconds(t: float) -> str:
        return _fmt_time(t) if t < 60 else _fmt_duration(t)

    header = ["P", "forward", "backprop", "backprop/fwd", "finite diff.", "FD/backprop", "FD", "|g_FD-g_BP|/|g_BP|"]
    body = []
    for r in rows:
        if r.fd_measured:
            t_fd, ratio = _fmt_time(r.t_fd), _sig(r.t_fd / r.t_backprop)
        else:
            t_fd = band(r.t_fd_extrapolated, r.t_fd_theory, seconds)
            ratio = band(r.t_fd_extrapolated / r.t_backprop, r.t_fd_theory / r.t_backprop, _sig)
        body.append([f"{r.params:,}", _fmt_time(r.t_forward), _fmt_time(r.t_backprop),
                     f"{r.t_backprop / r.t_forward:.2f}", t_fd, ratio,
                     "measured" if r.fd_measured else "extrapolated",
                     f"{r.fd_vs_backprop_error:.1e}" if r.fd_vs_backprop_error is not None else "-"])
    for P in s.extrapolate_to:
        body.append([f"{P:,}", "-", "-", f"{c_large:.2f} *", "-", band(*result.band(P), _sig), "extrapolated", "-"])
    result.table = _table(header, body)
    say("")
    say(result.table)
    say("   * extrapolated: a range from two models of finite differences, the fitted k·P^b forward passes and "
        "the theoretical 2P;")
    say("     every number without * was measured in this run.")
    say(f"   fit, finite differences: {fd_coef:.3g} · P^{fd_slope:.3f} forward passes "
        f"(theory: 2·P^1), from {len(measured)} measured sizes")
    say(f"   fit, backprop: {c:.2f} forward passes, the median over all sizes (log-log slope {bp_slope:+.3f}); "
        f"{c_large:.2f} over the {len(largest)} largest sizes, used beyond them")
    if stopped_at is not None:
        say(f"   finite differences stopped after P = {measured[-1].params:,} (budget {s.fd_budget_s:g} s): "
            f"P = {stopped_at:,} would need about {_fmt_duration(stop_estimate)}")
    else:
        say(f"   finite differences were measured at every size within the {s.fd_budget_s:g} s budget")
    say(f"   extrapolated to P = {last_P:,}: finite differences cost {_sig(low)}–{_sig(high)}× backprop, so "
        f"a week of backprop training would take {_fmt_duration(s.training_time_s * low)} to "
        f"{_fmt_duration(s.training_time_s * high)} with finite differences "
        f"(the textbook framing: \"a week instead of 200,000 years\")")
    result.gpt = gpt_cost(s, say)
    if out_dir is not None:
        result.plot = _plot_cost(result, out_dir / "backprop_cost.png")
        say(f"   plot: {result.plot}")
    return result


def _plot_cost(r: CostResult, path: Path) -> Path:
    from ..extras import new_figure

    fig = new_figure(16, 4.8)
    ax, ax2, ax3 = fig.subplots(1, 3)
    P = np.array([row.params for row in r.rows], float)
    m = [row for row in r.rows if row.fd_measured]
    e = [row for row in r.rows if not row.fd_measured]
    ax.loglog(P, [row.t_forward for row in r.rows], "o-", color="gray", label="one forward pass (measured)")
    ax.loglog(P, [row.t_backprop for row in r.rows], "s-", color="C0", label="backprop, forward + backward (measured)")
    ax.loglog([row.params for row in m], [row.t_fd for row in m], "^-", color="C3",
              label="finite differences (measured)")
    if e:
        # Forward passes were timed at these P too: only the number of them is a model, k·P^b or 2P.
        xs = ([m[-1].params] if m else []) + [row.params for row in e]
        fit = ([m[-1].t_fd] if m else []) + [row.t_fd_extrapolated for row in e]
        theory = ([m[-1].t_fd] if m else []) + [2.0 * row.params * row.t_forward if row.t_fd_theory is None
                                                 else row.t_fd_theory for row in e]
        ax.loglog(xs, fit, "^--", color="C3", mfc="none", label="finite differences, extrapolated: fitted k·P^b passes")
        ax.loglog(xs, theory, "v:", color="C3", mfc="none", label="finite differences, extrapolated: 2P passes")
        ax.fill_between(xs, fit, theory, color="C3", alpha=0.15, lw=0, label="between the two extrapolations")
    ax.set_xlabel("parameters P (count)")
    ax.set_ylabel("seconds for one full gradient (s)")
    ax.set_title("Cost of one gradient")
    P_max = max(P.max(), *(p for p, _ in r.extrapolated)) if r.extrapolated else P.max()
    Pe = np.logspace(math.log10(P.min()), math.log10(P_max), 50)
    ax2.loglog(Pe, r.fd_coef * Pe**r.fd_slope, "--", color="C3",
               label=f"finite differences, fit: {r.fd_coef:.2g}·P^{r.fd_slope:.2f}")
    ax2.loglog(Pe, 2.0 * Pe, ":", color="C3", label="finite differences, theory: 2·P")
    ax2.loglog([row.params for row in m], [row.t_fd / row.t_forward for row in m], "^", color="C3",
               label="finite differences (measured)")
    ax2.loglog(Pe, np.full_like(Pe, r.backprop_constant), "--", color="C0",
               label=f"backprop, fit: {r.backprop_constant:.2f} (median)")
    ax2.loglog(P, [row.t_backprop / row.t_forward for row in r.rows], "s", color="C0",
               label="backprop (measured)")
    ax2.set_xlabel("parameters P (count)")
    ax2.set_ylabel("cost (forward passes)")
    ax2.set_title("Measured (markers), fitted and theoretical (lines)")
    # The headline ratio: measured where finite differences ran, then the band of the two extrapolations.
    ax3.loglog([row.params for row in m], [row.t_fd / row.t_backprop for row in m], "^-", color="C3",
               label="finite differences / backprop (measured)")
    if m:
        Pb = np.logspace(math.log10(m[-1].params), math.log10(P_max), 40)
        lo_hi = np.array([r.band(x) for x in Pb])
        ax3.fill_between(Pb, lo_hi[:, 0], lo_hi[:, 1], color="C3", alpha=0.2, lw=0,
                         label=f"extrapolated band: k·P^b or 2P passes over {r.backprop_large:.2f} (backprop)"
                         if math.isfinite(r.backprop_large) else "extrapolated band: k·P^b or 2P forward passes")
        ax3.loglog(Pb, [r.fd_over_backprop(x, "fitted") for x in Pb], "--", color="C3", lw=1,
                   label="fitted exponent")
        ax3.loglog(Pb, [r.fd_over_backprop(x, "theory") for x in Pb], ":", color="C3", lw=1,
                   label="theoretical 2P")
    ax3.set_xlabel("parameters P (count)")
    ax3.set_ylabel("finite differences / backprop (times slower)")
    ax3.set_title("How many times slower finite differences are")
    # Where the finite-difference measurements stop, everything to the right is a model's prediction.
    if m:
        last = m[-1].params
        for a, right in ((ax, P.max()), (ax2, max(P.max(), Pe.max())), (ax3, P_max)):  # each panel's x range
            a.axvline(last, color="k", ls=":", lw=1, label=f"last measured finite differences (P = {last:,})")
            if right > last:
                a.axvspan(last, right, color="gray", alpha=0.12, lw=0,
                          label="finite differences: extrapolated, not measured")
    for a in (ax, ax2, ax3):
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    return save_figure(fig, path)


# -------------------------------------------------------------------- 2. accuracy
FLOAT64_EPS = float(np.finfo(np.float64).eps)


def _check_scheme(scheme: str, where: str) -> None:
    if scheme not in ("central", "forward"):
        raise ValueError(f"{where}: scheme must be 'central' or 'forward', got {scheme!r}")


def fd_error_model(h: Any, f: Any, derivative: Any, eps: float = FLOAT64_EPS, scheme: str = "central") -> Any:
    """The error bound of a finite difference with step h, truncation plus round-off:

        central  (f(x+h) - f(x-h)) / 2h:   E(h) = h²·|f'''|/6 + eps·|f|/h
        forward  (f(x+h) - f(x)) / h:      E(h) = h·|f''|/2  + 2·eps·|f|/h

    `derivative` is f''' (central) or f'' (forward) near x; each evaluation of f is taken to be off by
    up to eps·|f| (Nocedal & Wright, Numerical Optimization, 2nd ed., 2006, §8.1). Arrays broadcast."""
    _check_scheme(scheme, "fd_error_model")
    h, f, d = np.asarray(h, float), np.abs(np.asarray(f, float)), np.abs(np.asarray(derivative, float))
    if np.any(h <= 0):
        raise ValueError("fd_error_model: every step h must be positive")
    out = h**2 * d / 6 + eps * f / h if scheme == "central" else h * d / 2 + 2 * eps * f / h
    return float(out) if out.ndim == 0 else out


def optimal_step(f: Any, derivative: Any, eps: float = FLOAT64_EPS, scheme: str = "central") -> Any:
    """The step h that minimizes `fd_error_model` (set dE/dh = 0):

        central:  h* = (3·eps·|f| / |f'''|)^(1/3)
        forward:  h* = 2·sqrt(eps·|f| / |f''|)      (Nocedal & Wright, 2006, §8.1)

    `derivative` is f''' for central differences and f'' for forward ones. With |f| ≈ |f'''| the
    central step is about eps^(1/3) (6e-6 in float64), the rule of thumb the accuracy plot marks.
    A zero derivative means no truncation error: the best step is then infinite. Arrays broadcast."""
    _check_scheme(scheme, "optimal_step")
    if not eps > 0:
        raise ValueError(f"optimal_step: eps must be positive (the machine epsilon of the dtype), got {eps}")
    f, d = np.abs(np.asarray(f, float)), np.abs(np.asarray(derivative, float))
    with np.errstate(divide="ignore"):
        h = np.cbrt(3 * eps * f / d) if scheme == "central" else 2 * np.sqrt(eps * f / d)
    return float(h) if h.ndim == 0 else h


@dataclass
class AccuracyCase:
    dtype: str
    scheme: str  # "forward" or "central"
    errors: list[float]
    best_h: float
    best_error: float
    theory_h: float  # sqrt(eps) for forward differences, eps^(1/3) for central ones


@dataclass
class AccuracyResult:
    hs: list[float]
    cases: list[AccuracyCase]
    params: int
    table: str
    plot: Path | None = None


def accuracy_demo(settings: BackpropDemoSettings, out_dir: Path | None = None, say: Printer = print) -> AccuracyResult:
    s = settings
    say("2. ACCURACY: gradient error against the step h (truncation error vs round-off)")
    model64 = make_mlp((s.n_inputs + 2) * s.accuracy_hidden + 1, s.n_inputs, s.batch, "float64", Generator(s.seed + 1))
    reference = backprop_gradient(model64)  # exact up to float64 round-off
    hs = list(np.logspace(math.log10(s.accuracy_h_range[0]), math.log10(s.accuracy_h_range[1]), s.accuracy_h_points))
    cases = []
    for dtype in ("float64", "float32"):
        model = model64 if dtype == "float64" else model64.astype(dtype)
        eps = float(np.finfo(dtype).eps)
        for scheme, theory in (("forward", eps ** 0.5), ("central", eps ** (1 / 3))):
            errors = [_rel_error(fd_gradient(model, h, central=scheme == "central"), reference) for h in hs]
            k = int(np.argmin(errors))
            cases.append(AccuracyCase(dtype, scheme, errors, hs[k], errors[k], theory))
    say(f"   model: MLP with P = {model64.num_params} parameters; error = |g_FD - g_BP| / |g_BP| with g_BP "
        f"from backprop in float64; {len(hs)} steps h from {hs[0]:.0e} to {hs[-1]:.0e}")
    rows = [[c.dtype, c.scheme, f"{c.best_h:.1e}", f"{c.best_error:.1e}",
             ("sqrt(eps)" if c.scheme == "forward" else "eps^(1/3)") + f" = {c.theory_h:.1e}",
             f"{c.best_h / c.theory_h:.2g}"]
            for c in cases]
    table = _table(["dtype", "differences", "best h (measured)", "error at best h", "theory", "measured/theory"], rows)
    say("")
    say(table)
    say("   Left of the best h round-off wins (error ~ eps/h), right of it truncation "
        "(error ~ h for forward, h² for central differences).")
    result = AccuracyResult(hs, cases, model64.num_params, table)
    if out_dir is not None:
        result.plot = _plot_accuracy(result, out_dir / "backprop_accuracy.png")
        say(f"   plot: {result.plot}")
    return result


def _plot_accuracy(r: AccuracyResult, path: Path) -> Path:
    from ..extras import new_figure

    fig = new_figure(7, 5)
    ax = fig.subplots()
    colors = {("float64", "forward"): "C0", ("float64", "central"): "C1",
              ("float32", "forward"): "C2", ("float32", "central"): "C3"}
    for c in r.cases:
        col = colors[(c.dtype, c.scheme)]
        ax.loglog(r.hs, c.errors, ".-", color=col, label=f"{c.scheme} differences, {c.dtype}")
        ax.loglog([c.best_h], [c.best_error], "*", ms=14, color=col, mec="black")
        ax.axvline(c.theory_h, color=col, ls=":", lw=1)
    ax.set_xlabel("step h")
    ax.set_ylabel("relative gradient error")
    ax.set_title("Finite differences: truncation vs round-off\n(star: measured best h; dotted: sqrt(eps) / eps^(1/3))")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


# ------------------------------------------------------------ 3. forward vs reverse
@dataclass
class JacobianRow:
    n: int
    m: int
    t_fwd: float
    t_rev: float
    max_difference: float  # between the two Jacobians


@dataclass
class JacobianResult:
    rows: list[JacobianRow]
    crossover: float | None  # n/m where the two modes cost the same (log-interpolated)
    table: str
    plot: Path | None = None


def jacobian_demo(settings: BackpropDemoSettings, out_dir: Path | None = None, say: Printer = print) -> JacobianResult:
    s = settings
    say("3. FORWARD vs REVERSE MODE: the cost of a full Jacobian of f: R^n -> R^m")
    say(f"   f(x) = tanh(x A + a) B with {s.jacobian_hidden} hidden units; forward mode: n JVPs "
        f"(tinygrad_lite.jvp), reverse mode: one forward pass + m backward passes")
    gen = Generator(s.seed + 2)
    rows = []
    for n, m in s.jacobian_shapes:
        H = s.jacobian_hidden
        A = Tensor(gen.normal((n, H), np.dtype("float64")) / math.sqrt(n), dtype="float64")
        a = Tensor(gen.normal((H,), np.dtype("float64")) * 0.1, dtype="float64")
        B = Tensor(gen.normal((H, m), np.dtype("float64")) / math.sqrt(H), dtype="float64")
        x = Tensor(gen.normal((n,), np.dtype("float64")), dtype="float64")

        def f(x: Any, A: Tensor = A, a: Tensor = a, B: Tensor = B) -> Any:
            return (x @ A + a).tanh() @ B  # the same code for both modes (fwd: its Tensors carry tangents)

        J_fwd = tg.jacobian(f, x, mode="fwd").numpy()
        J_rev = tg.jacobian(f, x, mode="rev").numpy()
        t_fwd = t_rev = math.inf
        for _ in range(max(1, s.repeats)):  # interleaved, fastest of `repeats`
            t_fwd = min(t_fwd, time_call(lambda f=f, x=x: tg.jacobian(f, x, mode="fwd"), s.min_time_s, 1))
            t_rev = min(t_rev, time_call(lambda f=f, x=x: tg.jacobian(f, x, mode="rev"), s.min_time_s, 1))
        rows.append(JacobianRow(n, m, t_fwd, t_rev, float(np.abs(J_fwd - J_rev).max())))
    crossover = None
    ordered = sorted(rows, key=lambda r: r.n / r.m)
    for lo, hi in zip(ordered, ordered[1:]):
        y0, y1 = math.log(lo.t_fwd / lo.t_rev), math.log(hi.t_fwd / hi.t_rev)
        if y0 <= 0 < y1:
            x0, x1 = math.log(lo.n / lo.m), math.log(hi.n / hi.m)
            crossover = math.exp(x0 + (x1 - x0) * (-y0) / (y1 - y0))
            break
    body = [[str(r.n), str(r.m), f"{r.n / r.m:.3g}", _fmt_time(r.t_fwd), _fmt_time(r.t_rev),
             f"{r.t_fwd / r.t_rev:.3g}", "forward" if r.t_fwd < r.t_rev else "reverse", f"{r.max_difference:.0e}"]
            for r in rows]
    table = _table(["n (inputs)", "m (outputs)", "n/m", "forward mode", "reverse mode", "fwd/rev", "faster",
                    "max |J_fwd - J_rev|"], body)
    say("")
    say(table)
    if crossover is not None:
        say(f"   crossover at n/m ≈ {crossover:.2g}: forward mode wins when n << m, reverse mode when n >> m.")
    else:
        say("   no crossover inside the measured range")
    say("   Training is the n >> m case: n = P parameters, m = 1 loss, so reverse mode (backprop) "
        "needs one backward pass where forward mode needs P.")
    result = JacobianResult(rows, crossover, table)
    if out_dir is not None:
        result.plot = _plot_jacobian(result, out_dir / "backprop_fwd_vs_rev.png")
        say(f"   plot: {result.plot}")
    return result


def _plot_jacobian(r: JacobianResult, path: Path) -> Path:
    from ..extras import new_figure

    fig = new_figure(7, 4.5)
    ax = fig.subplots()
    rows = sorted(r.rows, key=lambda row: row.n / row.m)
    ratio = [row.n / row.m for row in rows]
    ax.loglog(ratio, [row.t_fwd for row in rows], "o-", label="forward mode (n JVPs)")
    ax.loglog(ratio, [row.t_rev for row in rows], "s-", label="reverse mode (m VJPs)")
    if r.crossover is not None:
        ax.axvline(r.crossover, color="gray", ls=":", label=f"crossover n/m ≈ {r.crossover:.2g}")
    ax.set_xlabel("n / m  (inputs / outputs)")
    ax.set_ylabel("seconds for the full Jacobian")
    ax.set_title("Full Jacobian: forward vs reverse mode")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


# ------------------------------------------------------------- 4. worked example
@dataclass
class WorkedExampleResult:
    value: float
    paths: dict[str, list[str]]  # leaf -> each path's product, written out
    sum_over_paths: dict[str, float]
    reverse_steps: list[str]
    backprop: dict[str, float]
    numerical: dict[str, float]
    path_counts: list[tuple[int, int, int]]  # (depth, paths from output to input, edges reverse mode visits)
    dot: str
    dot_file: Path | None = None
    graph_file: Path | None = None  # the graph as a picture (PNG, drawn by tinygrad_lite.plot_graph)
    graph: Tensor | None = None  # e, its graph kept alive with every gradient: tg.plot_graph(graph) draws it


def _graph_edges(root: Tensor) -> tuple[list[Tensor], dict[int, list[tuple[Tensor, float]]]]:
    """Nodes in topological order, and for each node its (parent, ∂node/∂parent) edges. The local
    derivative of a scalar op comes from its own backward rule applied to an upstream gradient of 1."""
    # every tensor after all of its parents (an iterative depth-first search, the one the pictures use)
    order = topological_order(root, lambda t: [p for p in t._ctx.parents if p.requires_grad] if t._ctx else [])
    edges: dict[int, list[tuple[Tensor, float]]] = {}
    with tg.no_grad():
        for t in order:
            if t._ctx is None:
                continue
            local = t._ctx.backward(Tensor(np.ones(t.shape), dtype=t.dtype))
            local = local if isinstance(local, tuple) else (local,)
            edges[id(t)] = [(p, float(g.item())) for p, g in zip(t._ctx.parents, local)
                            if p.requires_grad and g is not None]
    return order, edges


def _diamond_chain(depth: int) -> tuple[Tensor, Tensor]:
    """u_{i+1} = (u_i + 1)·(u_i + 2): every layer offers two routes, so the paths double."""
    x = tg.tensor(0.1, dtype=tg.float64, requires_grad=True)
    u = x
    for _ in range(depth):
        u = (u + 1.0) * (u + 2.0) * 0.1
    return x, u


def _count_paths(root: Tensor, leaf: Tensor) -> tuple[int, int]:
    """(number of paths root -> leaf, number of edges): counted on the engine's graph."""
    order, edges = _graph_edges(root)
    paths = {id(leaf): 1}
    for t in order:  # parents come first, so every parent's count is final
        if id(t) in edges:
            paths[id(t)] = sum(paths.get(id(p), 0) for p, _ in edges[id(t)])
    return paths.get(id(root), 0), sum(len(e) for e in edges.values())


def worked_example_demo(settings: BackpropDemoSettings, out_dir: Path | None = None,
                        say: Printer = print) -> WorkedExampleResult:
    s = settings
    say(f"4. THE WORKED EXAMPLE: e = (a + b)(b + 1) at a = {s.a:g}, b = {s.b:g}")
    a = tg.tensor(s.a, dtype=tg.float64, requires_grad=True)
    b = tg.tensor(s.b, dtype=tg.float64, requires_grad=True)
    c = a + b
    d = b + 1.0
    e = c * d
    names = {id(a): "a", id(b): "b", id(c): "c", id(d): "d", id(e): "e"}
    for t in (a, b, c, d, e):
        t.name = names[id(t)]
    order, edges = _graph_edges(e)
    say(f"   forward: c = a + b = {c.item():g}, d = b + 1 = {d.item():g}, e = c·d = {e.item():g}")
    say("   local derivatives (each op's backward rule with upstream gradient 1): "
        + ", ".join(f"∂{names[id(t)]}/∂{names[id(p)]} = {v:g}" for t in reversed(order) if id(t) in edges
                    for p, v in edges[id(t)]))

    # Naive: enumerate every path from e down to each input and add up the products along them.
    paths: dict[str, list[str]] = {"a": [], "b": []}
    totals = {"a": 0.0, "b": 0.0}
    stack: list[tuple[Tensor, list[str], float]] = [(e, [names[id(e)]], 1.0)]
    while stack:
        t, route, prod = stack.pop()
        if t._ctx is None:
            leaf = names[id(t)]
            factors = " · ".join(f"∂{route[i]}/∂{route[i + 1]}" for i in range(len(route) - 1))
            paths[leaf].append(f"{' -> '.join(route)}: {factors} = {prod:g}")
            totals[leaf] += prod
            continue
        for p, v in edges[id(t)]:
            stack.append((p, route + [names[id(p)]], prod * v))
    say("   sum over paths (naive):")
    for leaf in ("a", "b"):
        for line in sorted(paths[leaf]):
            say(f"      {line}")
        say(f"      => de/d{leaf} = {totals[leaf]:g}   ({len(paths[leaf])} path{'s' * (len(paths[leaf]) != 1)})")

    # Factored: one sweep in reverse topological order; each node's adjoint is final when visited.
    say("   reverse pass (factored): visit nodes in reverse topological order, ē = 1")
    adjoint = {id(e): 1.0}
    steps = []
    for t in reversed(order):
        for p, v in edges.get(id(t), []):
            before = adjoint.get(id(p), 0.0)
            adjoint[id(p)] = before + adjoint[id(t)] * v
            n, pn = names[id(t)], names[id(p)]
            steps.append(f"{pn}̄ += {n}̄ · ∂{n}/∂{pn} = {adjoint[id(t)]:g} · {v:g}  ->  {pn}̄ = {adjoint[id(p)]:g}")
    for line in steps:
        say(f"      {line}")

    c.retain_grad()  # keep the intermediate adjoints too, to show them in the graph
    d.retain_grad()
    e.retain_grad()  # and the output's own gradient, de/de = 1
    e.backward(retain_graph=True)  # retain_graph: the graph is drawn after backward
    backprop = {"a": a.grad.item(), "b": b.grad.item()}
    h = 1e-6
    f = lambda av, bv: (av + bv) * (bv + 1.0)  # noqa: E731
    numerical = {"a": (f(s.a + h, s.b) - f(s.a - h, s.b)) / (2 * h), "b": (f(s.a, s.b + h) - f(s.a, s.b - h)) / (2 * h)}
    say("")
    say(_table(["input", "sum over paths", "reverse pass", "engine (backward)", f"central diff. (h={h:g})"],
               [[k, f"{totals[k]:g}", f"{adjoint[id(t)]:g}", f"{backprop[k]:g}", f"{numerical[k]:.9f}"]
                for k, t in (("a", a), ("b", b))]))
    dot = tg.draw_graph(e, show_values=True)

    counts = []
    for depth in s.path_depths:
        x, u = _diamond_chain(depth)
        n_paths, n_edges = _count_paths(u, x)
        counts.append((depth, n_paths, n_edges))
    say("   why factor: stack layers u -> (u + 1)(u + 2)·0.1; paths double with each layer, "
        "the reverse pass visits each edge once")
    say(_table(["layers", "paths (sum over paths)", "edges (reverse pass)"],
               [[str(k), f"{p:,}", f"{n:,}"] for k, p, n in counts]))
    result = WorkedExampleResult(e.item(), paths, totals, steps, backprop, numerical, counts, dot, graph=e)
    if out_dir is not None:
        figure = tg.plot_graph(e, show_values=True, title=f"e = (a + b)(b + 1) at a = {s.a:g}, b = {s.b:g}: "
                                                          "values and gradients after backward")
        result.graph_file = save_figure(figure, out_dir / "backprop_worked_example.png")
        result.dot_file = atomic_write_text(out_dir / "backprop_worked_example.dot", dot + "\n")
        say(f"   graph: {result.graph_file} (picture); {result.dot_file.name} (the same graph as Graphviz DOT text)")
    return result


# ---------------------------------------------------------------------- the demo
@dataclass
class BackpropDemoResult:
    settings: BackpropDemoSettings
    cost: CostResult
    accuracy: AccuracyResult
    jacobian: JacobianResult
    worked_example: WorkedExampleResult
    seconds: float
    report: Path | None = None
    lines: list[str] = field(default_factory=list)


def run_backprop_demo(settings: BackpropDemoSettings | None = None, out_dir: Path | None = None,
                      say: Printer = print) -> BackpropDemoResult:
    """All four parts; figures and a text report (backprop_report.txt) go to `out_dir`."""
    settings = settings or BackpropDemoSettings()
    lines: list[str] = []

    def both(line: str) -> None:
        lines.append(line)
        say(line)

    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    both("BACKPROP vs NUMERICAL DIFFERENTIATION")
    both(f"(settings: {settings})")
    both("")
    cost = cost_demo(settings, out_dir, both)
    both("")
    accuracy = accuracy_demo(settings, out_dir, both)
    both("")
    jac = jacobian_demo(settings, out_dir, both)
    both("")
    worked = worked_example_demo(settings, out_dir, both)
    seconds = time.perf_counter() - t0
    both("")
    both(f"demo finished in {seconds:.1f} s")
    result = BackpropDemoResult(settings, cost, accuracy, jac, worked, seconds, lines=lines)
    if out_dir is not None:
        result.report = atomic_write_text(out_dir / "backprop_report.txt", "\n".join(lines) + "\n")
    return result


def summary(result: BackpropDemoResult) -> str:
    c = result.cost
    if not c.extrapolated:
        return f"backprop = {c.backprop_constant:.2f} forward passes; finite differences ~ P^{c.fd_slope:.2f}"
    last_P = c.extrapolated[-1][0]
    low, high = c.band(last_P)
    return (f"backprop = {c.backprop_constant:.2f} forward passes; finite differences ~ P^{c.fd_slope:.2f}, "
            f"{_sig(low, 2)}–{_sig(high, 2)}x backprop at P = {last_P:,}")


@register("backprop-vs-numerical")
def backprop_step(out_dir: Path, quick: bool) -> str:
    settings = BackpropDemoSettings.quick() if quick else BackpropDemoSettings.tour()
    return summary(run_backprop_demo(settings, out_dir))


__all__ = ["BackpropDemoSettings", "BackpropDemoResult", "run_backprop_demo", "cost_demo", "gpt_cost", "accuracy_demo",
           "jacobian_demo", "worked_example_demo", "fd_gradient", "backprop_gradient", "make_mlp", "summary",
           "optimal_step", "fd_error_model"]
