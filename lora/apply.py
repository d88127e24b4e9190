"""Putting adapters into a model, switching them, merging them away, saving them.

    model = nn.GPT(config)                                   # pretrained
    apply_lora(model, LoraConfig(r=8, lora_alpha=16, target_modules=["c_attn", "c_proj"]))
    apply_lora(model, "all-linear", r=8, alpha=16)           # the short keyword form (alpha=16 default)
    # ... train: only the adapters' parameters have requires_grad ...
    save_adapter("adapter.npz", model)           # a few KB, validated when loaded back
    plain = merge_and_unload(model)              # a normal nn.GPT with W0 + ΔW in its Linears

Which layers a config selects (lists, regexes, "all-linear", layers_to_transform, rank_pattern):
lora/targets.py, with PEFT's rules. The configs of a model's adapters are kept in
`model.peft_config` ({adapter name: LoraConfig}), as on a PEFT model.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_lite as tg
from nn import Linear, Module, ModuleDict, ModuleList, Parameter
from nn.files import atomic_write_bytes

from .adapter import BASE, LoRAAdapter, LoRALinear
from .config import METHODS, LoraConfig  # noqa: F401  (METHODS: re-exported, `from lora.apply import METHODS`)
from .dora import DoRAAdapter, base_weight
from .init import init_from_weight
from .modules_to_save import ModulesToSave
from .quant import NF4Linear
from .targets import find_targets, layer_ranks, saved_module_names
from .vera import SharedProjections, VeRAAdapter

ADAPTER_FORMAT = "tglite-lora-adapter/1"


class AdapterError(ValueError):
    """A saved adapter does not fit the model (missing layers, other rank or method, shapes)."""


def _parent(model: Module, name: str) -> tuple[Module, str]:
    *path, leaf = name.split(".")
    parent = model
    for part in path:
        parent = parent[int(part)] if isinstance(parent, ModuleList) else (
            parent[part] if isinstance(parent, ModuleDict) else getattr(parent, part))
    return parent, leaf


def _set_child(model: Module, name: str, module: Module) -> None:
    parent, leaf = _parent(model, name)
    if isinstance(parent, ModuleList):
        parent._items[int(leaf)] = module
    elif isinstance(parent, ModuleDict):
        parent[leaf] = module
    else:
        setattr(parent, leaf, module)


def lora_layers(model: Module) -> list[tuple[str, LoRALinear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]


def saved_modules(model: Module) -> list[tuple[str, ModulesToSave]]:
    """The modules_to_save wrappers of `model` (see lora/modules_to_save.py)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, ModulesToSave)]


def peft_configs(model: Module) -> dict[str, LoraConfig]:
    """{adapter name: LoraConfig} of the adapters apply_lora put into `model` (empty if none)."""
    return getattr(model, "peft_config", {})


def record_config(model: Module, adapter_name: str, config: LoraConfig) -> None:
    """Keep `config` as adapter `adapter_name`'s, in model.peft_config."""
    if not hasattr(model, "peft_config"):
        model.peft_config = {}
    model.peft_config[adapter_name] = config


def apply_lora(model: Module, config: LoraConfig | str | Sequence[str] = "all-linear", *,
               adapter_name: str = "default", generator: tg.Generator | None = None, **keywords: Any) -> Module:
    """Add adapter `adapter_name` to `model` (in place) as `config` says, make it the active one
    (only its parameters are trainable) and return the model. A second call adds another adapter.

        apply_lora(model, LoraConfig(r=8, target_modules=["c_attn"], bias="lora_only"))
        apply_lora(model, ["c_attn"], r=8, alpha=16)        # the short form: LoraConfig.from_keywords

    The short form takes target_modules plus the keywords of `LoraConfig.from_keywords` (r, alpha,
    dropout, method, use_rslora, init, detach_norm, vera_seed, d_init, exclude). Nothing is printed:
    `trainable_summary(model)` returns the trainable / total parameter counts."""
    if isinstance(config, LoraConfig):
        if keywords:
            raise TypeError(f"apply_lora: got a LoraConfig and the keywords {sorted(keywords)}; set them in the "
                            "LoraConfig instead")
    else:
        short_form = list(inspect.signature(LoraConfig.from_keywords).parameters)
        unknown = sorted(set(keywords) - set(short_form))
        if unknown:
            raise TypeError(f"apply_lora: unknown keywords {unknown}; the short form takes {short_form}, and every "
                            "other option (PEFT's names: lora_alpha, bias, modules_to_save, ...) goes in a LoraConfig")
        if "target_modules" in keywords and config != "all-linear":  # the second argument's old name
            raise TypeError("apply_lora: target_modules given twice (as the second argument and as a keyword)")
        config = LoraConfig.from_keywords(**{"target_modules": config, **keywords})
    if adapter_name == BASE or not adapter_name.isidentifier():
        raise ValueError(f"apply_lora: adapter_name must be an identifier other than {BASE!r}, got {adapter_name!r}")
    if adapter_name in peft_configs(model) or any(adapter_name in m.adapters for _, m in lora_layers(model)):
        raise ValueError(f"apply_lora: the model has an adapter named {adapter_name!r} already; "
                         "pick another adapter_name or delete_adapter it first")
    names = find_targets(model, config)
    if not names:
        raise ValueError("apply_lora: no Linear layer to adapt (all selected layers are excluded or saved whole)")
    ranks = layer_ranks(names, config)
    saved = saved_module_names(model, config)
    method = config.method
    modules = dict(model.named_modules())
    shared = None
    if method == "vera":
        shapes = [(modules[n].out_features, modules[n].in_features) for n in names]
        shared = SharedProjections(config.r, max(s[1] for s in shapes), max(s[0] for s in shapes), config.vera_seed,
                                   base_weight(_base_of(modules[names[0]])).dtype)
    for name in names:
        layer = modules[name]
        if not isinstance(layer, LoRALinear):
            base = NF4Linear(layer) if method == "qlora" and isinstance(layer, Linear) else layer
            layer = LoRALinear(base)
            _set_child(model, name, layer)
        elif method in ("pissa", "olora", "qlora") and layer.adapters:
            raise ValueError(f"apply_lora: {method} rewrites the base weight of {name}, which already has "
                             f"adapters {list(layer.adapters.keys())}; apply it first or alone")
        layer.add_adapter(adapter_name, _make_adapter(layer, config, *ranks[name], shared, generator))
    for name in saved:
        wrapper = modules[name]
        if not isinstance(wrapper, ModulesToSave):
            wrapper = ModulesToSave(wrapper)
            _set_child(model, name, wrapper)
        wrapper.add_copy(adapter_name)
    record_config(model, adapter_name, config)
    set_adapter(model, adapter_name)
    return model


def _make_adapter(layer: LoRALinear, config: LoraConfig, r: int, alpha: float, shared: SharedProjections | None,
                  generator: tg.Generator | None) -> LoRAAdapter:
    """One layer's adapter of rank r and scale α/r (α/√r with rsLoRA), of the config's method."""
    method = config.method
    kw: dict[str, Any] = {"dtype": base_weight(layer.base).dtype, "generator": generator}
    if method == "dora":
        adapter: LoRAAdapter = DoRAAdapter(layer.base, r, alpha, config.lora_dropout, config.use_rslora, config.init,
                                           config.detach_norm, **kw)
    elif method == "vera":
        assert shared is not None
        adapter = VeRAAdapter(layer.in_features, layer.out_features, shared, config.lora_dropout, config.d_init,
                              config.init, **kw)
    else:
        adapter = LoRAAdapter(layer.in_features, layer.out_features, r, alpha, config.lora_dropout, config.use_rslora,
                              config.init, **kw)
    if method in ("pissa", "olora"):
        w = layer.base.weight
        with tg.no_grad():
            w.copy_(init_from_weight(adapter, w.data, method))
    adapter.method = method if method in ("pissa", "olora", "qlora", "rslora") else adapter.method
    return adapter


def _base_of(m: Module) -> Module:
    return m.base if isinstance(m, LoRALinear) else m


def count_parameters(model: Module) -> tuple[int, int]:
    """(trainable, total) parameter counts (NF4 weights count as their number of weights)."""
    trainable = sum(p.size for p in model.parameters() if p.requires_grad)
    total = sum(p.size for p in model.parameters())
    total += sum(m.qweight.numel for m in model.modules() if isinstance(m, NF4Linear))
    return trainable, total


def trainable_summary(model: Module) -> str:
    t, n = count_parameters(model)
    return f"trainable params: {t:,} || all params: {n:,} || trainable: {100 * t / n:.3f}%"


# ------------------------------------------------------------- switching
def adapter_names(model: Module) -> list[str]:
    """Every adapter name in `model`, in the order the adapters were added."""
    names = list(peft_configs(model))
    for _, layer in lora_layers(model):
        names += [k for k in layer.adapters.keys() if k not in names]
    return names


def _trainable_biases(model: Module, name: str) -> dict[str, Parameter]:
    """The biases that adapter `name` trains (and saves): its config's `bias` says which.
    "all": every bias of the model outside adapters and saved copies; "lora_only": the biases of
    the layers the adapter adapts; "none": none."""
    config = peft_configs(model).get(name)
    if config is None or config.bias == "none":
        return {}
    if config.bias == "lora_only":
        return {f"{n}.base.bias".lstrip("."): layer.base.bias for n, layer in lora_layers(model)
                if name in layer.adapters and getattr(layer.base, "bias", None) is not None}
    inside = (".adapters.", ".modules_to_save.", ".original_module.")
    return {n: p for n, p in model.named_parameters()
            if n.rsplit(".", 1)[-1] == "bias" and not any(part in "." + n for part in inside)}


def set_adapter(model: Module, name: str) -> None:
    """Make `name` the active adapter of every adapted layer (and saved module); only its
    parameters (adapters, saved copies, and the biases its config trains) are trainable."""
    layers = lora_layers(model)
    if name not in adapter_names(model):
        raise KeyError(f"set_adapter: no adapter named {name!r}; the model has {adapter_names(model)}")
    model.requires_grad_(False)
    for _, layer in layers:
        if name in layer.adapters:
            layer.active = name
            layer.adapters[name].requires_grad_(True)
        else:
            layer.active = None  # this layer has no such adapter: it acts as its base
    for _, wrapper in saved_modules(model):
        wrapper.active = name if name in wrapper.modules_to_save else None  # None: the original runs
        if wrapper.active is not None:
            wrapper.modules_to_save[name].requires_grad_(True)
    for p in _trainable_biases(model, name).values():
        p.requires_grad_(True)


@contextlib.contextmanager
def disable_adapter(model: Module) -> Iterator[Module]:
    """`with disable_adapter(model): ...` runs the base model (the adapters stay in place). Biases
    trained with bias="all" / "lora_only" stay as trained: they are part of the base model."""
    layers = [layer for _, layer in lora_layers(model)] + [w for _, w in saved_modules(model)]
    before = [layer.disabled for layer in layers]
    for layer in layers:
        layer.disabled = True
    try:
        yield model
    finally:
        for layer, was in zip(layers, before):
            layer.disabled = was


def delete_adapter(model: Module, name: str) -> None:
    """Remove adapter `name` (its weights, saved copies and config) from `model`. If it was the
    active one, the first remaining adapter becomes active (as in PEFT); with none left, the
    model runs as its base model and nothing is trainable."""
    if name not in adapter_names(model):
        raise KeyError(f"delete_adapter: no adapter named {name!r}; the model has {adapter_names(model)}")
    layers = lora_layers(model)
    merged = [n for n, layer in layers if layer.merged == name]
    if merged:
        raise RuntimeError(f"delete_adapter: adapter {name!r} is merged into {merged}; unmerge(model) first")
    was_active = any(layer.active == name for _, layer in layers)
    for _, layer in layers:
        if name in layer.adapters:
            layer.delete_adapter(name)
    for _, wrapper in saved_modules(model):
        wrapper.delete_copy(name)
    peft_configs(model).pop(name, None)
    remaining = adapter_names(model)
    if was_active and remaining:
        set_adapter(model, remaining[0])
    elif not remaining:
        model.requires_grad_(False)


def merge(model: Module) -> None:
    for _, layer in lora_layers(model):
        if layer.active is not None:
            layer.merge()


def unmerge(model: Module) -> None:
    for _, layer in lora_layers(model):
        if layer.merged is not None:
            layer.unmerge()


def merge_and_unload(model: Module) -> Module:
    """Fold the active adapters into the weights and put plain nn.Linear layers back (NF4 bases
    are dequantized first); a saved module becomes its active adapter's trained copy. Returns the
    same model object, now without any adapter, all parameters restored to requires_grad=True."""
    for name, layer in lora_layers(model):
        if isinstance(layer.base, NF4Linear):
            layer.base = layer.base.to_linear()
        if layer.active is not None and layer.merged is None:
            layer.merge()
        _set_child(model, name, layer.base)
    for name, wrapper in saved_modules(model):
        _set_child(model, name, wrapper.module_for(wrapper.active))
    if hasattr(model, "peft_config"):
        del model.peft_config
    model.requires_grad_(True)
    return model


def unload(model: Module) -> Module:
    """Remove every adapter without merging: merged layers are unmerged, each adapted layer is
    replaced by its base layer (an NF4 base stays quantized) and each saved module by its original
    (PEFT's unload keeps the active trained copy instead: use merge_and_unload for that). Returns the
    same model object, all parameters requires_grad=True. PiSSA / OLoRA bases keep their residual
    weight, and biases trained with bias="all" / "lora_only" keep their trained values."""
    for name, layer in lora_layers(model):
        if layer.merged is not None:
            layer.unmerge()
        _set_child(model, name, layer.base)
    for name, wrapper in saved_modules(model):
        _set_child(model, name, wrapper.original_module)
    if hasattr(model, "peft_config"):
        del model.peft_config
    model.requires_grad_(True)
    return model


# ------------------------------------------------------------ saving
def adapter_state_dict(model: Module, name: str = "default") -> dict[str, np.ndarray]:
    """The parameters of adapter `name` only, keyed by their dotted names in the model: its adapter
    weights, its copies of saved modules, and the biases its config trains (bias="all" / "lora_only")."""
    markers = (f".adapters.{name}.", f".modules_to_save.{name}.")
    state = {k: p.numpy().copy() for k, p in model.named_parameters() if any(m in "." + k for m in markers)}
    if not state:
        raise KeyError(f"adapter_state_dict: the model has no adapter named {name!r}")
    state.update({k: p.numpy().copy() for k, p in _trainable_biases(model, name).items()})
    return state


def adapter_config(model: Module, name: str = "default") -> dict[str, Any]:
    return {layer_name: layer.adapters[name].config() for layer_name, layer in lora_layers(model)
            if name in layer.adapters}


def load_adapter_state_dict(model: Module, state: dict[str, Any], name: str = "default",
                            config: dict[str, Any] | None = None) -> None:
    """Copy saved adapter weights into adapter `name`. Everything is validated first (same keys,
    shapes and, when given, per-layer configs); on any mismatch AdapterError names it all and
    nothing changes."""
    ours = dict(model.named_parameters())
    expected = adapter_state_dict(model, name)
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing ({len(missing)}): {missing}")
    if unexpected:
        problems.append(f"unexpected ({len(unexpected)}): {unexpected}")
    for k in sorted(set(expected) & set(state)):
        if tuple(np.shape(state[k])) != expected[k].shape:
            problems.append(f"{k}: saved shape {tuple(np.shape(state[k]))}, model {expected[k].shape}")
    if config is not None:
        current = adapter_config(model, name)
        for layer_name in sorted(set(config) | set(current)):
            if config.get(layer_name) != current.get(layer_name):
                problems.append(f"{layer_name}: saved config {config.get(layer_name)}, model {current.get(layer_name)}")
    if problems:
        raise AdapterError(f"the saved adapter does not fit adapter {name!r} of this model:\n  "
                           + "\n  ".join(problems))
    with tg.no_grad():
        for k in expected:
            ours[k].copy_(np.asarray(state[k], dtype=ours[k].dtype))


def save_adapter(path: str | Path, model: Module, name: str = "default") -> Path:
    """Write adapter `name` (weights + per-layer config) atomically as .npz."""
    arrays = adapter_state_dict(model, name)
    meta: dict[str, Any] = {"format": ADAPTER_FORMAT, "name": name, "config": adapter_config(model, name)}
    if name in peft_configs(model):
        meta["lora_config"] = peft_configs(model)[name].to_dict()  # for the reader; the checks use "config"
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_adapter(path: str | Path, model: Module, name: str = "default") -> None:
    """Load a file written by save_adapter into adapter `name` (which must exist with the same config)."""
    try:
        with np.load(Path(path)) as f:
            meta = json.loads(bytes(f["__meta__"]).decode())
            state = {k: f[k] for k in f.files if k != "__meta__"}
    except (OSError, ValueError, KeyError) as e:
        raise AdapterError(f"load_adapter: {path} is not a readable adapter file ({e})") from e
    if meta.get("format") != ADAPTER_FORMAT:
        raise AdapterError(f"load_adapter: {path} has format {meta.get('format')!r}, expected {ADAPTER_FORMAT!r}")
    saved_name = meta["name"]
    state = {k.replace(f".adapters.{saved_name}.", f".adapters.{name}.")
             .replace(f".modules_to_save.{saved_name}.", f".modules_to_save.{name}."): v for k, v in state.items()}
    load_adapter_state_dict(model, state, name, meta["config"])
