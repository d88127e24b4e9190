"""matmul with NumPy's rules: 1-D operands promoted (and the added axis removed again), batch
dimensions broadcast. dA = dC·Bᵀ and dB = Aᵀ·dC, summed over broadcast batch dimensions."""
from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import assume, given
from strategies import (
    arrays,
    assert_forward,
    broadcast_shapes,
    check_grad,
    check_gradgrad,
    grad_of,
    leaf,
    leaves,
    sample_normal,
)

import tinygrad_lite as tg
from tinygrad_lite import Tensor

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


@st.composite
def matmul_shapes(draw: Any, max_size: int = 24) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes (a, b) that NumPy's matmul accepts: 1-D or matrices, with broadcast batch dims."""
    n, k, m = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch_a, batch_b = draw(broadcast_shapes(2, max_dims=2, max_side=3))
    a_vec, b_vec = draw(st.booleans()), draw(st.booleans())
    a = (k,) if a_vec else batch_a + (n, k)
    b = (k,) if b_vec else batch_b + (k, m)
    assume(int(np.prod(a)) <= max_size and int(np.prod(b)) <= max_size)
    assume(int(np.prod(np.matmul(np.ones(a), np.ones(b)).shape)) <= max_size)
    return a, b


@given(data=st.data())
def test_matmul(data: Any) -> None:
    sa, sb = data.draw(matmul_shapes(), label="shapes")
    a = data.draw(leaves(arrays(sa)), label="a")
    b = data.draw(leaves(arrays(sb)), label="b")
    expected = np.matmul(a.numpy(), b.numpy())
    assert_forward(tg.matmul(a, b), expected)
    assert_forward(a @ b, expected)
    assert_forward(a.matmul(b), expected)
    check_grad(operator.matmul, a, b)


@pytest.mark.parametrize("sa,sb,out", [
    ((3,), (3,), ()),              # dot product
    ((2, 3), (3,), (2,)),          # matrix @ vector
    ((3,), (3, 2), (2,)),          # vector @ matrix
    ((2, 3), (3, 4), (2, 4)),
    ((2, 2, 3), (3, 1), (2, 2, 1)),   # batch against one matrix: dB sums over the batch
    ((2, 1, 2, 3), (3, 3, 2), (2, 3, 2, 2)),  # batch dims broadcast both ways
    ((3,), (2, 3, 2), (2, 2)),     # vector against a batch
])
def test_matmul_shape_rules(sa: tuple[int, ...], sb: tuple[int, ...], out: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    a, b = leaf(rng.standard_normal(sa)), leaf(rng.standard_normal(sb))
    result = a @ b
    assert result.shape == out
    assert_forward(result, np.matmul(a.numpy(), b.numpy()))
    check_grad(operator.matmul, a, b)


def test_matmul_with_transposed_operand_and_gradient_values() -> None:
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    b = leaf([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    ga, gb = grad_of(lambda a, b: a @ b, a, b)
    np.testing.assert_array_equal(ga, np.ones((2, 3)) @ b.numpy().T)  # dC·Bᵀ
    np.testing.assert_array_equal(gb, a.numpy().T @ np.ones((2, 3)))  # Aᵀ·dC
    check_grad(lambda a, b: b.T @ a.T, a, b)  # strided views inside the graph


def test_matmul_with_numpy_operands() -> None:
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    m = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert_forward(a @ m, a.numpy() @ m)
    assert_forward(m @ a, m @ a.numpy())  # __rmatmul__
    check_grad(lambda a: m @ a, a)


@given(data=st.data())
def test_matmul_second_order(data: Any) -> None:
    sa, sb = data.draw(matmul_shapes(max_size=6), label="shapes")
    a = data.draw(leaves(arrays(sa)), label="a")
    b = data.draw(leaves(arrays(sb)), label="b")
    check_gradgrad(lambda a, b: (a @ b) * (a @ b), a, b)


def test_matmul_errors_name_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) are not aligned: 3 .* != 2"):
        tg.ones(2, 3) @ tg.ones(2, 3)
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(4,\) are not aligned"):
        tg.ones(3) @ tg.ones(4)
    with pytest.raises(ValueError, match=r"matmul: batch dimensions of \(2, 2, 3\) and \(3, 3, 2\) do not broadcast"):
        tg.ones(2, 2, 3) @ tg.ones(3, 3, 2)
    with pytest.raises(ValueError, match=r"matmul: both operands need at least 1 dimension, "
                                         r"got shapes \(\) and \(2, 3\)"):
        tg.tensor(1.0) @ tg.ones(2, 3)


# ----------------------------------------------------------- forward mode
# One sample call per op class of this module, checked against reverse mode by tests/test_forward_mode.py
# (vᵀ(J·u) == (vᵀJ)·u; it counts the class's jvp calls). A new op adds its line here.
JVP_SAMPLES: dict[str, tuple[Callable[..., Tensor], list[np.ndarray]]] = {
    "MatMul": (lambda a, b: a @ b, [sample_normal(2, 3, 4), sample_normal(4, 5)]),
}
