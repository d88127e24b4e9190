"""Incremental batched decoding: prompts of different lengths in one batch, one token per row per step.

The prompts are left-padded to a common length, so every row's newest token sits in the last
column and one forward pass serves them all:

    row 0:  [pad pad  a   b   c ]      positions  0 0 0 1 2      keys visible: a b c
    row 1:  [ d   e   f   g   h ]      positions  0 1 2 3 4      keys visible: d e f g h

Two things make a padded row compute exactly what it would compute alone: a key-padding mask (no
query may attend to a pad) and per-row position ids (a row's real tokens get 0, 1, 2, ... however
much padding precedes them). The keys and values live in a preallocated `KVCache`.

A row that is not `active` in a step is fed a masked pad instead of a token: it takes a cache slot
but is invisible, and the row's position and logits do not move. Beam search and step-level search
use this to let rows finish a reasoning step (a line) at different times. When the slots run out,
the padding is squeezed out of the cache (`KVCache.take_slots`): attention only asks whether a key
is visible, not where it sits, so nothing changes for later steps.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

import tinygrad_lite as tg

from .attention import KVCache, check_rows


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prompts of different lengths -> (tokens, valid, positions), each (B, T) with T the longest
    prompt: tokens left-padded with pad_id, valid False at the pads, positions 0, 1, ... over each
    row's real tokens (0 at the pads, which no query sees)."""
    lengths = np.array([len(p) for p in prompts], dtype=np.int64)
    T = int(lengths.max())
    tokens = np.full((len(prompts), T), pad_id, dtype=np.int64)
    for row, (p, n) in enumerate(zip(prompts, lengths)):
        tokens[row, T - n:] = p
    valid = np.arange(T)[None, :] >= (T - lengths)[:, None]
    positions = np.maximum(np.cumsum(valid, axis=1) - 1, 0)
    return tokens, valid, positions


def padding_mask(valid: np.ndarray) -> np.ndarray | None:
    """(B, S) valid keys -> the (B, 1, 1, S) attention mask (True = may not look), or None when
    every key is valid (then attention needs no mask at all)."""
    return None if valid.all() else ~valid[:, None, None, :]


@contextlib.contextmanager
def inference_mode(model: Any) -> Iterator[None]:
    """Eval mode (no dropout) and no_grad for the duration; the model's training mode is restored.

    `train()` / `eval()` walk every sub-module, which costs more than a decode step of a small
    model, so a model already in eval mode (`eval()` switches them all together) is left alone."""
    was_training = model.training
    if was_training:
        model.eval()
    try:
        with tg.no_grad():
            yield
    finally:
        if was_training:
            model.train()


class Decoder:
    """Batched incremental decoding over a GPT with a preallocated KV cache.

        dec = Decoder(model, [[5, 3], [7, 1, 4, 2]])    # prefill: one forward over the padded batch
        dec.logits                                       # (B, vocab) float64: next-token logits per row
        dec.append(np.array([9, 8]))                     # one token per row
        dec.append(np.array([2, 0]), active=np.array([True, False]))   # row 1 waits
        dec.select([0, 0, 1])                            # keep / duplicate / reorder rows (beam search)
        dec.tokens(2)                                    # [7, 1, 4, 2, 8]

    Every call runs under no_grad with the model in eval mode (its mode is restored after).
    """

    def __init__(self, model: Any, prompts: Sequence[Sequence[int]], pad_id: int = 0) -> None:
        config = model.config
        self.model, self.pad_id, self.block_size = model, pad_id, config.block_size
        if len(prompts) == 0:
            raise ValueError("Decoder: prompts is empty; give at least one prompt")
        prompts = [np.asarray(p) for p in prompts]
        for i, p in enumerate(prompts):
            if p.ndim != 1 or p.size == 0 or p.dtype.kind not in "iu":
                raise ValueError(f"Decoder: prompt {i} must be a non-empty sequence of integer token ids, "
                                 f"got shape {p.shape} and dtype {p.dtype}")
            if p.size > self.block_size:
                raise ValueError(f"Decoder: prompt {i} has {p.size} tokens, more than block_size={self.block_size}")
        if not 0 <= pad_id < config.vocab_size:
            raise ValueError(f"Decoder: pad_id must lie in [0, vocab_size={config.vocab_size}), got {pad_id}")
        tokens, valid, positions = left_pad(prompts, pad_id)
        self._cache = KVCache(config.n_layer, capacity=self.block_size)
        self._slot_tokens, self._valid = tokens, valid  # (B, S): what each cache slot holds, and whether it counts
        self._lengths = valid.sum(axis=1)  # real tokens per row: also the next position id
        with inference_mode(model):
            logits = self._forward(tokens, positions, valid)
        self._set_logits(logits[:, -1])  # the last column is every row's newest real token

    # ------------------------------------------------------------------ reading
    @property
    def batch_size(self) -> int:
        return self._valid.shape[0]

    @property
    def lengths(self) -> np.ndarray:
        """(B,) real tokens per row (prompt + appended, no pads)."""
        return self._lengths.copy()

    @property
    def logits(self) -> np.ndarray:
        """(B, vocab) float64 next-token logits per row (read-only)."""
        return self._logits

    def tokens(self, i: int) -> list[int]:
        """Row i's real tokens: its prompt and everything appended, without pads."""
        if not -self.batch_size <= i < self.batch_size:
            raise IndexError(f"Decoder.tokens: row {i} is out of range for a batch of {self.batch_size} rows")
        return self._slot_tokens[i][self._valid[i]].tolist()

    # ------------------------------------------------------------------ stepping
    def append(self, tokens: Any, active: Any = None) -> None:
        """Feed one token per row (tokens: (B,) ints). Rows with active=False do not advance:
        they get a masked pad, keep their position and keep their logits."""
        B, V = self.batch_size, self._logits.shape[1]
        tokens = np.asarray(tokens)
        if tokens.shape != (B,) or tokens.dtype.kind not in "iu":
            raise ValueError(f"Decoder.append: tokens must be integers of shape ({B},), "
                             f"got shape {tokens.shape} and dtype {tokens.dtype}")
        active = np.ones(B, dtype=bool) if active is None else np.asarray(active)
        if active.shape != (B,) or active.dtype != bool:
            raise ValueError(f"Decoder.append: active must be a bool array of shape ({B},), "
                             f"got shape {active.shape} and dtype {active.dtype}")
        if not active.any():
            return  # nobody moves: no slot is spent
        fed = tokens[active]
        if int(fed.min()) < 0 or int(fed.max()) >= V:
            raise ValueError(f"Decoder.append: tokens must lie in [0, vocab_size={V}), "
                             f"got values in [{int(fed.min())}, {int(fed.max())}]")
        full = active & (self._lengths >= self.block_size)
        if full.any():
            row = int(np.flatnonzero(full)[0])
            raise ValueError(f"Decoder.append: row {row} already has {int(self._lengths[row])} tokens; one more "
                             f"would exceed block_size={self.block_size} ({int(full.sum())} such rows)")
        if self._cache.length >= self._cache.allocated:
            self._squeeze_padding()
        step = np.where(active, tokens, self.pad_id)[:, None]
        positions = np.where(active, self._lengths, 0)[:, None]
        valid = np.concatenate([self._valid, active[:, None]], axis=1)
        with inference_mode(self.model):
            logits = self._forward(step, positions, valid)[:, -1]
        self._valid = valid
        self._slot_tokens = np.concatenate([self._slot_tokens, step], axis=1)
        self._lengths = self._lengths + active
        self._set_logits(np.where(active[:, None], logits, self._logits))

    def select(self, rows: Any) -> None:
        """Keep, duplicate or reorder rows: new row i is old row rows[i] (cache, tokens, positions
        and logits alike). rows may repeat: [0, 0, 2, 2] keeps rows 0 and 2, twice each."""
        idx = check_rows(rows, self.batch_size, "Decoder.select")
        self._cache.select(idx)
        self._slot_tokens, self._valid = self._slot_tokens[idx], self._valid[idx]
        self._lengths = self._lengths[idx]
        self._set_logits(self._logits[idx])

    # ------------------------------------------------------------------ internals
    def _forward(self, tokens: np.ndarray, positions: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Run the new column(s) through the model; valid (B, S) covers the cached and new slots."""
        logits, _ = self.model(tokens, cache=self._cache, attn_mask=padding_mask(valid), positions=positions)
        return logits.numpy()

    def _set_logits(self, logits: np.ndarray) -> None:
        self._logits = np.array(logits, dtype=np.float64)  # a copy, so no caller can change ours
        self._logits.flags.writeable = False

    def _squeeze_padding(self) -> None:
        """The cache is full: move every row's valid slots to the end (in order) and drop the slots
        that are padding in every row. A stable argsort of `valid` puts a row's pads first and its
        real slots after them, each in their old order; the last L columns keep them all."""
        keep = int(self._valid.sum(axis=1).max())
        if keep == self._valid.shape[1]:
            return  # some row uses every slot: nothing to drop; the cache grows instead
        slots = np.argsort(self._valid, axis=1, kind="stable")[:, -keep:]
        self._cache.take_slots(slots)
        self._valid = np.take_along_axis(self._valid, slots, axis=1)
        self._slot_tokens = np.take_along_axis(self._slot_tokens, slots, axis=1)
