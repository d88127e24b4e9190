"""memory_report: the 7B numbers, and the accounting checked against our engine's measured bytes."""
from __future__ import annotations

import numpy as np
import pytest

import lora
import nn
import tinygrad_lite as tg

GB = 1e9


def test_7b_parameter_count_and_budgets() -> None:
    assert lora.MODEL_PRESETS["7b"].n_params() == 6_738_415_616  # LLaMA-7B's published count
    full = lora.memory_report("7b", "full")
    lo = lora.memory_report("7b", "lora", r=8)
    q = lora.memory_report("7b", "qlora", r=8)
    assert full["total"] > 100 * GB
    assert full["weights"] + full["gradients"] + full["optimizer"] == 16 * full["params"]
    assert lo["total"] < 24 * GB and q["total"] < 24 * GB and q["total"] < lo["total"]
    assert lo["trainable"] == 32 * 8 * (4 * 2 * 4096 + 3 * (4096 + 11008))
    assert "qlora" in lora.memory_table("7b")
    with pytest.raises(ValueError, match="method"):
        lora.memory_report("7b", "prefix")
    with pytest.raises(ValueError, match="unknown preset 'bogus'; the presets are 7b"):
        lora.memory_report("bogus")
    for name, value in (("r", -1), ("batch", 0), ("seq", 0)):
        with pytest.raises(ValueError, match=f"{name}={value}, expected an integer >= 1"):
            lora.memory_report("7b", "lora", **{name: value})


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_accounting_matches_measured_bytes(method: str) -> None:
    shape = lora.ModelShape(n_layer=2, d_model=64, n_head=2, vocab_size=65, block_size=32)
    model = nn.GPT(nn.GPTConfig(vocab_size=65, n_layer=2, n_head=2, n_embd=64, block_size=32),
                   generator=tg.Generator(0))
    assert model.num_parameters() == shape.n_params()
    if method != "full":
        lora.apply_lora(model, "all-linear", r=4, method="lora" if method == "lora" else "qlora")
    opt = nn.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    idx = np.random.default_rng(0).integers(0, 65, (2, 32))
    _, loss = model(idx, idx)
    loss.backward()
    opt.step()
    measured = lora.measured_training_bytes(model, opt)
    predicted = lora.memory_report(shape, method, r=4, precision="fp32")
    assert measured["gradients"] == predicted["gradients"]
    assert measured["optimizer"] == predicted["optimizer"]
    if method == "qlora":  # NF4 block padding and the per-tensor mean: within 1%
        assert measured["weights"] == pytest.approx(predicted["weights"], rel=0.01)
    else:
        assert measured["weights"] == predicted["weights"]
