"""Numba CUDA kernels for the fused ops, with launch wrappers that take CuPy arrays.

Import through `tinygrad_lite.kernels.load("cuda")`. On a GPU the wrappers take and return CuPy
arrays; under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set before numba is imported) they take
and return NumPy arrays, and every thread runs as a Python thread: slow, but it executes the same
kernel code, barriers and atomics included, so CI can test the logic without a GPU.

The kernels are row-wise: one thread block per row (of the softmax, layer norm or cross-entropy
input; per (center, context) pair in word2vec). A block's THREADS threads stride across the row's
columns, thread t handling columns t, t + THREADS, t + 2·THREADS, ...; reads of consecutive
columns by consecutive threads are coalesced into few memory transactions. Row statistics (max, sum)
are combined by a block reduction in shared memory: a tree of halving steps, log2(THREADS) barriers.
We deliberately use no warp shuffles, so the one code path runs in the simulator as well.

Streams. CuPy queues work on its current stream. A Numba launch goes to the stream passed in the
launch configuration (the default stream otherwise), and when Numba receives a CuPy array through
`__cuda_array_interface__` it, by default (NUMBA_CUDA_ARRAY_INTERFACE_SYNC=1), synchronizes on the
stream the array names: a host-side wait on *every* launch. We avoid both problems explicitly: each
wrapper launches on CuPy's current stream (`cuda.external_stream`), so kernel and surrounding CuPy
ops are ordered by the stream alone, and converts arguments with `as_cuda_array(..., sync=False)`,
which skips the per-launch synchronization (safe precisely because we launch on that same stream).
Setting NUMBA_CUDA_ARRAY_INTERFACE_SYNC=0 in the environment has the same effect for all Numba code.
What this saves per launch has not been measured yet: no GPU was available (benchmarks/gpu.py
measures it when one is).

Precision: float32 in and out, float32 accumulation (the training dtype). The wrappers refuse
other dtypes rather than convert silently.

Compilation happens at a kernel's first launch for each argument-type signature; `cache=True` keeps
the result on disk (in NUMBA_CACHE_DIR, see `kernels.ensure_numba_cache_dir`), so later processes
skip it.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import config, cuda, float32

SIMULATOR = bool(config.ENABLE_CUDASIM)
# Threads per block: a power of two (the tree reduction halves it). 256 fills a GPU SM well with
# several resident blocks; the simulator starts one Python thread per CUDA thread, so it uses 32.
THREADS = 32 if SIMULATOR else 256
# word2vec keeps the center vector and its gradient in shared memory: at most this many dimensions.
MAX_DIM = 1024


# ---------------------------------------------------------------------------- helpers
def _is_device_array(a: Any) -> bool:
    return hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray)


def _xp(a: Any) -> Any:
    """The array module to allocate outputs with: CuPy for GPU arrays, NumPy in the simulator."""
    if _is_device_array(a):
        import cupy

        return cupy
    return np


def _stream() -> Any:
    """The Numba stream to launch on: CuPy's current stream (0, the default, in the simulator)."""
    if SIMULATOR:
        return 0
    import cupy

    ptr = cupy.cuda.get_current_stream().ptr
    if ptr == 0:  # CuPy's default is the legacy default stream, which is also Numba's default
        return cuda.default_stream()
    stream = _STREAMS.get(ptr)
    if stream is None:  # wrap each CuPy stream once, not on every launch
        stream = _STREAMS[ptr] = cuda.external_stream(ptr)
    return stream


_STREAMS: dict[int, Any] = {}


def _arg(a: Any) -> Any:
    # A CuPy array becomes a Numba device-array view of the same memory, without the host-side
    # synchronization Numba would otherwise do on import (see the module docstring).
    return cuda.as_cuda_array(a, sync=False) if _is_device_array(a) else a


def _f32(name: str, *arrays: Any) -> None:
    for a in arrays:
        if a.dtype != np.float32:
            raise TypeError(f"{name}: the CUDA kernels take float32 arrays, got {a.dtype}")


def _rows(name: str, x: Any) -> tuple[int, int]:
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (rows, features) array, got shape {x.shape}")
    return x.shape


@cuda.jit(device=True, cache=True)
def _block_sum(buf, value):  # noqa: ANN001, ANN202 - Numba device function: types are inferred
    """Sum of `value` over the block's threads, returned to every thread.

    Round k adds the upper half of the live slots onto the lower half; after log2(THREADS) rounds
    buf[0] holds the total. The barrier after each round makes its writes visible before the next
    reads; the last one keeps any thread from overwriting buf (the next reduction) while a slower
    thread is still reading buf[0].
    """
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    half = cuda.blockDim.x // 2
    while half > 0:
        if t < half:
            buf[t] += buf[t + half]
        cuda.syncthreads()
        half //= 2
    total = buf[0]
    cuda.syncthreads()
    return total


@cuda.jit(device=True, cache=True)
def _block_max(buf, value):  # noqa: ANN001, ANN202
    """Maximum of `value` over the block's threads (the same tree as _block_sum)."""
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    half = cuda.blockDim.x // 2
    while half > 0:
        if t < half and buf[t + half] > buf[t]:
            buf[t] = buf[t + half]
        cuda.syncthreads()
        half //= 2
    total = buf[0]
    cuda.syncthreads()
    return total


# ---------------------------------------------------------------------------- softmax
@cuda.jit(cache=True)
def _softmax_fwd(x, y):  # noqa: ANN001, ANN202
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n = x.shape[1]
    buf = cuda.shared.array(THREADS, float32)
    m = float32(-math.inf)  # 1. the row max, so exp never overflows
    for c in range(t, n, step):
        if x[row, c] > m:  # a comparison, not max(): Numba's CUDA target cannot type max() here
            m = x[row, c]
    m = _block_max(buf, m)
    s = float32(0.0)  # 2. the normalizer
    for c in range(t, n, step):
        s += math.exp(x[row, c] - m)
    s = _block_sum(buf, s)
    for c in range(t, n, step):  # 3. recomputing exp is cheaper than a round trip through memory
        y[row, c] = math.exp(x[row, c] - m) / s


@cuda.jit(cache=True)
def _softmax_bwd(y, g, dx):  # noqa: ANN001, ANN202
    # dx = y ⊙ (g - Σ_c g_c·y_c): one block sum per row.
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n = y.shape[1]
    buf = cuda.shared.array(THREADS, float32)
    dot = float32(0.0)
    for c in range(t, n, step):
        dot += g[row, c] * y[row, c]
    dot = _block_sum(buf, dot)
    for c in range(t, n, step):
        dx[row, c] = y[row, c] * (g[row, c] - dot)


def softmax_forward(x: Any) -> Any:
    """softmax over the last axis of a 2-D float32 array."""
    _f32("softmax_forward", x)
    rows, _ = _rows("softmax_forward", x)
    y = _xp(x).empty_like(x)
    if rows:
        _softmax_fwd[rows, THREADS, _stream()](_arg(x), _arg(y))
    return y


def softmax_backward(y: Any, g: Any) -> Any:
    """The softmax vector-Jacobian product, from its output y and the output gradient g."""
    _f32("softmax_backward", y, g)
    rows, _ = _rows("softmax_backward", y)
    dx = _xp(y).empty_like(y)
    if rows:
        _softmax_bwd[rows, THREADS, _stream()](_arg(y), _arg(g), _arg(dx))
    return dx


# ---------------------------------------------------------------------------- layer norm
@cuda.jit(cache=True)
def _layernorm_fwd(x, w, b, eps, y, mean, rstd):  # noqa: ANN001, ANN202
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n = x.shape[1]
    buf = cuda.shared.array(THREADS, float32)
    s = float32(0.0)
    for c in range(t, n, step):
        s += x[row, c]
    mu = float32(_block_sum(buf, s) / n)  # float32 throughout: float64 is slow on most GPUs
    # Two passes (mean, then squared deviations) rather than E[x²] - E[x]²: the one-pass formula
    # cancels catastrophically in float32 when |mean| >> std.
    s = float32(0.0)
    for c in range(t, n, step):
        d = x[row, c] - mu
        s += d * d
    r = float32(1.0 / math.sqrt(_block_sum(buf, s) / n + eps))
    for c in range(t, n, step):
        y[row, c] = (x[row, c] - mu) * r * w[c] + b[c]
    if t == 0:  # saved for backward: one float per row
        mean[row] = mu
        rstd[row] = r


@cuda.jit(cache=True)
def _layernorm_bwd(x, w, mean, rstd, gy, dx, dw, db):  # noqa: ANN001, ANN202
    # With x̂ = (x - μ)·r and ĝ = gy·w:  dx = r·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)).
    # dw and db sum over rows, i.e. across blocks: each block adds its row with atomics.
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n = x.shape[1]
    buf = cuda.shared.array(THREADS, float32)
    mu, r = mean[row], rstd[row]
    s1 = float32(0.0)
    s2 = float32(0.0)
    for c in range(t, n, step):
        xhat = (x[row, c] - mu) * r
        gh = gy[row, c] * w[c]
        s1 += gh
        s2 += gh * xhat
    m1 = float32(_block_sum(buf, s1) / n)
    m2 = float32(_block_sum(buf, s2) / n)
    for c in range(t, n, step):
        xhat = (x[row, c] - mu) * r
        dx[row, c] = r * (gy[row, c] * w[c] - m1 - xhat * m2)
        cuda.atomic.add(dw, c, gy[row, c] * xhat)
        cuda.atomic.add(db, c, gy[row, c])


def layernorm_forward(x: Any, w: Any, b: Any, eps: float = 1e-5) -> tuple[Any, Any, Any]:
    """(y, mean, rstd) for layer norm over the last axis of a 2-D float32 x."""
    _f32("layernorm_forward", x, w, b)
    rows, n = _rows("layernorm_forward", x)
    xp = _xp(x)
    y, mean, rstd = xp.empty_like(x), xp.empty(rows, np.float32), xp.empty(rows, np.float32)
    if rows:
        _layernorm_fwd[rows, THREADS, _stream()](_arg(x), _arg(w), _arg(b), np.float32(eps), _arg(y),
                                                  _arg(mean), _arg(rstd))
    return y, mean, rstd


def layernorm_backward(x: Any, w: Any, mean: Any, rstd: Any, gy: Any) -> tuple[Any, Any, Any]:
    """(dx, dw, db) from the forward's saved mean and rstd and the output gradient gy."""
    _f32("layernorm_backward", x, w, mean, rstd, gy)
    rows, n = _rows("layernorm_backward", x)
    xp = _xp(x)
    dx, dw, db = xp.empty_like(x), xp.zeros(n, np.float32), xp.zeros(n, np.float32)
    if rows:
        _layernorm_bwd[rows, THREADS, _stream()](_arg(x), _arg(w), _arg(mean), _arg(rstd), _arg(gy),
                                                  _arg(dx), _arg(dw), _arg(db))
    return dx, dw, db


# ---------------------------------------------------------------------------- cross-entropy
@cuda.jit(cache=True)
def _xent_fwd(x, target, ignore_index, eps, loss, lse):  # noqa: ANN001, ANN202
    # loss_row = logsumexp(x) - Σ_c q_c·x_c with q = (1-ε)·onehot(y) + ε/C: log-softmax is never
    # materialized, only the row's logsumexp (saved for backward).
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n = x.shape[1]
    buf = cuda.shared.array(THREADS, float32)
    m = float32(-math.inf)
    for c in range(t, n, step):
        if x[row, c] > m:
            m = x[row, c]
    m = _block_max(buf, m)
    s = float32(0.0)
    xs = float32(0.0)
    for c in range(t, n, step):
        s += math.exp(x[row, c] - m)
        xs += x[row, c]
    s = _block_sum(buf, s)
    xs = _block_sum(buf, xs)
    if t == 0:
        z = m + math.log(s)
        lse[row] = z
        y = target[row]
        if y == ignore_index:
            loss[row] = 0.0
        else:
            loss[row] = z - (1.0 - eps) * x[row, y] - eps * xs / n


@cuda.jit(cache=True)
def _xent_bwd(x, target, ignore_index, eps, lse, grow, dx):  # noqa: ANN001, ANN202
    # d loss_row / dx_c = softmax(x)_c - q_c, times this row's incoming gradient grow[row].
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n = x.shape[1]
    y = target[row]
    scale = grow[row] if y != ignore_index else float32(0.0)
    z = lse[row]
    # The loop stays in float32: Python float literals would make Numba compute in float64 here.
    spread = float32(eps / n)
    hit = float32(1.0 - eps) + spread
    for c in range(t, n, step):
        q = hit if c == y else spread
        dx[row, c] = scale * (math.exp(x[row, c] - z) - q)


def cross_entropy_forward(logits: Any, target: Any, ignore_index: int = -100,
                          label_smoothing: float = 0.0) -> tuple[Any, Any]:
    """(per-row loss, per-row logsumexp) for 2-D float32 logits and integer targets (rows,).
    Rows whose target is ignore_index get loss 0. Targets must lie in [0, C) otherwise."""
    _f32("cross_entropy_forward", logits)
    rows, _ = _rows("cross_entropy_forward", logits)
    xp = _xp(logits)
    loss, lse = xp.empty(rows, np.float32), xp.empty(rows, np.float32)
    if rows:
        _xent_fwd[rows, THREADS, _stream()](_arg(logits), _arg(target), ignore_index,
                                             np.float32(label_smoothing), _arg(loss), _arg(lse))
    return loss, lse


def cross_entropy_backward(logits: Any, target: Any, lse: Any, grad_rows: Any, ignore_index: int = -100,
                           label_smoothing: float = 0.0) -> Any:
    """d(Σ_rows grad_rows·loss_rows)/d logits. For the mean loss pass grad_rows = g / count."""
    _f32("cross_entropy_backward", logits, lse, grad_rows)
    rows, _ = _rows("cross_entropy_backward", logits)
    dx = _xp(logits).empty_like(logits)
    if rows:
        _xent_bwd[rows, THREADS, _stream()](_arg(logits), _arg(target), ignore_index, np.float32(label_smoothing),
                                             _arg(lse), _arg(grad_rows), _arg(dx))
    return dx


# ---------------------------------------------------------------------------- word2vec
@cuda.jit(cache=True)
def _sgns_update(w_in, w_out, centers, contexts, negatives, lr, loss):  # noqa: ANN001, ANN202
    # One block per (center, context) pair, skip-gram with negative sampling (Mikolov et al. 2013):
    #   loss = -log σ(h·u_pos) - Σ_k log σ(-h·u_k),  h = w_in[center], u = rows of w_out.
    # For each target j (the context, label 1, then the negatives, label 0): s = h·u_j,
    # coef = σ(s) - label; then ∂/∂u_j = coef·h and ∂/∂h accumulates coef·u_j.
    # Blocks update shared rows (frequent words) concurrently, so writes are atomic adds; reads
    # are not locked (Hogwild!, Recht et al. 2011: sparse, slightly stale reads still converge).
    pair, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    dim = w_in.shape[1]
    buf = cuda.shared.array(THREADS, float32)
    h = cuda.shared.array(MAX_DIM, float32)  # the center vector, read once from global memory
    gh = cuda.shared.array(MAX_DIM, float32)  # its gradient, applied once at the end
    center = centers[pair]
    for c in range(t, dim, step):
        h[c] = w_in[center, c]
        gh[c] = 0.0
    cuda.syncthreads()
    total = float32(0.0)
    n_neg = negatives.shape[1]
    for k in range(n_neg + 1):
        j = contexts[pair] if k == 0 else negatives[pair, k - 1]
        label = float32(1.0) if k == 0 else float32(0.0)
        s = float32(0.0)
        for c in range(t, dim, step):
            s += h[c] * w_out[j, c]
        s = _block_sum(buf, s)
        sig = float32(1.0 / (1.0 + math.exp(-s)))
        coef = sig - label
        step_u = -lr * coef  # float32: the per-column updates below stay in float32
        # -log σ(s) for the positive, -log σ(-s) = -log(1 - σ(s)) for a negative, computed stably
        # as softplus(∓s) = max(∓s, 0) + log1p(exp(-|s|)).
        z = -s if k == 0 else s
        total += (z if z > 0.0 else 0.0) + math.log1p(math.exp(-abs(z)))
        for c in range(t, dim, step):  # each thread owns its columns: read u_j before updating it
            u = w_out[j, c]
            gh[c] += coef * u
            cuda.atomic.add(w_out, (j, c), step_u * h[c])
        cuda.syncthreads()  # the next target's u may be this same row: finish these writes first
    for c in range(t, dim, step):
        cuda.atomic.add(w_in, (center, c), -lr * gh[c])
    if t == 0:
        loss[pair] = total


def sgns_update(w_in: Any, w_out: Any, centers: Any, contexts: Any, negatives: Any, lr: float) -> Any:
    """One SGD step of skip-gram negative sampling, in place on w_in and w_out (both (V, D) float32).
    centers, contexts: (B,) word ids; negatives: (B, K) sampled ids. Returns the per-pair loss (B,)."""
    _f32("sgns_update", w_in, w_out)
    if w_in.shape != w_out.shape or w_in.ndim != 2 or w_in.shape[1] > MAX_DIM:
        raise ValueError(f"sgns_update: w_in {w_in.shape} and w_out {w_out.shape} must be equal (V, D) with "
                         f"D <= {MAX_DIM}")
    pairs = centers.shape[0]
    if contexts.shape != (pairs,) or negatives.ndim != 2 or negatives.shape[0] != pairs:
        raise ValueError(f"sgns_update: centers {centers.shape}, contexts {contexts.shape}, negatives "
                         f"{negatives.shape} must be (B,), (B,), (B, K)")
    loss = _xp(w_in).empty(pairs, np.float32)
    if pairs:
        _sgns_update[pairs, THREADS, _stream()](_arg(w_in), _arg(w_out), _arg(centers), _arg(contexts),
                                                 _arg(negatives), np.float32(lr), _arg(loss))
    return loss


KERNELS = {"softmax_fwd": _softmax_fwd, "softmax_bwd": _softmax_bwd, "layernorm_fwd": _layernorm_fwd,
           "layernorm_bwd": _layernorm_bwd, "xent_fwd": _xent_fwd, "xent_bwd": _xent_bwd,
           "sgns_update": _sgns_update}
