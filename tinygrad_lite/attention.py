"""Scaled dot-product attention, with PyTorch's arguments and semantics (Vaswani et al. 2017).

    attention(Q, K, V) = softmax(Q·Kᵀ·scale + mask) · V          scale = 1/√E by default

for query (..., L, E), key (..., S, E) and value (..., S, Ev): each of the L queries mixes the S
values, weighted by how well its query matches each key. The leading dimensions (batch, heads)
must agree; splitting a model's features into heads is the model's business (nn does it).

`scaled_dot_product_attention` is the fast path: one fused op (ops/fused.py) with a hand-derived
backward. `scaled_dot_product_attention_reference` computes the same thing from primitive ops,
every step visible and differentiable to any order; the fused op is tested against it.

The arguments mean what they mean in `torch.nn.functional.scaled_dot_product_attention`:
- `attn_mask`: a bool mask, True where a query MAY attend to a key, or a float mask added to the
  scores; broadcastable to (..., L, S).
- `is_causal`: query i attends to keys 0 … i (the mask is aligned top-left, as PyTorch's: with
  L < S, e.g. new queries against a KV cache, pass an explicit mask instead). Not together with
  `attn_mask` (PyTorch refuses the pair too): fold the causal mask into attn_mask.
- `dropout_p`: dropout on the attention weights, drawn from `generator` (the default one if None).
A query that may attend to no key at all gets output 0, as in PyTorch (not softmax's 0/0 = NaN).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .ops.fused import ScaledDotProductAttention
from .random import Generator, default_generator
from .tensor import Tensor

__all__ = ["scaled_dot_product_attention", "scaled_dot_product_attention_reference"]


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Any = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False, *, generator: Generator | None = None) -> Tensor:
    """softmax(query·keyᵀ·scale + mask)·value as one fused op; see the module docstring."""
    scale, hide, bias, keep = _prepare(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
                                       generator)
    return ScaledDotProductAttention.apply(query, key, value, scale=scale, hide=hide, bias=bias, keep=keep)


def scaled_dot_product_attention_reference(query: Tensor, key: Tensor, value: Tensor, attn_mask: Any = None,
                                           dropout_p: float = 0.0, is_causal: bool = False,
                                           scale: float | None = None, enable_gqa: bool = False, *,
                                           generator: Generator | None = None) -> Tensor:
    """The same as `scaled_dot_product_attention`, composed of primitive ops (double backward works).
    With the same generator state, it draws the same dropout mask."""
    scale, hide, bias, keep = _prepare(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
                                       generator)
    scores = (query @ key.transpose(-2, -1)) * scale
    if bias is not None:
        scores = scores + Tensor._make(bias, False, query.device)
    blind = None  # queries that may attend to no key: their row is unmasked here, then zeroed below
    if hide is not None or bias is not None:
        xp = query.xp
        hidden = xp.zeros(scores.shape, dtype=bool) if hide is None else xp.broadcast_to(hide, scores.shape)
        if bias is not None:
            hidden = hidden | xp.isneginf(xp.broadcast_to(bias, scores.shape))
        blind = hidden.all(axis=-1, keepdims=True)
        if blind.any():
            scores = scores.masked_fill(blind, 0.0)
            hide = None if hide is None else hide & ~blind
        else:
            blind = None
        if hide is not None:
            scores = scores.masked_fill(hide, -math.inf)
    weights = scores.softmax(axis=-1)
    if blind is not None:
        weights = weights * Tensor._make((~blind).astype(weights.dtype), False, query.device)
    if keep is not None:
        weights = weights * Tensor._make(keep, False, query.device)
    return weights @ value


def _prepare(query: Tensor, key: Tensor, value: Tensor, attn_mask: Any, dropout_p: float, is_causal: bool,
             scale: float | None, enable_gqa: bool, generator: Generator | None) -> tuple[float, Any, Any, Any]:
    """Check the arguments; return (scale, hide, bias, keep) as arrays on the query's device:
    hide (bool, True = may not look) from is_causal and a bool attn_mask, bias from a float
    attn_mask, keep the inverted-dropout mask (None for each when absent)."""
    op = "scaled_dot_product_attention"
    if enable_gqa:
        raise NotImplementedError(f"{op}: enable_gqa=True is not supported; repeat key's and value's heads to "
                                  f"query's count first (key.repeat_interleave along the heads axis)")
    if query.ndim < 2 or key.ndim != query.ndim or value.ndim != query.ndim or key.shape[-1] != query.shape[-1] \
            or value.shape[-2] != key.shape[-2] or not query.shape[:-2] == key.shape[:-2] == value.shape[:-2]:
        raise ValueError(f"{op}: query {query.shape}, key {key.shape}, value {value.shape} must be "
                         f"(..., L, E), (..., S, E) and (..., S, Ev) with the same leading dimensions")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: pass attn_mask or is_causal=True, not both (PyTorch refuses the pair too); to "
                         f"combine them, fold the causal mask into attn_mask: attn_mask & tril(ones(L, S))")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be between 0 and 1, got {dropout_p}")
    xp = query.xp
    L, S = query.shape[-2], key.shape[-2]
    scores_shape = query.shape[:-1] + (S,)
    hide = bias = keep = None
    if attn_mask is not None:
        mask = attn_mask.data if isinstance(attn_mask, Tensor) else xp.asarray(attn_mask)
        if isinstance(attn_mask, Tensor) and attn_mask.requires_grad:
            raise NotImplementedError(f"{op}: a float attn_mask that requires grad is not supported here; "
                                      f"it is treated as a constant (pass attn_mask.detach())")
        if mask.ndim > len(scores_shape) or any(m not in (1, s) for m, s in zip(mask.shape[::-1], scores_shape[::-1])):
            raise ValueError(f"{op}: attn_mask of shape {mask.shape} does not broadcast to the attention "
                             f"weights' shape {scores_shape} (..., L, S)")
        if mask.dtype == bool:
            hide = ~mask  # PyTorch's bool mask says where a query MAY look; the op wants the opposite
        elif mask.dtype.kind == "f":
            bias = mask.astype(query.dtype, copy=False)
        else:
            raise TypeError(f"{op}: attn_mask must be bool (True = may attend) or float (added to the scores), "
                            f"got dtype {mask.dtype}")
    if is_causal:
        hide = xp.triu(xp.ones((L, S), dtype=bool), k=1)  # query i may look at keys 0 … i (top-left)
    if dropout_p > 0.0:
        gen = generator or default_generator
        drawn = gen.uniform(scores_shape, np.float32, device=query.device)
        keep = ((drawn >= dropout_p) / (1.0 - dropout_p)).astype(query.dtype) if dropout_p < 1.0 \
            else xp.zeros(scores_shape, dtype=query.dtype)  # p = 1 drops every weight
    return (1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)), hide, bias, keep
