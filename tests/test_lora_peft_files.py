"""Adapters in PEFT's file layout (lora.save_pretrained / lora.load_pretrained): round trips, the
key names and config, PiSSA / OLoRA converted to plain LoRA, PEFT's target and pattern rules,
and what is refused. Needs only safetensors; tests/test_lora_oracle_peft_files.py compares with PEFT."""
from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest

import lora
import nn
import tinygrad_lite as tg
from lora.peft_files import peft_state_dict

st = pytest.importorskip("safetensors.numpy")

CONFIG = nn.GPTConfig(vocab_size=13, n_layer=2, n_head=2, n_embd=8, block_size=6)
IDX = np.array([[1, 2, 3, 12, 0], [5, 5, 4, 3, 2]])
PREFIX = "base_model.model.transformer.h."


def _gpt() -> nn.GPT:
    return nn.GPT(CONFIG, dtype="float64", generator=tg.Generator(0))


def _logits(model: nn.GPT) -> np.ndarray:
    model.eval()
    with tg.no_grad():
        return model(IDX)[0].numpy()


def _perturb(model: nn.GPT, seed: int = 5) -> None:
    """Stand-in for training: move every trainable (adapter) parameter."""
    gen = tg.Generator(seed)
    with tg.no_grad():
        for _, p in model.named_parameters():
            if p.requires_grad:
                p.data[...] += gen.normal(p.shape, p.dtype, 0.0, 0.2)


def _adapted(method: str, targets=("c_attn", "c_fc"), **kw) -> nn.GPT:
    model = _gpt()
    lora.apply_lora(model, list(targets), r=2, alpha=6, method=method, generator=tg.Generator(1), **kw)
    return model


@pytest.mark.parametrize("method", ["lora", "rslora", "dora", "qlora"])
def test_round_trip_gives_the_same_adapters_and_logits(tmp_path, method) -> None:
    model = _adapted(method)
    _perturb(model)
    lora.save_pretrained(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    base = _gpt()
    if method == "qlora":  # the adapter applies to the NF4 base: quantize the fresh base the same way
        base = _adapted("qlora")
        lora.delete_adapter(base, "default")
    back = lora.load_pretrained(base, tmp_path, adapter_name="loaded")
    np.testing.assert_array_equal(_logits(back), _logits(model))
    for (name, ours), (_, theirs) in zip(lora.lora_layers(model), lora.lora_layers(back)):
        a, b = ours.adapters["default"], theirs.adapters["loaded"]
        assert (b.r, b.alpha, b.use_rslora, b.method) == (a.r, a.alpha, a.use_rslora,
                                                          "lora" if method == "qlora" else a.method), name
        np.testing.assert_array_equal(b.A.numpy(), a.A.numpy())
        np.testing.assert_array_equal(b.B.numpy(), a.B.numpy())
    # only the loaded adapter is trainable, as after apply_lora
    assert {n.split(".adapters.")[1] for n, p in back.named_parameters() if p.requires_grad} >= {"loaded.A", "loaded.B"}
    assert all(".adapters.loaded." in n for n, p in back.named_parameters() if p.requires_grad)


def test_files_use_peft_key_names_and_config(tmp_path) -> None:
    model = _adapted("dora")
    lora.save_pretrained(model, tmp_path)
    saved = st.load_file(str(tmp_path / "adapter_model.safetensors"))
    expected = {}
    for i in range(2):
        for module, out in (("attn.c_attn", 24), ("mlp.c_fc", 32)):
            key = f"{PREFIX}{i}.{module}"
            expected |= {key + ".lora_A.weight": (2, 8), key + ".lora_B.weight": (out, 2),
                         key + ".lora_magnitude_vector": (out,)}
    assert {k: v.shape for k, v in saved.items()} == expected
    layer = model.transformer.h[1].mlp.c_fc.adapters["default"]
    np.testing.assert_array_equal(saved[f"{PREFIX}1.mlp.c_fc.lora_B.weight"], layer.B.numpy())
    np.testing.assert_array_equal(saved[f"{PREFIX}1.mlp.c_fc.lora_magnitude_vector"], layer.magnitude.numpy())
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM"
    assert (config["r"], config["lora_alpha"], config["use_dora"], config["use_rslora"]) == (2, 6, True, False)
    assert config["target_modules"] == [f"transformer.h.{i}.{m}" for i in range(2) for m in ("attn.c_attn", "mlp.c_fc")]
    assert config["fan_in_fan_out"] is True  # GPT-2's Conv1D layers
    assert config["rank_pattern"] == config["alpha_pattern"] == {}
    assert config["bias"] == "none" and config["init_lora_weights"] is True


def test_per_layer_ranks_go_to_rank_and_alpha_patterns(tmp_path) -> None:
    model = _adapted("lora")
    for i, block in enumerate(model.transformer.h):  # rank 3, α = 5 on c_fc
        block.mlp.c_fc.adapters["default"] = lora.LoRAAdapter(8, 32, 3, 5.0, dtype="float64", init="random",
                                                              generator=tg.Generator(7 + i))
    _, config = peft_state_dict(model)
    assert config["r"] == 2 and config["lora_alpha"] == 6
    assert config["rank_pattern"] == {"transformer.h.0.mlp.c_fc": 3, "transformer.h.1.mlp.c_fc": 3}
    assert config["alpha_pattern"] == {"transformer.h.0.mlp.c_fc": 5, "transformer.h.1.mlp.c_fc": 5}
    _perturb(model)
    lora.save_pretrained(model, tmp_path)
    back = lora.load_pretrained(_gpt(), tmp_path)
    assert (back.transformer.h[0].mlp.c_fc.adapters["default"].r, back.transformer.h[0].attn.c_attn.adapters[
        "default"].r) == (3, 2)
    np.testing.assert_array_equal(_logits(back), _logits(model))


@pytest.mark.parametrize("method, use_rslora", [("pissa", False), ("olora", False), ("pissa", True)])
def test_pissa_and_olora_save_as_lora_on_the_original_base(tmp_path, method, use_rslora) -> None:
    """base W0 + the converted adapter computes exactly what the PiSSA / OLoRA model computes."""
    model = _adapted(method, use_rslora=use_rslora)
    initial = lora.adapter_state_dict(model)
    _perturb(model)
    with pytest.raises(lora.AdapterError, match="convert_to_lora"):
        lora.save_pretrained(model, tmp_path)
    lora.save_pretrained(model, tmp_path, convert_to_lora=initial)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["r"] == 4  # [A; A0] and [B, -B0]
    assert config["lora_alpha"] == pytest.approx(6 * math.sqrt(2) if use_rslora else 12)  # the same scale s
    back = lora.load_pretrained(_gpt(), tmp_path)  # the original base
    np.testing.assert_allclose(_logits(back), _logits(model), rtol=0, atol=1e-12)
    merged = lora.merge_and_unload(back).transformer.h[0].mlp.c_fc.weight.numpy()
    np.testing.assert_allclose(merged, lora.merge_and_unload(model).transformer.h[0].mlp.c_fc.weight.numpy(),
                               rtol=0, atol=1e-12)


def test_convert_to_lora_reads_a_save_adapter_file(tmp_path) -> None:
    model = _adapted("pissa")
    lora.save_adapter(tmp_path / "initial.npz", model)
    _perturb(model)
    lora.save_pretrained(model, tmp_path / "out", convert_to_lora=tmp_path / "initial.npz")
    np.testing.assert_allclose(_logits(lora.load_pretrained(_gpt(), tmp_path / "out")), _logits(model),
                               rtol=0, atol=1e-12)
    with pytest.raises(lora.AdapterError, match="not a file written by lora.save_adapter"):
        lora.save_pretrained(model, tmp_path / "out", convert_to_lora=tmp_path / "missing.npz")


def test_save_refuses_what_the_layout_cannot_hold(tmp_path) -> None:
    with pytest.raises(lora.AdapterError, match="no adapter named 'other'"):
        lora.save_pretrained(_adapted("lora"), tmp_path, adapter_name="other")
    with pytest.raises(lora.AdapterError, match="vera"):
        lora.save_pretrained(_adapted("vera"), tmp_path)
    model = _adapted("lora")
    with pytest.raises(lora.AdapterError, match="convert_to_lora is for PiSSA"):
        lora.save_pretrained(model, tmp_path, convert_to_lora=lora.adapter_state_dict(model))
    model.transformer.h[0].mlp.c_fc.adapters["default"].dropout.p = 0.3
    with pytest.raises(lora.AdapterError, match="lora_dropout"):
        lora.save_pretrained(model, tmp_path)
    model = _adapted("lora")  # apply_lora keeps its config in model.peft_config: trained biases are refused
    model.__dict__["peft_config"] = {"default": types.SimpleNamespace(bias="lora_only", modules_to_save=None)}
    with pytest.raises(lora.AdapterError, match="bias='lora_only'"):
        lora.save_pretrained(model, tmp_path)
    assert not any(tmp_path.iterdir())


def _write(tmp_path, config_changes: dict | None = None, drop: str | None = None) -> nn.GPT:
    model = _adapted("lora", targets=("c_attn", "c_fc", "mlp.c_proj"))
    _perturb(model)
    lora.save_pretrained(model, tmp_path)
    if config_changes:
        path = tmp_path / "adapter_config.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | config_changes))
    if drop:
        saved = st.load_file(str(tmp_path / "adapter_model.safetensors"))
        del saved[drop]
        (tmp_path / "adapter_model.safetensors").write_bytes(st.save(saved))
    return model


H0, H1 = "transformer.h.0.", "transformer.h.1."


@pytest.mark.parametrize("target, expected", [
    (["c_fc"], [H0 + "mlp.c_fc", H1 + "mlp.c_fc"]),  # a list: a whole name or its last dotted parts
    (["mlp.c_proj"], [H0 + "mlp.c_proj", H1 + "mlp.c_proj"]),
    (["transformer.h.1.attn.c_proj"], [H1 + "attn.c_proj"]),
    ("transformer\\.h\\.1\\..*c_(fc|proj)", [H1 + "attn.c_proj", H1 + "mlp.c_fc", H1 + "mlp.c_proj"]),  # a regex
    ("all-linear", [h + m for h in (H0, H1) for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]),
])
def test_load_follows_peft_target_rules(tmp_path, target, expected) -> None:
    model = _gpt()
    lora.apply_lora(model, "all-linear", r=2, alpha=4, init="random", generator=tg.Generator(2))
    state, config = peft_state_dict(model)
    (tmp_path / "adapter_model.safetensors").write_bytes(st.save(
        {k: v for k, v in state.items() if any(k.startswith("base_model.model." + m + ".") for m in expected)}))
    (tmp_path / "adapter_config.json").write_text(json.dumps(config | {"target_modules": target}))
    back = lora.load_pretrained(_gpt(), tmp_path)
    assert sorted(n for n, _ in lora.lora_layers(back)) == sorted(expected)


def test_layers_to_transform_selects_the_layers_as_in_peft(tmp_path) -> None:
    model = _gpt()
    lora.apply_lora(model, lora.LoraConfig(r=2, target_modules=["c_fc"], layers_to_transform=[1], init="random"),
                    generator=tg.Generator(3))
    lora.save_pretrained(model, tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps(config | {"target_modules": ["c_fc"],
                                                                      "layers_to_transform": [1]}))
    back = lora.load_pretrained(_gpt(), tmp_path)
    assert [n for n, _ in lora.lora_layers(back)] == [H1 + "mlp.c_fc"]
    np.testing.assert_array_equal(_logits(back), _logits(model))


def test_exclude_modules_and_regex_rank_pattern(tmp_path) -> None:
    model = _gpt()
    lora.apply_lora(model, ["c_attn", "c_fc"], r=2, alpha=4, init="random", generator=tg.Generator(2))
    state, config = peft_state_dict(model)
    state = {k: v for k, v in state.items() if ".h.1.mlp.c_fc." not in k}
    (tmp_path / "adapter_model.safetensors").write_bytes(st.save(state))
    config |= {"target_modules": ["c_attn", "c_fc"], "exclude_modules": ["h.1.mlp.c_fc"],
               "alpha_pattern": {"h\\.0\\.mlp\\.c_fc": 8}}
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    back = lora.load_pretrained(_gpt(), tmp_path)
    assert [n for n, _ in lora.lora_layers(back)] == ["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_fc",
                                                      "transformer.h.1.attn.c_attn"]
    assert back.transformer.h[0].mlp.c_fc.adapters["default"].alpha == 8
    assert back.transformer.h[1].attn.c_attn.adapters["default"].alpha == 4


@pytest.mark.parametrize("changes, message", [
    ({"peft_type": "IA3"}, "peft_type"),
    ({"bias": "all"}, "bias='all'"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    # the file also holds layer 1's 3 adapters (a full name in target_modules would skip the layer filter)
    ({"target_modules": ["c_attn", "c_fc", "mlp.c_proj"], "layers_to_transform": [0]}, "unexpected \\(6\\)"),
    ({"init_lora_weights": "pissa_niter_4"}, "rewrites the base weights"),
    ({"target_modules": ["q_proj"]}, "match no Linear layer"),
    ({"r": 3}, "shape"),
    ({"rank_pattern": {"c_fc": 4}}, "expected \\(4, 8\\) \\(r=4\\)"),
])
def test_load_refuses_bad_configs_and_leaves_the_model_unchanged(tmp_path, changes, message) -> None:
    _write(tmp_path, changes)
    model = _gpt()
    before = _logits(model)
    with pytest.raises(lora.AdapterError, match=message):
        lora.load_pretrained(model, tmp_path)
    assert not lora.lora_layers(model)
    np.testing.assert_array_equal(_logits(model), before)


def test_load_names_missing_and_unexpected_tensors(tmp_path) -> None:
    _write(tmp_path, {"target_modules": ["c_attn", "c_fc"]}, drop=f"{PREFIX}0.attn.c_attn.lora_B.weight")
    with pytest.raises(lora.AdapterError) as err:
        lora.load_pretrained(_gpt(), tmp_path)
    assert f"{PREFIX.removeprefix('base_model.model.')}0.attn.c_attn.lora_B.weight" in str(err.value)
    assert "unexpected (4)" in str(err.value)  # the mlp.c_proj tensors, which the config no longer targets


def test_load_refuses_an_existing_adapter_name_and_bad_files(tmp_path) -> None:
    _write(tmp_path)
    model = lora.load_pretrained(_gpt(), tmp_path)
    with pytest.raises(lora.AdapterError, match="already has an adapter named 'default'"):
        lora.load_pretrained(model, tmp_path)
    lora.load_pretrained(model, tmp_path, adapter_name="second")  # under another name it loads
    (tmp_path / "adapter_config.json").write_text("{")
    with pytest.raises(lora.AdapterError, match="not valid JSON"):
        lora.load_pretrained(_gpt(), tmp_path)
    (tmp_path / "adapter_config.json").unlink()
    with pytest.raises(lora.AdapterError, match="adapter_config.json"):
        lora.load_pretrained(_gpt(), tmp_path)


def test_a_non_gpt_model_keeps_its_own_module_names(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(4, 6, dtype="float64"), nn.ReLU(), nn.Linear(6, 3, dtype="float64"))
    lora.apply_lora(model, ["0", "2"], r=2, alpha=2, init="random", generator=tg.Generator(0))
    state, config = peft_state_dict(model)
    assert sorted(state) == ["base_model.model.0.lora_A.weight", "base_model.model.0.lora_B.weight",
                             "base_model.model.2.lora_A.weight", "base_model.model.2.lora_B.weight"]
    assert config["fan_in_fan_out"] is False and config["task_type"] is None
