"""Putting adapters into a model, switching them, merging them away, saving them.

    model = nn.GPT(config)                       # pretrained
    apply_lora(model, "all-linear", r=8, alpha=16)  # silent; trainable_summary(model) returns the counts
    # ... train: only the adapters' parameters have requires_grad ...
    save_adapter("adapter.npz", model)           # a few KB, validated when loaded back
    plain = merge_and_unload(model)              # a normal nn.GPT with W0 + ΔW in its Linears

Targets are chosen by name: a pattern matches a Linear whose dotted name equals it, ends with
".pattern", or matches it as a glob ("transformer.h.*.attn.c_attn"). "all-linear" takes every
Linear except the LM head (whose weight is tied to the token embedding in our GPT).
"""
from __future__ import annotations

import contextlib
import fnmatch
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_lite as tg
from nn import Linear, Module, ModuleDict, ModuleList
from nn.files import atomic_write_bytes

from .adapter import LoRAAdapter, LoRALinear
from .dora import DoRAAdapter, base_weight
from .init import init_from_weight
from .quant import NF4Linear
from .vera import SharedProjections, VeRAAdapter

METHODS = ("lora", "rslora", "dora", "pissa", "olora", "qlora", "vera")
ADAPTER_FORMAT = "tglite-lora-adapter/1"


class AdapterError(ValueError):
    """A saved adapter does not fit the model (missing layers, other rank or method, shapes)."""


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.endswith("." + pattern) or fnmatch.fnmatchcase(name, pattern)


def find_targets(model: Module, target_modules: str | Sequence[str] = "all-linear",
                 exclude: Sequence[str] = ("lm_head",)) -> list[str]:
    """Dotted names of the Linear layers (plain or already adapted) that the patterns select."""
    linears = [n for n, m in model.named_modules() if isinstance(m, (Linear, NF4Linear, LoRALinear))
               and not n.endswith(".base")]
    if target_modules == "all-linear":
        return [n for n in linears if not any(_matches(n, e) for e in exclude)]
    patterns = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    chosen = [n for n in linears if any(_matches(n, p) for p in patterns)]
    unused = [p for p in patterns if not any(_matches(n, p) for n in linears)]
    if unused:
        raise ValueError(f"apply_lora: pattern(s) {unused} match no Linear layer; the Linear layers are {linears}")
    return chosen


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


def apply_lora(model: Module, target_modules: str | Sequence[str] = "all-linear", r: int = 8, alpha: float = 16.0,
               dropout: float = 0.0, method: str = "lora", adapter_name: str = "default", use_rslora: bool = False,
               init: str = "uniform", detach_norm: bool = True, vera_seed: int = 0, d_init: float = 0.1,
               exclude: Sequence[str] = ("lm_head",), generator: tg.Generator | None = None) -> Module:
    """Wrap the target Linears of `model` (in place) with an adapter called `adapter_name`, freeze
    everything else, and return the model. method: lora, rslora (= lora with use_rslora), dora,
    pissa, olora, qlora (NF4 base + LoRA), vera. A second call adds another named adapter.
    Nothing is printed: `trainable_summary(model)` returns the trainable / total parameter counts."""
    if method not in METHODS:
        raise ValueError(f"apply_lora: unknown method {method!r}; choose one of {METHODS}")
    use_rslora = use_rslora or method == "rslora"
    names = find_targets(model, target_modules, exclude)
    if not names:
        raise ValueError("apply_lora: no Linear layer to adapt")
    modules = dict(model.named_modules())
    shared = None
    if method == "vera":
        shapes = [(modules[n].out_features, modules[n].in_features) for n in names]
        shared = SharedProjections(r, max(s[1] for s in shapes), max(s[0] for s in shapes), vera_seed,
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
        dtype = base_weight(layer.base).dtype
        kw: dict[str, Any] = {"dtype": dtype, "generator": generator}
        if method == "dora":
            adapter: LoRAAdapter = DoRAAdapter(layer.base, r, alpha, dropout, use_rslora, init, detach_norm, **kw)
        elif method == "vera":
            assert shared is not None
            adapter = VeRAAdapter(layer.in_features, layer.out_features, shared, dropout, d_init, init, **kw)
        else:
            adapter = LoRAAdapter(layer.in_features, layer.out_features, r, alpha, dropout, use_rslora, init, **kw)
        if method in ("pissa", "olora"):
            w = layer.base.weight
            w.data[...] = init_from_weight(adapter, w.data, method)
        adapter.method = method if method in ("pissa", "olora", "qlora", "rslora") else adapter.method
        layer.add_adapter(adapter_name, adapter)
    set_adapter(model, adapter_name)
    return model


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
def set_adapter(model: Module, name: str) -> None:
    """Make `name` the active adapter of every adapted layer; only its parameters are trainable."""
    layers = lora_layers(model)
    if not any(name in layer.adapters for _, layer in layers):
        known = sorted({k for _, layer in layers for k in layer.adapters.keys()})
        raise KeyError(f"set_adapter: no adapter named {name!r}; the model has {known}")
    model.requires_grad_(False)
    for _, layer in layers:
        if name in layer.adapters:
            layer.active = name
            layer.adapters[name].requires_grad_(True)
        else:
            layer.active = None  # this layer has no such adapter: it acts as its base


@contextlib.contextmanager
def disable_adapter(model: Module) -> Iterator[Module]:
    """`with disable_adapter(model): ...` runs the base model (the adapters stay in place)."""
    layers = [layer for _, layer in lora_layers(model)]
    before = [layer.disabled for layer in layers]
    for layer in layers:
        layer.disabled = True
    try:
        yield model
    finally:
        for layer, was in zip(layers, before):
            layer.disabled = was


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
    are dequantized first). Returns the same model object, now without any adapter, all trainable
    parameters restored to requires_grad=True."""
    for name, layer in lora_layers(model):
        if isinstance(layer.base, NF4Linear):
            layer.base = layer.base.to_linear()
        if layer.active is not None and layer.merged is None:
            layer.merge()
        _set_child(model, name, layer.base)
    model.requires_grad_(True)
    return model


# ------------------------------------------------------------ saving
def adapter_state_dict(model: Module, name: str = "default") -> dict[str, np.ndarray]:
    """The parameters of adapter `name` only, keyed by their dotted names in the model."""
    marker = f".adapters.{name}."
    state = {k: p.numpy().copy() for k, p in model.named_parameters() if marker in k}
    if not state:
        raise KeyError(f"adapter_state_dict: the model has no adapter named {name!r}")
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
    meta = {"format": ADAPTER_FORMAT, "name": name, "config": adapter_config(model, name)}
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
    state = {k.replace(f".adapters.{saved_name}.", f".adapters.{name}."): v for k, v in state.items()}
    load_adapter_state_dict(model, state, name, meta["config"])
