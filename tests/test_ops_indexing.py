"""Indexing: __getitem__ (ints, slices, None, Ellipsis, integer arrays, bool masks),
take_along_axis/gather, embedding, one_hot. Reading copies elements, so the backward
scatter-adds: an element read k times receives the sum of k gradients."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given
from strategies import (
    GRADGRAD_SIZE,
    arrays,
    assert_forward,
    check_grad,
    check_gradgrad,
    grad_of,
    leaf,
    leaves,
    sample_normal,
    shapes,
)

import tinygrad_lite as tg
from tinygrad_lite import Tensor
from tinygrad_lite.ops.indexing import IndexAdd

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _weights(shape: tuple[int, ...]) -> Tensor:
    """Distinct constant weights: a scatter to the wrong position changes the gradient."""
    return tg.tensor(np.linspace(-1.0, 2.0, int(np.prod(shape))).reshape(shape))


# ----------------------------------------------------------------- basic indices
@given(data=st.data())
def test_basic_indexing(data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True), label="index")
    x = data.draw(leaves(arrays(shape)), label="x")
    expected = x.numpy()[index]
    out = x[index]
    assert_forward(out, expected)
    check_grad(lambda x: x[index] * _weights(expected.shape), x)


@given(data=st.data())
def test_negative_step_slices(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1), label="shape")
    step = data.draw(st.sampled_from([-1, -2, 2]), label="step")
    x = data.draw(leaves(arrays(shape)), label="x")
    expected = x.numpy()[..., ::step]
    assert_forward(x[..., ::step], expected)
    check_grad(lambda x: x[..., ::step] * _weights(expected.shape), x)


# ------------------------------------------------------------ advanced indices
@given(data=st.data())
def test_integer_array_indexing_with_repeats(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1), label="shape")
    # integer_array_indices: one int array per leading axis, negative indices and repeats included
    result_shapes = hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)
    index = data.draw(hnp.integer_array_indices(shape, result_shape=result_shapes), label="index")
    x = data.draw(leaves(arrays(shape)), label="x")
    expected = x.numpy()[index]
    assert_forward(x[index], expected)
    check_grad(lambda x: x[index] * _weights(expected.shape), x)


@given(data=st.data())
def test_integer_array_on_a_later_axis_mixed_with_slices(data: Any) -> None:
    shape = data.draw(shapes(min_dims=2), label="shape")
    idx = data.draw(hnp.arrays(np.int64, data.draw(st.integers(1, 5), label="n"),
                               elements=st.integers(-shape[1], shape[1] - 1)), label="idx")
    x = data.draw(leaves(arrays(shape)), label="x")
    expected = x.numpy()[:, idx]
    assert_forward(x[:, idx], expected)
    assert_forward(x[:, tg.tensor(idx)], expected)
    assert_forward(x[:, idx.tolist()], expected)
    check_grad(lambda x: x[:, idx] * _weights(expected.shape), x)


def test_repeated_indices_accumulate_their_gradients() -> None:
    x = leaf([10.0, 20.0, 30.0, 40.0])
    out = x[[0, 2, 0, 0, -1]]
    assert_forward(out, [10.0, 30.0, 10.0, 10.0, 40.0])
    (g,) = grad_of(lambda x: x[[0, 2, 0, 0, -1]] * tg.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), x)
    np.testing.assert_array_equal(g, [1.0 + 3.0 + 4.0, 0.0, 2.0, 5.0])
    m = leaf(np.zeros((2, 3)))
    (g,) = grad_of(lambda m: m[[1, 1, 0], [2, 2, 2]], m)
    np.testing.assert_array_equal(g, [[0, 0, 1], [0, 0, 2]])


@given(data=st.data())
def test_bool_mask_indexing(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1), label="shape")
    k = data.draw(st.integers(1, len(shape)), label="mask_dims")
    mask = data.draw(hnp.arrays(np.bool_, shape[:k]), label="mask")
    x = data.draw(leaves(arrays(shape)), label="x")
    expected = x.numpy()[mask]
    assert_forward(x[mask], expected)
    assert_forward(x[tg.tensor(mask)], expected)
    check_grad(lambda x: x[mask] * _weights(expected.shape), x)


def test_mask_from_a_comparison() -> None:
    x = leaf([-1.0, 2.0, -3.0, 4.0])
    positive = x > 0
    assert_forward(x[positive], [2.0, 4.0])
    (g,) = grad_of(lambda x: x[x > 0], x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 0.0, 1.0])


def test_int_tensor_and_numpy_integer_indices() -> None:
    x = leaf(np.arange(12.0).reshape(3, 4))
    assert_forward(x[np.int64(1)], np.arange(4.0, 8.0))
    assert_forward(x[tg.tensor(2)], np.arange(8.0, 12.0))
    assert_forward(x[1, -1], 7.0)
    assert_forward(x[None, ..., 1], np.array([[1.0, 5.0, 9.0]]))


# ------------------------------------------------------------- take_along_axis
@given(data=st.data())
def test_take_along_axis_and_gather(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    ishape = list(shape)
    ishape[axis] = data.draw(st.integers(1, 4), label="k")
    index = data.draw(hnp.arrays(np.int64, tuple(ishape), elements=st.integers(0, shape[axis] - 1)), label="index")
    x = data.draw(leaves(arrays(shape)), label="x")
    expected = np.take_along_axis(x.numpy(), index, axis=axis)
    assert_forward(tg.take_along_axis(x, index, axis=axis), expected)
    assert_forward(x.take_along_axis(tg.tensor(index), axis), expected)
    assert_forward(x.gather(axis, index), expected)
    check_grad(lambda x: x.gather(axis, index) * _weights(expected.shape), x)


def test_gather_picks_the_target_log_probabilities() -> None:
    logp = leaf(np.log([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    picked = logp.gather(-1, np.array([[2], [0]]))
    np.testing.assert_allclose(picked.numpy(), np.log([[0.5], [0.6]]), rtol=1e-15)
    (g,) = grad_of(lambda t: t.gather(1, np.array([[2, 2], [0, 1]])), logp)
    np.testing.assert_array_equal(g, [[0, 0, 2], [1, 1, 0]])


# ------------------------------------------------------------ embedding / one_hot
@given(data=st.data())
def test_embedding(data: Any) -> None:
    vocab = data.draw(st.integers(1, 5), label="vocab")
    dim = data.draw(st.integers(1, 3), label="dim")
    ishape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), label="ishape")
    idx = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, vocab - 1)), label="idx")
    w = data.draw(leaves(arrays((vocab, dim))), label="weight")
    expected = w.numpy()[idx]
    assert_forward(tg.embedding(idx, w), expected)
    assert_forward(tg.functional.embedding(tg.tensor(idx), w), expected)
    check_grad(lambda w: tg.embedding(idx, w) * _weights(expected.shape), w)


def test_embedding_gradient_counts_each_use_of_a_row() -> None:
    w = leaf(np.zeros((4, 2)))
    (g,) = grad_of(lambda w: tg.embedding([[1, 3], [1, 1]], w), w)
    np.testing.assert_array_equal(g, [[0, 0], [3, 3], [0, 0], [1, 1]])


@given(data=st.data())
def test_one_hot(data: Any) -> None:
    classes = data.draw(st.integers(1, 5), label="classes")
    ishape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), label="ishape")
    idx = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, classes - 1)), label="idx")
    out = tg.one_hot(idx, classes)
    assert out.dtype == np.float32 and not out.requires_grad
    assert_forward(out, np.eye(classes, dtype=np.float32)[idx])
    out64 = tg.functional.one_hot(tg.tensor(idx), classes, dtype=tg.float64)
    assert out64.dtype == np.float64
    assert_forward(out64, np.eye(classes)[idx])


# ------------------------------------------------------------------ second order
@given(data=st.data())
def test_getitem_second_order_with_repeated_indices(data: Any) -> None:
    n = data.draw(st.integers(1, GRADGRAD_SIZE), label="n")
    idx = data.draw(hnp.arrays(np.int64, data.draw(st.integers(1, 6), label="k"), elements=st.integers(0, n - 1)),
                    label="idx")
    x = data.draw(leaves(arrays((n,))), label="x")
    check_gradgrad(lambda x: x[idx] * x[idx[::-1]], x)  # products: the second derivative is not zero


def test_take_along_axis_second_order() -> None:
    x = leaf(np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]))
    check_gradgrad(lambda x: (x.gather(1, np.array([[0, 0], [2, 1]])) ** 2).sum(axis=1), x)


# ------------------------------------------------------------------------ errors
def test_getitem_errors() -> None:
    x = tg.ones(2, 3)
    with pytest.raises(IndexError, match=r"getitem: index 5 is out of bounds for axis 0 with size 2 "
                                         r"\(tensor of shape \(2, 3\)\)"):
        x[5]
    with pytest.raises(IndexError, match=r"getitem: index arrays must be integer or bool, got float64"):
        x[np.array([0.5])]
    with pytest.raises(IndexError, match=r"getitem: .*\(tensor of shape \(2, 3\)\)"):
        x[0, 0, 0]


def test_take_along_axis_errors() -> None:
    x = tg.ones(2, 3)
    with pytest.raises(ValueError, match=r"take_along_axis: index has 1 dimensions, the tensor 2 \(shape \(2, 3\)\)"):
        x.take_along_axis(np.array([0]), axis=1)
    with pytest.raises(ValueError, match=r"take_along_axis: axis 7 is out of range for a tensor with 2 dimensions"):
        x.take_along_axis(np.zeros((2, 1), dtype=np.int64), axis=7)  # must not wrap around to axis 1
    with pytest.raises(IndexError, match=r"take_along_axis: indices must lie in \[-3, 3\) .* got range \[0, 5\]"):
        x.take_along_axis(np.array([[5], [0]]), axis=1)
    with pytest.raises(IndexError, match=r"take_along_axis: index must be integer, got float64"):
        x.take_along_axis(np.array([[0.0], [1.0]]), axis=1)


def test_embedding_and_one_hot_errors() -> None:
    w = tg.ones(4, 2)
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 4\), got range \[0, 4\]"):
        tg.embedding([0, 4], w)
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 4\), got range \[-1, 2\]"):
        tg.embedding([2, -1], w)
    with pytest.raises(TypeError, match=r"embedding: indices must be integers, got float64"):
        tg.embedding([0.5], w)
    with pytest.raises(IndexError, match=r"one_hot: indices must lie in \[0, 3\), got \[0, 3\]"):
        tg.one_hot([0, 3], 3)
    with pytest.raises(IndexError, match=r"one_hot: indices must lie in \[0, 3\), got \[-2, 1\]"):
        tg.one_hot([1, -2], 3)
    with pytest.raises(TypeError, match=r"one_hot: indices must be integers, got float32"):
        tg.one_hot([1.0], 3)


# ----------------------------------------------------------- forward mode
# One sample call per op class of this module, checked against reverse mode by tests/test_forward_mode.py
# (vᵀ(J·u) == (vᵀJ)·u; it counts the class's jvp calls). A new op adds its line here.
JVP_SAMPLES: dict[str, tuple[Callable[..., Tensor], list[np.ndarray]]] = {
    "GetItem": (lambda x: x[np.array([0, 2, 2])][:, 1:3], [sample_normal(3, 4)]),
    "IndexAdd": (lambda g: IndexAdd.apply(g, index=(np.array([0, 2, 2]),), shape=(4, 3)), [sample_normal(3, 3)]),
}
