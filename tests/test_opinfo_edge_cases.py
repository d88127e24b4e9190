"""Edge cases found by PyTorch's own OpInfo sample inputs (issue #13, section 7): empty axes,
empty index lists, broadcasting masks, grad() stopping at its inputs, loss dtypes, optimizer
state round trips, the KV cache under autograd and the shared causal mask."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from strategies import assert_forward, check_grad, leaf

import nn
import tinygrad_lite as tg
import tinygrad_lite.functional as F
from tinygrad_lite import Function, Tensor


# ------------------------------------------------------------ empty axes
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,axis", [((2, 0), 1), ((2, 0), -1), ((0, 3), 1), ((0,), 0), ((2, 0, 3), 1)])
def test_softmax_over_an_empty_axis_is_empty(op: str, shape: tuple[int, ...], axis: int) -> None:
    x = leaf(np.zeros(shape))
    out = getattr(x, op)(axis=axis)
    assert out.shape == shape and out.dtype == np.float64
    out.sum().backward()
    assert x.grad.shape == shape
    assert getattr(F, op)(x, dim=axis).shape == shape


def test_logsumexp_over_an_empty_axis_is_minus_infinity() -> None:
    x = leaf(np.zeros((2, 0)))
    out = x.logsumexp(dim=1)
    assert out.shape == (2,) and out.tolist() == [-np.inf, -np.inf]  # log of an empty sum, as PyTorch
    out.sum().backward()
    assert x.grad.shape == (2, 0)
    assert x.logsumexp(axis=0, keepdims=True).shape == (1, 0)


@pytest.mark.parametrize("op", ["max", "min", "argmax", "argmin"])
def test_reducing_an_empty_axis_raises_as_pytorch(op: str) -> None:
    x = tg.zeros(2, 0)
    word = "largest" if "max" in op else "smallest"
    with pytest.raises(IndexError, match=rf"{op}: cannot reduce over axis 1 of size 0 \(shape \(2, 0\)\): an empty "
                                         rf"axis has no {word} element"):
        getattr(x, op)(axis=1)
    with pytest.raises(IndexError, match=rf"{op}: cannot reduce over axis 1 of size 0"):
        getattr(x, op)()  # every axis, one of them empty
    if op in ("max", "min"):
        with pytest.raises(IndexError, match=rf"{op}: cannot reduce over axis 1 of size 0"):
            getattr(x, op)(1)  # PyTorch's form (values, indices)


@pytest.mark.parametrize("op", ["max", "min"])
def test_reducing_a_full_axis_of_an_empty_tensor_is_empty(op: str) -> None:
    x = leaf(np.zeros((2, 0)))
    assert getattr(x, op)(axis=0).shape == (0,)
    values, indices = getattr(x, op)(0)
    assert values.shape == (0,) and indices.shape == (0,) and indices.dtype == np.int64
    assert getattr(x, "arg" + op)(axis=0).shape == (0,)
    values.sum().backward()
    assert x.grad.shape == (2, 0)


def test_an_empty_index_list_selects_nothing_and_backpropagates_zeros() -> None:
    a = np.arange(12.0).reshape(3, 4)
    x = leaf(a)
    assert_forward(x[[], :], a[np.array([], dtype=np.int64), :])
    assert_forward(x[:, []], a[:, np.array([], dtype=np.int64)])
    assert x[[]].shape == (0, 4) and x[[[]]].shape == (1, 0, 4)
    (x[[], :].sum() + x[[1], :].sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0] * 4, [1.0] * 4, [0.0] * 4])
    check_grad(lambda x: x[[], 1:], leaf(a))


# ----------------------------------------------------- masked_fill that broadcasts x
def test_masked_fill_broadcasts_the_input_to_the_masks_shape() -> None:
    a = np.array([1.0, 2.0, 3.0])
    mask = np.array([[True, False, True], [False, False, True]])
    x = leaf(a)
    out = x.masked_fill(mask, -1.0)
    assert_forward(out, np.where(mask, -1.0, np.broadcast_to(a, (2, 3))))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0, 0.0])  # each x_j counted once per unmasked row
    weights = tg.tensor(np.random.default_rng(0).standard_normal((4, 2, 3)))
    check_grad(lambda x: x.masked_fill(np.array([[True], [False]]), 5.0) * weights, leaf(np.ones((4, 1, 3))))


# ------------------------------------------------------ grad() stops at its inputs
class CountingIdentity(Function):
    """An identity op that counts its backward calls (test-only)."""

    calls = 0

    def forward(self, x: Tensor) -> np.ndarray:
        return x.data.copy()

    def backward(self, g: Tensor) -> Tensor:
        CountingIdentity.calls += 1
        return g


def test_grad_does_no_work_above_its_inputs() -> None:
    w = leaf([1.0, 2.0])  # upstream of the input h
    hooked: list[bool] = []
    w.register_hook(lambda g: hooked.append(True))
    CountingIdentity.calls = 0
    h = CountingIdentity.apply(w * 3.0)
    loss = (h * h).sum()
    (gh,) = tg.grad(loss, [h])
    np.testing.assert_array_equal(gh.numpy(), 2 * h.numpy())
    assert CountingIdentity.calls == 0  # the op that made h is above the input: never run backward
    assert w.grad is None and not hooked  # nothing above the input is touched


def test_grad_keeps_paths_between_two_inputs() -> None:
    """dL/da is the total derivative, including the path through b = f(a), as in PyTorch."""
    a = leaf([1.0, 2.0])
    CountingIdentity.calls = 0
    b = CountingIdentity.apply(a * a)
    loss = (b * a).sum()  # L = Σ a³: dL/da = 3a², dL/db = a
    ga, gb = tg.grad(loss, [a, b])
    np.testing.assert_allclose(ga.numpy(), 3 * a.numpy() ** 2)
    np.testing.assert_allclose(gb.numpy(), a.numpy())
    assert CountingIdentity.calls == 1 and a.grad is None


# ------------------------------------------------------------- loss dtypes
@pytest.mark.parametrize("loss", [F.mse, F.mse_loss, F.binary_cross_entropy_with_logits])
@pytest.mark.parametrize("target", [np.array([0.0, 1.0, 0.5]), [0.0, 1.0, 0.5], np.array([0, 1, 1])])
def test_a_float32_input_gives_a_float32_loss_whatever_the_target_array(loss: Any, target: Any) -> None:
    x = tg.tensor([0.3, -0.2, 0.9], requires_grad=True)  # float32
    out = loss(x, target)
    assert out.dtype == np.float32
    out.backward()
    assert x.grad.dtype == np.float32
    assert loss(tg.tensor([0.3, -0.2, 0.9], dtype=tg.float64), np.float32([0, 1, 0])).dtype == np.float64


# ------------------------------------------------------ optimizer state round trip
def test_load_state_dict_keeps_betas_a_tuple(tmp_path: Path) -> None:
    model = nn.Linear(3, 2, generator=tg.Generator(0))
    opt = nn.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.9))
    model(tg.ones(1, 3)).sum().backward()
    opt.step()
    path = nn.save_checkpoint(tmp_path / "ckpt.npz", model, optimizer=opt, step=1)
    again = nn.AdamW(model.parameters(), lr=1e-3)
    nn.restore(nn.load_checkpoint(path), model, again)  # JSON on disk: betas came back as a list
    assert again.param_groups[0]["betas"] == (0.8, 0.9) and isinstance(again.param_groups[0]["betas"], tuple)
    before, after = opt.state_dict(), again.state_dict()
    assert before["param_groups"] == after["param_groups"]
    direct = nn.AdamW(model.parameters())
    sd = opt.state_dict()
    sd["param_groups"][0]["betas"] = list(sd["param_groups"][0]["betas"])
    direct.load_state_dict(sd)
    assert direct.state_dict()["param_groups"] == before["param_groups"]


# ----------------------------------------------------------- KV cache and autograd
def _gpt() -> nn.GPT:
    cfg = nn.GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8)
    return nn.GPT(cfg, dtype=tg.float64, generator=tg.Generator(0))


def test_gpt_forward_with_a_filled_kv_cache_refuses_gradients() -> None:
    model = _gpt()
    cache = nn.KVCache(2)
    logits, _ = model(np.array([[1, 2, 3]]), cache=cache)  # nothing cached yet: the graph is whole
    logits.sum().backward()
    assert model.transformer.wte.weight.grad is not None
    with pytest.raises(RuntimeError, match=r"KV cache with gradients on: 3 positions are cached without their "
                                           r"graph.*tinygrad_lite.no_grad\(\).*train without a cache"):
        model(np.array([[4]]), cache=cache)
    with tg.no_grad():  # generation: allowed, and equal to the full forward
        step = model(np.array([[4]]), cache=cache)[0]
        full = model(np.array([[1, 2, 3, 4]]))[0]
    np.testing.assert_allclose(step.numpy()[:, -1], full.numpy()[:, -1], atol=1e-12)


# ------------------------------------------------------------------ causal_mask
def test_causal_mask_is_read_only_and_its_callers_still_work() -> None:
    m = nn.causal_mask(2, 5)
    assert not m.flags.writeable and nn.causal_mask(2, 5) is m  # cached and shared
    with pytest.raises(ValueError, match="read-only"):
        m[0, 0] = True
    model = nn.GPT(nn.GPTConfig(block_size=8, vocab_size=7, n_layer=1, n_head=2, n_embd=4), dtype=tg.float64)
    cache = nn.KVCache(1)  # two new queries after three cached positions: the mask nn builds from causal_mask
    with tg.no_grad():
        model(np.array([[1, 2, 3]]), cache=cache)
        step = model(np.array([[4, 5]]), cache=cache)[0]
        full = model(np.array([[1, 2, 3, 4, 5]]))[0]
    np.testing.assert_allclose(step.numpy(), full.numpy()[:, 3:], atol=1e-12)
    np.testing.assert_array_equal(nn.causal_mask(2, 5), np.triu(np.ones((2, 5), dtype=bool), k=4))  # untouched
