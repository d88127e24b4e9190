"""The PyTorch habits of issue #13 (sections 6 and 7) against PyTorch itself: the same call, the
same values and gradients. Optional: skipped without torch; the behaviour is also tested without
it (tests/test_pytorch_habits.py, tests/test_opinfo_edge_cases.py, tests/test_from_pytorch.py).

    PYTHONPATH=. /work/trlvenv/bin/python -m pytest tests/test_from_pytorch_oracle.py
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import nn  # noqa: E402
import tinygrad_lite as tg  # noqa: E402
import tinygrad_lite.functional as F  # noqa: E402

pytestmark = pytest.mark.oracle

RNG = np.random.default_rng(7)


def _both(ours: Callable[[Any], Any], theirs: Callable[[Any], Any], *arrays: np.ndarray,
          weights: np.ndarray | None = None) -> None:
    """Same value and same gradient (of Σ w·out) for every array input, in float64."""
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = RNG.standard_normal(out.shape) if weights is None else weights
    (out * tg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


TIES = np.array([[3.0, 1.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, 4.0, 5.0]])


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, False), (1, True), (-1, True)])
def test_max_with_a_dim_returns_pytorchs_pair(op: str, dim: int, keepdim: bool) -> None:
    ours = getattr(tg.tensor(TIES), op)(dim, keepdim)
    theirs = getattr(torch.tensor(TIES), op)(dim, keepdim)
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())  # the first extreme, as PyTorch
    _both(lambda x: getattr(x, op)(dim=dim, keepdim=keepdim).values,
          lambda t: getattr(t, op)(dim=dim, keepdim=keepdim).values, TIES)  # the gradient goes to that index


@pytest.mark.parametrize("op,torch_op", [("max", "amax"), ("min", "amin")])
def test_numpys_form_is_amax(op: str, torch_op: str) -> None:
    _both(lambda x: getattr(x, op)(axis=1), lambda t: getattr(t, torch_op)(dim=1), TIES)  # ties share the gradient
    _both(lambda x: getattr(x, op)(), lambda t: getattr(t, op)(), TIES)


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, math.inf, -math.inf, "fro"])
@pytest.mark.parametrize("dim", [None, 1, (0, 2)])
def test_norm(p: Any, dim: Any) -> None:
    a = RNG.standard_normal((2, 3, 4))
    if p == "fro" and dim is not None:
        return
    _both(lambda x: x.norm(p, dim), lambda t: t.norm(p, dim), a)
    _both(lambda x: x.norm(p=p, dim=dim, keepdim=True), lambda t: t.norm(p=p, dim=dim, keepdim=True), a)


def test_norm_of_a_zero_row() -> None:
    a = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])
    _both(lambda x: x.norm(dim=1), lambda t: t.norm(dim=1), a)


@pytest.mark.parametrize("shape,reps", [((3,), (2,)), ((2, 3), (2, 2)), ((2, 3), (3, 1, 2)), ((2,), (0, 2))])
def test_repeat(shape: tuple[int, ...], reps: tuple[int, ...]) -> None:
    _both(lambda x: x.repeat(*reps), lambda t: t.repeat(*reps), RNG.standard_normal(shape))


def test_clone_size_dim_float_int() -> None:
    _both(lambda x: x.clone() * x, lambda t: t.clone() * t, RNG.standard_normal((2, 3)))
    x, t = tg.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    assert x.size() == tuple(t.size()) and x.size(1) == t.size(1) and x.size(-1) == t.size(-1)
    assert x.dim() == t.dim() and x.numel() == t.numel()
    for v in (2.7, -2.7, 3.0):
        assert float(tg.tensor([v])) == float(torch.tensor([v])) and int(tg.tensor(v)) == int(torch.tensor(v))


@pytest.mark.parametrize("call", [
    lambda m: m.std(), lambda m: m.var(), lambda m: m.std(1), lambda m: m.var(0, keepdim=True),
    lambda m: m.std(dim=1, correction=0), lambda m: m.var(dim=(0, 1), keepdim=True)])
def test_std_and_var_in_pytorchs_spelling_mean_pytorchs_defaults(call: Callable[[Any], Any]) -> None:
    _both(call, call, RNG.standard_normal((4, 5)))


def test_gather_with_a_short_index() -> None:
    idx = np.array([[3, 0], [1, 1]])  # 2 rows of a 3-row tensor
    _both(lambda x: x.gather(1, idx), lambda t: t.gather(1, torch.tensor(idx)), RNG.standard_normal((3, 4)))
    rows = np.array([[2, 0, 1], [1, 1, 0]])  # 3 of 4 columns
    _both(lambda x: tg.gather(x, 0, rows), lambda t: torch.gather(t, 0, torch.tensor(rows)),
          RNG.standard_normal((3, 4)))


def test_masked_fill_broadcasting_the_input() -> None:
    mask = np.array([[True, False, True], [False, False, True]])
    _both(lambda x: x.masked_fill(mask, -1.0), lambda t: t.masked_fill(torch.tensor(mask), -1.0),
          RNG.standard_normal(3))


def test_empty_index_list_and_empty_softmax() -> None:
    _both(lambda x: x[[], :], lambda t: t[[], :], RNG.standard_normal((3, 4)), weights=np.zeros((0, 4)))
    _both(lambda x: x.logsumexp(dim=1), lambda t: t.logsumexp(dim=1), np.zeros((2, 0)), weights=np.ones(2))
    for op in ("softmax", "log_softmax"):
        _both(lambda x, op=op: getattr(x, op)(dim=1), lambda t, op=op: getattr(t, op)(dim=1), np.zeros((2, 0)),
              weights=np.zeros((2, 0)))


@pytest.mark.parametrize("op", ["max", "min", "argmax"])
def test_an_empty_dim_raises_in_both(op: str) -> None:
    with pytest.raises(IndexError):
        getattr(torch.zeros(2, 0), op)(1)
    with pytest.raises(IndexError):
        getattr(tg.zeros(2, 0), op)(1)
    assert tuple(getattr(torch.zeros(2, 0), op)(0)[0].shape if op != "argmax" else
                 getattr(torch.zeros(2, 0), op)(0).shape) == (0,)


def test_embedding_and_layer_norm_in_pytorchs_order() -> None:
    idx = np.array([[4, 0], [1, 1]])
    _both(lambda w: F.embedding(idx, w), lambda w: TF.embedding(torch.tensor(idx), w), RNG.standard_normal((5, 3)))
    _both(lambda x, w, b: F.layer_norm(x, (4,), w, b), lambda x, w, b: TF.layer_norm(x, (4,), w, b),
          RNG.standard_normal((2, 4)), RNG.standard_normal(4), RNG.standard_normal(4))


def test_loss_modules() -> None:
    target = np.array([0, 2, 1, 2])
    for kw in ({}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.2}, {"ignore_index": 2}):
        _both(lambda x, kw=kw: nn.CrossEntropyLoss(**kw)(x, target),
              lambda t, kw=kw: torch.nn.CrossEntropyLoss(**kw)(t, torch.tensor(target)), RNG.standard_normal((4, 3)))
    y = RNG.standard_normal((4, 3))
    for reduction in ("mean", "sum", "none"):
        _both(lambda x, r=reduction: nn.MSELoss(reduction=r)(x, y),
              lambda t, r=reduction: torch.nn.MSELoss(reduction=r)(t, torch.tensor(y)), RNG.standard_normal((4, 3)))


def test_grad_gives_the_same_gradients_and_stops_at_its_inputs() -> None:
    a = RNG.standard_normal(3)
    w, tw = tg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    h, th = w.tanh(), tw.tanh()
    (g,) = tg.grad((h * h * w).sum(), [h])
    (tg_ref,) = torch.autograd.grad((th * th * tw).sum(), [th])
    np.testing.assert_allclose(g.numpy(), tg_ref.numpy(), rtol=1e-12)
    assert w.grad is None and tw.grad is None


def test_zero_grad_set_to_none_false() -> None:
    ours, theirs = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    for model, x in ((ours, tg.ones(1, 2)), (theirs, torch.ones(1, 2))):
        model(x).sum().backward()
        model.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(ours.weight.grad.numpy(), theirs.weight.grad.numpy())
    ours.zero_grad()
    theirs.zero_grad()
    assert ours.weight.grad is None and theirs.weight.grad is None


@pytest.mark.parametrize("args", [(0.1,), (0.1, 0.9), (0.1, 0.9, 0.5), (0.1, 0.9, 0.0, 0.01, True)])
def test_sgd_with_pytorchs_positional_arguments(args: tuple[Any, ...]) -> None:
    a = RNG.standard_normal(4)
    p, tp = nn.Parameter(a.copy()), torch.nn.Parameter(torch.tensor(a.copy()))
    ours, theirs = nn.SGD([p], *args), torch.optim.SGD([tp], *args)
    for step in range(3):
        g = np.sin(np.arange(4.0) + step)
        p.grad, tp.grad = tg.tensor(g), torch.tensor(g)
        ours.step()
        theirs.step()
    np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-12)
    assert nn.SGD([p]).param_groups[0]["lr"] == torch.optim.SGD([tp]).param_groups[0]["lr"]


# ------------------------------------------------------------- scaled_dot_product_attention
_PAD = np.array([[False, True, True, True, True], [True, True, True, True, True]])[:, None, None, :]


@pytest.mark.parametrize("L,S", [(5, 5), (2, 5), (5, 2)])
@pytest.mark.parametrize("case", ["plain", "causal", "bool_mask", "float_mask", "pad_and_causal", "scale",
                                  "blind_rows"])
def test_scaled_dot_product_attention_as_pytorch(case: str, L: int, S: int) -> None:
    """The same arguments give the same values and gradients, in PyTorch's semantics: a bool mask says
    where a query may attend, a float mask is added, is_causal is aligned top-left, a query that may
    attend to nothing gives 0."""
    rng = np.random.default_rng(L * 10 + S)
    allowed = rng.random((2, 1, L, S)) < 0.6
    kwargs: dict[str, Any] = {
        "plain": {}, "causal": {"is_causal": True}, "bool_mask": {"attn_mask": allowed},
        "float_mask": {"attn_mask": rng.standard_normal((L, S))},
        "pad_and_causal": {"attn_mask": _PAD[..., :S] & np.tril(np.ones((L, S), bool))},
        "scale": {"scale": 0.37}, "blind_rows": {"attn_mask": np.zeros((2, 1, L, S), bool) | allowed[:1]},
    }[case]

    def theirs_kwargs() -> dict[str, Any]:
        return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}

    _both(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs),
          lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, **theirs_kwargs()),
          rng.standard_normal((2, 3, L, 4)), rng.standard_normal((2, 3, S, 4)), rng.standard_normal((2, 3, S, 6)))


def test_self_attention_block_matches_pytorch_head_packing() -> None:
    """nn's head packing (split c_attn, heads, SDPA, merge) as nanoGPT writes it in PyTorch."""
    attn = nn.CausalSelfAttention(8, 2, generator=tg.Generator(0)).double()
    x = RNG.standard_normal((2, 5, 8))
    W, b = attn.c_attn.weight.numpy(), attn.c_attn.bias.numpy()
    Wp, bp = attn.c_proj.weight.numpy(), attn.c_proj.bias.numpy()
    xt = torch.tensor(x)
    q, k, v = (xt @ torch.tensor(W).T + torch.tensor(b)).split(8, dim=2)
    q, k, v = (t.view(2, 5, 2, 4).transpose(1, 2) for t in (q, k, v))
    y = TF.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 5, 8)
    ref = y @ torch.tensor(Wp).T + torch.tensor(bp)
    np.testing.assert_allclose(attn(tg.tensor(x)).numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)


def test_attention_refuses_a_mask_with_is_causal_as_pytorch_does() -> None:
    q = np.ones((1, 2, 3))
    with pytest.raises(RuntimeError, match="attn_mask should not be set when is_causal=True"):
        TF.scaled_dot_product_attention(*(torch.tensor(q, requires_grad=True) for _ in range(3)),
                                        attn_mask=torch.ones(2, 2, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(*(tg.tensor(q, requires_grad=True) for _ in range(3)),
                                       attn_mask=np.ones((2, 2), bool), is_causal=True)
