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

    temperature divides the logits (< 1 sharpens, > 1 flattens); top_k keeps the k largest (and
    any tied with the k-th); top_p keeps the smallest set of most likely tokens whose probability
    reaches p (nucleus sampling, Holtzman et al. 2020). The plain composition, one filter after the
    other; `sample_step` computes the same in one pass."""
    _check_filters("filter_logits", temperature, top_k, top_p)
    x = np.asarray(logits, dtype=np.float64) / temperature
    if top_k is not None and top_k < x.shape[-1]:
        x = np.where(x < _kth_largest(x, top_k), -np.inf, x)
    logp = Tensor(x).log_softmax(axis=-1).numpy()
    if top_p is not None:
        logp = Tensor(np.where(_nucleus(np.exp(logp), top_p), logp, -np.inf)).log_softmax(axis=-1).numpy()
    return logp


def sample_from(logp: np.ndarray, generator: Generator | Sequence[Generator]) -> np.ndarray:
    """One token per row from the distributions exp(logp), by inverting the CDF at a uniform
    draw from the seeded generator (or, given one generator per row, from the row's own: then a
    row samples the same tokens whatever else shares its batch)."""
    return _invert_cdf(np.cumsum(np.exp(logp), axis=-1), generator)


def sample_step(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, greedy: bool = False,
                generator: Generator | Sequence[Generator] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One decoding step: (B, V) next-token logits -> (B,) tokens and (B,) their log-probabilities
    under the distribution they were drawn from (greedy: the argmax, under the model's own).

    What `filter_logits` then `sample_from` compute (the tests check the same tokens and
    log-probabilities), in fewer passes over the (B, V) array, which matter at large batches:
    one exp instead of two (two instead of four with top_p), a sort of the probabilities instead of an argsort
    for top_p, and log p = z - log Σ exp(z) (z: the logits less their maximum) evaluated only at
    the B chosen tokens, not at all B·V."""
    gen = generator if generator is not None else tg.default_generator
    x = np.asarray(logits, dtype=np.float64)
    if greedy:  # the chosen token is the maximum, so its z is 0
        tokens = x.argmax(axis=-1)
        return tokens, -np.log(np.exp(x - x.max(axis=-1, keepdims=True)).sum(axis=-1))
    _check_filters("sample_step", temperature, top_k, top_p)
    x = x / temperature
    if top_k is not None and top_k < x.shape[-1]:
        x = np.where(x < _kth_largest(x, top_k), -np.inf, x)
    z = x - x.max(axis=-1, keepdims=True)
    weights = np.exp(z)  # unnormalized probabilities; 0 where top_k excluded
    if top_p is not None:  # exp(log-softmax), bit for bit as filter_logits has them: the same tokens survive
        probs = np.exp(z - np.log(weights.sum(axis=-1, keepdims=True)))
        weights = np.where(_nucleus(probs, top_p), weights, 0.0)
    cdf = np.cumsum(weights, axis=-1)  # ends at the sum of the kept weights
    tokens = _invert_cdf(cdf, gen)
    return tokens, z[np.arange(len(tokens)), tokens] - np.log(cdf[:, -1])


def _check_filters(op: str, temperature: float, top_k: int | None, top_p: float | None) -> None:
    if temperature <= 0:
        raise ValueError(f"{op}: temperature must be > 0 (use greedy=True for argmax), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"{op}: top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"{op}: top_p must be in (0, 1], got {top_p}")


def _kth_largest(x: np.ndarray, k: int) -> np.ndarray:
    """(B, V) -> (B, 1): each row's k-th largest value (a partial sort: O(V), not O(V log V))."""
    V = x.shape[-1]
    return np.partition(x, V - k, axis=-1)[:, V - k : V - k + 1]


def _nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """(B, V) probabilities -> (B, V) bool, True where top_p keeps the token.

    Walk the tokens from the most likely down; a token stays while the mass strictly ahead of it
    is below top_p, so the most likely token always stays. That mass only grows along the walk, so
    the kept tokens are the first n_keep of it, and the smallest kept probability is the cut:
    every token above the cut stays, and of the tokens equal to it, the first ones by index fill
    the remaining places (the order a stable argsort would walk them in)."""
    desc = np.sort(probs, axis=-1)[:, ::-1]  # each row's probabilities, largest first
    ahead = np.cumsum(desc, axis=-1) - desc  # the mass strictly ahead of each place in the walk
    n_keep = (ahead < top_p).sum(axis=-1, keepdims=True)
    cut = np.take_along_axis(desc, n_keep - 1, axis=-1)
    above = probs > cut
    tied = probs == cut
    return above | (tied & (np.cumsum(tied, axis=-1) <= n_keep - above.sum(axis=-1, keepdims=True)))


def _invert_cdf(cdf: np.ndarray, generator: Generator | Sequence[Generator]) -> np.ndarray:
    """(B, V) cumulative (unnormalized) probabilities -> one token per row: the first whose CDF
    exceeds u · total, for u uniform in [0, 1) from the generator (one draw per row), or from each
    row's own generator."""
    if isinstance(generator, Generator):
        u = generator.uniform((cdf.shape[0], 1), np.float64)
    else:
        u = np.concatenate([g.uniform((1, 1), np.float64) for g in generator])
    return np.minimum((cdf <= u * cdf[:, -1:]).sum(axis=-1), cdf.shape[-1] - 1)


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
    if not greedy:
        _check_filters("generate", temperature, top_k, top_p)
    stops = np.array(sorted(set(stop_tokens or ())), dtype=np.int64)
    block = model.config.block_size
    prompts = [p.astype(np.int64) for p in prompts]
    finished = np.zeros(B, dtype=bool)
    last_token = np.zeros(B, dtype=np.int64)
    chosen_tokens: list[np.ndarray] = []  # per step: (B,) the token of each row (repeated once finished)
    logprobs: list[np.ndarray] = []
    generated: list[np.ndarray] = []  # per step: (B,) True where the row was still going
    with inference_mode(model):
        # The cache serves while every sequence fits in block_size; past that, the cropped window
        # is recomputed at every step (its positions shift, so no cached key stays right).
        decoder = Decoder(model, prompts, pad_id) if use_cache and max(map(len, prompts)) <= block else None
        for step in range(max_new_tokens):
            if decoder is not None:
                last = decoder.logits
            else:
                last = _window_logits(model, _sequences(prompts, chosen_tokens, generated), block, pad_id)
            nxt, chosen = sample_step(last, temperature, top_k, top_p, greedy, gen)
            live = ~finished
            nxt = np.where(live, nxt, last_token)
            chosen = np.where(live, chosen, 0.0)
            if stops.size:
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
        return Generation(_sequences(prompts, chosen_tokens, generated),
                          np.array([len(p) for p in prompts], dtype=np.int64), lp, mask)
    new = np.stack(chosen_tokens, axis=1) if chosen_tokens else np.zeros((B, 0), dtype=np.int64)
    out = Tensor(np.concatenate([tokens, new], axis=1))
    return (out, Tensor(lp)) if return_logprobs else out


def _sequences(prompts: list[np.ndarray], chosen_tokens: list[np.ndarray],
               generated: list[np.ndarray]) -> list[list[int]]:
    """Per row: its prompt, then the tokens it generated (the steps where it was still going)."""
    if not chosen_tokens:
        return [p.tolist() for p in prompts]
    new, mask = np.stack(chosen_tokens, axis=1), np.stack(generated, axis=1)
    return [p.tolist() + row[keep].tolist() for p, row, keep in zip(prompts, new, mask)]


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
