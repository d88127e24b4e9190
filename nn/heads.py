"""Heads on a GPT's hidden states: `ScalarHead`, one number per chosen position (reward models).

An outcome reward model scores a whole solution at its final token; a process reward model scores
every reasoning step at the token that ends it. Both are a GPT trunk plus one Linear(n_embd, 1)
read at chosen positions. A causal model's hidden state at position t depends only on tokens
0 ... t, so a right-padded batch needs no mask: what follows a row's end cannot reach it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Generator, Tensor

from .gpt import GPT
from .layers import Linear
from .module import Module


class ScalarHead(Module):
    """A GPT backbone plus Linear(n_embd, 1) on its final hidden states (after ln_f):

        r[b, k] = w · h[b, select[b, k]] + c        (0 where select[b, k] == -1)

    `ScalarHead(gpt)` wraps an existing (e.g. pretrained) GPT and shares its weights; the GPT's
    parameters appear under `gpt.` in state_dict(), the head's under `head.`. The head starts
    at N(0, 0.02²) weights and a zero bias, the GPT init, so initial scores are near 0."""

    def __init__(self, gpt: GPT, generator: Generator | None = None) -> None:
        self.gpt = gpt
        n_embd = gpt.config.n_embd
        dtype = gpt.transformer.wte.weight.dtype
        self.head = Linear(n_embd, 1, bias=True, dtype=dtype, generator=generator)
        gen = generator if generator is not None else tg.default_generator
        with tg.no_grad():
            self.head.weight.copy_(gen.normal((1, n_embd), dtype, 0.0, 0.02))
            self.head.bias.zero_()

    def scores(self, idx: Any, attn_mask: Any = None, positions: Any = None) -> Tensor:
        """(B, T) token ids -> (B, T): the scalar at every position."""
        h = self.gpt.hidden_states(idx, attn_mask=attn_mask, positions=positions)
        return self.head(h).reshape(h.shape[0], h.shape[1])

    def forward(self, idx: Any, select: Any, attn_mask: Any = None, positions: Any = None) -> Tensor:
        """idx (B, T) token ids; select (B, K) token positions to score, padded with -1 where a row
        has fewer than K. Returns (B, K): the scalars there, 0 (and no gradient) at the -1 entries.
        attn_mask and positions pass through to `GPT.hidden_states` (for left-padded batches)."""
        idx_shape = np.shape(idx.data if isinstance(idx, Tensor) else idx)
        sel = np.asarray(select.data if isinstance(select, Tensor) else select)
        if len(idx_shape) != 2:
            raise ValueError(f"ScalarHead: idx must have shape (batch, time), got {idx_shape}")
        B, T = idx_shape
        if sel.ndim != 2 or sel.shape[0] != B or sel.dtype.kind not in "iu":
            raise ValueError(f"ScalarHead: select must be integers of shape (batch={B}, K), "
                             f"got shape {sel.shape} and dtype {sel.dtype}")
        if sel.size and (int(sel.min()) < -1 or int(sel.max()) >= T):
            raise ValueError(f"ScalarHead: select must lie in [0, {T}) for {T} tokens, or be -1 for padding; "
                             f"got values in [{int(sel.min())}, {int(sel.max())}]")
        scores = self.scores(idx, attn_mask, positions)
        used = sel >= 0
        picked = scores.take_along_axis(np.where(used, sel, 0), axis=1)  # -1 reads position 0, then ...
        return picked * used.astype(picked.dtype)  # ... is zeroed: its gradient is multiplied by 0 too

    def extra_repr(self) -> str:
        return f"n_embd={self.gpt.config.n_embd} -> 1"
