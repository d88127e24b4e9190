"""Hypothesis strategies and small helpers shared by the per-op tests.

Shapes stay small (at most MAX_SIZE elements): slow-mode gradcheck builds the whole Jacobian,
two forward passes per input element and one backward pass per output element, so its cost
grows with size².

Values are drawn so that finite differences are meaningful *by construction*: inputs of
relu/abs/clip stay away from their kinks, inputs of log/sqrt stay positive, inputs of max/min
are distinct (or tie exactly) instead of being a hair apart. The tolerances of gradcheck are
never loosened to make up for a badly placed input.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Tensor

MAX_SIZE = 24
GRADGRAD_SIZE = 6  # gradgradcheck perturbs the inputs *and* the grad_outputs: keep it smaller

# ------------------------------------------------------------------------- shapes


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4,
           max_size: int = MAX_SIZE) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes with at most `max_size` elements (0-d and size-1 axes included)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side).filter(
        lambda s: math.prod(s) <= max_size
    )


def broadcast_shapes(num_shapes: int = 2, max_dims: int = 3, max_side: int = 4,
                     max_size: int = MAX_SIZE) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """`num_shapes` shapes that broadcast together (NumPy rules), to a result of at most `max_size`."""
    return (
        hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=0, max_dims=max_dims, max_side=max_side)
        .filter(lambda b: math.prod(b.result_shape) <= max_size)
        .map(lambda b: b.input_shapes)
    )


def axes_for(ndim: int) -> st.SearchStrategy[Any]:
    """A reduction `axis=` argument: None, a single (maybe negative) int, or a tuple of axes."""
    options: list[st.SearchStrategy[Any]] = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
    return st.one_of(*options)


# ------------------------------------------------------------------------- values


def floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def avoiding(points: Sequence[float], margin: float = 0.1, low: float = -3.0,
             high: float = 3.0) -> st.SearchStrategy[float]:
    """Floats in [low, high] at least `margin` away from every kink in `points` (the finite
    difference step is 1e-6, so nothing drawn can straddle a kink)."""
    edges = [low] + sorted(p for p in points if low < p < high) + [high]
    pieces = []
    for i, (a, b) in enumerate(zip(edges, edges[1:])):
        lo = a + margin if i > 0 else a
        hi = b - margin if i < len(edges) - 2 else b
        if lo < hi:
            pieces.append(floats(lo, hi))
    return st.one_of(*pieces)


def arrays(shape: tuple[int, ...], elements: st.SearchStrategy[float] | None = None) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of `shape`; by default values in [-3, 3]."""
    return hnp.arrays(np.float64, shape, elements=elements if elements is not None else floats(-3.0, 3.0))


def positive(shape: tuple[int, ...], low: float = 0.1, high: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    return arrays(shape, floats(low, high))


def nonzero(shape: tuple[int, ...], margin: float = 0.1, bound: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    return arrays(shape, avoiding([0.0], margin, -bound, bound))


def distinct(shape: tuple[int, ...], spacing: float = 0.125) -> st.SearchStrategy[np.ndarray]:
    """Pairwise distinct values on a grid `spacing` apart: no accidental ties, no near-ties, and a
    nonzero variance whenever there are two or more elements."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-30, 30), unique=True).map(
        lambda a: a.astype(np.float64) * spacing
    )


def grid(shape: tuple[int, ...], step: float = 0.5, span: int = 3) -> st.SearchStrategy[np.ndarray]:
    """Values on a coarse grid: many *exact* ties, and unequal values far apart (for maximum/minimum)."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-span, span)).map(lambda a: a.astype(np.float64) * step)


# ------------------------------------------------------------------------ layouts
LAYOUTS = ("contiguous", "transposed", "sliced")


def with_layout(array: np.ndarray, layout: str) -> np.ndarray:
    """The same values stored differently in memory.

    transposed: Fortran order (axes reversed in memory; a reversed stride for 1-d arrays)
    sliced:     every other element of a buffer twice as long on the last axis; the gaps hold NaN,
                so an op that reads outside the view would show it in its output
    """
    array = np.asarray(array, dtype=np.float64)
    if layout == "transposed" and array.ndim >= 2:
        return np.ascontiguousarray(array.T).T
    if layout == "transposed" and array.ndim == 1:
        return np.ascontiguousarray(array[::-1])[::-1]
    if layout == "sliced" and array.ndim >= 1:
        buf = np.full(array.shape[:-1] + (2 * array.shape[-1],), np.nan)
        buf[..., ::2] = array
        return buf[..., ::2]
    return array.copy()


def leaf(array: Any, layout: str = "contiguous", requires_grad: bool = True) -> Tensor:
    """A float64 leaf tensor holding `array` in the given memory layout.

    `Tensor(...)` copies into a fresh C-contiguous array; `Tensor._make` wraps the view as it is,
    so the op under test really reads strided memory (and gradcheck perturbs it in place)."""
    t = Tensor._make(with_layout(np.asarray(array, dtype=np.float64), layout), False, "cpu")
    return t.requires_grad_(requires_grad)


def leaves(values: st.SearchStrategy[np.ndarray], layouts: Sequence[str] = LAYOUTS) -> st.SearchStrategy[Tensor]:
    """Leaf tensors (requires_grad) with values from `values`, in a drawn memory layout."""
    return st.tuples(values, st.sampled_from(tuple(layouts))).map(lambda p: leaf(p[0], p[1]))


# ------------------------------------------------------------------------ checks


def assert_forward(out: Tensor, expected: Any, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """The op's value equals the reference: same shape, same dtype kind, close values."""
    expected = np.asarray(expected)
    assert isinstance(out, Tensor), f"expected a Tensor, got {type(out).__name__}"
    assert out.shape == expected.shape, f"shape {out.shape} != reference shape {expected.shape}"
    assert out.dtype.kind == expected.dtype.kind, f"dtype {out.dtype} vs reference {expected.dtype}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(out.numpy(), expected)


def check_grad(fn: Callable[..., Tensor], *inputs: Any) -> None:
    """Backprop agrees with central finite differences (slow mode, float64, default tolerances)."""
    assert tg.gradcheck(fn, inputs)


def check_gradgrad(fn: Callable[..., Tensor], *inputs: Any) -> None:
    assert tg.gradgradcheck(fn, inputs)


def grad_of(fn: Callable[..., Tensor], *inputs: Tensor) -> list[np.ndarray]:
    """d sum(fn(*inputs)) / d input, by backprop, as NumPy arrays."""
    out = fn(*inputs)
    grads = tg.grad(out, list(inputs), grad_outputs=tg.ones_like(out))
    return [g.numpy() for g in grads]


# ------------------------------------------------ forward-mode samples (JVP_SAMPLES)
# Each tests/test_ops_<kind>.py (tests/test_functional.py for ops/fused.py) ends with JVP_SAMPLES: one
# sample call per op class of its module, {class name: (fn(*tensors), [float64 input arrays])}.
# tests/test_forward_mode.py checks every one against reverse mode, and fails for an op class
# without a sample: a new op touches its module and its test file, nothing else.
_SAMPLE_RNG = np.random.default_rng(0)


def sample_normal(*shape: int) -> np.ndarray:
    return _SAMPLE_RNG.standard_normal(shape)


def sample_positive(*shape: int) -> np.ndarray:
    return _SAMPLE_RNG.uniform(0.5, 2.0, shape)


def sample_ties(*shape: int) -> np.ndarray:
    return _SAMPLE_RNG.integers(-2, 3, shape).astype(np.float64)  # few distinct values: ties are common
