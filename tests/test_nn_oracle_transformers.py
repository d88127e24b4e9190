"""Optional oracle: our GPT-2 files against Hugging Face transformers' GPT2LMHeadModel, when
transformers and torch are installed (skipped otherwise; tests/test_nn_hf_gpt2.py checks the
round trip without them).

Tolerances (absolute, on logits of size ~1): 1e-12 in float64 and 2e-6 in float32; the measured
differences are ~2e-16 and ~5e-8 (only the order of the float operations differs)."""
from __future__ import annotations

import numpy as np
import pytest

import nn
import tinygrad_lite as tg

transformers = pytest.importorskip("transformers")  # first: skip before the slow torch import
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.oracle

TOL = {"float64": 1e-12, "float32": 2e-6}
CONFIG = nn.GPTConfig(vocab_size=23, n_layer=2, n_head=2, n_embd=16, block_size=12)
IDX = np.array([[1, 5, 7, 2, 22, 0, 3], [4, 4, 9, 11, 8, 6, 2]])


def _hf_logits(model: object) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(IDX)).logits.double().numpy()


def _our_logits(model: nn.GPT) -> np.ndarray:
    model.eval()
    with tg.no_grad():
        return model(IDX)[0].numpy().astype(np.float64)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exported_gpt_loads_into_transformers_with_our_logits(tmp_path, dtype) -> None:
    ours = nn.GPT(CONFIG, dtype=dtype, generator=tg.Generator(0))
    with tg.no_grad():  # non-zero biases and LayerNorm parameters, so every tensor's placement matters
        for _, p in ours.named_parameters():
            if p.ndim == 1:
                p.data[...] = tg.Generator(p.size).normal(p.shape, p.dtype, 0.0, 0.3) + (1.0 if "ln" in _ else 0.0)
    nn.export_gpt2(ours, tmp_path)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, dtype=getattr(torch, dtype))
    assert next(hf.parameters()).dtype == getattr(torch, dtype)
    np.testing.assert_allclose(_hf_logits(hf), _our_logits(ours), rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_transformers_gpt2_imports_with_its_logits(tmp_path, dtype) -> None:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=23, n_positions=12, n_embd=16, n_layer=2, n_head=2,
                                  activation_function="gelu", bos_token_id=None, eos_token_id=None)
    hf = transformers.GPT2LMHeadModel(cfg).to(getattr(torch, dtype))
    with torch.no_grad():  # the default init zeroes biases and sets LayerNorm to identity: randomize them
        for name, p in hf.named_parameters():
            if p.ndim == 1:
                p.normal_(1.0 if ".ln_" in name else 0.0, 0.3)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours = nn.import_gpt2(tmp_path)
    assert ours.transformer.wte.weight.dtype == np.dtype(dtype)
    np.testing.assert_allclose(_our_logits(ours), _hf_logits(hf), rtol=0, atol=TOL[dtype])


def test_tanh_gelu_gpt2_is_refused(tmp_path) -> None:
    cfg = transformers.GPT2Config(vocab_size=23, n_positions=12, n_embd=16, n_layer=1, n_head=2)  # gelu_new
    transformers.GPT2LMHeadModel(cfg).save_pretrained(tmp_path, safe_serialization=True)
    with pytest.raises(nn.CheckpointError, match="gelu_new"):
        nn.import_gpt2(tmp_path)
