"""Causal multi-head self-attention (Vaswani et al. 2017), with an optional KV cache.

Each position asks a question (query), offers a label (key) and a payload (value). Position t
mixes the values of positions <= t, weighted by softmax(q·k / √head_dim): the causal mask hides
the future, so the model can be trained on every position of a sequence at once.

The KV cache makes generation cheap: the keys and values of earlier positions never change, so
they are stored, and each new token only computes its own query, key and value.

An optional `attn_mask` hides more keys than the causal mask does, e.g. the padding of a batch of
prompts of different lengths (see `nn.Decoder`).
"""
from __future__ import annotations

import functools
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
    n_total - n_new ... n_total - 1, so query i sees keys 0 ... (n_total - n_new + i).
    Cached and shared by every caller, so it is read-only: combine it into a new array (`|`)."""
    past = n_total - n_new
    mask = np.triu(np.ones((n_new, n_total), dtype=bool), k=past + 1)
    mask.setflags(write=False)
    return mask


class LayerKV:
    """The cached keys and values of one attention layer, each of shape (B, n_head, T, head_dim).

    Preallocated: the first append allocates (B, n_head, capacity, head_dim) buffers, and later
    appends write the new positions into them in place. Concatenating instead copies the whole
    cache at every token: O(T²) copying over a generation (benchmarks/generate.py compares). `k` and `v`
    are views of the filled part. A buffer that fills up is reallocated at twice the size, so a
    cache made without a capacity still works. Positions already handed out as views are never
    written again (`select` and `take_slots` build new buffers), so such a view stays valid.
    """

    def __init__(self, capacity: int | None = None) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(f"LayerKV: capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.length = 0  # positions filled so far
        self._k: Any = None  # the buffers (backend arrays), allocated at the first append
        self._v: Any = None
        self._xp: Any = np
        self._device = "cpu"

    @property
    def k(self) -> Tensor | None:
        return None if self._k is None else Tensor._make(self._k[:, :, : self.length], False, self._device)

    @property
    def v(self) -> Tensor | None:
        return None if self._v is None else Tensor._make(self._v[:, :, : self.length], False, self._device)

    @property
    def batch_size(self) -> int | None:
        return None if self._k is None else self._k.shape[0]

    @property
    def allocated(self) -> int:
        """Positions the buffers hold before they must grow (the capacity before the first append)."""
        return self._k.shape[2] if self._k is not None else (self.capacity or 0)

    def _buffers(self, batch: int, heads: int, slots: int, head_dim: int, dtype: Any) -> tuple[Any, Any]:
        shape = (batch, heads, slots, head_dim)
        return self._xp.empty(shape, dtype=dtype), self._xp.empty(shape, dtype=dtype)

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new positions; return the keys and values of every position so far."""
        if k.ndim != 4 or k.shape != v.shape:
            raise ValueError(f"LayerKV.append: k {k.shape} and v {v.shape} must both be (B, n_head, T, head_dim)")
        B, H, T, D = k.shape
        past, n = self.length, self.length + T
        tracked = tg.is_grad_enabled() and (k.requires_grad or v.requires_grad)
        if past and tracked:
            # The cache keeps values, not their graph: the cached positions would silently get no gradient.
            raise RuntimeError(
                f"KV cache with gradients on: {past} positions are cached without their graph, so a backward "
                f"through this forward would give them (and the weights that made them) no gradient. Generate "
                f"under `with tinygrad_lite.no_grad():` (as nn.generate does), or train without a cache, in one "
                f"forward over the whole sequence.")
        if self._k is None:
            self._xp, self._device = k.xp, k.device
            self._k, self._v = self._buffers(B, H, max(self.capacity or 0, n), D, k.dtype)
        elif (B, H, D) != (self._k.shape[0], self._k.shape[1], self._k.shape[3]) or k.dtype != self._k.dtype:
            Bc, Hc, _, Dc = self._k.shape
            raise ValueError(f"LayerKV.append: new keys of shape {k.shape} ({k.dtype}) do not match the cached "
                             f"(B, n_head, T, head_dim) = ({Bc}, {Hc}, {past}, {Dc}) ({self._k.dtype})")
        elif n > self._k.shape[2]:  # full: grow geometrically, so appends stay amortized O(new positions)
            bigger_k, bigger_v = self._buffers(B, H, max(n, 2 * self._k.shape[2]), D, k.dtype)
            bigger_k[:, :, :past], bigger_v[:, :, :past] = self._k[:, :, :past], self._v[:, :, :past]
            self._k, self._v = bigger_k, bigger_v
        self._k[:, :, past:n] = k.data  # the cache is for inference: it keeps values, never a graph
        self._v[:, :, past:n] = v.data
        self.length = n
        if tracked:
            return k, v  # the first append under autograd (nothing cached before): keep the graph
        return self.k, self.v  # type: ignore[return-value]

    def select(self, rows: np.ndarray) -> None:
        """Keep, duplicate or reorder batch rows: new row i is old row rows[i] (KVCache checks rows)."""
        if self._k is None:
            return
        _, H, slots, D = self._k.shape
        idx = self._xp.asarray(rows)
        new_k, new_v = self._buffers(len(rows), H, slots, D, self._k.dtype)
        new_k[:, :, : self.length] = self._k[idx, :, : self.length]
        new_v[:, :, : self.length] = self._v[idx, :, : self.length]
        self._k, self._v = new_k, new_v

    def take_slots(self, slots: np.ndarray) -> None:
        """Row b's new position j is its old position slots[b, j]; KVCache checks slots (B, L)."""
        if self._k is None:
            return
        B, H, capacity, D = self._k.shape
        index = self._xp.asarray(slots)[:, None, :, None]  # the same positions for every head and feature
        new_k, new_v = self._buffers(B, H, capacity, D, self._k.dtype)
        L = slots.shape[1]
        new_k[:, :, :L] = self._xp.take_along_axis(self._k[:, :, : self.length], index, axis=2)
        new_v[:, :, :L] = self._xp.take_along_axis(self._v[:, :, : self.length], index, axis=2)
        self._k, self._v, self.length = new_k, new_v, L


class KVCache:
    """One `LayerKV` per transformer block, plus the number of positions cached so far.

    capacity: positions to preallocate per layer (a GPT's block_size is the natural choice);
    without it, the buffers start at the first append's size and double when full."""

    def __init__(self, n_layer: int, capacity: int | None = None) -> None:
        self.layers = [LayerKV(capacity) for _ in range(n_layer)]

    @property
    def length(self) -> int:
        return self.layers[0].length

    @property
    def batch_size(self) -> int | None:
        """Rows cached (None before the first append)."""
        return self.layers[0].batch_size

    @property
    def allocated(self) -> int:
        """Positions preallocated per layer: appending past it reallocates (twice the size)."""
        return self.layers[0].allocated

    def __getitem__(self, i: int) -> LayerKV:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def select(self, rows: Any) -> None:
        """Keep, duplicate or reorder batch rows in every layer: new row i is old row rows[i].
        rows may repeat ([0, 0, 2, 2] keeps rows 0 and 2, twice each), as beam search needs."""
        B = self.batch_size
        if B is None:
            raise ValueError("KVCache.select: the cache is empty (nothing appended yet), so it has no rows to select")
        idx = check_rows(rows, B, "KVCache.select")
        for layer in self.layers:
            layer.select(idx)

    def take_slots(self, slots: Any) -> None:
        """Per row, keep the cached positions slots[b] (B, L) in that order, in every layer: e.g.
        squeeze out the padding between a row's tokens. Attention does not care where a key
        sits, only whether it is visible, so the results of later steps do not change."""
        B, T = self.batch_size, self.length
        idx = np.asarray(slots)
        if B is None:
            raise ValueError("KVCache.take_slots: the cache is empty (nothing appended yet)")
        if idx.ndim != 2 or idx.shape[0] != B or idx.dtype.kind not in "iu":
            raise ValueError(f"KVCache.take_slots: slots must be integers of shape ({B}, L), "
                             f"got shape {idx.shape} and dtype {idx.dtype}")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= T):
            raise ValueError(f"KVCache.take_slots: slots must lie in [0, {T}) for {T} cached positions, "
                             f"got values in [{int(idx.min())}, {int(idx.max())}]")
        for layer in self.layers:
            layer.take_slots(idx)


def check_rows(rows: Any, batch: int, op: str) -> np.ndarray:
    """rows as a 1-D int64 array of row indices in [0, batch); a ValueError naming `op` otherwise."""
    idx = np.asarray(rows)
    if idx.dtype == bool:
        raise ValueError(f"{op}: rows must be integer row indices, not a boolean mask "
                         f"(np.flatnonzero(mask) gives the indices)")
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        raise ValueError(f"{op}: rows must be a non-empty 1-D array of integer row indices, "
                         f"got shape {idx.shape} and dtype {idx.dtype}")
    if int(idx.min()) < 0 or int(idx.max()) >= batch:
        raise ValueError(f"{op}: rows must lie in [0, {batch}) for a batch of {batch} rows, "
                         f"got values in [{int(idx.min())}, {int(idx.max())}]")
    return idx.astype(np.int64, copy=False)


class CausalSelfAttention(Module):
    """Multi-head causal self-attention: one Linear makes q, k and v for all heads at once,
    another (c_proj) mixes the heads' outputs back into the residual stream.

    The heads are packed here: c_attn's output (B, T, 3C) is split into q, k and v, and each into
    n_head heads of C / n_head features, for the engine's `scaled_dot_product_attention`.
    fused=True runs it as one fused op with a hand-derived backward (fast); fused=False runs
    its reference, composed of primitive ops, which also supports double backward."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True, dtype: Any = None,
                 generator: Generator | None = None, fused: bool = True) -> None:
        if n_embd % n_head != 0:
            raise ValueError(f"CausalSelfAttention: n_embd={n_embd} is not divisible by n_head={n_head}")
        self.n_embd, self.n_head, self.fused = n_embd, n_head, fused
        self.c_attn = Linear(n_embd, 3 * n_embd, bias, dtype, generator)
        self.c_proj = Linear(n_embd, n_embd, bias, dtype, generator)
        self.attn_dropout = Dropout(dropout)
        self.resid_dropout = Dropout(dropout)

    def forward(self, x: Tensor, cache: LayerKV | None = None, attn_mask: Any = None) -> Tensor:
        """x (B, T, n_embd). attn_mask (optional, bool, broadcastable to (B, n_head, T, T_keys)):
        True where a query may NOT look, on top of the causal mask; (B, 1, 1, T_keys) hides
        padding keys. T_keys counts the cached positions too."""
        B, T, C = x.shape
        if C != self.n_embd:
            raise ValueError(f"CausalSelfAttention: input has {C} features, expected n_embd={self.n_embd}")
        hd = C // self.n_head
        q, k, v = self.c_attn(x).split(C, axis=2)
        # (B, T, C) -> (B, n_head, T, head_dim): every head attends independently.
        q, k, v = (t.reshape(B, T, self.n_head, hd).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = cache.append(k, v)
        allowed, is_causal = self._allowed(x, T, k.shape[2], attn_mask)
        attend = F.scaled_dot_product_attention if self.fused else F.scaled_dot_product_attention_reference
        y = attend(q, k, v, attn_mask=allowed, is_causal=is_causal,
                   dropout_p=self.attn_dropout.p if self.training else 0.0, generator=self.attn_dropout.generator)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))

    @staticmethod
    def _allowed(x: Tensor, n_new: int, n_keys: int, attn_mask: Any) -> tuple[Any, bool]:
        """(PyTorch-style bool mask, True where a query MAY look, or None; is_causal) for T new queries
        at the last positions of n_keys keys. `attn_mask` (ours) says where a query may NOT look."""
        allowed = None
        if attn_mask is not None:
            mask = x.xp.asarray(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)
            if mask.dtype != bool:
                raise TypeError(f"CausalSelfAttention: attn_mask must be bool (True = may not attend), "
                                f"got dtype {mask.dtype}")
            allowed = ~mask
        if allowed is None and n_new == n_keys:  # no cache, or an empty one: PyTorch's top-left causal mask is ours
            return None, True
        if n_new == 1:  # the newest query sees every key
            return allowed, False
        causal = x.xp.asarray(~causal_mask(n_new, n_keys))  # the new queries sit after the cached keys
        return (causal if allowed is None else allowed & causal), False

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, n_head={self.n_head}, fused={self.fused}"
