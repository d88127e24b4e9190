"""Autoregressive sampling: feed the model its own predictions, one token at a time.

All rows of `idx` are sampled together as one batch. With the KV cache (the default), the prompt
is processed once and every later step feeds only the newest token: each step costs O(T) instead
of recomputing all T positions. When the sequence outgrows the model's block_size, the context
is cropped to the last block_size tokens (as nanoGPT does); positions then shift, so from that
point every step recomputes the cropped window.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Generator, Tensor

from .attention import KVCache


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


def sample_from(logp: np.ndarray, generator: Generator) -> np.ndarray:
    """One token per row from the distributions exp(logp), by inverting the CDF at a uniform
    draw from the seeded generator."""
    cdf = np.cumsum(np.exp(logp), axis=-1)
    u = generator.uniform((logp.shape[0], 1), np.float64) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=-1), logp.shape[-1] - 1)


def generate(model: Any, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, greedy: bool = False, stop_tokens: Iterable[int] | None = None,
             return_logprobs: bool = False, use_cache: bool = True,
             generator: Generator | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """Extend every row of idx (B, T) by up to max_new_tokens tokens.

    greedy takes the argmax. A row that emits one of stop_tokens is finished: later positions
    repeat that stop token (log-probability 0), and generation ends early once all rows are done.
    With return_logprobs, also returns (B, n_new) log-probabilities of the chosen tokens under the
    distribution they were drawn from (after temperature / top_k / top_p; the model's own
    distribution when greedy).
    """
    gen = generator if generator is not None else tg.default_generator
    tokens = np.array(idx.data if isinstance(idx, Tensor) else idx, dtype=np.int64)
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(f"generate: idx must have shape (batch, time) with time >= 1, got {tokens.shape}")
    if max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
    stops = np.array(sorted(set(stop_tokens or ())), dtype=np.int64)
    block = model.config.block_size
    B = tokens.shape[0]
    finished = np.zeros(B, dtype=bool)
    last_token = np.zeros(B, dtype=np.int64)
    logprobs: list[np.ndarray] = []
    cache: KVCache | None = None
    was_training = model.training
    model.eval()
    try:
        with tg.no_grad():
            for _ in range(max_new_tokens):
                if use_cache and cache is not None and cache.length < block:
                    step_input = tokens[:, -1:]  # everything before is in the cache
                else:
                    step_input = tokens[:, -block:]
                    cache = KVCache(model.config.n_layer) if use_cache else None
                logits, _ = model(step_input, cache=cache)
                last = logits.numpy()[:, -1, :]
                if greedy:
                    logp = _log_softmax(last.astype(np.float64))
                    nxt = logp.argmax(axis=-1)
                else:
                    logp = filter_logits(last, temperature, top_k, top_p)
                    nxt = sample_from(logp, gen)
                chosen = logp[np.arange(B), nxt]
                nxt = np.where(finished, last_token, nxt)
                chosen = np.where(finished, 0.0, chosen)
                finished |= np.isin(nxt, stops)
                last_token = nxt
                tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
                logprobs.append(chosen)
                if finished.all():
                    break
    finally:
        model.train(was_training)
    out = Tensor(tokens)
    if not return_logprobs:
        return out
    lp = np.stack(logprobs, axis=1) if logprobs else np.zeros((B, 0))
    return out, Tensor(lp)
