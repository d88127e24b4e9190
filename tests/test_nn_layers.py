"""Layers: forward against NumPy references, float64 gradient checks for every layer, and the
fused LayerNorm / Linear engine ops against their composed references."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nn
import tinygrad_lite as tg
import tinygrad_lite.functional as F


def rand(*shape: int, seed: int = 0, scale: float = 1.0) -> tg.Tensor:
    return tg.Tensor(np.random.default_rng(seed).standard_normal(shape) * scale, requires_grad=True)


def check_module(module: nn.Module, x: tg.Tensor, fast: bool = False) -> None:
    """gradcheck a module with respect to its input and every parameter at once (float64)."""
    module.double()
    params = module.parameters()
    assert tg.gradcheck(lambda x, *ps: module(x), (x, *params), fast_mode=fast)


# ------------------------------------------------------------------- forward values
def test_linear_forward_matches_numpy():
    lin = nn.Linear(4, 3, generator=tg.Generator(1))
    x = np.random.default_rng(0).standard_normal((2, 5, 4)).astype(np.float32)
    expected = x @ lin.weight.numpy().T + lin.bias.numpy()
    np.testing.assert_allclose(lin(tg.Tensor(x)).numpy(), expected, rtol=1e-6, atol=1e-6)
    bound = 1 / math.sqrt(4)
    assert np.abs(lin.weight.numpy()).max() <= bound


def test_linear_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"\(2, 5\).*\(3, 4\)"):
        nn.Linear(4, 3)(tg.ones(2, 5))


def test_embedding_forward_and_range_error():
    emb = nn.Embedding(10, 3)
    idx = np.array([[1, 2], [9, 1]])
    np.testing.assert_array_equal(emb(idx).numpy(), emb.weight.numpy()[idx])
    with pytest.raises(IndexError, match=r"\[0, 10\)"):
        emb(np.array([10]))


def test_layernorm_forward_matches_numpy():
    ln = nn.LayerNorm(6)
    with tg.no_grad():
        ln.weight.copy_(np.arange(6.0))
        ln.bias.copy_(np.ones(6))
    x = np.random.default_rng(0).standard_normal((3, 6))
    xhat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(ln(tg.Tensor(x)).numpy(), xhat * np.arange(6.0) + 1, rtol=1e-10)


def test_rmsnorm_forward_matches_numpy():
    x = np.random.default_rng(0).standard_normal((3, 6))
    out = nn.RMSNorm(6).double()(tg.Tensor(x)).numpy()
    np.testing.assert_allclose(out, x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6), rtol=1e-12)


def test_dropout_scales_and_is_seeded():
    x = tg.ones(1000)
    a = nn.Dropout(0.25, generator=tg.Generator(3))(x).numpy()
    b = nn.Dropout(0.25, generator=tg.Generator(3))(x).numpy()
    assert np.array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.15 < (a == 0).mean() < 0.35
    with pytest.raises(ValueError, match="p must be"):
        nn.Dropout(1.0)


def test_activation_modules():
    x = tg.Tensor(np.linspace(-2, 2, 7))
    np.testing.assert_allclose(nn.ReLU()(x).numpy(), np.maximum(x.numpy(), 0))
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x.numpy()))
    np.testing.assert_allclose(nn.SiLU()(x).numpy(), x.numpy() / (1 + np.exp(-x.numpy())), rtol=1e-12)
    assert nn.GELU()(x).shape == (7,)


# ------------------------------------------------------------------- gradient checks
def test_gradcheck_linear():
    check_module(nn.Linear(3, 2), rand(2, 4, 3))


def test_gradcheck_linear_without_bias():
    check_module(nn.Linear(3, 2, bias=False), rand(5, 3))


def test_gradcheck_embedding():
    emb = nn.Embedding(5, 3).double()
    idx = np.array([[0, 4, 4], [1, 0, 2]])  # repeated ids must accumulate
    assert tg.gradcheck(lambda w: emb(idx) * w.sum(), (emb.weight,))


def test_gradcheck_layernorm():
    ln = nn.LayerNorm(5)
    with tg.no_grad():
        ln.weight.copy_(np.linspace(0.5, 2, 5))
        ln.bias.copy_(np.linspace(-1, 1, 5))
    check_module(ln, rand(2, 3, 5))


def test_gradcheck_layernorm_without_bias():
    check_module(nn.LayerNorm(4, bias=False), rand(3, 4))


def test_gradcheck_rmsnorm():
    check_module(nn.RMSNorm(4), rand(3, 4))


@pytest.mark.parametrize("layer", [nn.GELU(), nn.GELU("tanh"), nn.ReLU(), nn.SiLU(), nn.Tanh()])
def test_gradcheck_activations(layer):
    x = tg.Tensor(np.array([-1.7, -0.3, 0.2, 0.9, 2.1]), requires_grad=True)
    assert tg.gradcheck(layer, (x,))


def test_gradcheck_dropout_with_fixed_mask():
    drop = nn.Dropout(0.3)

    def f(x):
        drop.generator = tg.Generator(7)  # the same mask for every evaluation
        return drop(x)

    assert tg.gradcheck(f, (rand(4, 3),))


def test_gradcheck_mlp():
    check_module(nn.MLP(4, 6, generator=tg.Generator(0)), rand(2, 3, 4))


# ------------------------------------------------------- fused ops vs composed references
@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), n=st.integers(2, 6), seed=st.integers(0, 99))
def test_fused_layernorm_matches_composed(shape, n, seed):
    rng = np.random.default_rng(seed)
    x = tg.Tensor(rng.standard_normal((*shape, n)) * 3 + 1, requires_grad=True)
    w = tg.Tensor(rng.standard_normal(n), requires_grad=True)
    b = tg.Tensor(rng.standard_normal(n), requires_grad=True)
    g = rng.standard_normal((*shape, n))
    fused = F.layer_norm(x, w.shape, w, b)
    ref = nn.layer_norm_reference(x, w, b)
    np.testing.assert_allclose(fused.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    grads_fused = tg.grad(fused, [x, w, b], grad_outputs=tg.Tensor(g))
    grads_ref = tg.grad(ref, [x, w, b], grad_outputs=tg.Tensor(g))
    for a, r in zip(grads_fused, grads_ref):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-9, atol=1e-11)


def test_fused_layernorm_gradcheck_and_no_double_backward():
    x, w, b = rand(3, 4, seed=1), rand(4, seed=2), rand(4, seed=3)
    assert tg.gradcheck(lambda x, w, b: F.layer_norm(x, w.shape, w, b), (x, w, b))
    y = F.layer_norm(x, w.shape, w, b).sum()
    with pytest.raises(RuntimeError, match="LayerNorm is a fused op"):
        tg.grad(y, [x], create_graph=True)


def test_fused_layernorm_shape_errors():
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.layer_norm(tg.ones(2, 4), (4,), tg.ones(3))
    with pytest.raises(ValueError, match=r"normalized_shape must be \(4,\) for an input of shape \(2, 4\), got "
                                         r"\(3,\)"):
        F.layer_norm(tg.ones(2, 4), (3,))
    with pytest.raises(TypeError, match=r"the argument order is PyTorch's.*old order layer_norm\(x, weight, bias\)"):
        F.layer_norm(tg.ones(2, 4), tg.ones(4), tg.zeros(4))


def test_fused_linear_gradcheck_and_double_backward():
    x, w, b = rand(2, 3, 4, seed=1), rand(5, 4, seed=2), rand(5, seed=3)
    assert tg.gradcheck(F.linear, (x, w, b))
    assert tg.gradgradcheck(lambda x, w: F.linear(x, w).tanh(), (x, w), fast_mode=True)


def test_fused_linear_matches_composed():
    x, w, b = rand(2, 3, 4, seed=1), rand(5, 4, seed=2), rand(5, seed=3)
    g = tg.Tensor(np.random.default_rng(4).standard_normal((2, 3, 5)))
    fused = F.linear(x, w, b)
    ref = x @ w.T + b
    np.testing.assert_allclose(fused.numpy(), ref.numpy(), rtol=1e-12)
    for a, r in zip(tg.grad(fused, [x, w, b], g), tg.grad(ref, [x, w, b], g)):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-12)


def test_fused_gelu_matches_engine_gelu_and_gradchecks():
    x = rand(3, 5, scale=2.0)
    g = tg.Tensor(np.random.default_rng(1).standard_normal((3, 5)))
    fused, ref = F.fused_gelu(x), x.gelu()
    np.testing.assert_allclose(fused.numpy(), ref.numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(tg.grad(fused, [x], g)[0].numpy(), tg.grad(ref, [x], g)[0].numpy(), rtol=1e-12)
    assert tg.gradcheck(F.fused_gelu, (x,))
    assert nn.GELU(fused=False)(x).numpy().tolist() == ref.numpy().tolist()
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_self_attention_packs_heads_for_the_engines_attention(fused, dropout):
    """c_attn's (B, T, 3C) output is split into q, k, v of n_head heads each, attended causally,
    and the heads are merged back before c_proj: written out here with numpy and the engine op."""
    B, T, C, H = 2, 5, 6, 3
    attn = nn.CausalSelfAttention(C, H, dropout=dropout, generator=tg.Generator(0), fused=fused).double()
    x = tg.Tensor(np.random.default_rng(1).standard_normal((B, T, C)), requires_grad=True)
    attn.attn_dropout.generator = tg.Generator(7)
    attn.resid_dropout.p = 0.0  # only the attention weights' dropout is this test's business
    y = attn(x)
    qkv = attn.c_attn(x).numpy()
    q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, H, C // H).transpose(0, 2, 1, 3) for i in range(3))
    heads = F.scaled_dot_product_attention(tg.tensor(q), tg.tensor(k), tg.tensor(v), is_causal=True,
                                           dropout_p=dropout, generator=tg.Generator(7))
    merged = heads.numpy().transpose(0, 2, 1, 3).reshape(B, T, C)
    np.testing.assert_allclose(y.numpy(), attn.c_proj(tg.tensor(merged)).numpy(), rtol=1e-12, atol=1e-14)
    attn.attn_dropout.generator = None
    if dropout == 0.0:
        assert tg.gradcheck(lambda x, *ps: attn(x), (x, *attn.parameters()))
