"""Elementwise ops: forward against NumPy/SciPy, gradients against finite differences.

Every case draws a shape (0-d, size-1 axes, broadcasting pairs) and a memory layout
(contiguous, transposed, sliced); inputs are placed away from kinks by construction.
"""
from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given
from scipy.special import erf as scipy_erf
from strategies import (
    GRADGRAD_SIZE,
    arrays,
    assert_forward,
    avoiding,
    broadcast_shapes,
    check_grad,
    check_gradgrad,
    distinct,
    grad_of,
    grid,
    leaf,
    leaves,
    nonzero,
    positive,
    sample_normal,
    sample_positive,
    sample_ties,
    shapes,
)

import tinygrad_lite as tg
from tinygrad_lite import Tensor
from tinygrad_lite.ops import elementwise as E

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # a NaN/overflow in any op fails the test


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _gelu_tanh(a: np.ndarray) -> np.ndarray:
    return 0.5 * a * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (a + 0.044715 * a**3)))


@dataclass(frozen=True)
class Case:
    name: str
    op: Callable[..., Tensor]
    ref: Callable[..., np.ndarray]
    domains: tuple[Callable[[tuple[int, ...]], st.SearchStrategy[np.ndarray]], ...]

    def __repr__(self) -> str:
        return self.name


def smooth(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return arrays(shape)


def away_from(*kinks: float) -> Callable[[tuple[int, ...]], st.SearchStrategy[np.ndarray]]:
    return lambda shape: arrays(shape, avoiding(kinks, margin=0.1))


UNARY = [
    Case("neg", lambda x: -x, np.negative, (smooth,)),
    Case("exp", Tensor.exp, np.exp, (smooth,)),
    Case("log", Tensor.log, np.log, (positive,)),
    Case("sqrt", Tensor.sqrt, np.sqrt, (positive,)),
    Case("abs", Tensor.abs, np.abs, (nonzero,)),
    Case("sin", Tensor.sin, np.sin, (smooth,)),
    Case("cos", Tensor.cos, np.cos, (smooth,)),
    Case("tanh", Tensor.tanh, np.tanh, (smooth,)),
    Case("sigmoid", Tensor.sigmoid, _sigmoid, (smooth,)),
    Case("log_sigmoid", Tensor.log_sigmoid, lambda a: -np.log1p(np.exp(-a)), (smooth,)),
    Case("softplus", Tensor.softplus, lambda a: np.log1p(np.exp(a)), (smooth,)),
    Case("relu", Tensor.relu, lambda a: np.maximum(a, 0.0), (nonzero,)),
    Case("leaky_relu", Tensor.leaky_relu, lambda a: np.where(a > 0, a, 0.01 * a), (nonzero,)),
    Case("leaky_relu(0.2)", lambda x: x.leaky_relu(0.2), lambda a: np.where(a > 0, a, 0.2 * a), (nonzero,)),
    Case("gelu", Tensor.gelu, lambda a: 0.5 * a * (1.0 + scipy_erf(a / math.sqrt(2.0))), (smooth,)),
    Case("gelu_tanh", lambda x: x.gelu("tanh"), _gelu_tanh, (smooth,)),
    Case("erf", Tensor.erf, scipy_erf, (smooth,)),
    Case("silu", Tensor.silu, lambda a: a * _sigmoid(a), (smooth,)),
    Case("clip", lambda x: x.clip(-0.5, 1.0), lambda a: np.clip(a, -0.5, 1.0), (away_from(-0.5, 1.0),)),
    Case("clip_min", lambda x: x.clip(min=0.25), lambda a: np.maximum(a, 0.25), (away_from(0.25),)),
    Case("clamp_max", lambda x: x.clamp(max=-1.0), lambda a: np.minimum(a, -1.0), (away_from(-1.0),)),
    Case("square", Tensor.square, np.square, (smooth,)),
    Case("reciprocal", Tensor.reciprocal, np.reciprocal, (nonzero,)),
]


@pytest.mark.parametrize("case", UNARY, ids=repr)
@given(data=st.data())
def test_unary_forward_and_gradient(case: Case, data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    x = data.draw(leaves(case.domains[0](shape)), label="x")
    expected = case.ref(x.numpy())
    out = case.op(x)
    assert out.dtype == np.float64 and out.requires_grad
    assert_forward(out, expected)
    check_grad(case.op, x)


@pytest.mark.parametrize("case", UNARY, ids=repr)
def test_unary_keeps_float32(case: Case) -> None:
    # float32 in, float32 out: no op may silently promote the training default to float64.
    a = np.array([[-2.5, -0.7, 0.3], [0.6, 1.3, 2.2]])
    if case.domains[0] is positive:
        a = np.abs(a)
    x = tg.tensor(a, dtype=tg.float32)
    out = case.op(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), case.ref(a), rtol=2e-6, atol=1e-6)


# ------------------------------------------------------------------------ binary
def _any(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return arrays(shape)


BINARY = [
    Case("add", operator.add, np.add, (_any, _any)),
    Case("sub", operator.sub, np.subtract, (_any, _any)),
    Case("mul", operator.mul, np.multiply, (_any, _any)),
    Case("div", operator.truediv, np.true_divide, (_any, lambda s: nonzero(s, margin=0.5))),
    Case("pow", operator.pow, np.power, (lambda s: positive(s, 0.5, 2.0), lambda s: arrays(s, st.floats(-2, 2)))),
    # grid values: plenty of exact ties (which share the gradient evenly) and no near-ties
    Case("maximum", tg.maximum, np.maximum, (grid, grid)),
    Case("minimum", tg.minimum, np.minimum, (grid, grid)),
    Case("Tensor.maximum", Tensor.maximum, np.maximum, (grid, grid)),
    Case("Tensor.minimum", Tensor.minimum, np.minimum, (grid, grid)),
]


@pytest.mark.parametrize("case", BINARY, ids=repr)
@given(data=st.data())
def test_binary_broadcasting_forward_and_gradient(case: Case, data: Any) -> None:
    sa, sb = data.draw(broadcast_shapes(2), label="shapes")
    a = data.draw(leaves(case.domains[0](sa)), label="a")
    b = data.draw(leaves(case.domains[1](sb)), label="b")
    out = case.op(a, b)
    assert out.shape == np.broadcast_shapes(sa, sb)
    assert_forward(out, case.ref(a.numpy(), b.numpy()))
    check_grad(case.op, a, b)


@pytest.mark.parametrize("case", BINARY, ids=repr)
@given(data=st.data())
def test_binary_gradient_to_one_operand(case: Case, data: Any) -> None:
    # Only the second operand requires grad: the first is a constant and must get no gradient.
    sa, sb = data.draw(broadcast_shapes(2), label="shapes")
    a = leaf(data.draw(case.domains[0](sa), label="a"), requires_grad=False)
    b = data.draw(leaves(case.domains[1](sb)), label="b")
    check_grad(lambda b: case.op(a, b), b)
    assert a.grad is None


@pytest.mark.parametrize("fn", [tg.maximum, tg.minimum, Tensor.maximum, Tensor.minimum])
def test_maximum_minimum_ties_share_the_gradient_evenly(fn: Callable[..., Tensor]) -> None:
    x = leaf([1.0, 2.0, 3.0, -1.0])
    y = leaf([1.0, 5.0, 3.0, -4.0])
    gx, gy = grad_of(fn, x, y)
    x_wins = np.array([0.0, 0.0, 0.0, 1.0]) if fn in (tg.maximum, Tensor.maximum) else np.array([0.0, 1.0, 0.0, 0.0])
    expected_x = np.where([True, False, True, False], 0.5, x_wins)
    np.testing.assert_array_equal(gx, expected_x)
    np.testing.assert_array_equal(gy, 1.0 - expected_x)


def test_maximum_with_python_scalar_either_side() -> None:
    x = leaf([-1.0, 0.5, 2.0])
    assert_forward(tg.maximum(x, 0.5), [0.5, 0.5, 2.0])
    assert_forward(tg.maximum(0.5, x), [0.5, 0.5, 2.0])
    assert_forward(tg.minimum(x, 0.5), [-1.0, 0.5, 0.5])
    (g,) = grad_of(lambda x: tg.maximum(x, 0.5), x)
    np.testing.assert_array_equal(g, [0.0, 0.5, 1.0])


# ------------------------------------------------------------------------- where
@given(data=st.data())
def test_where_forward_and_gradient(data: Any) -> None:
    sc, sx, sy = data.draw(broadcast_shapes(3), label="shapes")
    cond = data.draw(hnp.arrays(np.bool_, sc), label="cond")
    x = data.draw(leaves(arrays(sx)), label="x")
    y = data.draw(leaves(arrays(sy)), label="y")
    out = tg.where(cond, x, y)
    assert_forward(out, np.where(cond, x.numpy(), y.numpy()))
    check_grad(lambda x, y: tg.where(tg.tensor(cond), x, y), x, y)


def test_where_with_scalar_branch_and_gradient_values() -> None:
    x = leaf([1.0, 2.0, 3.0])
    cond = tg.tensor([True, False, True])
    out = tg.where(cond, x, 0.0)
    assert_forward(out, [1.0, 0.0, 3.0])
    (g,) = grad_of(lambda x: tg.where(cond, 10.0, x), x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 0.0])


# --------------------------------------------------- scalar and reflected operator forms
SCALAR_FORMS = [
    Case("x + 2", lambda x: x + 2, lambda a: a + 2, (_any,)),
    Case("2 + x", lambda x: 2 + x, lambda a: 2 + a, (_any,)),
    Case("x - 2.5", lambda x: x - 2.5, lambda a: a - 2.5, (_any,)),
    Case("2 - x", lambda x: 2 - x, lambda a: 2 - a, (_any,)),
    Case("x * 3", lambda x: x * 3, lambda a: a * 3, (_any,)),
    Case("-1.5 * x", lambda x: -1.5 * x, lambda a: -1.5 * a, (_any,)),
    Case("x / 4", lambda x: x / 4, lambda a: a / 4, (_any,)),
    Case("2 / x", lambda x: 2 / x, lambda a: 2 / a, (lambda s: nonzero(s, margin=0.5),)),
    Case("2 ** x", lambda x: 2**x, lambda a: 2.0**a, (_any,)),
    Case("0.5 ** x", lambda x: 0.5**x, lambda a: 0.5**a, (_any,)),
    Case("-x", operator.neg, np.negative, (_any,)),
    Case("x + ndarray", lambda x: x + np.arange(1, 1 + x.shape[-1]) if x.ndim else x + 1,
         lambda a: a + np.arange(1, 1 + a.shape[-1]) if a.ndim else a + 1, (_any,)),
    Case("ndarray * x", lambda x: np.full(x.shape, 1.5) * x, lambda a: 1.5 * a, (_any,)),
]


@pytest.mark.parametrize("case", SCALAR_FORMS, ids=repr)
@given(data=st.data())
def test_operator_with_constants(case: Case, data: Any) -> None:
    x = data.draw(leaves(case.domains[0](data.draw(shapes(), label="shape"))), label="x")
    out = case.op(x)
    assert isinstance(out, Tensor) and out.dtype == np.float64
    assert_forward(out, case.ref(x.numpy()))
    check_grad(case.op, x)


POWERS = [2, 3, -1, -2, 0.5, -1.5, 1 / 3, 1, 2.5]


@pytest.mark.parametrize("p", POWERS)
@given(data=st.data())
def test_pow_scalar_exponent(p: float, data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    # integer powers are defined for any base (away from 0 for negative powers); others need x > 0
    values = nonzero(shape, margin=0.3) if float(p).is_integer() else positive(shape, 0.3, 3.0)
    x = data.draw(leaves(values), label="x")
    assert_forward(x**p, np.power(x.numpy(), p))
    check_grad(lambda x: x**p, x)


def test_pow_zero_exponent_has_zero_gradient_everywhere() -> None:
    # x**0 == 1 is constant: its gradient is 0 even at x = 0 (not 0·x^-1 = NaN).
    x = leaf([0.0, -2.0, 3.0])
    assert_forward(x**0, [1.0, 1.0, 1.0])
    (g,) = grad_of(lambda x: x**0, x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0])


def test_tensor_pow_tensor_gradient_values() -> None:
    # d(x^y)/dx = y x^(y-1), d(x^y)/dy = x^y log x
    x, y = leaf([2.0, 3.0]), leaf([3.0, 0.5])
    gx, gy = grad_of(operator.pow, x, y)
    np.testing.assert_allclose(gx, [3.0 * 4.0, 0.5 / math.sqrt(3.0)], rtol=1e-12)
    np.testing.assert_allclose(gy, [8.0 * math.log(2.0), math.sqrt(3.0) * math.log(3.0)], rtol=1e-12)


# ------------------------------------------------------------------- comparisons
COMPARISONS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


@pytest.mark.parametrize("cmp", COMPARISONS, ids=lambda f: f.__name__)
@given(data=st.data())
def test_comparisons_return_bool_tensors(cmp: Callable[[Any, Any], Any], data: Any) -> None:
    sa, sb = data.draw(broadcast_shapes(2), label="shapes")
    a = data.draw(leaves(grid(sa)), label="a")  # grid values: equal elements happen
    b = data.draw(leaves(grid(sb)), label="b")
    out = cmp(a, b)
    assert isinstance(out, Tensor) and out.dtype == np.bool_ and not out.requires_grad
    assert_forward(out, cmp(a.numpy(), b.numpy()))
    assert_forward(cmp(a, 0.5), cmp(a.numpy(), 0.5))


def test_comparison_results_combine_as_masks() -> None:
    x = tg.tensor([-1.0, 0.5, 2.0])
    inside = (x > 0) & (x < 1)
    assert inside.tolist() == [False, True, False]
    assert ((x < 0) | (x > 1)).tolist() == [True, False, True]
    assert (~inside).tolist() == [True, False, True]


# ----------------------------------------------------------- overflow and stability
EXTREME = np.array([-1e4, -800.0, -50.0, -1.0, 0.0, 1.0, 50.0, 800.0, 1e4])


def _sigmoid_safe(a: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _softplus_safe(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


# name, op, reference value, reference derivative
STABLE = [
    ("sigmoid", Tensor.sigmoid, _sigmoid_safe, lambda a: _sigmoid_safe(a) * _sigmoid_safe(-a)),
    ("softplus", Tensor.softplus, _softplus_safe, _sigmoid_safe),
    ("log_sigmoid", Tensor.log_sigmoid, lambda a: -_softplus_safe(-a), lambda a: _sigmoid_safe(-a)),
]


@pytest.mark.parametrize("dtype", [tg.float64, tg.float32], ids=str)
@pytest.mark.parametrize("name,op,ref,dref", STABLE, ids=[s[0] for s in STABLE])
def test_no_overflow_for_large_inputs(name: str, op: Any, ref: Any, dref: Any, dtype: Any) -> None:
    x = tg.tensor(EXTREME, dtype=dtype, requires_grad=True)
    # Overflow, division by zero and NaN-producing operations raise; underflow is left at NumPy's
    # default (ignore): e^-10000 rounding to exactly 0 is the correct answer, not a failure.
    with np.errstate(over="raise", divide="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = op(x)
        y.backward(tg.ones_like(y))
    assert y.dtype == dtype and x.grad.dtype == dtype
    assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    with np.errstate(under="ignore"):
        expected, dexpected = ref(EXTREME), dref(EXTREME)
    rtol = 1e-12 if dtype == tg.float64 else 1e-6
    # Values keep their relative accuracy even when tiny (softplus(-50) ~ 2e-22). A derivative
    # written as s·(1-s) loses it where s rounds to 1 (x = 50); it is then exact up to a rounding
    # error of the dtype's epsilon, which is all we ask of it.
    np.testing.assert_allclose(y.numpy(), expected, rtol=rtol, atol=1e-30)
    np.testing.assert_allclose(x.grad.numpy(), dexpected, rtol=rtol, atol=float(np.finfo(dtype).eps))


def test_extreme_values_hit_their_limits() -> None:
    x = tg.tensor([-1e4, 1e4], dtype=tg.float64)
    assert x.sigmoid().tolist() == [0.0, 1.0]
    assert x.softplus().tolist() == [0.0, 1e4]
    assert x.log_sigmoid().tolist() == [-1e4, 0.0]


# ------------------------------------------------------------------ second order
def _in(low: float, high: float) -> Callable[[tuple[int, ...]], st.SearchStrategy[np.ndarray]]:
    return lambda shape: arrays(shape, st.floats(low, high))


# name, op, domain (away from singularities: the *second* derivative must be tame too)
GRADGRAD_UNARY = [
    ("exp", Tensor.exp, smooth),
    ("log", Tensor.log, _in(0.5, 3.0)),
    ("sqrt", Tensor.sqrt, _in(0.5, 3.0)),
    ("tanh", Tensor.tanh, smooth),
    ("sigmoid", Tensor.sigmoid, smooth),
    ("log_sigmoid", Tensor.log_sigmoid, smooth),
    ("softplus", Tensor.softplus, smooth),
    ("sin", Tensor.sin, smooth),
    ("cos", Tensor.cos, smooth),
    ("gelu", Tensor.gelu, smooth),
    ("gelu_tanh", lambda x: x.gelu("tanh"), smooth),
    ("erf", Tensor.erf, smooth),
    ("silu", Tensor.silu, smooth),
    ("x ** 3", lambda x: x**3, smooth),
    ("x ** 0.5", lambda x: x**0.5, _in(0.5, 3.0)),
    ("2 / x", lambda x: 2 / x, lambda s: nonzero(s, margin=0.5)),
]


@pytest.mark.parametrize("name,op,domain", GRADGRAD_UNARY, ids=[c[0] for c in GRADGRAD_UNARY])
@given(data=st.data())
def test_unary_second_order(name: str, op: Any, domain: Any, data: Any) -> None:
    x = data.draw(leaves(domain(data.draw(shapes(max_size=GRADGRAD_SIZE), label="shape"))), label="x")
    check_gradgrad(op, x)


GRADGRAD_BINARY = [BINARY[2], BINARY[3], BINARY[4]]  # mul, div, pow


@pytest.mark.parametrize("case", GRADGRAD_BINARY, ids=repr)
@given(data=st.data())
def test_binary_second_order(case: Case, data: Any) -> None:
    sa, sb = data.draw(broadcast_shapes(2, max_size=GRADGRAD_SIZE), label="shapes")
    a = data.draw(leaves(case.domains[0](sa)), label="a")
    b = data.draw(leaves(case.domains[1](sb)), label="b")
    check_gradgrad(case.op, a, b)


@given(data=st.data())
def test_maximum_second_order_away_from_ties(data: Any) -> None:
    sa, sb = data.draw(broadcast_shapes(2, max_size=GRADGRAD_SIZE), label="shapes")
    a = data.draw(leaves(distinct(sa)), label="a")
    b = data.draw(leaves(distinct(sb, spacing=0.125).map(lambda v: v + 0.0625)), label="b")  # never equal to a
    check_gradgrad(lambda a, b: tg.maximum(a, b) * a, a, b)


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("op,name", [(operator.add, "add"), (operator.sub, "sub"), (operator.mul, "mul"),
                                     (operator.truediv, "div"), (operator.pow, "pow"), (tg.maximum, "maximum"),
                                     (tg.minimum, "minimum")])
def test_binary_shapes_that_do_not_broadcast(op: Any, name: str) -> None:
    a, b = tg.ones(2, 3), tg.ones(4)
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) do not broadcast"):
        op(a, b)


def test_where_errors_name_the_op() -> None:
    x = tg.ones(2, 3)
    with pytest.raises(TypeError, match=r"where: the condition must be a bool tensor, got int64"):
        tg.where(np.array([1, 0, 1]), x, 0.0)
    with pytest.raises(ValueError, match=r"where: condition \(4,\), x \(2, 3\) and y \(\) do not broadcast"):
        tg.where(np.ones(4, dtype=bool), x, 0.0)


def test_unary_argument_errors() -> None:
    x = tg.ones(3)
    with pytest.raises(ValueError, match=r"clip: min=1 is greater than max=0"):
        x.clip(1, 0)
    with pytest.raises(ValueError, match=r"clip: give at least one of min and max"):
        x.clip()
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        x.gelu("fast")
    with pytest.raises(TypeError, match=r"~ \(logical not\) needs a bool tensor, got float32"):
        _ = ~x


@pytest.mark.parametrize("name, f, third", [
    ("sin", lambda x: x.sin(), lambda x: -np.cos(x)),
    ("cos", lambda x: x.cos(), lambda x: np.sin(x)),
    ("tanh", lambda x: x.tanh(), lambda x: -2 * (1 - np.tanh(x) ** 2) * (1 - 3 * np.tanh(x) ** 2)),
])
def test_single_op_backward_rules_differentiate_to_third_order(name, f, third):
    # sin, cos and tanh backpropagate through one fused op (SinGrad, CosGrad, TanhGrad); those are
    # differentiable in turn, so derivatives of any order come out of nested grad() calls.
    x0 = np.linspace(-2, 2, 7)
    x = Tensor(x0, dtype=tg.float64, requires_grad=True)
    (d1,) = tg.grad(f(x).sum(), x, create_graph=True)
    (d2,) = tg.grad(d1.sum(), x, create_graph=True)
    (d3,) = tg.grad(d2.sum(), x)
    np.testing.assert_allclose(d3.numpy(), third(x0), rtol=1e-12, atol=1e-12, err_msg=name)


# ----------------------------------------------------------- forward mode
# One sample call per op class of this module, checked against reverse mode by tests/test_forward_mode.py
# (vᵀ(J·u) == (vᵀJ)·u; it counts the class's jvp calls). A new op adds its line here.
JVP_SAMPLES: dict[str, tuple[Callable[..., Tensor], list[np.ndarray]]] = {
    "Add": (lambda x, y: x + y, [sample_normal(3, 4), sample_normal(4)]),
    "Sub": (lambda x, y: x - y, [sample_normal(3, 1), sample_normal(1, 4)]),
    "Mul": (lambda x, y: x * y, [sample_normal(2, 3, 4), sample_normal(3, 1)]),
    "Div": (lambda x, y: x / y, [sample_normal(3, 4), sample_positive(4)]),
    "Pow": (lambda x, y: x**y, [sample_positive(3, 4), sample_normal(4)]),
    "PowScalar": (lambda x: x**3 + x**2, [sample_normal(3, 4)]),
    "Maximum": (lambda x, y: tg.maximum(x, y), [sample_ties(3, 4), sample_ties(4)]),
    "Minimum": (lambda x, y: tg.minimum(x, y), [sample_ties(3, 4), sample_ties(3, 1)]),
    "Where": (lambda x, y: tg.where(x.numpy() > 0, x, y), [sample_normal(3, 4), sample_normal(4)]),
    "Neg": (lambda x: -x, [sample_normal(5)]),
    "Exp": (lambda x: x.exp(), [sample_normal(3, 4)]),
    "Log": (lambda x: x.log(), [sample_positive(3, 4)]),
    "Sqrt": (lambda x: x.sqrt(), [sample_positive(3, 4)]),
    "Abs": (lambda x: x.abs(), [sample_normal(3, 4)]),
    "Sin": (lambda x: x.sin(), [sample_normal(6)]),
    "Cos": (lambda x: x.cos(), [sample_normal(6)]),
    "Tanh": (lambda x: x.tanh(), [sample_normal(6)]),
    "Sigmoid": (lambda x: x.sigmoid(), [sample_normal(6) * 3]),
    "Softplus": (lambda x: x.softplus(), [sample_normal(6) * 3]),
    "LogSigmoid": (lambda x: x.log_sigmoid(), [sample_normal(6) * 3]),
    "Relu": (lambda x: x.relu(), [sample_normal(3, 4)]),
    "LeakyRelu": (lambda x: x.leaky_relu(0.1), [sample_normal(3, 4)]),
    "Clip": (lambda x: x.clip(-0.5, 0.7), [sample_normal(4, 5)]),
    "Erf": (lambda x: x.erf(), [sample_normal(6)]),
    "Gelu": (lambda x: x.gelu(), [sample_normal(6)]),
    "GeluTanh": (lambda x: x.gelu("tanh"), [sample_normal(6)]),
    "Silu": (lambda x: x.silu(), [sample_normal(6)]),
    "SinGrad": (lambda g, x: E.SinGrad.apply(g, x), [sample_normal(3, 4), sample_normal(3, 4)]),
    "CosGrad": (lambda g, x: E.CosGrad.apply(g, x), [sample_normal(3, 4), sample_normal(3, 4)]),
    "TanhGrad": (lambda g, t: E.TanhGrad.apply(g, t), [sample_normal(3, 4), sample_normal(3, 4)]),
    "SigmoidGrad": (lambda g, s: E.SigmoidGrad.apply(g, s), [sample_normal(3, 4), sample_normal(3, 4)]),
}
