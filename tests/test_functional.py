"""tinygrad_lite.functional: losses (cross_entropy, nll_loss, binary_cross_entropy_with_logits,
mse), dropout, and the functional forms of the activations."""
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
import tinygrad_lite.functional as F
from tinygrad_lite import Tensor

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _np_log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _np_cross_entropy(logits: np.ndarray, target: np.ndarray, ignore_index: int = -100,
                      label_smoothing: float = 0.0, reduction: str = "mean") -> np.ndarray:
    """-Σ_c q_c log softmax(x)_c with q = (1-ε)·onehot(y) + ε/C; ignored rows count for nothing."""
    n_classes = logits.shape[-1]
    keep = target != ignore_index
    onehot = np.eye(n_classes)[np.where(keep, target, 0)]
    q = (1 - label_smoothing) * onehot + label_smoothing / n_classes
    loss = -(q * _np_log_softmax(logits)).sum(axis=-1) * keep
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / max(int(keep.sum()), 1)


@st.composite
def classification(draw: Any, max_rows: int = 6, ignore_index: int = -100) -> tuple[np.ndarray, np.ndarray]:
    batch = draw(shapes(min_dims=1, max_dims=2, max_size=max_rows), label="batch")
    n_classes = draw(st.integers(1, 4), label="classes")
    logits = draw(arrays(batch + (n_classes,)), label="logits")
    target = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, n_classes - 1)), label="target")
    ignored = draw(hnp.arrays(np.bool_, batch), label="ignored")
    return logits, np.where(ignored, ignore_index, target)


# ---------------------------------------------------------------- cross_entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_cross_entropy(reduction: str, data: Any) -> None:
    ignore_index = data.draw(st.sampled_from([-100, 0, 2]), label="ignore_index")
    logits_np, target = data.draw(classification(ignore_index=ignore_index), label="problem")
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 1.0]), label="label_smoothing")
    logits = data.draw(leaves(st.just(logits_np)), label="logits")

    def loss(x: tg.Tensor) -> tg.Tensor:
        return F.cross_entropy(x, target, ignore_index=ignore_index, label_smoothing=smoothing, reduction=reduction)

    assert_forward(loss(logits), _np_cross_entropy(logits_np, target, ignore_index, smoothing, reduction))
    check_grad(loss, logits)


def test_cross_entropy_gradient_is_softmax_minus_target_over_n() -> None:
    logits = leaf([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]])
    target = np.array([1, -100, 0])  # the middle row is ignored: the mean is over 2 rows
    (g,) = grad_of(lambda x: F.cross_entropy(x, target), logits)
    p = np.exp(_np_log_softmax(logits.numpy()))
    expected = (p - np.eye(3)[[1, 0, 0]]) / 2
    expected[1] = 0.0
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_cross_entropy_with_every_target_ignored_is_zero_not_nan() -> None:
    logits = leaf(np.ones((2, 3)))
    loss = F.cross_entropy(logits, np.array([-100, -100]))
    assert loss.item() == 0.0
    loss.backward()
    np.testing.assert_array_equal(logits.grad.numpy(), np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", [tg.float64, tg.float32], ids=str)
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_cross_entropy_is_stable_for_huge_logits(scale: float, dtype: Any) -> None:
    base = np.array([[1.0, 0.5, -1.0, 0.0], [0.25, -0.5, 0.75, 0.0], [0.0, 0.0, 0.0, 1.0]])
    target = np.array([0, 1, 2])
    logits = tg.tensor(base * scale, dtype=dtype, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.cross_entropy(logits, target, label_smoothing=0.1)
        loss.backward()
    assert loss.dtype == dtype and logits.grad.dtype == dtype
    expected = _np_cross_entropy(base * scale, target, label_smoothing=0.1)
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-6)
    assert np.isfinite(logits.grad.numpy()).all()
    p = np.exp(_np_log_softmax(base * scale))
    q = 0.9 * np.eye(4)[target] + 0.1 / 4
    np.testing.assert_allclose(logits.grad.numpy(), (p - q) / 3, atol=1e-7)


def test_cross_entropy_refuses_double_backward_and_names_itself() -> None:
    logits = leaf([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    target = np.array([1, 2])
    loss = F.cross_entropy(logits, target)
    with pytest.raises(RuntimeError, match=r"CrossEntropy"):
        loss.backward(create_graph=True)
    with pytest.raises(RuntimeError, match=r"CrossEntropy"):
        tg.gradgradcheck(lambda x: F.cross_entropy(x, target), (logits,))


@given(data=st.data())
def test_composed_cross_entropy_has_second_derivatives(data: Any) -> None:
    # The composed form, log_softmax + nll_loss, is the one to use for higher-order gradients.
    logits_np, target = data.draw(classification(max_rows=2), label="problem")
    target = np.where(target < 0, 0, target)
    logits = data.draw(leaves(st.just(logits_np)), label="logits")

    def loss(x: tg.Tensor) -> tg.Tensor:
        return F.nll_loss(x.log_softmax(axis=-1), target)

    assert_forward(loss(logits), _np_cross_entropy(logits_np, target))
    np.testing.assert_allclose(loss(logits).item(), F.cross_entropy(logits, target).item(), rtol=1e-12)
    check_gradgrad(loss, logits)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_nll_loss(reduction: str, data: Any) -> None:
    logits_np, target = data.draw(classification(), label="problem")
    target = np.where(target < 0, 0, target)
    logp = data.draw(leaves(st.just(_np_log_softmax(logits_np))), label="log_probs")
    loss = lambda lp: F.nll_loss(lp, tg.tensor(target), reduction=reduction)  # noqa: E731
    assert_forward(loss(logp), _np_cross_entropy(logits_np, target, reduction=reduction))
    check_grad(loss, logp)


def test_cross_entropy_errors_name_the_op_and_values() -> None:
    logits = tg.ones(2, 3)
    with pytest.raises(IndexError, match=r"cross_entropy: targets must lie in \[0, 3\) or equal ignore_index=-100, "
                                         r"got range \[0, 3\]"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(IndexError, match=r"cross_entropy: targets must lie in \[0, 3\) .* got range \[-1, 0\]"):
        F.cross_entropy(logits, np.array([0, -1]))
    with pytest.raises(ValueError, match=r"cross_entropy: logits of shape \(2, 3\) need targets of shape \(2,\) "
                                         r".* got \(3,\)"):
        F.cross_entropy(logits, np.array([0, 1, 1]))
    with pytest.raises(TypeError, match=r"cross_entropy: targets must be integer class indices, got float64"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\], got 1.5"):
        F.cross_entropy(logits, np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(logits, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"nll_loss: logits of shape \(2, 3\) need targets of shape \(2,\)"):
        F.nll_loss(logits, np.array([[0, 1]]))


# ----------------------------------------------------------------- BCE with logits
def _np_bce_with_logits(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_binary_cross_entropy_with_logits(reduction: str, data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    x = data.draw(leaves(arrays(shape)), label="logits")
    y = data.draw(leaves(arrays(shape, st.floats(0.0, 1.0))), label="targets")  # soft labels, differentiable too
    loss = lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=reduction)  # noqa: E731
    ref = _np_bce_with_logits(x.numpy(), y.numpy())
    assert_forward(loss(x, y), {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction])
    check_grad(loss, x, y)


@pytest.mark.parametrize("dtype", [tg.float64, tg.float32], ids=str)
def test_bce_with_logits_is_stable_for_huge_logits(dtype: Any) -> None:
    x = tg.tensor([-1e4, -1e4, 1e4, 1e4, 0.0], dtype=dtype, requires_grad=True)
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), [0.0, 1e4, 1e4, 0.0, np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, -1.0, 1.0, 0.0, -0.5], rtol=1e-6)


# --------------------------------------------------------------------------- mse
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_mse(reduction: str, data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    x = data.draw(leaves(arrays(shape)), label="x")
    y = data.draw(leaves(arrays(shape)), label="target")
    ref = (x.numpy() - y.numpy()) ** 2
    expected = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    assert_forward(F.mse(x, y, reduction=reduction), expected)
    assert_forward(F.mse_loss(x, y.numpy(), reduction=reduction), expected)  # a plain array as the target
    check_grad(lambda x, y: F.mse(x, y, reduction=reduction), x, y)


def test_loss_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: logits \(2, 3\) and targets \(3,\) "
                                         r"differ in shape"):
        F.binary_cross_entropy_with_logits(tg.ones(2, 3), np.zeros(3))
    with pytest.raises(ValueError, match=r"mse: input \(2, 3\) and target \(3,\) differ in shape"):
        F.mse(tg.ones(2, 3), np.zeros(3))


# ------------------------------------------------------------------------ dropout
def test_dropout_is_reproducible_under_manual_seed() -> None:
    x = tg.ones(4, 5, dtype=tg.float64)
    tg.manual_seed(123)
    a = F.dropout(x, 0.3).numpy()
    tg.manual_seed(123)
    b = F.dropout(x, 0.3).numpy()
    c = F.dropout(x, 0.3).numpy()  # the generator moved on: a different mask
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_dropout_zeroes_or_scales_by_one_over_keep_probability() -> None:
    tg.manual_seed(0)
    x = tg.tensor(np.linspace(1.0, 2.0, 20000), requires_grad=True)
    p = 0.25
    out = F.dropout(x, p)
    kept = out.numpy() != 0
    np.testing.assert_allclose(out.numpy()[kept], x.numpy()[kept] / (1 - p), rtol=1e-15)
    assert abs(kept.mean() - (1 - p)) < 0.02  # about 1-p of the elements survive
    assert abs(out.numpy().mean() - x.numpy().mean()) < 0.02  # inverted dropout keeps the expectation
    out.backward(tg.ones_like(out))
    np.testing.assert_array_equal(x.grad.numpy(), np.where(kept, 1 / (1 - p), 0.0))


def test_dropout_identity_when_not_training_or_p_zero() -> None:
    x = tg.ones(3, 4)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_with_its_own_generator_leaves_the_default_alone() -> None:
    x = tg.ones(50, dtype=tg.float64)
    tg.manual_seed(7)
    expected_next = tg.rand(3).numpy()
    tg.manual_seed(7)
    m1 = F.dropout(x, 0.5, generator=tg.Generator(99)).numpy()
    np.testing.assert_array_equal(tg.rand(3).numpy(), expected_next)  # default generator untouched
    m2 = F.dropout(x, 0.5, generator=tg.Generator(99)).numpy()
    np.testing.assert_array_equal(m1, m2)
    assert set(np.unique(m1)) <= {0.0, 2.0}


def test_dropout_keeps_dtype_and_gradchecks_with_a_fixed_mask() -> None:
    assert F.dropout(tg.ones(4), 0.5).dtype == np.float32
    x = leaf(np.linspace(-1, 1, 12).reshape(3, 4))
    check_grad(lambda x: F.dropout(x, 0.5, generator=tg.Generator(3)), x)  # same mask every call


def test_dropout_rejects_bad_p() -> None:
    for p in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=rf"dropout: p must be in \[0, 1\), got {p}"):
            F.dropout(tg.ones(3), p)


# --------------------------------------------------------- functional activations
ACTIVATIONS = [
    (F.relu, lambda x: x.relu()), (F.gelu, lambda x: x.gelu()),
    (lambda x: F.gelu(x, approximate="tanh"), lambda x: x.gelu("tanh")), (F.silu, lambda x: x.silu()),
    (F.sigmoid, lambda x: x.sigmoid()), (F.tanh, lambda x: x.tanh()), (F.softplus, lambda x: x.softplus()),
    (F.log_sigmoid, lambda x: x.log_sigmoid()), (lambda x: F.leaky_relu(x, 0.2), lambda x: x.leaky_relu(0.2)),
    (F.softmax, lambda x: x.softmax(-1)), (lambda x: F.log_softmax(x, axis=0), lambda x: x.log_softmax(0)),
    (lambda x: F.logsumexp(x, axis=1, keepdims=True), lambda x: x.logsumexp(1, True)),
]


@pytest.mark.parametrize("functional,method", ACTIVATIONS)
def test_functional_forms_match_methods(functional: Any, method: Any) -> None:
    x = leaf(np.array([[-2.0, -0.5, 0.3], [0.7, 1.5, 3.0]]))
    np.testing.assert_array_equal(functional(x).numpy(), method(x).numpy())
    check_grad(functional, x)


def test_functional_where_take_along_axis() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    assert_forward(F.where(x > 2, x, 0.0), [[0.0, 0.0], [3.0, 4.0]])
    assert_forward(F.take_along_axis(x, np.array([[1], [0]]), axis=1), [[2.0], [3.0]])


@given(data=st.data())
def test_loss_second_order(data: Any) -> None:
    shape = data.draw(shapes(max_size=GRADGRAD_SIZE), label="shape")
    x = data.draw(leaves(arrays(shape)), label="x")
    y = data.draw(leaves(arrays(shape, st.floats(0.0, 1.0))), label="y")
    check_gradgrad(lambda x, y: F.binary_cross_entropy_with_logits(x, y) + F.mse(x, y), x, y)


# ----------------------------------------------------------- forward mode
# One sample call per op class of this module, checked against reverse mode by tests/test_forward_mode.py
# (vᵀ(J·u) == (vᵀJ)·u; it counts the class's jvp calls). A new op adds its line here.
_RNG = np.random.default_rng(1)
_ATTEND = np.ones((2, 1, 3, 5), bool) & np.tril(np.ones((3, 5), bool))  # PyTorch's bool mask: True = may attend
_ATTEND[0, ..., :1] = False  # batch row 0: its first query, causal, sees no key at all (output 0, P = 0)
JVP_SAMPLES: dict[str, tuple[Callable[..., Tensor], list[np.ndarray]]] = {
    "CrossEntropy": (lambda x: F.cross_entropy(x, np.array([[0, 3, -100], [1, 1, 2]]), label_smoothing=0.1),
                     [sample_normal(2, 3, 4)]),
    "LayerNorm": (lambda x, w, b: F.layer_norm(x, w.shape, w, b),
                  [sample_normal(2, 3, 5), sample_normal(5), sample_normal(5)]),
    "Linear": (lambda x, w, b: F.linear(x, w, b), [sample_normal(2, 3, 4), sample_normal(5, 4), sample_normal(5)]),
    "FusedGelu": (lambda x: F.fused_gelu(x), [sample_normal(3, 4)]),
    "ScaledDotProductAttention": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=_ATTEND, dropout_p=0.3,
                                                       generator=tg.Generator(2)),
        [sample_normal(2, 2, 3, 4), sample_normal(2, 2, 5, 4), sample_normal(2, 2, 5, 6)]),
}
