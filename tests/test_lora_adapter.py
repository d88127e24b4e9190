"""LoRA adapter, apply_lora, merging, multiple adapters and adapter state dicts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lora
import nn
import tinygrad_lite as tg

CFG = nn.GPTConfig(vocab_size=20, n_layer=2, n_head=2, n_embd=8, block_size=8)


def gpt(seed: int = 0) -> nn.GPT:
    return nn.GPT(CFG, dtype="float64", generator=tg.Generator(seed))


def tokens(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CFG.vocab_size, (2, 8))


def randomize_adapters(model: nn.Module, seed: int = 1) -> None:
    """Give every adapter parameter random values (B = 0 would make every check trivial)."""
    rng = np.random.default_rng(seed)
    for _, p in model.named_parameters():
        if p.requires_grad:
            p.data[...] = rng.normal(0, 0.3, p.shape)


def test_adapter_shapes_scale_and_init() -> None:
    a = lora.LoRAAdapter(6, 4, r=3, alpha=12, dtype="float64", generator=tg.Generator(0))
    assert a.A.shape == (3, 6) and a.B.shape == (4, 3)
    assert a.scale == 4.0
    assert np.all(a.B.numpy() == 0) and np.abs(a.A.numpy()).max() <= 1 / np.sqrt(6)
    assert lora.LoRAAdapter(6, 4, r=4, alpha=8, use_rslora=True).scale == 4.0
    g = lora.LoRAAdapter(6, 4, r=4, init="gaussian", generator=tg.Generator(0))
    assert np.all(g.B.numpy() == 0) and g.A.numpy().std() > 0
    assert np.any(lora.LoRAAdapter(6, 4, r=2, init="random").B.numpy() != 0)
    with pytest.raises(ValueError, match="rank"):
        lora.LoRAAdapter(6, 4, r=0)
    with pytest.raises(ValueError, match="init"):
        lora.LoRAAdapter(6, 4, r=2, init="zeros")


def test_forward_formula_and_exact_start() -> None:
    base = nn.Linear(5, 3, dtype="float64", generator=tg.Generator(0))
    layer = lora.LoRALinear(base, lora.LoRAAdapter(5, 3, r=2, alpha=4, dtype="float64", generator=tg.Generator(1)))
    x = tg.randn(4, 5, dtype="float64")
    assert np.array_equal(layer(x).numpy(), base(x).numpy())  # B = 0: exactly the base
    ad = layer.adapters["default"]
    ad.B.data[...] = np.random.default_rng(0).normal(size=ad.B.shape)
    expected = x.numpy() @ base.weight.numpy().T + base.bias.numpy() + 2.0 * x.numpy() @ ad.A.numpy().T @ ad.B.numpy().T
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("use_rslora", [False, True])
def test_gradcheck_lora_linear(use_rslora: bool) -> None:
    base = nn.Linear(4, 3, dtype="float64", generator=tg.Generator(0))
    ad = lora.LoRAAdapter(4, 3, r=2, alpha=3, use_rslora=use_rslora, init="random", dtype="float64",
                          generator=tg.Generator(1))
    layer = lora.LoRALinear(base, ad)
    x = tg.randn(2, 4, dtype="float64", requires_grad=True)
    assert tg.gradcheck(lambda x, a, b: layer(x), [x, ad.A, ad.B])


def test_gradient_of_A_is_zero_at_the_standard_start() -> None:
    base = nn.Linear(4, 3, dtype="float64")
    ad = lora.LoRAAdapter(4, 3, r=2, dtype="float64")
    layer = lora.LoRALinear(base, ad)
    layer(tg.randn(2, 4, dtype="float64")).sum().backward()
    assert np.all(ad.A.grad.numpy() == 0) and np.any(ad.B.grad.numpy() != 0)
    assert base.weight.grad is None  # frozen


def test_apply_lora_all_linear_freezes_the_rest() -> None:
    m = gpt()
    n_before = m.num_parameters()
    lora.apply_lora(m, "all-linear", r=2, alpha=4)
    names = [n for n, _ in lora.lora_layers(m)]
    assert len(names) == 8 and not any("lm_head" in n for n in names)
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable and all(".adapters.default." in n for n in trainable)
    t, total = lora.count_parameters(m)
    per_layer = 2 * (8 + 24) + 2 * (8 + 8) + 2 * (8 + 32) + 2 * (32 + 8)
    assert t == 2 * per_layer and total == n_before + t
    assert "trainable params: 512" in lora.trainable_summary(m)


def test_apply_lora_patterns() -> None:
    m = gpt()
    lora.apply_lora(m, ["c_attn", "transformer.h.1.mlp.c_fc"], r=2)
    assert [n for n, _ in lora.lora_layers(m)] == ["transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn",
                                                   "transformer.h.1.mlp.c_fc"]
    m = gpt()
    lora.apply_lora(m, "transformer.h.*.attn.c_proj", r=2)
    assert len(lora.lora_layers(m)) == 2
    with pytest.raises(ValueError, match="match no Linear"):
        lora.apply_lora(gpt(), ["q_proj"], r=2)
    with pytest.raises(ValueError, match="unknown method"):
        lora.apply_lora(gpt(), r=2, method="nope")


@pytest.mark.parametrize("method", ["lora", "rslora", "dora", "pissa", "olora", "vera"])
def test_merge_unmerge_exact_in_float64(method: str) -> None:
    m = gpt()
    idx = tokens()
    y_base = m(idx)[0].numpy()
    lora.apply_lora(m, "all-linear", r=2, alpha=4, method=method)
    np.testing.assert_allclose(m(idx)[0].numpy(), y_base, rtol=0, atol=1e-12)  # starts at the base
    randomize_adapters(m)
    y = m(idx)[0].numpy()
    assert np.abs(y - y_base).max() > 1e-3
    weights = {n: p.numpy().copy() for n, p in m.named_parameters() if n.endswith("base.weight")}
    lora.merge(m)
    np.testing.assert_allclose(m(idx)[0].numpy(), y, rtol=0, atol=1e-12)
    lora.unmerge(m)
    np.testing.assert_allclose(m(idx)[0].numpy(), y, rtol=0, atol=1e-12)
    for n, p in m.named_parameters():
        if n in weights:
            np.testing.assert_allclose(p.numpy(), weights[n], rtol=0, atol=1e-14)
    plain = lora.merge_and_unload(m)
    assert not lora.lora_layers(plain) and isinstance(plain.transformer.h[0].attn.c_attn, nn.Linear)
    np.testing.assert_allclose(plain(idx)[0].numpy(), y, rtol=0, atol=1e-12)
    assert set(dict(plain.named_parameters())) == set(dict(gpt().named_parameters()))
    assert all(p.requires_grad for p in plain.parameters())


@pytest.mark.parametrize("use_rslora", [False, True])
def test_merge_weight_is_what_merge_writes(use_rslora: bool) -> None:
    # lora.merge_weight (notebook 06's reference for its merge exercise) on plain arrays = the layer's merge
    m = gpt()
    lora.apply_lora(m, ["c_attn"], r=3, alpha=5, use_rslora=use_rslora)
    randomize_adapters(m)
    layer = lora.lora_layers(m)[0][1]
    ad, w0 = layer.adapters["default"], layer.base.weight.numpy().copy()
    expected = lora.merge_weight(w0, ad.A.numpy(), ad.B.numpy(), 5.0, use_rslora)
    scale = 5.0 / np.sqrt(3) if use_rslora else 5.0 / 3
    np.testing.assert_allclose(expected, w0 + scale * ad.B.numpy() @ ad.A.numpy(), rtol=1e-14)
    layer.merge()
    np.testing.assert_allclose(layer.base.weight.numpy(), expected, rtol=0, atol=1e-14)
    assert expected.dtype == w0.dtype


def test_merge_weight_names_the_shapes_it_got() -> None:
    w0, a, b = np.zeros((4, 6)), np.zeros((2, 6)), np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"W0 \(4, 6\), A \(6, 2\), B \(4, 2\)"):
        lora.merge_weight(w0, a.T, b, 8.0)
    with pytest.raises(ValueError, match="expected W0 \\(out, in\\)"):
        lora.merge_weight(w0.T, a, b, 8.0)


def test_merge_errors() -> None:
    m = gpt()
    lora.apply_lora(m, ["c_attn"], r=2)
    layer = lora.lora_layers(m)[0][1]
    with pytest.raises(RuntimeError, match="nothing is merged"):
        layer.unmerge()
    layer.merge()
    with pytest.raises(RuntimeError, match="merged already"):
        layer.merge()


def test_several_named_adapters_and_disable() -> None:
    m = gpt()
    idx = tokens()
    y_base = m(idx)[0].numpy()
    lora.apply_lora(m, "all-linear", r=2, adapter_name="first")
    randomize_adapters(m, seed=1)
    y_first = m(idx)[0].numpy()
    lora.apply_lora(m, ["c_attn"], r=3, adapter_name="second")
    # the second adapter is active and only its parameters are trainable
    assert all(".adapters.second." in n for n, p in m.named_parameters() if p.requires_grad)
    randomize_adapters(m, seed=2)
    y_second = m(idx)[0].numpy()
    assert np.abs(y_second - y_first).max() > 1e-3
    lora.set_adapter(m, "first")
    np.testing.assert_array_equal(m(idx)[0].numpy(), y_first)
    with lora.disable_adapter(m):
        np.testing.assert_array_equal(m(idx)[0].numpy(), y_base)
    np.testing.assert_array_equal(m(idx)[0].numpy(), y_first)
    with pytest.raises(KeyError, match="no adapter named"):
        lora.set_adapter(m, "third")
    with pytest.raises(ValueError, match="exists already"):
        lora.lora_layers(m)[0][1].add_adapter("first", lora.LoRAAdapter(8, 24, r=1))


def test_adapter_state_dict_roundtrip_and_validation(tmp_path: Path) -> None:
    m = gpt()
    idx = tokens()
    lora.apply_lora(m, "all-linear", r=2)
    randomize_adapters(m)
    y = m(idx)[0].numpy()
    sd = lora.adapter_state_dict(m)
    assert all(".adapters.default." in k for k in sd) and len(sd) == 16
    path = lora.save_adapter(tmp_path / "a.npz", m)
    fresh = gpt()
    lora.apply_lora(fresh, "all-linear", r=2)
    lora.load_adapter(path, fresh)
    np.testing.assert_array_equal(fresh(idx)[0].numpy(), y)
    # another rank: rejected with the reason, nothing changed
    other = gpt()
    lora.apply_lora(other, "all-linear", r=3)
    before = {k: v.copy() for k, v in lora.adapter_state_dict(other).items()}
    with pytest.raises(lora.AdapterError, match="saved shape"):
        lora.load_adapter(path, other)
    assert all(np.array_equal(before[k], v) for k, v in lora.adapter_state_dict(other).items())
    # other targets: missing / unexpected layers
    partial = gpt()
    lora.apply_lora(partial, ["c_attn"], r=2)
    with pytest.raises(lora.AdapterError, match="unexpected"):
        lora.load_adapter(path, partial)
    # same shapes, other alpha: the config check catches it
    alpha = gpt()
    lora.apply_lora(alpha, "all-linear", r=2, alpha=3)
    with pytest.raises(lora.AdapterError, match="config"):
        lora.load_adapter(path, alpha)
    # loaded under another adapter name
    two = gpt()
    lora.apply_lora(two, "all-linear", r=2, adapter_name="x")
    lora.load_adapter(path, two, name="x")
    np.testing.assert_array_equal(two(idx)[0].numpy(), y)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(lora.AdapterError, match="not a readable"):
        lora.load_adapter(tmp_path / "bad.npz", fresh)


def test_training_moves_only_adapters() -> None:
    m = gpt()
    lora.apply_lora(m, "all-linear", r=2)
    frozen = {n: p.numpy().copy() for n, p in m.named_parameters() if not p.requires_grad}
    opt = nn.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    idx = tokens()
    losses = []
    for _ in range(5):
        opt.zero_grad()
        _, loss = m(idx, idx)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(np.array_equal(p.numpy(), frozen[n]) for n, p in m.named_parameters() if n in frozen)


def test_dropout_only_on_the_adapter_path_and_only_in_training() -> None:
    base = nn.Linear(6, 4, dtype="float64", generator=tg.Generator(0))
    ad = lora.LoRAAdapter(6, 4, r=2, dropout=0.5, init="random", dtype="float64", generator=tg.Generator(1))
    layer = lora.LoRALinear(base, ad)
    x = tg.randn(64, 6, dtype="float64")
    no_drop = base(x).numpy() + ad.scale * x.numpy() @ ad.A.numpy().T @ ad.B.numpy().T
    layer.eval()
    np.testing.assert_allclose(layer(x).numpy(), no_drop, rtol=1e-12)
    layer.train()
    assert np.abs(layer(x).numpy() - no_drop).max() > 1e-3
    with lora.disable_adapter(layer):  # works on a bare LoRALinear too; the base has no dropout
        np.testing.assert_array_equal(layer(x).numpy(), base(x).numpy())


def test_apply_lora_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """Library code never prints: the counts are `trainable_summary`'s to return."""
    for method in lora.METHODS:
        lora.apply_lora(gpt(), ["c_attn"], r=2, method=method)
    assert capsys.readouterr() == ("", "")
    assert "trainable params: 128" in lora.trainable_summary(lora.apply_lora(gpt(), ["c_attn"], r=2))
    assert capsys.readouterr() == ("", "")
