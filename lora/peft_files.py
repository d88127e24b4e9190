"""LoRA adapters in Hugging Face PEFT's file layout, so they travel between this project and PEFT.

    lora.save_pretrained(model, "my-adapter")      # my-adapter/adapter_model.safetensors + adapter_config.json
    lora.load_pretrained(base_model, "my-adapter") # builds the adapters on base_model's layers and loads them

With a GPT exported by `nn.export_gpt2`, `PeftModel.from_pretrained(GPT2LMHeadModel.from_pretrained(d),
"my-adapter")` computes our logits; an adapter PEFT trained on such a GPT-2 loads here.

The layout (what PEFT's `save_pretrained` writes for a LoRA adapter):
  adapter_model.safetensors   base_model.model.<module>.lora_A.weight          (r, in)
                              base_model.model.<module>.lora_B.weight          (out, r)
                              base_model.model.<module>.lora_magnitude_vector  (out,)   DoRA only
                              <module> is the layer's name in the transformers model (`nn.hf_module_name`:
                              for our GPT the same dotted name), and the adapter's own name is not in the keys.
  adapter_config.json         a LoraConfig: peft_type "LORA", r, lora_alpha, lora_dropout, target_modules,
                              use_rslora, use_dora, rank_pattern / alpha_pattern (layers whose r or α differs
                              from the common one; each key a regex matched at the end of a module name),
                              fan_in_fan_out (True for GPT-2, whose Conv1D weights are stored (in, out): it
                              changes nothing in the saved A and B, which have the same shapes as ours).

Scales: ΔW = s·B·A with s = α/r, or α/√r with use_rslora (Kalajdzievski 2023), as in `lora_scale`.

PiSSA and OLoRA adapters change the base weight (it holds the residual W_res = W0 - s·B0·A0), so
their A and B alone mean nothing on the original base. As PEFT offers
(`path_initial_model_for_weight_conversion`), they are saved converted to a plain LoRA adapter on
the original W0: the trained adapted weight is W_res + s·B·A = W0 + s·(B·A - B0·A0), and

    A' = [A; A0] (2r, in),   B' = [B, -B0] (out, 2r),   r' = 2r,   α' = 2α (α·√2 with rsLoRA)

keep s' = s, so s'·B'·A' = s·(B·A - B0·A0). Pass the adapter's initial values (A0, B0), taken right
after `apply_lora`, as `convert_to_lora`.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import nn
import tinygrad_lite as tg
from nn import Linear, Module
from nn.files import atomic_write_bytes, atomic_write_text
from nn.hf_gpt2 import hf_module_name, read_safetensors, require_safetensors

from .adapter import LoRALinear
from .apply import AdapterError, apply_lora, lora_layers, peft_configs
from .config import LoraConfig
from .quant import NF4Linear
from .targets import find_targets, layer_ranks

WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"
PREFIX = "base_model.model."  # PEFT's path to the wrapped transformers model inside a PeftModel
SAVABLE = ("lora", "rslora", "dora", "qlora")  # saved as they are; pissa / olora are converted first
CONVERTED = ("pissa", "olora")
# LoraConfig options that change what the layers compute in ways we do not model: refused on load.
_UNSUPPORTED = ("modules_to_save", "trainable_token_indices", "alora_invocation_tokens",
                "layer_replication", "target_parameters", "megatron_config", "use_qalora", "lora_bias", "use_bdlora",
                "arrow_config", "kasa_config", "monteclora_config", "velora_config")
# init_lora_weights values with which PEFT rewrites the base weight when it loads the adapter.
_MUTATING_INITS = ("pissa", "olora", "corda", "loftq", "lora_ga")


def _module_names(model: Module) -> dict[str, str]:
    """Our dotted name -> the transformers name, for every Linear-like layer (identity off a GPT).
    In a GPT, Linears that GPT-2 does not have (inside wrappers of other helpers) are left out."""
    names = [n for n, m in model.named_modules() if isinstance(m, (Linear, NF4Linear, LoRALinear))
             and not n.endswith(".base")]
    if not isinstance(model, nn.GPT):
        return {n: n for n in names}
    out = {}
    for n in names:
        try:
            out[n] = hf_module_name(n)
        except ValueError:
            continue
    return out


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def _common(values: dict[str, Any]) -> Any:
    """The most frequent value (ties: the first seen), which goes into r / lora_alpha."""
    return Counter(values.values()).most_common(1)[0][0]


def _initial_state(convert_to_lora: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The initial adapter as {our parameter name: array}; a path is a file from lora.save_adapter."""
    if isinstance(convert_to_lora, Mapping):
        return {k: np.asarray(v) for k, v in convert_to_lora.items()}
    try:
        with np.load(Path(convert_to_lora), allow_pickle=False) as f:
            if "__meta__" not in f.files:
                raise KeyError("__meta__")
            return {k: f[k] for k in f.files if k != "__meta__"}
    except (OSError, ValueError, KeyError) as e:
        raise AdapterError(f"save_pretrained: convert_to_lora={str(convert_to_lora)!r} is not a file written by "
                           f"lora.save_adapter ({e})") from e


def peft_state_dict(model: Module, adapter_name: str = "default",
                    convert_to_lora: Mapping[str, Any] | str | os.PathLike[str] | None = None,
                    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Adapter `adapter_name` as PEFT stores it: ({key: array}, the adapter_config.json dict).

    convert_to_lora: for PiSSA / OLoRA, the adapter's initial weights (`lora.adapter_state_dict(model,
    name)` right after `apply_lora`, or a `lora.save_adapter` file written then)."""
    layers = [(n, layer) for n, layer in lora_layers(model) if adapter_name in layer.adapters]
    if not layers:
        raise AdapterError(f"save_pretrained: the model has no adapter named {adapter_name!r}")
    stored = getattr(model, "peft_config", {}).get(adapter_name)  # the config apply_lora kept, if any
    extras = [f"{k}={getattr(stored, k)!r}" for k, off in (("bias", "none"), ("modules_to_save", None))
              if stored is not None and getattr(stored, k, off) not in (off, [])]
    if extras:
        raise AdapterError(f"save_pretrained: adapter {adapter_name!r} also trains {', '.join(extras)}; only LoRA "
                           "weights are written in PEFT's layout so far")
    hf_names = _module_names(model)
    adapters = {n: layer.adapters[adapter_name] for n, layer in layers}
    methods = {a.method for a in adapters.values()}
    unsupported = sorted(methods - set(SAVABLE) - set(CONVERTED))
    if unsupported:
        raise AdapterError(f"save_pretrained: PEFT's LoRA layout has no place for method(s) {unsupported}; "
                           f"it holds {SAVABLE + CONVERTED}")
    converting = bool(methods & set(CONVERTED))
    if converting and convert_to_lora is None:
        raise AdapterError(f"save_pretrained: a {'/'.join(sorted(methods & set(CONVERTED)))} adapter changed the base "
                           "weights, so its A and B only make sense on the residual base. Pass its initial weights "
                           "(convert_to_lora=lora.adapter_state_dict(model, name), taken right after apply_lora) to "
                           "save it as plain LoRA on the original base")
    if not converting and convert_to_lora is not None:
        raise AdapterError(f"save_pretrained: convert_to_lora is for PiSSA / OLoRA adapters; {adapter_name!r} is "
                           f"{sorted(methods)}")
    for what, values in (("use_rslora", {a.use_rslora for a in adapters.values()}),
                         ("use_dora", {a.method == "dora" for a in adapters.values()}),
                         ("lora_dropout", {a.dropout.p for a in adapters.values()})):
        if len(values) > 1:
            raise AdapterError(f"save_pretrained: PEFT keeps one {what} per adapter; the layers of {adapter_name!r} "
                               f"mix {sorted(values)}")
    initial = _initial_state(convert_to_lora) if converting else {}
    if initial:  # accept keys under any adapter name: compare on the part after it
        initial = {re.sub(r"\.adapters\.[^.]+\.", ".adapters.<initial>.", k): v for k, v in initial.items()}
    state: dict[str, np.ndarray] = {}
    ranks: dict[str, int] = {}
    alphas: dict[str, float] = {}
    for name, adapter in adapters.items():
        if name not in hf_names:
            raise AdapterError(f"save_pretrained: layer {name} has no counterpart in transformers' GPT-2")
        module = PREFIX + hf_names[name]
        a, b = adapter.A.numpy(), adapter.B.numpy()
        r, alpha = adapter.r, adapter.alpha
        if adapter.method in CONVERTED:
            a0 = initial.get(f"{name}.adapters.<initial>.A")
            b0 = initial.get(f"{name}.adapters.<initial>.B")
            if a0 is None or b0 is None or a0.shape != a.shape or b0.shape != b.shape:
                raise AdapterError(f"save_pretrained: convert_to_lora has no initial A {a.shape} and B {b.shape} "
                                   f"for layer {name} (keys like {name}.adapters.{adapter_name}.A)")
            a = np.concatenate([a, a0.astype(a.dtype)], axis=0)
            b = np.concatenate([b, -b0.astype(b.dtype)], axis=1)
            r, alpha = 2 * r, alpha * (math.sqrt(2) if adapter.use_rslora else 2)  # the scale s stays the same
        state[module + ".lora_A.weight"] = np.ascontiguousarray(a)
        state[module + ".lora_B.weight"] = np.ascontiguousarray(b)
        if adapter.method == "dora":
            state[module + ".lora_magnitude_vector"] = adapter.magnitude.numpy().copy()
        ranks[hf_names[name]], alphas[hf_names[name]] = r, alpha
    first = next(iter(adapters.values()))
    r_common, alpha_common = _common(ranks), _common(alphas)
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM" if isinstance(model, nn.GPT) else None,
        "base_model_name_or_path": None, "inference_mode": True,
        "r": r_common, "lora_alpha": _number(alpha_common), "lora_dropout": first.dropout.p,
        "target_modules": sorted(ranks), "exclude_modules": None,
        "rank_pattern": {k: v for k, v in ranks.items() if v != r_common},
        "alpha_pattern": {k: _number(v) for k, v in alphas.items() if v != alpha_common},
        "use_rslora": first.use_rslora, "use_dora": first.method == "dora",
        "fan_in_fan_out": isinstance(model, nn.GPT),  # GPT-2's Conv1D; PEFT fixes it per layer (lm_head is a Linear)
        "bias": "none", "lora_bias": False, "modules_to_save": None, "init_lora_weights": True,
        "layers_to_transform": None, "layers_pattern": None,
    }
    return state, config


def save_pretrained(model: Module, directory: str | os.PathLike[str], adapter_name: str = "default",
                    convert_to_lora: Mapping[str, Any] | str | os.PathLike[str] | None = None) -> Path:
    """Write adapter `adapter_name` in PEFT's layout: `directory`/adapter_model.safetensors and
    adapter_config.json (each atomically). See `peft_state_dict` for convert_to_lora. Returns the folder."""
    st = require_safetensors()
    state, config = peft_state_dict(model, adapter_name, convert_to_lora)
    directory = Path(directory)
    if directory.is_file():
        raise ValueError(f"save_pretrained: {str(directory)!r} is a file; give a folder")
    atomic_write_bytes(directory / WEIGHTS_NAME, st.save(state, metadata={"format": "pt"}))
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


# ---------------------------------------------------------------------------------------- loading
def read_adapter_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """adapter_config.json, checked for options we cannot represent (AdapterError naming them)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise AdapterError(f"load_pretrained: {str(path)!r} does not exist")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AdapterError(f"load_pretrained: {str(path)!r} is not valid JSON ({e})") from e
    problems = []
    if config.get("peft_type") != "LORA":
        problems.append(f"peft_type is {config.get('peft_type')!r}; only 'LORA' (with rsLoRA and DoRA) loads here")
    if config.get("bias", "none") != "none":
        problems.append(f"bias={config['bias']!r} trains base biases too; only bias='none' is supported")
    problems += [f"{k}={config[k]!r} is not supported" for k in _UNSUPPORTED if config.get(k)]
    init = str(config.get("init_lora_weights", True)).lower()
    if init.startswith(_MUTATING_INITS):
        problems.append(f"init_lora_weights={config['init_lora_weights']!r} rewrites the base weights on load; "
                        "convert it to plain LoRA in PEFT first (save_pretrained(..., "
                        "path_initial_model_for_weight_conversion=...))")
    for key in ("r", "lora_alpha"):
        if not isinstance(config.get(key, 8), (int, float)):
            problems.append(f"{key} is {config.get(key)!r}, expected a number")
    if problems:
        raise AdapterError(f"load_pretrained: {str(path)!r} describes an adapter we cannot represent:\n  "
                           + "\n  ".join(problems))
    return config


def _lora_config(config: dict[str, Any]) -> LoraConfig:
    """Our LoraConfig for a PEFT adapter_config.json (already checked by read_adapter_config)."""
    if config.get("target_modules") is None:
        raise AdapterError("load_pretrained: adapter_config.json has no target_modules")
    fields = {k: config[k] for k in ("r", "lora_alpha", "target_modules", "exclude_modules", "lora_dropout",
                                     "use_rslora", "use_dora", "layers_to_transform", "layers_pattern")
              if config.get(k) is not None}
    try:
        return LoraConfig(rank_pattern=dict(config.get("rank_pattern") or {}),
                          alpha_pattern=dict(config.get("alpha_pattern") or {}), **fields)
    except (TypeError, ValueError) as e:
        raise AdapterError(f"load_pretrained: adapter_config.json: {e}") from e


def load_pretrained(model: Module, directory: str | os.PathLike[str], adapter_name: str = "default") -> Module:
    """Load a PEFT LoRA adapter folder into `model` as a new adapter `adapter_name` on the layers
    its adapter_config.json targets, make it the active (and only trainable) adapter, and return
    the model. The layers are chosen by the same rules as apply_lora's (lora/targets.py, which are
    PEFT's). Everything (config, keys, shapes) is checked first: on a mismatch AdapterError names
    every problem and the model is unchanged."""
    config = _lora_config(read_adapter_config(directory))
    arrays = read_safetensors(Path(directory) / WEIGHTS_NAME)
    arrays = {k.removeprefix(PREFIX): v for k, v in arrays.items()}  # some writers leave the prefix out
    hf_names = _module_names(model)
    try:
        targets = find_targets(model, config)
        ranks = layer_ranks(targets, config)
    except ValueError as e:
        raise AdapterError(f"load_pretrained: the adapter in {str(directory)!r} does not fit this model: {e}") from e
    modules = dict(model.named_modules())
    suffixes = (".lora_A.weight", ".lora_B.weight") + ((".lora_magnitude_vector",) if config.use_dora else ())
    expected = {hf_names[t] + s for t in targets for s in suffixes}
    problems = []
    if not targets:
        problems.append(f"target_modules {config.target_modules!r} select none of the model's layers "
                        f"{sorted(hf_names)}")
    missing, unexpected = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
    if missing:
        problems.append(f"missing ({len(missing)}): {missing}")
    if unexpected:
        problems.append(f"unexpected ({len(unexpected)}): {unexpected}")
    for name in targets:
        hf, layer, (r, _) = hf_names[name], modules[name], ranks[name]
        shapes = {".lora_A.weight": (r, layer.in_features), ".lora_B.weight": (layer.out_features, r),
                  ".lora_magnitude_vector": (layer.out_features,)}
        for s in suffixes:
            got = arrays.get(hf + s)
            if got is not None and got.shape != shapes[s]:
                problems.append(f"{hf}{s}: shape {got.shape}, expected {shapes[s]} (r={r})")
            if got is not None and got.dtype.kind != "f":
                problems.append(f"{hf}{s}: dtype {got.dtype}, expected a float dtype")
        if isinstance(layer, LoRALinear) and adapter_name in layer.adapters:
            problems.append(f"{name} already has an adapter named {adapter_name!r}")
    if adapter_name in peft_configs(model):
        problems.append(f"the model has an adapter named {adapter_name!r} already")
        if config.use_dora and isinstance(layer.base if isinstance(layer, LoRALinear) else layer, NF4Linear):
            problems.append(f"{name}: DoRA on an NF4 base is not supported")
    if problems:
        raise AdapterError(f"load_pretrained: the adapter in {str(directory)!r} does not fit this model:\n  "
                           + "\n  ".join(problems))
    # The adapters' random init is overwritten below: a private generator keeps the global one untouched.
    apply_lora(model, config, adapter_name=adapter_name, generator=tg.Generator(0))
    modules = dict(model.named_modules())
    with tg.no_grad():
        for name in targets:
            hf, adapter = hf_names[name], modules[name].adapters[adapter_name]
            adapter.A.copy_(arrays[hf + ".lora_A.weight"].astype(adapter.A.dtype))
            adapter.B.copy_(arrays[hf + ".lora_B.weight"].astype(adapter.B.dtype))
            if config.use_dora:
                adapter.magnitude.copy_(arrays[hf + ".lora_magnitude_vector"].astype(adapter.magnitude.dtype))
    return model
