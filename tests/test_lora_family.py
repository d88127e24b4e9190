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


class FixedMask(nn.Module):
    """Dropout with a given mask (already divided by 1 - p), so that the function is deterministic."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask

    def forward(self, x: Tensor) -> Tensor:
        return x * Tensor(self.mask) if self.training else x


class RecordingDropout(nn.Dropout):
    """The real Dropout, remembering what it returned."""

    def forward(self, x: Tensor) -> Tensor:
        self.last = super().forward(x)
        return self.last


def dora_reference(layer: lora.LoRALinear, ad: lora.DoRAAdapter, x: np.ndarray, x_drop: np.ndarray) -> np.ndarray:
    """PEFT's DoRA forward in NumPy: W0·x + b + (m/‖V‖ - 1)·W0·x̃ + (m/‖V‖)·s·B·A·x̃, x̃ = dropout(x)."""
    w0, bias = layer.base.weight.numpy(), layer.base.bias.numpy()
    v = w0 + ad.scale * ad.B.numpy() @ ad.A.numpy()
    k = ad.magnitude.numpy() / np.linalg.norm(v, axis=1)
    lowrank = ad.scale * x_drop @ ad.A.numpy().T @ ad.B.numpy().T
    return x @ w0.T + bias + (k - 1.0) * (x_drop @ w0.T) + k * lowrank


def test_dora_dropout_also_feeds_the_magnitude_correction() -> None:
    layer, ad = dora_layer(detach_norm=True)
    x = np.random.default_rng(1).normal(size=(4, 5))
    mask = np.random.default_rng(2).integers(0, 2, size=(4, 5)) / 0.5  # p = 0.5, kept entries scaled by 2
    ad.dropout = FixedMask(mask)
    np.testing.assert_allclose(layer(Tensor(x)).numpy(), dora_reference(layer, ad, x, x * mask), rtol=1e-12)
    layer.eval()  # no dropout: the formula with x̃ = x, i.e. (m/‖V‖)·(W0 + s·B·A)·x + b
    np.testing.assert_allclose(layer(Tensor(x)).numpy(), dora_reference(layer, ad, x, x), rtol=1e-12)
    # the real Dropout module takes the same path, with its own random mask
    layer.train()
    ad.dropout = RecordingDropout(0.5, tg.Generator(7))
    y = layer(Tensor(x)).numpy()
    x_drop = ad.dropout.last.numpy()
    assert (x_drop == 0).any() and (x_drop != 0).any()
    np.testing.assert_allclose(y, dora_reference(layer, ad, x, x_drop), rtol=1e-12)


def test_dora_training_with_dropout_gradchecks() -> None:
    layer, ad = dora_layer(detach_norm=False)
    ad.dropout = FixedMask(np.random.default_rng(3).integers(0, 2, size=(2, 5)) / 0.5)
    x = tg.randn(2, 5, dtype="float64", requires_grad=True)
    assert layer.training
    assert tg.gradcheck(lambda x, a, b, m: layer(x), [x, ad.A, ad.B, ad.magnitude])


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
    else:  # B's columns are orthonormal: B = Q_r itself, not rescaled by 1/√s
        b = ad.B.numpy()
        np.testing.assert_allclose(b.T @ b, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="exceeds"):
        lora.init_from_weight(lora.LoRAAdapter(9, 6, r=7), w, how)


def test_olora_init_is_peft_olora_init() -> None:
    """PEFT's olora_init (and the OLoRA paper): B = Q_r, A = R_r from W0 = QR, with no 1/√s, and
    the base keeps W0 - s·Q_r·R_r. s = 16/4 = 4 here, so a rescaled variant cannot pass."""
    w = np.random.default_rng(3).normal(size=(8, 6))
    ad = lora.LoRAAdapter(6, 8, r=4, alpha=16, dtype="float64")
    residual = lora.init_from_weight(ad, w, "olora")
    q, rr = np.linalg.qr(w)
    np.testing.assert_allclose(ad.B.numpy(), q[:, :4], atol=1e-14)
    np.testing.assert_allclose(ad.A.numpy(), rr[:4], atol=1e-14)
    np.testing.assert_allclose(ad.B.numpy().T @ ad.B.numpy(), np.eye(4), atol=1e-14)  # orthonormal columns
    np.testing.assert_allclose(residual, w - 4.0 * q[:, :4] @ rr[:4], atol=1e-14)


def test_olora_model_starts_at_the_base_model() -> None:
    """The subtraction in the base cancels the adapter: logits are unchanged by apply_lora(olora)."""
    m = nn.GPT(nn.GPTConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=8, block_size=8), dtype="float64",
               generator=tg.Generator(0))
    idx = np.random.default_rng(0).integers(0, 20, (2, 8))
    before = m(idx)[0].numpy()
    lora.apply_lora(m, "all-linear", r=4, alpha=16, method="olora")
    for _, layer in lora.lora_layers(m):
        b = layer.adapters["default"].B.numpy()
        np.testing.assert_allclose(b.T @ b, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(m(idx)[0].numpy(), before, atol=1e-12)


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


def test_loraplus_gives_doras_magnitude_the_ratio() -> None:
    """PEFT's create_loraplus_optimizer puts lora_B and every 1-D parameter at lr·ratio."""
    m = nn.GPT(nn.GPTConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=8, block_size=8))
    lora.apply_lora(m, "all-linear", r=2, method="dora")
    groups = lora.loraplus_param_groups(m, lr=1e-3, ratio=8.0)
    adapters = [layer.adapters["default"] for _, layer in lora.lora_layers(m)]
    assert {id(p) for p in groups[0]["params"]} == {id(a.A) for a in adapters}
    assert {id(p) for p in groups[1]["params"]} == {id(a.B) for a in adapters} | {id(a.magnitude) for a in adapters}
    assert [g["lr"] for g in groups] == [1e-3, 8e-3]


def test_loraplus_gives_veras_vectors_the_ratio() -> None:
    """VeRA's λ_b and λ_d are 1-D: PEFT gives both lr·ratio, so a VeRA model has one group, at lr·ratio."""
    m = nn.GPT(nn.GPTConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=8, block_size=8))
    lora.apply_lora(m, "all-linear", r=4, method="vera")
    groups = lora.loraplus_param_groups(m, lr=1e-3)
    vectors = {id(p) for _, layer in lora.lora_layers(m) for p in layer.adapters["default"].parameters()}
    assert len(groups) == 1 and {id(p) for p in groups[0]["params"]} == vectors
    assert groups[0]["lr"] == pytest.approx(16e-3)


def test_loraplus_ratio_survives_a_schedule() -> None:
    m = nn.GPT(nn.GPTConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=8, block_size=8))
    lora.apply_lora(m, "all-linear", r=2)
    opt = nn.AdamW(lora.loraplus_param_groups(m, lr=1e-3), weight_decay=0.0)
    schedule = nn.WarmupCosine(1e-3, 10, 100, 1e-4)
    for step in (0, 5, 50, 200):
        nn.set_lr(opt, schedule(step))
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([schedule(step), 16 * schedule(step)])


def test_rslora_scale_in_apply() -> None:
    m = nn.GPT(nn.GPTConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=8, block_size=8))
    lora.apply_lora(m, ["c_attn"], r=4, alpha=8, method="rslora")
    assert lora.lora_layers(m)[0][1].adapters["default"].scale == 4.0
