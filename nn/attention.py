"""Causal multi-head self-attention (Vaswani et al. 2017), with an optional KV cache.

Each position asks a question (query), offers a label (key) and a payload (value). Position t
mixes the values of positions <= t, weighted by softmax(q·k / √head_dim): the causal mask hides
the future, so the model can be trained on every position of a sequence at once.

The KV cache makes generation cheap: the keys and values of earlier positions never change, so
they are stored, and each new token only computes its own query, key and value.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from tinygrad_lite import Generator, Tensor

from .layers import Dropout, Linear
from .module import Module


@functools.lru_cache(maxsize=64)
def causal_mask(n_new: int, n_total: int) -> np.ndarray:
    """(n_new, n_total) bool, True where a query may NOT look. The new queries sit at positions
    n_total - n_new ... n_total - 1, so query i sees keys 0 ... (n_total - n_new + i)."""
    past = n_total - n_new
    return np.triu(np.ones((n_new, n_total), dtype=bool), k=past + 1)


class LayerKV:
    """The cached keys and values of one attention layer, each of shape (B, n_head, T, head_dim)."""

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new positions; return the keys and values of every position so far."""
        if self.k is not None:
            k, v = tg.cat([self.k, k], axis=2), tg.cat([self.v, v], axis=2)
        self.k, self.v = k.detach(), v.detach()  # the cache is for inference: never part of a graph
        return k, v


class KVCache:
    """One `LayerKV` per transformer block, plus the number of positions cached so far."""

    def __init__(self, n_layer: int) -> None:
        self.layers = [LayerKV() for _ in range(n_layer)]

    @property
    def length(self) -> int:
        return self.layers[0].length

    def __getitem__(self, i: int) -> LayerKV:
        return self.layers[i]


def attention_reference(q: Tensor, k: Tensor, v: Tensor, dropout: Module | None = None) -> Tensor:
    """softmax(q·kᵀ/√d with the future masked)·v from primitive ops: every step visible, and
    differentiable to any order. The fused op (F.causal_attention) is tested against it."""
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)  # scaling q: fewer multiplies
    scores = scores.masked_fill(causal_mask(q.shape[-2], k.shape[-2]), -math.inf)
    att = scores.softmax(axis=-1)
    return (dropout(att) if dropout is not None else att) @ v


class CausalSelfAttention(Module):
    """Multi-head causal self-attention: one Linear makes q, k and v for all heads at once,
    another (c_proj) mixes the heads' outputs back into the residual stream.

    fused=True computes softmax(q·kᵀ/√d)·v as one engine op with a hand-derived backward (fast);
    fused=False composes it from primitive ops (`attention_reference`), which also supports
    double backward."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True, dtype: Any = None,
                 generator: Generator | None = None, fused: bool = True) -> None:
        if n_embd % n_head != 0:
            raise ValueError(f"CausalSelfAttention: n_embd={n_embd} is not divisible by n_head={n_head}")
        self.n_embd, self.n_head, self.fused = n_embd, n_head, fused
        self.c_attn = Linear(n_embd, 3 * n_embd, bias, dtype, generator)
        self.c_proj = Linear(n_embd, n_embd, bias, dtype, generator)
        self.attn_dropout = Dropout(dropout)
        self.resid_dropout = Dropout(dropout)

    def forward(self, x: Tensor, cache: LayerKV | None = None) -> Tensor:
        B, T, C = x.shape
        if C != self.n_embd:
            raise ValueError(f"CausalSelfAttention: input has {C} features, expected n_embd={self.n_embd}")
        hd = C // self.n_head
        if self.fused and cache is None:  # training: one fused op from the packed projection
            keep = self._dropout_keep((B, self.n_head, T, T), x.dtype)
            y = F.packed_causal_attention(self.c_attn(x), self.n_head, keep)
            return self.resid_dropout(self.c_proj(y))
        q, k, v = self.c_attn(x).split(C, axis=2)
        # (B, T, C) -> (B, n_head, T, head_dim): every head attends independently.
        q, k, v = (t.reshape(B, T, self.n_head, hd).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = cache.append(k, v)
        if self.fused:
            y = F.causal_attention(q, k, v, self._dropout_keep((B, self.n_head, T, k.shape[2]), x.dtype))
        else:
            y = attention_reference(q, k, v, self.attn_dropout)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))

    def _dropout_keep(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray | None:
        """The inverted-dropout mask for the attention weights (None when dropout is off)."""
        p = self.attn_dropout.p
        if not self.training or p == 0.0:
            return None
        gen = self.attn_dropout.generator or tg.default_generator
        return ((gen.uniform(shape, np.float32) >= p) / (1.0 - p)).astype(dtype)

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, n_head={self.n_head}, fused={self.fused}"
