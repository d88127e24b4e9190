"""Optional oracle: the PEFT-style API against Hugging Face PEFT, when peft and torch are installed
(skipped otherwise; never the only check: tests/test_lora_peft_api.py checks the same by itself).

The same small network is built twice, in nn and in torch, with the same module names
(transformer.h.<i>.attn.c_attn, ...), so that one config selects modules by the same rules.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import lora
import nn
import tinygrad_lite as tg
from tinygrad_lite import Tensor

peft = pytest.importorskip("peft")  # first: without peft, skip before the slow torch import
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.oracle
D, LAYERS = 6, 3


# ------------------------------------------------------------------ the network, twice
class Part(nn.Module):
    def __init__(self, first: str, second: str, hidden: int) -> None:
        setattr(self, first, nn.Linear(D, hidden, dtype="float64"))
        setattr(self, second, nn.Linear(hidden, D, dtype="float64"))
        self.names = (first, second)

    def forward(self, x: Tensor) -> Tensor:
        a, b = (getattr(self, n) for n in self.names)
        return b(a(x).tanh())


class Block(nn.Module):
    def __init__(self) -> None:
        self.attn = Part("c_attn", "c_proj", 3 * D)
        self.mlp = Part("c_fc", "c_proj", 4 * D)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Net(nn.Module):
    def __init__(self) -> None:
        self.transformer = nn.ModuleDict({"h": nn.ModuleList([Block() for _ in range(LAYERS)])})
        self.lm_head = nn.Linear(D, 5, dtype="float64")

    def forward(self, x: Tensor) -> Tensor:
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(x)


class TorchPart(torch.nn.Module):
    def __init__(self, first: str, second: str, hidden: int) -> None:
        super().__init__()
        self.add_module(first, torch.nn.Linear(D, hidden).double())
        self.add_module(second, torch.nn.Linear(hidden, D).double())
        self.names = (first, second)

    def forward(self, x: Any) -> Any:
        a, b = (getattr(self, n) for n in self.names)
        return b(torch.tanh(a(x)))


class TorchBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = TorchPart("c_attn", "c_proj", 3 * D)
        self.mlp = TorchPart("c_fc", "c_proj", 4 * D)

    def forward(self, x: Any) -> Any:
        x = x + self.attn(x)
        return x + self.mlp(x)


class TorchNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.transformer = torch.nn.ModuleDict({"h": torch.nn.ModuleList([TorchBlock() for _ in range(LAYERS)])})
        self.lm_head = torch.nn.Linear(D, 5).double()

    def forward(self, x: Any) -> Any:
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(x)


def twins() -> tuple[Net, Any]:
    ours, ref = Net(), TorchNet()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            p.copy_(torch.from_numpy(dict(ours.named_parameters())[name].numpy()))
    return ours, ref


def peft_layers(model: Any, adapter: str = "default") -> dict[str, tuple[int, float]]:
    """{module name: (r, scaling)} of PEFT's LoRA layers holding `adapter`."""
    return {n.removeprefix("base_model.model."): (m.r[adapter], m.scaling[adapter]) for n, m in model.named_modules()
            if hasattr(m, "lora_A") and adapter in m.lora_A}


CONFIGS = [
    {"target_modules": ["c_attn", "mlp.c_proj"]},
    {"target_modules": r"transformer\.h\.[12]\.(attn\.c_attn|mlp\.c_fc)"},
    {"target_modules": ["c_attn", "c_fc"], "layers_to_transform": [0, 2]},
    {"target_modules": ["c_attn"], "layers_to_transform": 1, "layers_pattern": "h"},
    {"target_modules": ["transformer.h.0.mlp.c_fc", "c_attn"], "layers_to_transform": [2]},
    {"target_modules": ["c_attn", "c_proj"], "rank_pattern": {r"h\.1\.attn\.c_attn": 5, "mlp.c_proj": 3},
     "alpha_pattern": {"c_proj": 9}},
    {"target_modules": ["c_proj"], "exclude_modules": r".*\.h\.0\..*"},
    {"target_modules": ["c_proj", "c_fc"], "exclude_modules": ["attn.c_proj"], "modules_to_save": ["lm_head"]},
]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=range(len(CONFIGS)))
def test_targets_ranks_and_scales_match_peft(kwargs: dict[str, Any]) -> None:
    ours, ref = twins()
    lora.apply_lora(ours, lora.LoraConfig(r=2, lora_alpha=4, **kwargs))
    ref = peft.get_peft_model(ref, peft.LoraConfig(r=2, lora_alpha=4, **kwargs))
    got = {n: (layer.adapters["default"].r, layer.adapters["default"].scale) for n, layer in lora.lora_layers(ours)}
    assert got == peft_layers(ref)
    if "modules_to_save" in kwargs:  # the same state-dict names for the trainable copy
        ours_keys = {k for k in lora.adapter_state_dict(ours) if "modules_to_save" in k}
        ref_keys = {k.removeprefix("base_model.model.") for k, p in ref.named_parameters()
                    if "modules_to_save" in k and p.requires_grad}
        assert ours_keys == ref_keys == {f"lm_head.modules_to_save.default.{p}" for p in ("weight", "bias")}


def two_adapter_twins(r_b: int, modules_to_save: list[str] | None = None) -> tuple[Net, Any]:
    """Adapters "one" (r=2 on c_attn, c_fc) and "two" (r=r_b on c_attn, c_proj), random, equal in both. (PEFT's
    mixed batch needs a saved module's copy in every adapter of the batch, so both get one.)"""
    ours, ref = twins()
    config_a = {"r": 2, "lora_alpha": 4, "target_modules": ["c_attn", "c_fc"], "modules_to_save": modules_to_save}
    config_b = {"r": r_b, "lora_alpha": 3, "target_modules": ["c_attn", "c_proj"], "modules_to_save": modules_to_save}
    lora.apply_lora(ours, lora.LoraConfig(**config_a), adapter_name="one")
    lora.apply_lora(ours, lora.LoraConfig(**config_b), adapter_name="two")
    ref = peft.get_peft_model(ref, peft.LoraConfig(**config_a), adapter_name="one")
    ref.add_adapter("two", peft.LoraConfig(**config_b))
    rng = np.random.default_rng(0)
    modules = dict(ref.base_model.model.named_modules())
    with torch.no_grad():
        for name, layer in lora.lora_layers(ours):
            for key, adapter in layer.adapters.items():
                for p in (adapter.A, adapter.B):
                    p.data[...] = rng.normal(0, 0.4, p.shape)
                modules[name].lora_A[key].weight.copy_(torch.from_numpy(adapter.A.numpy()))
                modules[name].lora_B[key].weight.copy_(torch.from_numpy(adapter.B.numpy()))
        for name, wrapper in lora.saved_modules(ours):
            for key, copy in wrapper.modules_to_save.items():
                for pname, p in copy.named_parameters():
                    p.data[...] = rng.normal(0, 0.4, p.shape)
                    getattr(modules[name].modules_to_save[key], pname).copy_(torch.from_numpy(p.numpy()))
    return ours, ref


@pytest.mark.parametrize("how", ["linear", "cat", "svd"])
def test_add_weighted_adapter_delta_matches_peft(how: str) -> None:
    ours, ref = two_adapter_twins(r_b=2 if how == "linear" else 3)  # "linear" needs equal ranks
    # PEFT holds the weights (and, for "linear", √|w·s|) in float32: pick values float32 holds exactly
    weights = [2.0, -1.5]  # with s_a = 2, s_b = 1.5: √|w·s| = 2 and 1.5
    lora.add_weighted_adapter(ours, ["one", "two"], weights, "sum", combination_type=how)
    ref.add_weighted_adapter(["one", "two"], weights, "sum", combination_type=how)
    modules = dict(ref.base_model.model.named_modules())
    for name, layer in lora.lora_layers(ours):
        with tg.no_grad():
            mine = layer.adapters["sum"].delta_weight().numpy()
        theirs = modules[name].get_delta_weight("sum").detach().numpy()
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12, err_msg=name)


def test_mixed_batch_matches_peft() -> None:
    ours, ref = two_adapter_twins(r_b=3, modules_to_save=["lm_head"])
    ours.eval()
    ref.eval()
    names = ["two", "one", "__base__", "one", "two"]
    x = np.random.default_rng(1).normal(size=(5, 4, D))
    with lora.adapter_per_row(ours, names):
        mine = ours(Tensor(x)).numpy()
    with torch.no_grad():
        theirs = ref(torch.from_numpy(x), adapter_names=names).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)
