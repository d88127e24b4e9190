"""Autoregressive sampling: feed the model its own predictions, one token at a time.

All rows are sampled together as one batch, through a `Decoder`: the prompt is processed once and
every later step feeds only the newest token (KV cache), so each step costs O(T) instead of
recomputing all T positions. Prompts may have different lengths (a list of token lists): they are
left-padded, with a padding mask and per-row positions, so each row samples exactly what it would
sample alone. When a sequence outgrows the model's block_size, the context is cropped to the last
block_size tokens (as nanoGPT does); positions then shift, so from that point every step
recomputes the cropped window.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Generator, Tensor

from .decoder import Decoder, inference_mode, left_pad, padding_mask


@dataclass(frozen=True)
class Generation:
    """What `generate` returns for ragged prompts (a list of token lists), n = steps run.

    tokens: per row, its prompt followed by the tokens it generated (a stop token included, nothing
        after it), each row its own length.
    prompt_lengths: (B,) the prompts' lengths, so tokens[i][prompt_lengths[i]:] is row i's completion.
    logprobs: (B, n) float64, the log-probability of each generated token under the distribution it
        was drawn from (after temperature / top_k / top_p); 0 where mask is False.
    mask: (B, n) bool, True where the row generated a token, False after it finished.
    """

    tokens: list[list[int]]
    prompt_lengths: np.ndarray
    logprobs: np.ndarray
    mask: np.ndarray

    @property
    def completions(self) -> list[list[int]]:
        """Per row, the generated tokens only."""
        return [row[int(n):] for row, n in zip(self.tokens, self.prompt_lengths)]


def filter_logits(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> np.ndarray:
    """(B, V) logits -> the log-probabilities actually sampled from (-inf where excluded).

    temperature divides the logits (< 1 sharpens, > 1 flattens); top_k keeps the k largest;
    top_p keeps the smallest set of most likely tokens whose probability reaches p (nucleus
    sampling, Holtzman et al. 2020)."""
    if temperature <= 0:
        raise ValueError(f"filter_logits: temperature must be > 0 (use greedy=True for argmax), got {temperature}")
    x = logits.astype(np.float64) / temperature
    V = x.shape[-1]
    if top_k is not None:
        if not 1 <= top_k:
            raise ValueError(f"filter_logits: top_k must be >= 1, got {top_k}")
        if top_k < V:
            kth = np.partition(x, V - top_k, axis=-1)[:, V - top_k : V - top_k + 1]
            x = np.where(x < kth, -np.inf, x)
    logp = _log_softmax(x)
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"filter_logits: top_p must be in (0, 1], got {top_p}")
        order = np.argsort(-logp, axis=-1, kind="stable")
        sorted_p = np.exp(np.take_along_axis(logp, order, axis=-1))
        before = np.cumsum(sorted_p, axis=-1) - sorted_p  # probability mass strictly ahead of each token
        drop_sorted = before >= top_p  # the most likely token always survives (before = 0)
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        logp = _log_softmax(np.where(drop, -np.inf, logp))
    return logp


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def sample_from(logp: np.ndarray, generator: Generator | Sequence[Generator]) -> np.ndarray:
    """One token per row from the distributions exp(logp), by inverting the CDF at a uniform
    draw from the seeded generator (or, given one generator per row, from the row's own: then a
    row samples the same tokens whatever else shares its batch)."""
    cdf = np.cumsum(np.exp(logp), axis=-1)
    if isinstance(generator, Generator):
        u = generator.uniform((logp.shape[0], 1), np.float64)
    else:
        u = np.concatenate([g.uniform((1, 1), np.float64) for g in generator])
    return np.minimum((cdf <= u * cdf[:, -1:]).sum(axis=-1), logp.shape[-1] - 1)


def generate(model: Any, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, greedy: bool = False, stop_tokens: Iterable[int] | None = None,
             return_logprobs: bool = False, use_cache: bool = True,
             generator: Generator | Sequence[Generator] | None = None,
             pad_id: int = 0) -> Tensor | tuple[Tensor, Tensor] | Generation:
    """Extend every row of idx by up to max_new_tokens tokens.

    idx: a (B, T) array or Tensor (or one (T,) row), or a list of token lists of any lengths.
    greedy takes the argmax. A row that emits one of stop_tokens is finished, and generation ends
    early once all rows are done. generator: one seeded Generator for the batch, or one per row.

    Returns, for an array: the (B, T + n) Tensor of prompts and new tokens, where a finished row
    repeats its stop token; with return_logprobs also the (B, n) log-probabilities of the chosen
    tokens under the distribution they were drawn from (after temperature / top_k / top_p; the
    model's own when greedy), 0 after a stop token. For a list of token lists: a `Generation`
    (per-row token lists, (B, n) logprobs and a (B, n) mask of generated positions), which always
    carries the log-probabilities. pad_id is the token the left padding holds (it is never seen).
    """
    ragged = isinstance(idx, (list, tuple)) and len(idx) > 0 and all(np.ndim(p) == 1 for p in idx)
    if ragged:
        prompts = [np.asarray(p) for p in idx]
        for i, p in enumerate(prompts):
            if p.size == 0 or p.dtype.kind not in "iu":
                raise ValueError(f"generate: prompt {i} must be a non-empty list of integer token ids, "
                                 f"got {p.size} entries of dtype {p.dtype}")
    else:
        tokens = np.array(idx.data if isinstance(idx, Tensor) else idx, dtype=np.int64)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.shape[1] == 0:
            raise ValueError(f"generate: idx must have shape (batch, time) with time >= 1, got {tokens.shape}")
        prompts = list(tokens)
    if max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    B = len(prompts)
    gen = generator if generator is not None else tg.default_generator
    if not isinstance(gen, Generator) and len(gen) != B:
        raise ValueError(f"generate: got {len(gen)} generators for {B} rows; give one Generator or one per row")
    stops = np.array(sorted(set(stop_tokens or ())), dtype=np.int64)
    block = model.config.block_size
    seqs = [p.astype(np.int64).tolist() for p in prompts]
    finished = np.zeros(B, dtype=bool)
    last_token = np.zeros(B, dtype=np.int64)
    chosen_tokens: list[np.ndarray] = []
    logprobs: list[np.ndarray] = []
    generated: list[np.ndarray] = []
    with inference_mode(model):
        # The cache serves while every sequence fits in block_size; past that, the cropped window
        # is recomputed at every step (its positions shift, so no cached key stays right).
        decoder = Decoder(model, seqs, pad_id) if use_cache and max(map(len, seqs)) <= block else None
        for step in range(max_new_tokens):
            last = decoder.logits if decoder is not None else _window_logits(model, seqs, block, pad_id)
            if greedy:
                logp = _log_softmax(last.astype(np.float64))
                nxt = logp.argmax(axis=-1)
            else:
                logp = filter_logits(last, temperature, top_k, top_p)
                nxt = sample_from(logp, gen)
            chosen = logp[np.arange(B), nxt]
            live = ~finished
            nxt = np.where(live, nxt, last_token)
            chosen = np.where(live, chosen, 0.0)
            for row in np.flatnonzero(live):
                seqs[row].append(int(nxt[row]))
            finished |= np.isin(nxt, stops)
            last_token = nxt
            chosen_tokens.append(nxt)
            logprobs.append(chosen)
            generated.append(live)
            if finished.all() or step == max_new_tokens - 1:
                break
            if decoder is not None:  # feed the new tokens to the rows still going
                going = ~finished
                if (decoder.lengths[going] < block).all():
                    decoder.append(nxt, going)
                else:
                    decoder = None
    lp = np.stack(logprobs, axis=1) if logprobs else np.zeros((B, 0))
    if ragged:
        mask = np.stack(generated, axis=1) if generated else np.zeros((B, 0), dtype=bool)
        return Generation(seqs, np.array([len(p) for p in prompts], dtype=np.int64), lp, mask)
    new = np.stack(chosen_tokens, axis=1) if chosen_tokens else np.zeros((B, 0), dtype=np.int64)
    out = Tensor(np.concatenate([tokens, new], axis=1))
    return (out, Tensor(lp)) if return_logprobs else out


def _window_logits(model: Any, seqs: list[list[int]], block: int, pad_id: int) -> np.ndarray:
    """(B, vocab) next-token logits from a full forward over each row's last block tokens, without
    a cache (rows of different lengths are left-padded and masked)."""
    windows = [s[-block:] for s in seqs]
    if len({len(w) for w in windows}) == 1:  # a rectangular batch needs no padding, mask or positions
        logits, _ = model(np.array(windows, dtype=np.int64))
    else:
        tokens, valid, positions = left_pad(windows, pad_id)
        logits, _ = model(tokens, attn_mask=padding_mask(valid), positions=positions)
    return logits.numpy()[:, -1, :]
