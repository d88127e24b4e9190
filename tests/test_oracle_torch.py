"""Oracle tests: forwards and gradients against PyTorch (float64), when torch is installed.

They are never the only check (every op is also gradchecked against finite differences); they
catch the other kind of mistake, a correct derivative of the wrong function or convention.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinygrad_lite as tg
import tinygrad_lite.functional as F

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.oracle

RTOL = 1e-10


def _compare(ours: Callable[..., tg.Tensor], theirs: Callable[..., Any], *arrays: np.ndarray,
             rtol: float = RTOL, atol: float = 1e-12) -> None:
    """Same value and same gradients (for a fixed random upstream gradient) as PyTorch."""
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, ref = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=rtol, atol=atol)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(tg.tensor(upstream))
    ref.backward(torch.tensor(upstream))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol)


RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4)) * 2


@pytest.mark.parametrize("name,ours,theirs", [
    ("gelu", lambda x: x.gelu(), lambda t: torch.nn.functional.gelu(t)),
    ("gelu_tanh", lambda x: x.gelu("tanh"), lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
    ("silu", lambda x: x.silu(), torch.nn.functional.silu),
    ("softplus", lambda x: x.softplus(), torch.nn.functional.softplus),
    ("log_sigmoid", lambda x: x.log_sigmoid(), torch.nn.functional.logsigmoid),
    ("sigmoid", lambda x: x.sigmoid(), torch.sigmoid),
    ("erf", lambda x: x.erf(), torch.erf),
    ("leaky_relu", lambda x: x.leaky_relu(0.1), lambda t: torch.nn.functional.leaky_relu(t, 0.1)),
    ("softmax", lambda x: x.softmax(axis=0), lambda t: torch.softmax(t, dim=0)),
    ("log_softmax", lambda x: x.log_softmax(), lambda t: torch.log_softmax(t, dim=-1)),
    ("logsumexp", lambda x: x.logsumexp(axis=1), lambda t: torch.logsumexp(t, dim=1)),
    ("var_ddof1", lambda x: x.var(axis=1, ddof=1), lambda t: torch.var(t, dim=1, correction=1)),
    ("std_ddof0", lambda x: x.std(axis=0, ddof=0), lambda t: torch.std(t, dim=0, correction=0)),
    ("clip", lambda x: x.clip(-1.0, 1.5), lambda t: torch.clamp(t, -1.0, 1.5)),
])
def test_unary_against_torch(name: str, ours: Any, theirs: Any) -> None:
    _compare(ours, theirs, X)


def test_softplus_extremes_against_torch() -> None:
    x = np.array([-1e4, -30.0, 0.0, 30.0, 1e4])
    _compare(lambda x: x.softplus(), torch.nn.functional.softplus, x)
    _compare(lambda x: x.log_sigmoid(), torch.nn.functional.logsigmoid, x)


def test_ties_share_the_gradient_like_torch() -> None:
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    b = np.array([[1.0, 0.0, 3.0], [5.0, 2.0, 0.0]])
    _compare(lambda x: x.max(axis=1), lambda t: torch.amax(t, dim=1), a)
    _compare(lambda x: x.min(), lambda t: torch.amin(t), a)
    _compare(tg.maximum, torch.maximum, a, b)
    _compare(tg.minimum, torch.minimum, a, b)


def test_pow_and_division_against_torch() -> None:
    base = np.abs(X) + 0.5
    _compare(lambda x, y: x**y, torch.pow, base, X)
    _compare(lambda x, y: x / y, torch.div, X, base)
    _compare(lambda x: 2.0**x - x**3, lambda t: 2.0**t - t**3, X)


def test_batched_matmul_against_torch() -> None:
    a = RNG.standard_normal((2, 1, 3, 4))
    b = RNG.standard_normal((3, 4, 2))
    _compare(lambda a, b: a @ b, torch.matmul, a, b)
    v = RNG.standard_normal(4)
    _compare(lambda a, v: a @ v, torch.matmul, a, v)


def test_indexing_with_repeats_against_torch() -> None:
    idx = np.array([2, 0, 2, 2])
    _compare(lambda x: x[idx], lambda t: t[torch.tensor(idx)], X)
    _compare(lambda x: x[:, idx] * 2.0, lambda t: t[:, torch.tensor(idx)] * 2.0, X)
    gather_idx = np.array([[0, 0], [3, 1], [2, 2]])
    _compare(lambda x: x.gather(1, gather_idx), lambda t: torch.gather(t, 1, torch.tensor(gather_idx)), X)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_against_torch(reduction: str, smoothing: float) -> None:
    logits = RNG.standard_normal((5, 4)) * 3
    target = np.array([0, 3, -100, 1, 1])

    def ours(x: tg.Tensor) -> tg.Tensor:
        return F.cross_entropy(x, target, label_smoothing=smoothing, reduction=reduction)

    def theirs(t: Any) -> Any:
        return torch.nn.functional.cross_entropy(t, torch.tensor(target), ignore_index=-100,
                                                 label_smoothing=smoothing, reduction=reduction)

    _compare(ours, theirs, logits)


def test_bce_with_logits_and_mse_against_torch() -> None:
    y = RNG.uniform(0, 1, X.shape)
    _compare(lambda x: F.binary_cross_entropy_with_logits(x, y),
             lambda t: torch.nn.functional.binary_cross_entropy_with_logits(t, torch.tensor(y)), X)
    _compare(lambda x: F.mse(x, y, reduction="sum"),
             lambda t: torch.nn.functional.mse_loss(t, torch.tensor(y), reduction="sum"), X)


def test_second_derivative_against_torch() -> None:
    x = tg.tensor(X, requires_grad=True)
    t = torch.tensor(X, requires_grad=True)
    (gx,) = tg.grad((x.gelu() * x.log_softmax(axis=0)).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad((torch.nn.functional.gelu(t) * torch.log_softmax(t, 0)).sum(), t, create_graph=True)
    np.testing.assert_allclose(gx.numpy(), gt.detach().numpy(), rtol=RTOL)
    (hx,) = tg.grad((gx * gx).sum(), x)
    (ht,) = torch.autograd.grad((gt * gt).sum(), t)
    np.testing.assert_allclose(hx.numpy(), ht.numpy(), rtol=1e-9)
