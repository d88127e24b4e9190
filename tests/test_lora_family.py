"""The LoRA family: DoRA (exact and detached norm), VeRA, PiSSA, OLoRA, rsLoRA, LoRA+; float64 gradchecks."""
from __future__ import annotations

import numpy as np
import pytest

import lora
import nn
import tinygrad_lite as tg
from tinygrad_lite import Tensor


def base_linear(i: int = 5, o: int = 3, seed: int = 0) -> nn.Linear:
    return nn.Linear(i, o, dtype="float64", generator=tg.Generator(seed))


def dora_layer(detach_norm: bool) -> tuple[lora.LoRALinear, lora.DoRAAdapter]:
    base = base_linear()
    ad = lora.DoRAAdapter(base, r=2, alpha=3, init="random", detach_norm=detach_norm, dtype="float64",
                          generator=tg.Generator(1))
    ad.magnitude.data[...] += np.linspace(0.1, 0.5, 3)  # away from ‖W0‖, so every term matters
    return lora.LoRALinear(base, ad), ad


def test_dora_forward_formula_and_start() -> None:
    base = base_linear()
    ad = lora.DoRAAdapter(base, r=2, alpha=3, dtype="float64", generator=tg.Generator(1))
    np.testing.assert_allclose(ad.magnitude.numpy(), np.linalg.norm(base.weight.numpy(), axis=1), rtol=1e-14)
    layer = lora.LoRALinear(base, ad)
    x = tg.randn(4, 5, dtype="float64")
    np.testing.assert_allclose(layer(x).numpy(), base(x).numpy(), atol=1e-14)
    layer, ad = dora_layer(detach_norm=True)
    w0 = layer.base.weight.numpy()
    v = w0 + ad.scale * ad.B.numpy() @ ad.A.numpy()
    w = ad.magnitude.numpy()[:, None] * v / np.linalg.norm(v, axis=1, keepdims=True)
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ w.T + layer.base.bias.numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), ad.magnitude.numpy(), rtol=1e-12)  # m is the row norm


def test_dora_exact_variant_gradchecks() -> None:
    layer, ad = dora_layer(detach_norm=False)
    x = tg.randn(2, 5, dtype="float64", requires_grad=True)
    assert tg.gradcheck(lambda x, a, b, m: layer(x), [x, ad.A, ad.B, ad.magnitude])


def test_dora_detached_variant_is_the_gradient_with_the_norm_frozen() -> None:
    """Finite differences of the real forward do not match the detached gradient; finite
    differences of the forward in which ‖V‖ is replaced by its current value (a constant) do."""
    layer, ad = dora_layer(detach_norm=True)
    x = tg.randn(2, 5, dtype="float64", requires_grad=True)
    params = [x, ad.A, ad.B, ad.magnitude]
    assert not tg.gradcheck(lambda x, a, b, m: layer(x), params, raise_exception=False)
    with tg.no_grad():
        frozen_norm = Tensor(ad.row_norm(layer.base.weight).numpy())  # a constant: the stop-gradient
    w0, bias = layer.base.weight, layer.base.bias

    def with_frozen_norm(x: Tensor, a: Tensor, b: Tensor, m: Tensor) -> Tensor:
        lora_out = ((x @ a.T) @ b.T) * ad.scale
        return ((x @ w0.T) + lora_out) * (m / frozen_norm) + bias

    y = layer(x)
    v = np.random.default_rng(0).normal(size=y.shape)
    analytic = tg.grad([y], params, grad_outputs=[Tensor(v)])
    for i, g in enumerate(analytic):
        def loss(t: Tensor, i: int = i) -> Tensor:
            return (with_frozen_norm(*[t if j == i else q for j, q in enumerate(params)]) * Tensor(v)).sum()
        numeric = tg.numerical_grad(loss, params[i])
        np.testing.assert_allclose(g.numpy(), numeric, rtol=1e-6, atol=1e-8)
    # and the two variants share the forward pass
    exact, _ = dora_layer(detach_norm=False)
    np.testing.assert_allclose(exact(x).numpy(), y.numpy(), rtol=1e-14)


def test_vera_gradcheck_and_parameter_count() -> None:
    shared = lora.SharedProjections(r=4, in_max=6, out_max=7, seed=3, dtype="float64")
    base = base_linear(5, 3)
    ad = lora.VeRAAdapter(5, 3, shared, init="random", dtype="float64", generator=tg.Generator(2))
    layer = lora.LoRALinear(base, ad)
    assert sorted(n for n, _ in ad.named_parameters()) == ["lambda_b", "lambda_d"]
    x = tg.randn(2, 5, dtype="float64", requires_grad=True)
    assert tg.gradcheck(lambda x, d, b: layer(x), [x, ad.lambda_d, ad.lambda_b])
    a, b = shared.A.numpy()[:, :5], shared.B.numpy()[:3]
    dw = ad.lambda_b.numpy()[:, None] * (b * ad.lambda_d.numpy()) @ a
    np.testing.assert_allclose(ad.delta_weight().numpy(), dw, rtol=1e-12)


def test_vera_shares_one_random_pair_across_layers() -> None:
    m = nn.GPT(nn.GPTConfig(vocab_size=20, n_layer=2, n_head=2, n_embd=8, block_size=8), dtype="float64")
    lora.apply_lora(m, "all-linear", r=4, method="vera")
    shared = {id(layer.adapters["default"].shared) for _, layer in lora.lora_layers(m)}
    assert len(shared) == 1
    t, _ = lora.count_parameters(m)
    assert t == 2 * (4 + 24 + 4 + 8 + 4 + 32 + 4 + 8)  # r + out per layer


@pytest.mark.parametrize("how", ["pissa", "olora"])
def test_pissa_olora_factors_and_residual(how: str) -> None:
    w = np.random.default_rng(0).normal(size=(6, 9))
    ad = lora.LoRAAdapter(9, 6, r=3, alpha=5, dtype="float64")
    residual = lora.init_from_weight(ad, w, how)
    ba = ad.scale * ad.B.numpy() @ ad.A.numpy()
    np.testing.assert_allclose(residual + ba, w, atol=1e-12)
    if how == "pissa":  # BA is the best rank-3 approximation, the residual holds the rest
        u, s, vt = np.linalg.svd(w)
        np.testing.assert_allclose(ba, (u[:, :3] * s[:3]) @ vt[:3], atol=1e-12)
        np.testing.assert_allclose(np.linalg.svd(residual, compute_uv=False)[:3], s[3:6], atol=1e-12)
    else:  # B's columns are orthonormal (up to the scale)
        b = ad.B.numpy() * np.sqrt(ad.scale)
        np.testing.assert_allclose(b.T @ b, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="exceeds"):
        lora.init_from_weight(lora.LoRAAdapter(9, 6, r=7), w, how)


@pytest.mark.parametrize("how", ["pissa", "olora"])
def test_pissa_olora_gradcheck(how: str) -> None:
    base = base_linear(5, 4)
    ad = lora.LoRAAdapter(5, 4, r=2, alpha=2, dtype="float64")
    base.weight.data[...] = lora.init_from_weight(ad, base.weight.data, how)
    layer = lora.LoRALinear(base, ad)
    x = tg.randn(3, 5, dtype="float64", requires_grad=True)
    assert tg.gradcheck(lambda x, a, b: layer(x), [x, ad.A, ad.B])


def test_loraplus_groups() -> None:
    m = nn.GPT(nn.GPTConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=8, block_size=8))
    lora.apply_lora(m, "all-linear", r=2)
    groups = lora.loraplus_param_groups(m, lr=1e-3)
    assert [g["lr"] for g in groups] == [1e-3, 16e-3]
    bs = {id(layer.adapters["default"].B) for _, layer in lora.lora_layers(m)}
    assert {id(p) for p in groups[1]["params"]} == bs
    assert len(groups[0]["params"]) == len(bs)  # the A matrices
    opt = nn.AdamW(groups, weight_decay=0.0)
    assert opt.param_groups[1]["lr"] == pytest.approx(16 * opt.param_groups[0]["lr"])


def test_rslora_scale_in_apply() -> None:
    m = nn.GPT(nn.GPTConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=8, block_size=8))
    lora.apply_lora(m, "c_attn", r=4, alpha=8, method="rslora")
    assert lora.lora_layers(m)[0][1].adapters["default"].scale == 4.0
