"""Optional oracle: our LoRA forward and merge against Hugging Face PEFT, when peft and torch are
both installed (skipped otherwise; never the only check)."""
from __future__ import annotations

import numpy as np
import pytest

import lora
import nn
import tinygrad_lite as tg

peft = pytest.importorskip("peft")  # first: without peft, skip before the slow torch import
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.oracle


def test_forward_and_merge_match_peft() -> None:
    base = nn.Linear(6, 4, dtype="float64", generator=tg.Generator(0))
    ad = lora.LoRAAdapter(6, 4, r=2, alpha=6, init="random", dtype="float64", generator=tg.Generator(1))
    ours = lora.LoRALinear(base, ad)
    ref = torch.nn.Sequential(torch.nn.Linear(6, 4).double())
    with torch.no_grad():
        ref[0].weight.copy_(torch.from_numpy(base.weight.numpy()))
        ref[0].bias.copy_(torch.from_numpy(base.bias.numpy()))
    ref = peft.get_peft_model(ref, peft.LoraConfig(r=2, lora_alpha=6, target_modules=["0"], lora_dropout=0.0))
    layer = ref.base_model.model[0]
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(torch.from_numpy(ad.A.numpy()))
        layer.lora_B["default"].weight.copy_(torch.from_numpy(ad.B.numpy()))
    x = np.random.default_rng(0).normal(size=(3, 6))
    expected = ref(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(tg.tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12)
    merged = ref.merge_and_unload()
    ours.merge()
    np.testing.assert_allclose(base.weight.numpy(), merged[0].weight.detach().numpy(), rtol=1e-12, atol=1e-12)
