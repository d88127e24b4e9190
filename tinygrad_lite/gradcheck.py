"""Gradient checking: compare backprop's Jacobian with central finite differences.

Slow mode builds both full Jacobians J[m, k] = d out_m / d in_k:
    numerical:  (f(x + eps·e_k) - f(x - eps·e_k)) / (2·eps), one column per input element
    analytical: one backward pass per output element, with a one-hot grad_output (one row each)
and requires |A - N| <= atol + rtol·|N| everywhere.  Fast mode compares a single number per
input, vᵀ·J·u for random unit vectors u and v (Fast gradcheck, as in PyTorch), and reruns the slow
mode to explain a failure.

A failure report names the input, shows the worst elements and recognizes the usual mistakes:
a constant factor, a flipped sign, a transpose, a missing sum over broadcast dimensions, an
all-zero gradient, a gradient that is right on only part of the input, and a missing (or extra)
transpose of a square operand inside the backward rule. By default the check stops at the first
failing input; `all_inputs=True` checks and reports every input.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .autograd import GradientShapeError, grad
from .grad_mode import enable_grad, no_grad
from .tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by gradcheck on a mismatch; `.result` holds the structured findings."""

    def __init__(self, result: GradcheckResult) -> None:
        super().__init__(result.report)
        self.result = result


@dataclass
class GradcheckResult:
    ok: bool
    report: str = ""
    input_index: int | None = None
    diagnosis: str | None = None  # "factor", "sign", "transposed", "operand_transposed", "broadcast", "zero",
    #                               "partial", "unknown"
    factor: float | None = None
    worst: list[dict[str, Any]] = field(default_factory=list)
    # One result per failing input (the fields above describe the first). With all_inputs=False the
    # check stops at the first failing input, so this holds one entry.
    failures: list[GradcheckResult] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


# ----------------------------------------------------------------- helpers
def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
    outs = _as_tuple(fn(*inputs))
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: the function must return Tensors, got {type(o).__name__}")
    return outs


def _evaluate(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> list[np.ndarray]:
    with no_grad():
        return [np.array(o.numpy(), dtype=np.float64).ravel() for o in _outputs(fn, inputs)]


def numerical_jacobian(fn: Callable[..., Any], inputs: Sequence[Tensor] | Tensor,
                       eps: float = 1e-6, only: Sequence[int] | None = None) -> list[list[np.ndarray]]:
    """J[i][j]: the (out_j.size, in_i.size) Jacobian of output j w.r.t. input i, by central
    differences. Only inputs that require grad (and, with `only`, whose position is listed) are
    perturbed; the others get an empty list."""
    inputs = _as_tuple(inputs)
    sizes = [o.size for o in _evaluate(fn, inputs)]
    result: list[list[np.ndarray]] = []
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad) or (only is not None and i not in only):
            result.append([])
            continue
        cols = [np.zeros((n, x.size)) for n in sizes]
        for k in range(x.size):
            idx = np.unravel_index(k, x.shape)  # works for non-contiguous views too
            orig = x.data[idx].copy()
            x.data[idx] = orig + eps
            plus = _evaluate(fn, inputs)
            x.data[idx] = orig - eps
            minus = _evaluate(fn, inputs)
            x.data[idx] = orig
            for j in range(len(sizes)):
                cols[j][:, k] = (plus[j] - minus[j]) / (2 * eps)
        result.append(cols)
    return result


def numerical_grad(fn: Callable[..., Tensor], x: Tensor, eps: float = 1e-6) -> np.ndarray:
    """d fn(x) / dx for a scalar-valued fn, by central differences, in x's shape."""
    jac = numerical_jacobian(fn, (x,), eps)[0][0]
    if jac.shape[0] != 1:
        raise ValueError(f"numerical_grad: fn must return a scalar, got {jac.shape[0]} elements")
    return jac[0].reshape(x.shape)


def analytical_jacobian(fn: Callable[..., Any], inputs: Sequence[Any] | Tensor) -> list[np.ndarray]:
    """Backprop's Jacobian of fn for each input that requires grad, in input order: an array of
    shape (total output elements, input elements) per input (the outputs' rows stacked)."""
    inputs = _as_tuple(inputs)
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    blocks = _analytical_jacobian(_outputs(fn, inputs), diff)
    return [np.concatenate(b, axis=0) if b else np.zeros((0, x.size)) for b, x in zip(blocks, diff)]


def _analytical_jacobian(outs: Sequence[Tensor], diff_inputs: Sequence[Tensor]) -> list[list[np.ndarray]]:
    """J[i][j] by one backward per output element (a one-hot grad_output picks out one row)."""
    result = [[np.zeros((o.size, x.size)) for o in outs] for x in diff_inputs]
    for j, o in enumerate(outs):
        if not o.requires_grad:
            continue  # a constant output: its Jacobian is zero
        for m in range(o.size):
            onehot = np.zeros(o.size, dtype=o.dtype)
            onehot[m] = 1
            v = Tensor._make(o.xp.asarray(onehot.reshape(o.shape)), False, o.device)
            grads = grad(o, list(diff_inputs), grad_outputs=v, retain_graph=True, allow_unused=True)
            for i, g in enumerate(grads):
                if g is not None:
                    result[i][j][m] = np.asarray(g.numpy(), dtype=np.float64).ravel()
    return result


# ----------------------------------------------------------------- diagnosis
def _factor_text(c: float) -> str:
    """Explain analytical ≈ c·numerical. Integer multiples and fractions 1/k have typical causes."""
    text = f"off by a constant factor: analytical ≈ {c:.4g} × numerical"
    sign = ", and the sign is flipped" if c < 0 else ""
    mag = abs(c)
    k = round(mag if mag > 1 else 1 / mag)
    if k < 2 or abs(mag - (k if mag > 1 else 1 / k)) > 1e-3 * mag:
        return text + (" (and the sign is flipped)" if c < 0 else "")
    if mag > 1:
        return text + f" (an extra ×{k}{sign}: a term counted {k} times, or a sum where a mean belongs?)"
    # Only a fraction 1/k can come from broadcasting: an input copied k times in forward gets the
    # *sum* of its k copies' gradients, so averaging them instead is exactly k times too small.
    return text + (f" (a missing ×{k}{sign}: a constant dropped from the derivative, like the 2 of d(x²) = 2x? "
                   f"Or, if forward broadcast this input {k} times, its gradient was averaged where the "
                   f"{k} copies must be summed)")


def _diagnose(a: np.ndarray, n: np.ndarray, x: np.ndarray, atol: float, rtol: float) -> tuple[str, str, float | None]:
    """Recognize a common mistake from the analytical (a) and numerical (n) Jacobians, both of
    shape (outputs, input elements), for the input values x."""
    ok = np.abs(a - n) <= atol + rtol * np.abs(n)
    n_max = np.abs(n).max(initial=0.0)
    if np.abs(a).max(initial=0.0) <= atol and n_max > atol:
        return "zero", "the analytical gradient is all zero while the numerical one is not: " \
                       "is the backward rule returning zeros, or is the input detached from the graph?", None
    # A constant factor: estimate it from the entries that are clearly nonzero (a median is not
    # thrown off by a few odd ones), then require that it explains *every* entry.
    significant = np.abs(n) > 1e-3 * max(n_max, atol)
    if significant.any():
        c = float(np.median(a[significant] / n[significant]))
        explains_all = np.allclose(a, c * n, atol=atol * max(1.0, abs(c)), rtol=rtol * 10)
        # (c within 1% of 1 is no factor at all: the gradient is merely a little off)
        if explains_all and abs(c) > 1e-8 and abs(c - 1.0) > 0.01:
            if abs(c + 1.0) <= 0.01:
                return "sign", "the sign is flipped: analytical = -numerical everywhere", -1.0
            return "factor", _factor_text(c), c
    shape = x.shape
    if len(shape) >= 2 and shape[-1] == shape[-2] > 1:
        # Transpose each row of the Jacobian (a gradient in the input's shape) and compare again.
        at = np.swapaxes(a.reshape(a.shape[0], *shape), -1, -2).reshape(a.shape)
        if np.all(np.abs(at - n) <= atol + rtol * np.abs(n)):
            return "transposed", "the gradient is transposed: analytical[..., i, j] == numerical[..., j, i] " \
                                 "(check the order of a matmul's operands or a missing .T)", None
    # Partial: some input elements get exactly the right gradient (every output), others do not.
    col_ok = ok.all(axis=0)
    if col_ok.any() and not col_ok.all():
        bad = ~col_ok
        where = [tuple(int(i) for i in np.unravel_index(k, shape)) for k in np.flatnonzero(bad)[:6]]
        more = "" if bad.sum() <= 6 else f" and {int(bad.sum()) - 6} more"
        values = x.ravel()
        if np.array_equal(bad, values < 0) or np.array_equal(bad, values <= 0):
            why = "exactly where the input is negative: check the branch for x < 0"
        elif np.array_equal(bad, values > 0) or np.array_equal(bad, values >= 0):
            why = "exactly where the input is positive: check the branch for x > 0"
        else:
            why = "a branch or a slice of the input handled wrongly?"
        return "partial", (f"correct on only part of the input: {int(col_ok.sum())} of {col_ok.size} input "
                           f"elements match; wrong at {where}{more} ({why})"), None
    return "unknown", ("no common mistake recognized; compare the analytical and numerical values of the "
                       "worst elements listed with this diagnosis"), None


def _transposed_operand(fn: Callable[..., Any], inputs: tuple[Any, ...], pos: int, a: np.ndarray, eps: float,
                        atol: float, rtol: float) -> tuple[str, str] | None:
    """A hypothesis for an unrecognized gradient of input `pos`: is it what the gradient would be
    if some square input j were transposed? Then the backward rule uses input j where its
    transpose belongs (or the other way round), like G·B for G·Bᵀ. A transposed square operand
    keeps every shape right, so only the values can tell."""
    for j, y in enumerate(inputs):
        if not (isinstance(y, Tensor) and y.ndim >= 2 and y.shape[-1] == y.shape[-2] > 1):
            continue
        orig = y.data.copy()
        try:
            y.data[...] = np.swapaxes(orig, -1, -2)
            blocks = numerical_jacobian(fn, inputs, eps, only=[pos])[pos]
        finally:
            y.data[...] = orig
        n = np.concatenate(blocks, axis=0)
        if np.all(np.abs(a - n) <= atol + rtol * np.abs(n)):
            return "operand_transposed", (
                f"a missing or extra transpose of input {j} (shape {y.shape}): this gradient is exactly the right "
                f"one for input {j} transposed, so the backward rule uses input {j} where its transpose belongs "
                f"(or the other way round). A square matrix fits both ways, so the shapes cannot catch it: "
                f"check each use of input {j}, like G·B where G·Bᵀ belongs")
    return None


def _shape_diagnosis(e: GradientShapeError) -> tuple[str, str]:
    """A backward rule returned a gradient of the wrong shape: name the likely mistake."""
    g, s = e.grad_shape, e.input_shape
    base = f"{e.op}.backward returned a gradient of shape {g} for an input of shape {s}"
    if len(g) == len(s) >= 2 and g != s and (g == s[::-1] or g == s[:-2] + (s[-1], s[-2])):
        return "transposed", f"the gradient is transposed: {base} (a matmul's operands swapped, or a missing .T?)"
    try:
        broadcast = np.broadcast_shapes(s, g) == g
    except ValueError:
        broadcast = False
    if broadcast:
        return "broadcast", (f"missing sum over broadcast dimensions: {base}; forward broadcast this input, so "
                             f"its gradient must be summed over the broadcast dimensions (see ops/broadcast.py)")
    return "unknown", f"{base}; a gradient must have its input's shape"


def _worst(a: np.ndarray, n: np.ndarray, out_shapes: list[tuple[int, ...]], j_of_row: list[tuple[int, int]],
           shape: tuple[int, ...], atol: float, rtol: float, count: int = 5) -> list[dict[str, Any]]:
    """The `count` entries that exceed their tolerance by the largest ratio."""
    err, tol = np.abs(a - n), atol + rtol * np.abs(n)
    # err / tol, with tol = 0 allowed (atol=0 and n=0): any error there is infinitely too large
    excess = np.divide(err, tol, out=np.where(err > 0, np.inf, 0.0), where=tol > 0)
    rows = []
    for flat in np.argsort(excess, axis=None)[::-1][:count]:
        m, k = np.unravel_index(flat, a.shape)
        if excess[m, k] <= 1:
            break
        j, mm = j_of_row[m]
        rows.append({
            "output": j, "output_index": tuple(int(i) for i in np.unravel_index(mm, out_shapes[j])),
            "input_index": tuple(int(i) for i in np.unravel_index(k, shape)),
            "analytical": float(a[m, k]), "numerical": float(n[m, k]),
            "rel_error": float(err[m, k] / abs(n[m, k])) if n[m, k] != 0 else float("inf"),
        })
    return rows


def _format_report(i: int, shape: tuple[int, ...], worst: list[dict[str, Any]], text: str, nouts: int) -> str:
    lines = [f"gradcheck failed for input {i} (shape {shape}).", "Worst elements:"]
    lines.append(f"  {'output':>14} {'input index':>14} {'analytical':>14} {'numerical':>14} {'rel. error':>11}")
    for w in worst:
        out = f"{w['output']}:{w['output_index']}" if nouts > 1 else str(w["output_index"])
        lines.append(f"  {out:>14} {str(w['input_index']):>14} {w['analytical']:>14.6g} "
                     f"{w['numerical']:>14.6g} {w['rel_error']:>11.3g}")
    lines.append(f"Diagnosis: {text}")
    return "\n".join(lines)


# ----------------------------------------------------------------- the checks
def _slow(fn: Callable[..., Any], inputs: tuple[Any, ...], eps: float, atol: float, rtol: float,
          all_inputs: bool = False) -> GradcheckResult:
    diff_pos = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    diff = [inputs[i] for i in diff_pos]
    outs = _outputs(fn, inputs)
    try:
        analytical = _analytical_jacobian(outs, diff)
    except GradientShapeError as e:
        # No Jacobian to compare: the shapes alone tell the mistake. Name the input it concerns
        # (None when the bad gradient was for an intermediate tensor inside fn).
        pos = next((p for p in diff_pos if inputs[p] is e.tensor), None)
        key, text = _shape_diagnosis(e)
        where = f"input {pos}" if pos is not None else "an intermediate tensor"
        where += f" (shape {e.input_shape})"
        return _combine([GradcheckResult(False, f"gradcheck failed for {where}: the analytical gradient has the "
                                                f"wrong shape, so no element can be compared.\nDiagnosis: {text}",
                                         pos, key)])
    numerical = numerical_jacobian(fn, inputs, eps)
    out_shapes = [o.shape for o in outs]
    j_of_row = [(j, m) for j, o in enumerate(outs) for m in range(o.size)]
    failures = []
    for pos, x, a_blocks in zip(diff_pos, diff, analytical):
        a = np.concatenate(a_blocks, axis=0) if a_blocks else np.zeros((0, x.size))
        n = np.concatenate(numerical[pos], axis=0) if numerical[pos] else np.zeros((0, x.size))
        if np.all(np.abs(a - n) <= atol + rtol * np.abs(n)):
            continue
        key, text, factor = _diagnose(a, n, np.asarray(x.numpy(), dtype=np.float64), atol, rtol)
        if key == "unknown":
            key, text = _transposed_operand(fn, inputs, pos, a, eps, atol, rtol) or (key, text)
        worst = _worst(a, n, out_shapes, j_of_row, x.shape, atol, rtol)
        report = _format_report(pos, x.shape, worst, text, len(outs))
        failures.append(GradcheckResult(False, report, pos, key, factor, worst))
        if not all_inputs:
            break
    return _combine(failures)


def _combine(failures: list[GradcheckResult]) -> GradcheckResult:
    """One result for all failing inputs: the first one's fields, every report, the list."""
    if not failures:
        return GradcheckResult(True)
    first = failures[0]
    report = "\n\n".join(f.report for f in failures)
    return GradcheckResult(False, report, first.input_index, first.diagnosis, first.factor, first.worst, failures)


def _fast(fn: Callable[..., Any], inputs: tuple[Any, ...], eps: float, atol: float, rtol: float,
          seed: int) -> str | None:
    """None if vᵀ·J·u agrees for every input, else a line saying where it did not."""
    rng = np.random.default_rng(seed)
    outs = _outputs(fn, inputs)
    vs = [rng.standard_normal(o.size) for o in outs]
    vs = [v / max(np.linalg.norm(v), 1e-300) for v in vs]
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        u = rng.standard_normal(x.size)
        u /= max(np.linalg.norm(u), 1e-300)
        # analytical: one backward pass gives Jᵀv, then a dot product with u
        analytical = 0.0
        for o, v in zip(outs, vs):
            if not o.requires_grad:
                continue
            vt = Tensor._make(o.xp.asarray(v.reshape(o.shape).astype(o.dtype)), False, o.device)
            (g,) = grad(o, [x], grad_outputs=vt, retain_graph=True, allow_unused=True)
            if g is not None:
                analytical += float(np.asarray(g.numpy(), dtype=np.float64).ravel() @ u)
        # numerical: two evaluations give the directional derivative J·u, then a dot product with v
        orig = x.data.copy()
        step = u.reshape(x.shape).astype(x.dtype)
        x.data[...] = orig + eps * step
        plus = _evaluate(fn, inputs)
        x.data[...] = orig - eps * step
        minus = _evaluate(fn, inputs)
        x.data[...] = orig
        numerical = sum(float(((p - m) / (2 * eps)) @ v) for p, m, v in zip(plus, minus, vs))
        if abs(analytical - numerical) > atol + rtol * abs(numerical):
            return (f"gradcheck (fast mode) failed for input {i}: vᵀJu is {analytical:.6g} by backprop but "
                    f"{numerical:.6g} by finite differences, for random unit vectors u and v.")
    return None


def check_gradients(fn: Callable[..., Any], inputs: Sequence[Any] | Tensor, eps: float = 1e-6, atol: float = 1e-5,
                    rtol: float = 1e-3, fast_mode: bool = False, seed: int = 0,
                    all_inputs: bool = False) -> GradcheckResult:
    """Like `gradcheck`, but always returns the structured `GradcheckResult`. With `all_inputs=True`
    every input is checked and `result.failures` has one entry per failing input (the report
    shows them all); by default the check stops at the first failing input."""
    inputs = _as_tuple(inputs)
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64:
            warnings.warn(
                f"gradcheck: input {i} is {x.dtype}, not float64. Finite differences in low precision "
                f"are dominated by round-off (eps={eps}); expect false failures. Use float64.",
                stacklevel=3,
            )
    if not fast_mode:
        return _slow(fn, inputs, eps, atol, rtol, all_inputs)
    try:
        failure = _fast(fn, inputs, eps, atol, rtol, seed)
    except GradientShapeError:
        failure = "gradcheck (fast mode) failed: a backward rule returned a gradient of the wrong shape."
    if failure is None:
        return GradcheckResult(True)
    # One number cannot say what is wrong: rerun the slow mode to explain it.
    result = _slow(fn, inputs, eps, atol, rtol, all_inputs)
    if result.ok:  # only the single number disagreed; every Jacobian entry is within tolerance
        return GradcheckResult(False, failure + " The slow mode found every Jacobian entry within tolerance: "
                                                "the tolerance is tight for this function (try a larger atol).",
                               None, "unknown")
    result.report = failure + " The slow mode explains:\n" + result.report
    return result


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Any] | Tensor, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, fast_mode: bool = False, raise_exception: bool = True) -> bool:
    """True when backprop agrees with central finite differences; else raise `GradcheckError`
    (or return False with `raise_exception=False`)."""
    result = check_gradients(fn, inputs, eps, atol, rtol, fast_mode)
    if not result.ok and raise_exception:
        raise GradcheckError(result)
    return result.ok


def gradgradcheck(fn: Callable[..., Any], inputs: Sequence[Any] | Tensor, grad_outputs: Sequence[Tensor] | None = None,
                  eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, fast_mode: bool = False,
                  raise_exception: bool = True, seed: int = 0) -> bool:
    """Check second derivatives: gradcheck the map (inputs, v) -> vᵀ·J(inputs), built with
    `create_graph=True`, where v are random grad_outputs that also require grad."""
    inputs = _as_tuple(inputs)
    diff_pos = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outs = _outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [Tensor(rng.standard_normal(o.shape), dtype=o.dtype, requires_grad=True) for o in outs]
    grad_outputs = list(grad_outputs)
    n = len(inputs)

    def first_derivative(*args: Tensor) -> tuple[Tensor, ...]:
        ins, vs = args[:n], args[n:]
        with enable_grad():  # the numerical pass runs this under no_grad; the first derivative needs a graph
            fouts = _outputs(fn, ins)
            grads = grad(list(fouts), [ins[i] for i in diff_pos], grad_outputs=list(vs), create_graph=True,
                         allow_unused=True)
        return tuple(g if g is not None else Tensor._make(ins[p].xp.zeros_like(ins[p].data), False, ins[p].device)
                     for g, p in zip(grads, diff_pos))

    return gradcheck(first_derivative, tuple(inputs) + tuple(grad_outputs), eps, atol, rtol, fast_mode, raise_exception)
