"""Reductions and normalizers: sum, mean, max/min (with ties), var/std, logsumexp, softmax,
log_softmax, argmax/argmin. Forward against NumPy/SciPy, gradients against finite differences."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given
from strategies import (
    GRADGRAD_SIZE,
    arrays,
    assert_forward,
    axes_for,
    check_grad,
    check_gradgrad,
    distinct,
    grad_of,
    leaf,
    leaves,
    sample_normal,
    sample_ties,
    shapes,
)

import tinygrad_lite as tg
from tinygrad_lite import Tensor

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def single_axis(ndim: int) -> st.SearchStrategy[int | None]:
    """None or one (maybe negative) axis: the forms max/min/argmax take."""
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1)) if ndim else st.none()


@pytest.mark.parametrize("name", ["sum", "mean"])
@given(data=st.data())
def test_sum_mean(name: str, data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    axis = data.draw(axes_for(len(shape)), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    x = data.draw(leaves(arrays(shape)), label="x")
    op = lambda x: getattr(x, name)(axis=axis, keepdims=keepdims)  # noqa: E731
    assert_forward(op(x), getattr(np, name)(x.numpy(), axis=axis, keepdims=keepdims))
    check_grad(op, x)


def test_sum_gradient_is_ones_and_mean_gradient_is_one_over_n() -> None:
    x = leaf(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(grad_of(lambda x: x.sum(axis=1), x)[0], np.ones((2, 3)))
    np.testing.assert_allclose(grad_of(lambda x: x.mean(), x)[0], np.full((2, 3), 1 / 6), rtol=1e-15)
    np.testing.assert_allclose(grad_of(lambda x: x.mean(axis=0), x)[0], np.full((2, 3), 1 / 2), rtol=1e-15)


def test_reduction_axis_accepts_numpy_integers() -> None:
    x = tg.tensor(np.arange(6.0).reshape(2, 3))
    assert_forward(x.sum(axis=np.int64(1)), [3.0, 12.0])
    assert_forward(x.max(axis=np.argmax([0, 5])), [2.0, 5.0])


# ------------------------------------------------------------------- max / min
def _with_ties(values: np.ndarray, axis: Any, pick: int) -> np.ndarray:
    """Copy the extreme of every reduced slice onto one more position (`pick`): two-way ties.

    Only two-way ties: the central difference at a k-way tie is 1/2 for every tied element (the
    +eps side raises the max, the -eps side leaves it), which agrees with the even split 1/k only
    for k = 2. The k = 3 split is checked by value in test_max_min_three_way_tie_splits_in_thirds."""
    if values.ndim == 0 or values.size < 2:
        return values
    if axis is None or isinstance(axis, tuple):
        flat = values.ravel().copy()
        flat[pick % flat.size] = flat.max()
        return flat.reshape(values.shape)
    out = np.moveaxis(values.copy(), axis, -1)
    if out.shape[-1] >= 2:
        out[..., pick % out.shape[-1]] = out.max(axis=-1)
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("name", ["max", "min"])
@given(data=st.data())
def test_max_min_with_ties(name: str, data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    axis = data.draw(single_axis(len(shape)), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    values = data.draw(distinct(shape), label="values")
    if data.draw(st.booleans(), label="tie"):
        sign = 1.0 if name == "max" else -1.0  # min's extreme is the max of -x
        values = sign * _with_ties(sign * values, axis, data.draw(st.integers(0, 23), label="pick"))
    x = data.draw(leaves(st.just(values)), label="x")
    op = lambda x: getattr(x, name)(axis=axis, keepdims=keepdims)  # noqa: E731
    assert_forward(op(x), getattr(np, name)(values, axis=axis, keepdims=keepdims))
    check_grad(op, x)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_three_way_tie_splits_in_thirds(name: str) -> None:
    extreme = 5.0 if name == "max" else -5.0
    x = leaf([[extreme, 1.0, extreme, extreme], [0.0, extreme, 2.0, 1.0]])
    g_all = grad_of(lambda x: getattr(x, name)(), x)[0]
    np.testing.assert_allclose(g_all, [[0.25, 0, 0.25, 0.25], [0, 0.25, 0, 0]], rtol=1e-15)
    g_rows = grad_of(lambda x: getattr(x, name)(axis=1), x)[0]
    np.testing.assert_allclose(g_rows, [[1 / 3, 0, 1 / 3, 1 / 3], [0, 1, 0, 0]], rtol=1e-15)


# ------------------------------------------------------------------- var / std
@pytest.mark.parametrize("name", ["var", "std"])
@given(data=st.data())
def test_var_std(name: str, data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    axis = data.draw(axes_for(len(shape)), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    ddof = data.draw(st.sampled_from([0, 1]), label="ddof")
    x = data.draw(leaves(distinct(shape)), label="x")  # distinct values: the variance is never 0 (std is smooth)
    axes = range(len(shape)) if axis is None else (axis,) if isinstance(axis, int) else axis
    count = int(np.prod([shape[a] for a in axes]))
    op = lambda x: getattr(x, name)(axis=axis, keepdims=keepdims, ddof=ddof)  # noqa: E731
    if count - ddof <= 0:
        with pytest.raises(ValueError, match=rf"{name}: {count} elements with ddof={ddof} leaves no degrees"):
            op(x)
        return
    assert_forward(op(x), getattr(np, name)(x.numpy(), axis=axis, keepdims=keepdims, ddof=ddof))
    if name == "std" and count == 1:
        return  # one element, ddof=0: std = sqrt(0), whose derivative is infinite
    check_grad(op, x)


# ---------------------------------------------------------- logsumexp / softmax
@given(data=st.data())
def test_logsumexp(data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    axis = data.draw(axes_for(len(shape)), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    x = data.draw(leaves(arrays(shape)), label="x")
    op = lambda x: x.logsumexp(axis=axis, keepdims=keepdims)  # noqa: E731
    a = x.numpy()
    m = a.max(axis=axis, keepdims=True)
    expected = m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))
    assert_forward(op(x), expected if keepdims else expected.squeeze(axis=axis if axis is not None else None))
    check_grad(op, x)


def _np_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_log_softmax(name: str, data: Any) -> None:
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = data.draw(leaves(arrays(shape)), label="x")
    ref = _np_softmax(x.numpy(), axis)
    op = lambda x: getattr(x, name)(axis=axis)  # noqa: E731
    assert_forward(op(x), ref if name == "softmax" else np.log(ref))
    check_grad(op, x)


def test_softmax_rows_sum_to_one_and_default_axis_is_last() -> None:
    x = tg.tensor(np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]]))
    np.testing.assert_allclose(x.softmax().sum(axis=-1).numpy(), [1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(x.log_softmax().exp().numpy(), x.softmax(axis=1).numpy(), rtol=1e-14)


@pytest.mark.parametrize("scale", [1e4, -1e4, 1e300])
def test_normalizers_are_stable_for_huge_logits(scale: float) -> None:
    a = np.array([[1.0, 0.5, -1.0], [0.0, 0.0, 0.25]]) * scale
    x = tg.tensor(a, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        lse = x.logsumexp(axis=1)
        sm, lsm = x.softmax(axis=1), x.log_softmax(axis=1)
        (lse.sum() + (sm * tg.tensor(a / scale)).sum()).backward()
    m = a.max(axis=1)
    np.testing.assert_allclose(lse.numpy(), m + np.log(np.exp(a - m[:, None]).sum(axis=1)), rtol=1e-12)
    np.testing.assert_allclose(sm.numpy(), _np_softmax(a, 1), rtol=1e-12, atol=1e-300)
    assert np.isfinite(lsm.numpy()).all() and np.isfinite(x.grad.numpy()).all()


# ------------------------------------------------------------------ argmax/argmin
@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(data=st.data())
def test_argmax_argmin_forward_only(name: str, data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    axis = data.draw(single_axis(len(shape)), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    x = data.draw(leaves(distinct(shape)), label="x")
    out = getattr(x, name)(axis=axis, keepdims=keepdims)
    assert out.dtype == np.int64 and not out.requires_grad and out.is_leaf
    assert_forward(out, getattr(np, name)(x.numpy(), axis=axis, keepdims=keepdims))


def test_argmax_picks_the_first_of_tied_maxima() -> None:
    x = tg.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    assert x.argmax(axis=1).tolist() == [1, 0]
    assert x.argmin(axis=1).tolist() == [0, 2]
    assert x.argmax().item() == 1


# ------------------------------------------------------------------ second order
SECOND_ORDER = [
    ("sum", lambda x: x.sum(axis=0) * x.sum()),
    ("mean", lambda x: x.mean(axis=-1, keepdims=True) * x),
    ("var", lambda x: x.var(axis=-1, ddof=1)),
    ("softmax", lambda x: x.softmax(axis=-1)),
    ("log_softmax", lambda x: x.log_softmax(axis=0)),
    ("logsumexp", lambda x: x.logsumexp(axis=-1)),
    ("max", lambda x: x.max(axis=-1) * x.sum()),
]


@pytest.mark.parametrize("name,op", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
@given(data=st.data())
def test_second_order(name: str, op: Any, data: Any) -> None:
    shape = data.draw(shapes(min_dims=1, max_size=GRADGRAD_SIZE, min_side=2 if name == "var" else 1), label="shape")
    x = data.draw(leaves(distinct(shape)), label="x")
    check_gradgrad(op, x)


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "std", "logsumexp", "softmax", "log_softmax",
                                  "argmax", "argmin"])
def test_bad_axis_names_the_op_and_axis(name: str) -> None:
    x = tg.ones(2, 3)
    with pytest.raises(ValueError, match=rf"{name}: axis 2 is out of range for a tensor with 2 dimensions"):
        getattr(x, name)(axis=2)
    with pytest.raises(ValueError, match=rf"{name}: axis -3 is out of range"):
        getattr(x, name)(axis=-3)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "logsumexp"])
def test_repeated_axis_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name}: repeated axis in \(1, -1\)"):
        getattr(tg.ones(2, 3), name)(axis=(1, -1))


def test_empty_reductions_raise() -> None:
    with pytest.raises(IndexError, match=r"max: cannot reduce over axis 0 of size 0 \(shape \(0, 2\)\)"):
        tg.zeros(0, 2).max()
    with pytest.raises(ValueError, match=r"mean: reducing an empty axis of shape \(0, 2\)"):
        tg.zeros(0, 2).mean(axis=0)
    with pytest.raises(IndexError, match=r"argmax: cannot reduce over axis 0 of size 0 \(shape \(0,\)\)"):
        tg.zeros(0).argmax()
    with pytest.raises(ValueError, match=r"var: 1 elements with ddof=1"):
        tg.ones(1).var(ddof=1)


def test_reductions_of_a_0d_tensor() -> None:
    x = leaf(2.5)
    for out in (x.sum(), x.mean(), x.max(), x.min(), x.logsumexp()):
        assert out.shape == () and out.item() == 2.5
    check_grad(lambda x: x.sum() * x.max(), x)


def test_reduced_scalar_is_a_0d_array() -> None:
    # NumPy returns scalars from full reductions; the engine keeps arrays so in-place updates work.
    total = tg.tensor([1.0, 2.0]).sum()
    assert isinstance(total.data, np.ndarray) and total.shape == ()
    with tg.no_grad():
        total.add_(1.0)
    assert total.item() == 4.0
    assert isinstance(Tensor([1.0, 2.0])[0].data, np.ndarray)


# ----------------------------------------------------------- forward mode
# One sample call per op class of this module, checked against reverse mode by tests/test_forward_mode.py
# (vᵀ(J·u) == (vᵀJ)·u; it counts the class's jvp calls). A new op adds its line here.
JVP_SAMPLES: dict[str, tuple[Callable[..., Tensor], list[np.ndarray]]] = {
    "Sum": (lambda x: x.sum(axis=(0, 2), keepdims=True) + x.sum(), [sample_normal(2, 3, 4)]),
    "Max": (lambda x: x.max(axis=1) + x.min(), [sample_ties(3, 4)]),
    "LogSumExp": (lambda x: x.logsumexp(axis=-1), [sample_normal(3, 4)]),
    "Softmax": (lambda x: x.softmax(axis=0), [sample_normal(3, 4)]),
    "LogSoftmax": (lambda x: x.log_softmax(axis=-1), [sample_normal(3, 4)]),
}
