"""NF4 quantization, double quantization, NF4Linear and QLoRA."""
from __future__ import annotations

import numpy as np
import pytest

import lora
import nn
import tinygrad_lite as tg

# The NF4 values as printed in the QLoRA paper's appendix (Dettmers et al. 2023), float32-rounded.
PUBLISHED_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                 -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                 0.7229568362236023, 1.0]


def test_nf4_code_values() -> None:
    code = lora.nf4_code()
    assert code.shape == (16,) and np.all(np.diff(code) > 0)
    assert code[0] == -1.0 and code[-1] == 1.0 and code[7] == 0.0
    np.testing.assert_allclose(code, PUBLISHED_NF4, atol=2e-7)


def test_roundtrip_packing_and_nearest_code() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 50)).astype(np.float32)  # 150 values: not a multiple of 64 (padding)
    q = lora.quantize_nf4(w, double_quant=False)
    assert q.packed.dtype == np.uint8 and q.packed.size == 3 * 64 // 2  # 3 blocks, two codes per byte
    wq = q.dequantize()
    assert wq.shape == w.shape and wq.dtype == np.float32
    # each value is the nearest code times its block's absmax
    flat = np.concatenate([w.reshape(-1), np.zeros(42, np.float32)]).reshape(-1, 64)
    c = np.abs(flat).max(axis=1, keepdims=True)
    nearest = lora.NF4[np.abs(flat[..., None] / c[..., None] - lora.NF4).argmin(-1)] * c
    np.testing.assert_allclose(wq.reshape(-1), nearest.reshape(-1)[:150], rtol=1e-6)
    # the block maximum is represented exactly (code ±1)
    assert np.isclose(np.abs(wq).max(), np.abs(w).max())
    assert np.all(lora.quantize_nf4(np.zeros((2, 64), np.float32)).dequantize() == 0)


def test_nf4_encode_one_block_and_many() -> None:
    # lora.nf4_encode (notebook 06's reference for its NF4 exercise) is what quantize_nf4 stores per block
    rng = np.random.default_rng(3)
    blocks = rng.normal(0, 0.02, (5, 64)).astype(np.float32)
    blocks[1] *= -1 if blocks[1][np.abs(blocks[1]).argmax()] > 0 else 1  # a block whose absmax is negative
    idx, c = lora.nf4_encode(blocks)
    assert idx.dtype == np.uint8 and idx.shape == (5, 64) and c.shape == (5,)
    np.testing.assert_array_equal(c, np.abs(blocks).max(axis=1))
    # the nearest code, by distance
    nearest = np.abs(blocks[..., None] / c[:, None, None] - lora.NF4).argmin(axis=-1)
    np.testing.assert_array_equal(idx, nearest)
    assert idx[1][np.abs(blocks[1]).argmax()] == 0 and idx.max() <= 15  # -absmax is the code -1
    q = lora.quantize_nf4(blocks.reshape(-1), double_quant=False)
    np.testing.assert_array_equal(q.packed, (idx.reshape(-1)[0::2] << 4) | idx.reshape(-1)[1::2])
    np.testing.assert_array_equal(q.absmax, c)
    one_idx, one_c = lora.nf4_encode(blocks[2, :17])  # one block of any length
    assert one_idx.shape == (17,) and one_c.shape == () and one_c == np.abs(blocks[2, :17]).max()
    zero_idx, zero_c = lora.nf4_encode(np.zeros(8))
    assert zero_c == 1.0 and np.all(lora.NF4[zero_idx] == 0.0)  # an all-zero block stays exactly zero
    with pytest.raises(ValueError, match="nf4_encode"):
        lora.nf4_encode(np.zeros((2, 3, 4)))


def test_double_quant_overhead() -> None:
    w = np.random.default_rng(1).normal(size=(64, 4096)).astype(np.float32)
    single = lora.quantize_nf4(w, double_quant=False)
    double = lora.quantize_nf4(w, double_quant=True)
    assert single.bits_per_parameter() == pytest.approx(4.5)
    assert double.bits_per_parameter() - 4 == pytest.approx(0.127, abs=5e-4)
    # the constants survive 8-bit quantization to within ~1%, so the weights barely change
    err_single = lora.quantization_error(w, "nf4")["mse"]
    err_double = lora.quantization_error(w, "nf4-dq")["mse"]
    assert err_double < 1.01 * err_single


def test_nf4_beats_int4_on_normal_weights() -> None:
    w = np.random.default_rng(2).normal(0, 0.02, size=(128, 256)).astype(np.float32)
    assert lora.quantization_error(w, "nf4")["mse"] < 0.9 * lora.quantization_error(w, "int4")["mse"]
    with pytest.raises(ValueError, match="unknown scheme"):
        lora.quantization_error(w, "fp4")


def test_nf4_linear_and_qlora() -> None:
    cfg = nn.GPTConfig(vocab_size=20, n_layer=1, n_head=2, n_embd=16, block_size=8)
    m = nn.GPT(cfg, generator=tg.Generator(0))
    idx = np.random.default_rng(0).integers(0, 20, (2, 8))
    y_float = m(idx)[0].numpy()
    lora.apply_lora(m, "all-linear", r=2, method="qlora")
    bases = [layer.base for _, layer in lora.lora_layers(m)]
    assert all(isinstance(b, lora.NF4Linear) for b in bases)
    # the quantized model starts equal to its own base (B = 0) and close to the float model
    y_q = m(idx)[0].numpy()
    with lora.disable_adapter(m):
        np.testing.assert_array_equal(m(idx)[0].numpy(), y_q)
    assert 0 < np.abs(y_q - y_float).max() < 0.05
    assert all(".adapters." in n for n, p in m.named_parameters() if p.requires_grad)
    _, loss = m(idx, idx)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    with pytest.raises(TypeError, match="dequantize"):
        lora.lora_layers(m)[0][1].merge()
    plain = lora.merge_and_unload(m)
    assert not any(isinstance(x, lora.NF4Linear) for x in plain.modules())
    np.testing.assert_allclose(plain(idx)[0].numpy(), y_q, atol=1e-5)


def test_qlora_gradcheck_float64() -> None:
    base = nn.Linear(8, 4, dtype="float64", generator=tg.Generator(0))
    q = lora.NF4Linear(base)
    ad = lora.LoRAAdapter(8, 4, r=2, init="random", dtype="float64", generator=tg.Generator(1))
    layer = lora.LoRALinear(q, ad)
    x = tg.randn(3, 8, dtype="float64", requires_grad=True)
    assert tg.gradcheck(lambda x, a, b: layer(x), [x, ad.A, ad.B])
