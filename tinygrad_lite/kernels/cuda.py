"""Numba CUDA kernels for the fused ops and the optimizer, with launch wrappers that take CuPy arrays.

Import through `tinygrad_lite.kernels.load("cuda")`. On a GPU the wrappers take and return CuPy
arrays; under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set before numba is imported) they take
and return NumPy arrays, and every thread runs as a Python thread: slow, but it executes the same
kernel code, barriers and atomics included, so CI can test the logic without a GPU. The engine
reaches them through the "cuda" backend's registry (`DTYPES` at the end); each wrapper takes and
returns what the CPU kernel of the same name does (the table in kernels/__init__.py).

The row-wise kernels (softmax, layer norm, cross-entropy) run one thread block per row. A block's
THREADS threads stride across the row's columns, thread t handling columns t, t + THREADS,
t + 2·THREADS, ...; reads of consecutive columns by consecutive threads are coalesced into few
memory transactions. Row statistics (max, sum) are combined by a block reduction in shared memory:
a tree of halving steps, log2(THREADS) barriers. We deliberately use no warp shuffles, so the one
code path runs in the simulator as well. The elementwise kernels (GELU, the Adam step) run one
thread per element.

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
other dtypes rather than convert silently; the registry serves them float32 only, so float64
tensors on the GPU take the ops' CuPy reference code.

Compilation happens at a kernel's first launch for each argument-type signature; `cache=True` keeps
the result on disk (in NUMBA_CACHE_DIR, see `backend.ensure_numba_cache_dir`), so later processes
skip it. The helpers (block_sum, launch_stream, ...) are public: embeddings/ builds its word2vec
kernel on them.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import config, cuda, float32  # numba is already loaded (cache directory set) by kernels.load

SIMULATOR = bool(config.ENABLE_CUDASIM)
# Threads per block: a power of two (the tree reduction halves it). 256 fills a GPU SM well with
# several resident blocks; the simulator starts one Python thread per CUDA thread, so it uses 32.
THREADS = 32 if SIMULATOR else 256


# ---------------------------------------------------------------------------- helpers
def is_device_array(a: Any) -> bool:
    return hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray)


def array_module(a: Any) -> Any:
    """The array module to allocate outputs with: CuPy for GPU arrays, NumPy in the simulator."""
    if is_device_array(a):
        import cupy

        return cupy
    return np


def launch_stream() -> Any:
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


def as_device(a: Any) -> Any:
    """A CuPy array as a Numba device-array view of the same memory, without the host-side
    synchronization Numba would otherwise do on import (see the module docstring)."""
    return cuda.as_cuda_array(a, sync=False) if is_device_array(a) else a


def check_float32(name: str, *arrays: Any) -> None:
    for a in arrays:
        if a.dtype != np.float32:
            raise TypeError(f"{name}: the CUDA kernels take float32 arrays, got {a.dtype}")


def _rows(name: str, x: Any) -> Any:
    """x as a C-contiguous (rows, features) array: the rows of the last axis (a view when it can)."""
    if x.ndim < 1:
        raise ValueError(f"{name}: expected an array with a feature axis, got shape {x.shape}")
    return array_module(x).ascontiguousarray(x).reshape(math.prod(x.shape[:-1]), x.shape[-1])


def _flat(x: Any) -> Any:
    return array_module(x).ascontiguousarray(x).reshape(-1)


def _blocks(n: int) -> int:
    """Blocks of THREADS threads for one thread per element."""
    return (n + THREADS - 1) // THREADS


@cuda.jit(device=True, cache=True)
def block_sum(buf, value):  # noqa: ANN001, ANN201 - Numba device function: types are inferred
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
def block_max(buf, value):  # noqa: ANN001, ANN201
    """Maximum of `value` over the block's threads (the same tree as block_sum)."""
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
    m = block_max(buf, m)
    s = float32(0.0)  # 2. the normalizer
    for c in range(t, n, step):
        s += math.exp(x[row, c] - m)
    s = block_sum(buf, s)
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
    dot = block_sum(buf, dot)
    for c in range(t, n, step):
        dx[row, c] = y[row, c] * (g[row, c] - dot)


def softmax_forward(x: Any) -> Any:
    """softmax over the last axis of a float32 array."""
    check_float32("softmax_forward", x)
    rows = _rows("softmax_forward", x)
    y = array_module(x).empty_like(rows)
    if rows.size:
        _softmax_fwd[rows.shape[0], THREADS, launch_stream()](as_device(rows), as_device(y))
    return y.reshape(x.shape)


def softmax_backward(y: Any, g: Any) -> Any:
    """The softmax vector-Jacobian product over the last axis, from its output y and the output gradient g."""
    check_float32("softmax_backward", y, g)
    y2, g2 = _rows("softmax_backward", y), _rows("softmax_backward", g)
    dx = array_module(y).empty_like(y2)
    if y2.size:
        _softmax_bwd[y2.shape[0], THREADS, launch_stream()](as_device(y2), as_device(g2), as_device(dx))
    return dx.reshape(y.shape)


# ---------------------------------------------------------------------------- layer norm
@cuda.jit(cache=True)
def _layer_norm_fwd(x, w, b, eps, y, xhat, rstd):  # noqa: ANN001, ANN202
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n = x.shape[1]
    buf = cuda.shared.array(THREADS, float32)
    s = float32(0.0)
    for c in range(t, n, step):
        s += x[row, c]
    mu = float32(block_sum(buf, s) / n)  # float32 throughout: float64 is slow on most GPUs
    # Two passes (mean, then squared deviations) rather than E[x²] - E[x]²: the one-pass formula
    # cancels catastrophically in float32 when |mean| >> std.
    s = float32(0.0)
    for c in range(t, n, step):
        d = x[row, c] - mu
        s += d * d
    r = float32(1.0 / math.sqrt(block_sum(buf, s) / n + eps))
    for c in range(t, n, step):
        h = (x[row, c] - mu) * r
        xhat[row, c] = h  # saved for backward, as the CPU kernel does
        y[row, c] = h * w[c] + b[c]
    if t == 0:
        rstd[row] = r


@cuda.jit(cache=True)
def _layer_norm_bwd(g, xhat, rstd, w, want_gx, dx, dw, db):  # noqa: ANN001, ANN202
    # With ĝ = g·w (the gradient reaching x̂) and r = rstd:  dx = r·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)).
    # dw and db sum over rows, i.e. across blocks: each block adds its row with atomics.
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n = g.shape[1]
    buf = cuda.shared.array(THREADS, float32)
    s1 = float32(0.0)
    s2 = float32(0.0)
    for c in range(t, n, step):
        gh = g[row, c] * w[c]
        s1 += gh
        s2 += gh * xhat[row, c]
    m1 = float32(block_sum(buf, s1) / n)
    m2 = float32(block_sum(buf, s2) / n)
    r = rstd[row]
    for c in range(t, n, step):
        if want_gx:
            dx[row, c] = r * (g[row, c] * w[c] - m1 - xhat[row, c] * m2)
        cuda.atomic.add(dw, c, g[row, c] * xhat[row, c])
        cuda.atomic.add(db, c, g[row, c])


def layer_norm_forward(x: Any, w: Any, b: Any, eps: float) -> tuple[Any, Any, Any]:
    """(y, x̂, rstd) of layer norm over the last axis of a float32 x; rstd has shape x.shape[:-1] + (1,)."""
    check_float32("layer_norm_forward", x, w, b)
    rows = _rows("layer_norm_forward", x)
    xp = array_module(x)
    y, xhat, rstd = xp.empty_like(rows), xp.empty_like(rows), xp.empty(rows.shape[0], np.float32)
    if rows.size:
        _layer_norm_fwd[rows.shape[0], THREADS, launch_stream()](
            as_device(rows), as_device(w), as_device(b), np.float32(eps), as_device(y), as_device(xhat),
            as_device(rstd))
    return y.reshape(x.shape), xhat.reshape(x.shape), rstd.reshape(x.shape[:-1] + (1,))


def layer_norm_backward(g: Any, xhat: Any, rstd: Any, w: Any, want_gx: bool = True
                        ) -> tuple[Any | None, Any, Any]:
    """(dx or None, dw, db) of layer norm from the forward's x̂ and rstd and the output gradient g."""
    check_float32("layer_norm_backward", g, xhat, rstd, w)
    g2, xhat2 = _rows("layer_norm_backward", g), _rows("layer_norm_backward", xhat)
    xp = array_module(g)
    n = g2.shape[1]
    dx, dw, db = xp.empty_like(g2), xp.zeros(n, np.float32), xp.zeros(n, np.float32)
    if g2.size:
        _layer_norm_bwd[g2.shape[0], THREADS, launch_stream()](
            as_device(g2), as_device(xhat2), as_device(_flat(rstd)), as_device(w), bool(want_gx), as_device(dx),
            as_device(dw), as_device(db))
    return (dx.reshape(g.shape) if want_gx else None), dw, db


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
    m = block_max(buf, m)
    s = float32(0.0)
    xs = float32(0.0)
    for c in range(t, n, step):
        s += math.exp(x[row, c] - m)
        xs += x[row, c]
    s = block_sum(buf, s)
    xs = block_sum(buf, xs)
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


def _xent_args(name: str, logits: Any, target: Any) -> tuple[Any, Any]:
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"{name}: expected logits (N, C) and target (N,), got {logits.shape} and {target.shape}")
    xp = array_module(logits)
    return xp.ascontiguousarray(logits), xp.ascontiguousarray(target)


def cross_entropy_forward(logits: Any, target: Any, ignore_index: int = -100,
                          label_smoothing: float = 0.0) -> tuple[Any, Any]:
    """(per-row loss, per-row logsumexp) for float32 logits (N, C) and integer targets (N,).
    Rows whose target is ignore_index get loss 0. Targets must lie in [0, C) otherwise."""
    check_float32("cross_entropy_forward", logits)
    logits, target = _xent_args("cross_entropy_forward", logits, target)
    rows = logits.shape[0]
    xp = array_module(logits)
    loss, lse = xp.empty(rows, np.float32), xp.empty(rows, np.float32)
    if logits.size:
        _xent_fwd[rows, THREADS, launch_stream()](as_device(logits), as_device(target), ignore_index,
                                                   np.float32(label_smoothing), as_device(loss), as_device(lse))
    return loss, lse


def cross_entropy_backward(logits: Any, target: Any, lse: Any, grad_rows: Any, ignore_index: int = -100,
                           label_smoothing: float = 0.0) -> Any:
    """d(Σ_rows grad_rows·loss_rows)/d logits. For the mean loss pass grad_rows = g / count."""
    check_float32("cross_entropy_backward", logits, lse, grad_rows)
    logits, target = _xent_args("cross_entropy_backward", logits, target)
    dx = array_module(logits).empty_like(logits)
    if logits.size:
        _xent_bwd[logits.shape[0], THREADS, launch_stream()](
            as_device(logits), as_device(target), ignore_index, np.float32(label_smoothing), as_device(lse),
            as_device(_flat(grad_rows)), as_device(dx))
    return dx


# ---------------------------------------------------------------------------- GELU
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))  # module-level scalars are compile-time constants


@cuda.jit(cache=True)
def _gelu_fwd(x, y, cdf):  # noqa: ANN001, ANN202
    # One thread per element; math.erf on a float32 is CUDA's erff (no rational approximation
    # needed here, unlike the CPU kernel: the GPU's erff is fast).
    i = cuda.grid(1)
    if i < x.size:
        xi = x[i]
        phi = float32(0.5) * (float32(1.0) + math.erf(xi * _INV_SQRT2))  # Φ(x) = (1 + erf(x/√2)) / 2
        cdf[i] = phi
        y[i] = xi * phi


def gelu_forward(x: Any) -> tuple[Any, Any]:
    """(x·Φ(x), Φ(x)) for a float32 array in one pass; Φ is the standard normal CDF."""
    check_float32("gelu_forward", x)
    flat = _flat(x)
    xp = array_module(x)
    y, cdf = xp.empty_like(flat), xp.empty_like(flat)
    if flat.size:
        _gelu_fwd[_blocks(flat.size), THREADS, launch_stream()](as_device(flat), as_device(y), as_device(cdf))
    return y.reshape(x.shape), cdf.reshape(x.shape)


# ---------------------------------------------------------------------------- Adam / AdamW
@cuda.jit(cache=True)
def _adam_update(p, g, m, v, step_size, b1, b2, eps, bias2, decay, l2):  # noqa: ANN001, ANN202
    # The CPU kernel's update, one thread per coordinate: reads p, g, m, v once, writes p, m, v once.
    i = cuda.grid(1)
    if i < p.size:
        gi = g[i] + l2 * p[i]  # Adam's L2 weight decay (l2 = 0 for AdamW)
        mi = b1 * m[i] + (float32(1.0) - b1) * gi
        vi = b2 * v[i] + (float32(1.0) - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * decay - step_size * mi / (math.sqrt(vi / bias2) + eps)  # decay < 1: AdamW's


def adam_update(p: Any, g: Any, m: Any, v: Any, *, lr: float, b1: float, b2: float, eps: float, step: int,
                weight_decay: float, decoupled: bool) -> None:
    """One Adam/AdamW step in place on p, m and v (all C-contiguous float32, one shape), as in nn.Adam.update."""
    check_float32("adam_update", p, g, m, v)
    if not (p.shape == g.shape == m.shape == v.shape and all(a.flags.c_contiguous for a in (p, g, m, v))):
        raise ValueError("adam_update: p, g, m and v must be C-contiguous arrays of one shape")
    decay, l2 = (1.0 - lr * weight_decay, 0.0) if decoupled else (1.0, weight_decay)
    f = np.float32  # float32 scalars: the kernel's arithmetic stays in float32
    if p.size:
        _adam_update[_blocks(p.size), THREADS, launch_stream()](
            as_device(p.reshape(-1)), as_device(g.reshape(-1)), as_device(m.reshape(-1)), as_device(v.reshape(-1)),
            f(lr / (1.0 - b1**step)), f(b1), f(b2), f(eps), f(1.0 - b2**step), f(decay), f(l2))


# The registry: which kernels this module serves, for which dtypes (Backend.kernel reads it).
_F32 = np.dtype(np.float32)
DTYPES: dict[str, tuple[np.dtype, ...]] = {
    name: (_F32,) for name in (
        "gelu_forward", "layer_norm_forward", "layer_norm_backward", "softmax_forward", "softmax_backward",
        "cross_entropy_forward", "cross_entropy_backward", "adam_update")
}

# The compiled kernels themselves, by name (tests/test_cuda_ptx.py compiles each to PTX).
KERNELS = {"softmax_fwd": _softmax_fwd, "softmax_bwd": _softmax_bwd, "layer_norm_fwd": _layer_norm_fwd,
           "layer_norm_bwd": _layer_norm_bwd, "xent_fwd": _xent_fwd, "xent_bwd": _xent_bwd, "gelu_fwd": _gelu_fwd,
           "adam_update": _adam_update}
