"""`add_weighted_adapter`: a new adapter made from a weighted combination of existing ones.

With adapters ΔW_i = s_i·B_i·A_i on a layer and weights w_i, the three combinations PEFT offers
(`LoraModel.add_weighted_adapter`, PEFT 0.21) build a new adapter (B, A) whose scale is 1:

  "cat"    A = [w_1·s_1·A_1; w_2·s_2·A_2; ...] (rows stacked), B = [B_1, B_2, ...] (columns side by
           side), so B·A = Σ w_i·ΔW_i exactly, at rank Σ r_i.
  "svd"    the truncated SVD of Σ w_i·ΔW_i = U·S·Vᵀ: B = U_k·S_k, A = V_kᵀ, k = svd_rank (default:
           the largest r_i; at most min(out, in)). Exact when k reaches the rank of the sum.
  "linear" A = Σ sign(c_i)·√|c_i|·A_i and B = Σ √|c_i|·B_i with c_i = w_i·s_i (needs equal ranks).
           B·A contains the cross terms B_i·A_j, so it is NOT Σ w_i·ΔW_i unless only one adapter
           is combined; PEFT calls it a rough approximation. It is kept because PEFT users know it.

With a single adapter every type gives w·ΔW and PEFT switches to "linear"; so do we. Only plain
LoRA adapters (lora, rslora, pissa, olora, qlora: a pair A, B) can be combined; each layer uses
the adapters it holds, and the new adapter goes on every layer that holds at least one of them.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

import tinygrad_lite as tg
from nn import Module

from .adapter import BASE, LoRAAdapter, LoRALinear
from .apply import adapter_names, lora_layers, peft_configs, record_config, saved_modules
from .config import LoraConfig

COMBINATIONS = ("svd", "linear", "cat")


def _combine(parts: list[tuple[LoRAAdapter, float]], how: str, svd_rank: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(B, A) of the combined adapter for one layer, in float64."""
    if how == "cat":
        a = np.concatenate([w * ad.scale * ad.A.numpy().astype(np.float64) for ad, w in parts], axis=0)
        b = np.concatenate([ad.B.numpy().astype(np.float64) for ad, _ in parts], axis=1)
        return b, a
    if how == "linear":
        a = sum(math.copysign(math.sqrt(abs(w * ad.scale)), w * ad.scale) * ad.A.numpy().astype(np.float64)
                for ad, w in parts)
        b = sum(math.sqrt(abs(w * ad.scale)) * ad.B.numpy().astype(np.float64) for ad, w in parts)
        return np.asarray(b), np.asarray(a)
    with tg.no_grad():
        delta = sum(w * ad.delta_weight().numpy().astype(np.float64) for ad, w in parts)
    u, s, vt = np.linalg.svd(delta, full_matrices=False)
    k = min(svd_rank or max(ad.r for ad, _ in parts), len(s))
    return u[:, :k] * s[:k], vt[:k]


def add_weighted_adapter(model: Module, adapters: Sequence[str], weights: Sequence[float], adapter_name: str,
                         combination_type: str = "svd", svd_rank: int | None = None) -> None:
    """Add adapter `adapter_name` = Σ weights[i]·adapters[i], combined as `combination_type` says
    ("svd" (PEFT's default), "linear" or "cat"; see the module docstring). The new adapter is not
    made active (call set_adapter) and is frozen until it is."""
    adapters, weights = list(adapters), [float(w) for w in weights]
    known = adapter_names(model)
    if combination_type not in COMBINATIONS:
        raise ValueError(f"add_weighted_adapter: combination_type must be one of {COMBINATIONS}, "
                         f"got {combination_type!r}")
    if not adapters or len(adapters) != len(weights):
        raise ValueError(f"add_weighted_adapter: give one weight per adapter, got {len(adapters)} adapters and "
                         f"{len(weights)} weights")
    missing = [a for a in adapters if a not in known]
    if missing:
        raise KeyError(f"add_weighted_adapter: no adapter named {missing}; the model has {known}")
    if adapter_name in known or adapter_name == BASE or not adapter_name.isidentifier():
        raise ValueError(f"add_weighted_adapter: adapter_name {adapter_name!r} exists already or is not an identifier "
                         f"other than {BASE!r}")
    if svd_rank is not None and (isinstance(svd_rank, bool) or not isinstance(svd_rank, int) or svd_rank <= 0):
        raise ValueError(f"add_weighted_adapter: svd_rank must be a positive int or None, got {svd_rank!r}")
    with_copies = [a for a in adapters if any(a in w.modules_to_save for _, w in saved_modules(model))]
    if with_copies:
        raise ValueError(f"add_weighted_adapter: adapters {with_copies} train whole modules (modules_to_save), "
                         "which have no low-rank form to combine")
    how = "linear" if len(adapters) == 1 else combination_type
    new: dict[str, tuple[LoRALinear, LoRAAdapter]] = {}
    for name, layer in lora_layers(model):
        parts = [(layer.adapters[a], w) for a, w in zip(adapters, weights) if a in layer.adapters]
        if not parts:
            continue
        kinds = [ad.method for ad, _ in parts if type(ad) is not LoRAAdapter]
        if kinds:
            raise ValueError(f"add_weighted_adapter: {name} holds {kinds} adapters; only plain LoRA adapters "
                             "(a pair A, B) can be combined")
        if how == "linear" and len({ad.r for ad, _ in parts}) > 1:
            raise ValueError(f"add_weighted_adapter: 'linear' needs equal ranks, {name} has "
                             f"{[ad.r for ad, _ in parts]}; use 'cat' or 'svd'")
        b, a = _combine(parts, how, svd_rank)
        first = parts[0][0]
        # α = r gives the scale s = 1: the weights and scales are inside A (and B) already.
        combined = LoRAAdapter(layer.in_features, layer.out_features, a.shape[0], a.shape[0], first.dropout.p,
                               dtype=first.A.dtype, generator=tg.Generator(0))
        with tg.no_grad():
            combined.A.copy_(a)
            combined.B.copy_(b)
        combined.requires_grad_(False)
        new[name] = (layer, combined)
    for layer, combined in new.values():  # added only once every layer was combined without error
        active = layer.active
        layer.add_adapter(adapter_name, combined)
        layer.active = active
    ranks = {name: combined.r for name, (_, combined) in new.items()}
    r = max(ranks.values())
    # the per-layer ranks, written as PEFT would (an escaped full name is a rank_pattern key for one layer)
    pattern = {re.escape(n): k for n, k in ranks.items() if k != r}
    first_config = peft_configs(model).get(adapters[0])
    record_config(model, adapter_name, LoraConfig(
        r=r, lora_alpha=r, target_modules=list(new), rank_pattern=pattern,
        alpha_pattern={k: float(v) for k, v in pattern.items()},
        lora_dropout=first_config.lora_dropout if first_config else 0.0))
