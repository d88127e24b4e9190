"""The gradient checker must be able to fail, and say why.

Each `Bad*` Function below plants one classic backward mistake. gradcheck has to reject it (slow
and fast mode), name the input, show the worst elements and recognize the mistake; correct ops
have to pass.
"""
import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import Function, GradcheckError, Tensor, gradcheck, gradgradcheck
from tinygrad_lite.gradcheck import check_gradients, numerical_grad, numerical_jacobian

MODES = pytest.mark.parametrize("fast_mode", [False, True], ids=["slow", "fast"])


def leaf(*shape, seed=0, low=-2.0, high=2.0, away_from_zero=False):
    """A float64 leaf that requires grad; `away_from_zero` keeps |x| >= 0.3 (kinks, signs)."""
    x = np.random.default_rng(seed).uniform(low, high, size=shape)
    if away_from_zero:
        x = np.where(x >= 0, x + 0.3, x - 0.3)
    return Tensor(x, requires_grad=True)


# ------------------------------------------------------------------ planted mistakes
class BadMulFactor(Function):
    """x·y, but d/dy returns 2·g·x (an extra ×2) while d/dx is right."""

    def forward(self, x, y):
        self.save_for_backward(x, y)
        return x.data * y.data

    def backward(self, g):
        x, y = self.saved_tensors
        return g * y, g * x * 2.0


class BadSquareHalf(Function):
    """x², with d/dx written as g·x: the ×2 of 2x is missing."""

    def forward(self, x):
        self.save_for_backward(x)
        return x.data * x.data

    def backward(self, g):
        return g * self.saved_tensors[0]


class BadSin(Function):
    """sin x, with d/dx = -cos x: the sign is flipped (cos has it, sin's derivative does not)."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.sin(x.data)

    def backward(self, g):
        return -g * self.saved_tensors[0].cos()


class BadMatMul(Function):
    """a @ b, with dA = (g @ bᵀ)ᵀ: transposed (same shape only because `a` is square)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a.data @ b.data

    def backward(self, g):
        a, b = self.saved_tensors
        return (g @ b.transpose()).transpose(), a.transpose() @ g


class BadAddNoUnbroadcast(Function):
    """x + y with NumPy broadcasting, but returns g itself for both: y's gradient keeps the
    broadcast shape instead of being summed back to y's shape."""

    def forward(self, x, y):
        return x.data + y.data

    def backward(self, g):
        return g, g


class BadAddMean(Function):
    """x (3, 4) + y (1, 4): y's gradient is averaged over the broadcast axis instead of summed."""

    def forward(self, x, y):
        return x.data + y.data

    def backward(self, g):
        return g, g.mean(axis=0, keepdims=True)


class BadExpZero(Function):
    """e^x with a backward that returns zeros."""

    def forward(self, x):
        return np.exp(x.data)

    def backward(self, g):
        return tg.zeros_like(g)


class BadLeakyRelu(Function):
    """leaky_relu(x, 0.1), with a backward that forgets the slope: right only for x > 0."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.where(x.data > 0, x.data, 0.1 * x.data)

    def backward(self, g):
        return g * Tensor((self.saved_tensors[0].data > 0).astype(np.float64))


class BadCubeFirstHalf(Function):
    """x³ on a vector; backward right on the first half only (a slice handled wrongly)."""

    def forward(self, x):
        self.save_for_backward(x)
        return x.data ** 3

    def backward(self, g):
        x = self.saved_tensors[0]
        half = np.arange(x.shape[0]) < x.shape[0] // 2
        return g * (x * x * 3.0) * Tensor(np.where(half, 1.0, 0.5))


class BadMatMulMissingT(Function):
    """a @ b with dA = g @ b: the .T on the square b is missing, so the shape is right and the values wrong."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a.data @ b.data

    def backward(self, g):
        a, b = self.saved_tensors
        return g @ b, a.transpose() @ g


class BadBoth(Function):
    """x·y with both gradients wrong: d/dx sign-flipped, d/dy an extra ×2."""

    def forward(self, x, y):
        self.save_for_backward(x, y)
        return x.data * y.data

    def backward(self, g):
        x, y = self.saved_tensors
        return -g * y, g * x * 2.0


def check_failure(fn, inputs, key, input_index, fast_mode, shape_error=False):
    """gradcheck must fail with diagnosis `key` for `input_index`; returns the result.
    `shape_error`: the planted gradient has the wrong shape, so there are no elements to list."""
    result = check_gradients(fn, inputs, fast_mode=fast_mode)
    assert not result.ok and not result
    assert result.diagnosis == key, result.report
    assert result.input_index == input_index
    assert f"input {input_index} " in result.report
    assert "Diagnosis:" in result.report
    if shape_error:
        assert "wrong shape" in result.report and result.worst == []
    else:
        # The worst elements are listed, each with its input index and both values.
        assert result.worst, result.report
        assert "Worst elements:" in result.report
        for w in result.worst:
            assert w["rel_error"] > 0
            assert abs(w["analytical"] - w["numerical"]) > 1e-5
            assert f"{w['analytical']:.6g}" in result.report
            assert f"{w['numerical']:.6g}" in result.report
            assert str(w["input_index"]) in result.report
    if fast_mode:
        assert "fast mode" in result.report
    with pytest.raises(GradcheckError) as info:
        gradcheck(fn, inputs, fast_mode=fast_mode)
    assert info.value.result.diagnosis == key
    assert f"input {input_index} " in str(info.value)
    assert gradcheck(fn, inputs, fast_mode=fast_mode, raise_exception=False) is False
    return result


@MODES
def test_extra_factor_two(fast_mode):
    x, y = leaf(3, 4, seed=1), leaf(3, 4, seed=2)
    result = check_failure(BadMulFactor.apply, (x, y), "factor", 1, fast_mode)
    assert result.factor == pytest.approx(2.0, rel=1e-4)
    assert "2 ×" in result.report and "extra ×2" in result.report
    # an extra factor has nothing to do with broadcasting: no such hint
    assert "broadcast" not in result.report
    for w in result.worst:
        assert w["analytical"] == pytest.approx(2 * w["numerical"], rel=1e-4)
        assert w["rel_error"] == pytest.approx(1.0, rel=1e-4)


@MODES
def test_missing_factor_two(fast_mode):
    x = leaf(5, seed=3, away_from_zero=True)
    result = check_failure(BadSquareHalf.apply, (x,), "factor", 0, fast_mode)
    assert result.factor == pytest.approx(0.5, rel=1e-4)
    assert "missing ×2" in result.report
    for w in result.worst:
        assert w["analytical"] == pytest.approx(0.5 * w["numerical"], rel=1e-4)


@MODES
def test_mean_instead_of_sum_over_broadcast(fast_mode):
    x, y = leaf(3, 4, seed=4), leaf(1, 4, seed=5)
    result = check_failure(BadAddMean.apply, (x, y), "factor", 1, fast_mode)
    assert result.factor == pytest.approx(1 / 3, rel=1e-4)
    assert "missing ×3" in result.report and "broadcast this input 3 times" in result.report


@MODES
def test_sign_flipped(fast_mode):
    x = leaf(2, 3, seed=6)
    result = check_failure(BadSin.apply, (x,), "sign", 0, fast_mode)
    assert result.factor == -1.0
    assert "sign" in result.report
    for w in result.worst:
        assert w["analytical"] == pytest.approx(-w["numerical"], rel=1e-4)


@MODES
def test_transposed_square_matmul(fast_mode):
    a, b = leaf(3, 3, seed=7), leaf(3, 2, seed=8)
    result = check_failure(BadMatMul.apply, (a, b), "transposed", 0, fast_mode)
    assert "transposed" in result.report


@MODES
def test_missing_transpose_of_a_square_operand(fast_mode):
    # dA = G·B instead of G·Bᵀ: no shape can tell, and the gradient is not a transpose of the answer
    a, b = leaf(2, 3, seed=7), leaf(3, 3, seed=8)
    result = check_failure(BadMatMulMissingT.apply, (a, b), "operand_transposed", 0, fast_mode)
    assert "transpose of input 1 (shape (3, 3))" in result.report
    # a symmetric b makes the mistake harmless, so nothing is reported
    sym = leaf(3, 3, seed=8)
    sym.data[...] = sym.data + sym.data.T
    assert check_gradients(BadMatMulMissingT.apply, (a, sym), fast_mode=fast_mode).ok


def test_all_inputs_reports_every_failing_input():
    x, y = leaf(2, 3, seed=1), leaf(2, 3, seed=2)
    first = check_gradients(BadBoth.apply, (x, y))  # the default stops at the first failing input
    assert [f.input_index for f in first.failures] == [0] and "input 1 " not in first.report
    every = check_gradients(BadBoth.apply, (x, y), all_inputs=True)
    assert not every.ok and [(f.input_index, f.diagnosis) for f in every.failures] == [(0, "sign"), (1, "factor")]
    assert every.input_index == 0 and every.diagnosis == "sign"  # the first one's fields, as before
    assert "failed for input 0 " in every.report and "failed for input 1 " in every.report
    assert all(f.worst and f.report in every.report for f in every.failures)
    fast = check_gradients(BadBoth.apply, (x, y), all_inputs=True, fast_mode=True)
    assert [f.input_index for f in fast.failures] == [0, 1] and "fast mode" in fast.report
    assert check_gradients(lambda x, y: x * y, (x, y), all_inputs=True).failures == []


@MODES
def test_transposed_non_square_is_a_shape_error(fast_mode):
    # For a non-square input the transposed gradient has the wrong shape; the engine refuses it
    # and gradcheck still names the mistake from the two shapes.
    a, b = leaf(2, 3, seed=9), leaf(3, 4, seed=10)
    result = check_failure(BadMatMul.apply, (a, b), "transposed", 0, fast_mode, shape_error=True)
    assert "(3, 2)" in result.report and "(2, 3)" in result.report


@MODES
def test_missing_sum_over_broadcast_dimensions(fast_mode):
    x, y = leaf(3, 4, seed=11), leaf(1, 4, seed=12)
    result = check_failure(BadAddNoUnbroadcast.apply, (x, y), "broadcast", 1, fast_mode, shape_error=True)
    # no element can be compared, but both shapes and the fix are named
    assert "(3, 4)" in result.report and "(1, 4)" in result.report
    assert "summed over the broadcast dimensions" in result.report
    # a new leading axis is a broadcast dimension too
    x, y = leaf(3, 4, seed=11), leaf(4, seed=12)
    check_failure(BadAddNoUnbroadcast.apply, (x, y), "broadcast", 1, fast_mode, shape_error=True)


@MODES
def test_all_zero_gradient(fast_mode):
    x = leaf(4, seed=13)
    result = check_failure(BadExpZero.apply, (x,), "zero", 0, fast_mode)
    assert all(w["analytical"] == 0.0 for w in result.worst)


@MODES
def test_detached_input_reads_as_zero_gradient(fast_mode):
    x = leaf(3, seed=14)
    check_failure(lambda t: t.detach() * t.detach().exp() + 0.0 * t, (x,), "zero", 0, fast_mode)


@MODES
def test_right_only_for_positive_inputs(fast_mode):
    x = leaf(8, seed=15, away_from_zero=True)
    assert (x.numpy() < 0).any() and (x.numpy() > 0).any()
    result = check_failure(BadLeakyRelu.apply, (x,), "partial", 0, fast_mode)
    negative = [i for i, v in enumerate(x.numpy()) if v < 0]
    assert sorted(w["input_index"][0] for w in result.worst) == negative[:5] or all(
        w["input_index"][0] in negative for w in result.worst
    )
    assert "where the input is negative" in result.report


@MODES
def test_right_only_on_part_of_the_input(fast_mode):
    x = leaf(6, seed=16, away_from_zero=True)
    result = check_failure(BadCubeFirstHalf.apply, (x,), "partial", 0, fast_mode)
    assert {w["input_index"] for w in result.worst} == {(3,), (4,), (5,)}
    assert "3 of 6 input elements match" in result.report
    assert "wrong at [(3,), (4,), (5,)]" in result.report


def test_factor_hint_mentions_broadcasting_only_for_fractions():
    from tinygrad_lite.gradcheck import _factor_text

    assert "broadcast" not in _factor_text(2.0)
    assert "broadcast" not in _factor_text(3.0)
    assert "broadcast" not in _factor_text(1.7)
    assert "broadcast" in _factor_text(0.5) and "broadcast" in _factor_text(0.25)
    assert "broadcast this input 4 times" in _factor_text(0.25)
    assert "sign" in _factor_text(-2.0) and "extra ×2" in _factor_text(-2.0)
    assert "sign" not in _factor_text(2.0)


# ------------------------------------------------------------------ correct ops pass
CORRECT = {
    "mul_broadcast": (lambda x, y: x * y, [(3, 4), (4,)]),
    "matmul": (lambda a, b: a @ b, [(2, 3), (3, 4)]),
    "tanh_sum": (lambda x: x.tanh().sum(axis=0), [(3, 2)]),
    "two_outputs": (lambda x, y: (x * y, (x - y).exp()), [(2, 2), (2, 2)]),
    "scalar_input": (lambda x: x * x * x, [()]),
    "softmax": (lambda x: x.softmax(axis=-1), [(2, 5)]),
}


@MODES
@pytest.mark.parametrize("name", CORRECT)
def test_correct_ops_pass(name, fast_mode):
    fn, shapes = CORRECT[name]
    inputs = [leaf(*s, seed=i) for i, s in enumerate(shapes)]
    assert gradcheck(fn, inputs, fast_mode=fast_mode)
    result = check_gradients(fn, inputs, fast_mode=fast_mode)
    assert result.ok and result.diagnosis is None and result.report == ""


def test_inputs_that_do_not_require_grad_are_left_alone():
    x, c = leaf(3, seed=1), Tensor(np.array([1.0, 2.0, 3.0]))
    assert gradcheck(lambda x, c, k: x * c + k, (x, c, 2.0))
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(lambda c: c * 2, (c,))


def test_inputs_are_restored_after_the_check():
    x = leaf(2, 3, seed=2)
    before = x.numpy().copy()
    gradcheck(lambda x: x.exp(), (x,))
    gradcheck(lambda x: x.exp(), (x,), fast_mode=True)
    np.testing.assert_array_equal(x.numpy(), before)


def test_float32_inputs_warn():
    x = Tensor(np.array([0.5, 1.0], dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="float32, not float64"):
        gradcheck(lambda x: x * 2.0, (x,), atol=1e-2, rtol=1e-2, raise_exception=False)
    with pytest.warns(UserWarning, match="float64"):
        check_gradients(lambda x: x * 2.0, (x,), atol=1e-2, rtol=1e-2)


def test_tolerance_is_respected():
    # BadMulFactor is off by 100%; with rtol above that it passes, as it should.
    x, y = leaf(2, seed=1), leaf(2, seed=2)
    assert gradcheck(BadMulFactor.apply, (x, y), rtol=1.5)


def test_raise_exception_false_returns_false_and_error_carries_result():
    x = leaf(3, seed=3)
    assert gradcheck(BadExpZero.apply, (x,), raise_exception=False) is False
    with pytest.raises(GradcheckError) as info:
        gradcheck(BadExpZero.apply, (x,))
    assert isinstance(info.value, RuntimeError)
    assert info.value.result.diagnosis == "zero"
    assert str(info.value) == info.value.result.report


# ------------------------------------------------------------------ numerical helpers
def test_numerical_jacobian_of_matmul():
    a, b = leaf(2, 3, seed=1), leaf(3, 4, seed=2)
    jac = numerical_jacobian(lambda a, b: a @ b, (a, b))
    # d(AB)_{ij}/dA_{kl} = δ_ik B_lj  ->  J_A = kron(I_2, Bᵀ)
    np.testing.assert_allclose(jac[0][0], np.kron(np.eye(2), b.numpy().T), atol=1e-8)
    np.testing.assert_allclose(jac[1][0], np.kron(a.numpy(), np.eye(4)), atol=1e-8)


def test_numerical_jacobian_skips_constants_and_handles_two_outputs():
    x, c = leaf(3, seed=1), Tensor(np.ones(3))
    jac = numerical_jacobian(lambda x, c: (x * c, x.sum()), (x, c))
    assert jac[1] == []
    np.testing.assert_allclose(jac[0][0], np.eye(3), atol=1e-8)
    np.testing.assert_allclose(jac[0][1], np.ones((1, 3)), atol=1e-8)


def test_numerical_grad():
    x = leaf(2, 2, seed=3)
    g = numerical_grad(lambda x: (x * x).sum(), x)
    assert g.shape == (2, 2)
    np.testing.assert_allclose(g, 2 * x.numpy(), atol=1e-7)
    with pytest.raises(ValueError, match="scalar"):
        numerical_grad(lambda x: x * 2, x)


# ------------------------------------------------------------------ second derivatives
class SquareDetachedBackward(Function):
    """x² whose backward is right but built from a constant (raw array): first derivatives pass,
    second derivatives are wrong (zero), which only gradgradcheck can see."""

    def forward(self, x):
        self.save_for_backward(x)
        return x.data * x.data

    def backward(self, g):
        return g * Tensor(2.0 * self.saved_tensors[0].data)


@pytest.mark.parametrize("fn", [lambda x: x.tanh(), lambda x: x * x * x, lambda x: (x @ x).sum(axis=0)],
                         ids=["tanh", "cube", "matmul"])
@MODES
def test_gradgradcheck_passes(fn, fast_mode):
    assert gradgradcheck(fn, (leaf(3, 3, seed=4),), fast_mode=fast_mode)


@MODES
def test_gradgradcheck_catches_a_non_differentiable_backward(fast_mode):
    x = leaf(4, seed=5)
    assert gradcheck(SquareDetachedBackward.apply, (x,), fast_mode=fast_mode)
    assert gradgradcheck(SquareDetachedBackward.apply, (x,), fast_mode=fast_mode, raise_exception=False) is False
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(SquareDetachedBackward.apply, (x,), fast_mode=fast_mode)
    assert info.value.result.input_index == 0  # d²/dx² wrong; the part linear in v is right
    assert info.value.result.diagnosis == "zero"


def test_gradgradcheck_refuses_a_fused_op():
    logits = leaf(3, 4, seed=6)
    with pytest.raises(RuntimeError, match="CrossEntropy"):
        gradgradcheck(lambda z: tg.functional.cross_entropy(z, np.array([0, 1, 3])), (logits,))


class BadSinCube(Function):
    """sin x, with d/dx = g·x³: wrong in no recognizable pattern (not a factor, sign, transpose or branch)."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.sin(x.data)

    def backward(self, g):
        x = self.saved_tensors[0]
        return g * x * x * x


def test_an_unrecognized_mistake_does_not_point_above_or_below() -> None:
    # The grader prints the diagnosis first and the worst elements after it, gradcheck the other way
    # round: the text must be right in both.
    from tglite.exercises import FAILED, Grade, format_grade

    result = check_gradients(lambda x: BadSinCube.apply(x), (leaf(3, seed=4, away_from_zero=True),))
    assert not result.ok and result.diagnosis == "unknown"
    text = result.report.split("Diagnosis: ", 1)[1]
    assert "worst elements" in text and "above" not in text and "below" not in text
    line = format_grade(Grade("sin", FAILED, result.diagnosis, text, list(result.worst), result.report))
    assert line.index("worst elements listed") < line.index("worst: input index")
