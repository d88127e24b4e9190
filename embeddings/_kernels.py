"""Numba kernels of the fast word2vec trainer (imported only by word2vec_fast, which imports it
lazily so that the package works without numba). cache=True: compiled code is stored next to this
file (or in NUMBA_CACHE_DIR) and reused by the next process."""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

_MUL = np.uint64(6364136223846793005)  # Knuth's MMIX 64-bit linear congruential generator
_INC = np.uint64(1442695040888963407)
_TO_UNIT = 1.0 / 9007199254740992.0   # 2^-53


@njit(cache=True, inline="always")
def _next(state):
    return state * _MUL + _INC


@njit(cache=True, inline="always")
def _unit(state):
    """The top 53 bits of the state as a float in [0, 1) (an LCG's high bits are its good ones)."""
    return float(state >> np.uint64(11)) * _TO_UNIT


@njit(cache=True, inline="always")
def _draw(state, prob, alias):
    """One draw from the noise distribution with the alias tables (see Vocab.alias_table)."""
    x = _unit(state) * prob.shape[0]
    i = int(x)
    return i if x - i < prob[i] else alias[i]


@njit(cache=True, fastmath=True)
def ns_update(h, W_out, target, negs, alpha, grad_h, compute_loss):
    """Negative-sampling update for one example with input vector h (a row of W_in, or the CBOW mean).

    For the positive target (label 1) and each negative (label 0): g = alpha·(label - σ(u·h));
    grad_h += g·u (with u before its update); u += g·h. Returns the example's loss
    -log σ(u_pos·h) - Σ log σ(-u_neg·h) when compute_loss (else 0: the log costs time).
    A negative equal to the target is skipped. grad_h is zeroed here.

    The vector arithmetic stays in the arrays' dtype (`cast`): mixing in a float64 scalar would
    make every float32 element convert to float64 and halve the SIMD width."""
    cast = h.dtype.type
    dim = h.shape[0]
    for d in range(dim):
        grad_h[d] = 0.0
    loss = 0.0
    for k in range(negs.shape[0] + 1):
        if k == 0:
            t, label = target, 1.0
        else:
            t, label = negs[k - 1], 0.0
            if t == target:
                continue
        u = W_out[t]
        f32 = cast(0.0)
        for d in range(dim):
            f32 += h[d] * u[d]
        f = float(f32)
        # σ(f) and log σ(±f) without overflow: e = exp(-|f|) <= 1
        e = math.exp(-abs(f))
        sig = 1.0 / (1.0 + e) if f >= 0 else e / (1.0 + e)
        # -log σ(f) = log1p(e) + max(-f, 0);  -log σ(-f) = log1p(e) + max(f, 0)
        if compute_loss:
            loss += math.log1p(e) + (max(-f, 0.0) if label == 1.0 else max(f, 0.0))
        g = cast(alpha * (label - sig))
        for d in range(dim):
            grad_h[d] += g * u[d]
            u[d] += g * h[d]
    return loss


@njit(cache=True)
def sg_pairs_step(W_in, W_out, centers, contexts, negatives, alpha):
    """Apply skip-gram updates for explicit (center, context, negatives) examples, one after another."""
    grad = np.zeros(W_in.shape[1], dtype=W_in.dtype)
    loss = 0.0
    for p in range(centers.shape[0]):
        v = W_in[centers[p]]
        loss += ns_update(v, W_out, contexts[p], negatives[p], alpha, grad, True)
        for d in range(v.shape[0]):
            v[d] += grad[d]
    return loss


@njit(cache=True)
def cbow_step(W_in, W_out, contexts, context_mask, centers, negatives, alpha):
    """Apply CBOW updates for explicit examples: h = mean of the context input vectors; each context
    vector then moves by grad_h / count (the exact gradient of the mean; see docs/embeddings.md)."""
    dim = W_in.shape[1]
    h = np.zeros(dim, dtype=W_in.dtype)
    grad = np.zeros(dim, dtype=W_in.dtype)
    loss = 0.0
    for p in range(centers.shape[0]):
        h[:] = 0.0
        count = 0
        for j in range(contexts.shape[1]):
            if context_mask[p, j] != 0:
                h += W_in[contexts[p, j]]
                count += 1
        h /= count
        loss += ns_update(h, W_out, centers[p], negatives[p], alpha, grad, True)
        for j in range(contexts.shape[1]):
            if context_mask[p, j] != 0:
                W_in[contexts[p, j]] += grad / count
    return loss


@njit(cache=True, parallel=True, fastmath=True)
def train_chunk(W_in, W_out, ids, offsets, thread_bounds, keep, prob, alias, window, negative, cbow,
                alpha_start, alpha_end, words_before, words_total, progress, rng, loss_out, examples_out,
                compute_loss):
    """Hogwild SGD (Recht et al. 2011): thread t trains on sentences thread_bounds[t]..thread_bounds[t+1]
    and writes into the shared W_in / W_out without locks (updates are sparse, so collisions are rare
    and harmless). The learning rate decays linearly with the words processed by all threads together
    (progress[t] counts thread t's words; reading the others' counters unsynchronised is fine)."""
    n_threads = thread_bounds.shape[0] - 1
    dim = W_in.shape[1]
    cast = W_in.dtype.type
    for t in prange(n_threads):
        state = rng[t]
        maxlen = 0
        for s in range(thread_bounds[t], thread_bounds[t + 1]):
            maxlen = max(maxlen, offsets[s + 1] - offsets[s])
        buf = np.empty(maxlen, dtype=np.int32)
        negs = np.empty(negative, dtype=np.int32)
        grad = np.empty(dim, dtype=W_in.dtype)
        h = np.empty(dim, dtype=W_in.dtype)
        loss = 0.0
        examples = 0
        for s in range(thread_bounds[t], thread_bounds[t + 1]):
            done = words_before
            for q in range(n_threads):
                done += progress[q]
            alpha = alpha_start - (alpha_start - alpha_end) * done / words_total
            if alpha < alpha_end:
                alpha = alpha_end
            # subsample frequent words
            n = 0
            for i in range(offsets[s], offsets[s + 1]):
                w = ids[i]
                if keep[w] < 1.0:
                    state = _next(state)
                    if _unit(state) >= keep[w]:
                        continue
                buf[n] = w
                n += 1
            progress[t] += offsets[s + 1] - offsets[s]
            for i in range(n):
                state = _next(state)
                b = 1 + int(_unit(state) * window)   # effective window, uniform on [1, window]
                lo = max(0, i - b)
                hi = min(n, i + b + 1)
                if cbow:
                    count = hi - lo - 1
                    if count == 0:
                        continue
                    for d in range(dim):
                        h[d] = 0.0
                    for j in range(lo, hi):
                        if j != i:
                            v = W_in[buf[j]]
                            for d in range(dim):
                                h[d] += v[d]
                    inv = cast(1.0 / count)
                    for d in range(dim):
                        h[d] *= inv
                    for k in range(negative):
                        state = _next(state)
                        negs[k] = _draw(state, prob, alias)
                    loss += ns_update(h, W_out, buf[i], negs, alpha, grad, compute_loss)
                    examples += 1
                    for j in range(lo, hi):
                        if j != i:
                            v = W_in[buf[j]]
                            for d in range(dim):
                                v[d] += grad[d] * inv
                else:
                    v = W_in[buf[i]]
                    for j in range(lo, hi):
                        if j == i:
                            continue
                        for k in range(negative):
                            state = _next(state)
                            negs[k] = _draw(state, prob, alias)
                        loss += ns_update(v, W_out, buf[j], negs, alpha, grad, compute_loss)
                        examples += 1
                        for d in range(dim):
                            v[d] += grad[d]
        rng[t] = state
        loss_out[t] += loss
        examples_out[t] += examples


def set_threads(n: int) -> int:
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n
