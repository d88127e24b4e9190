"""The word2vec update as a Numba CUDA kernel: skip-gram with negative sampling, one SGD step.

Import through `embeddings.word2vec_fast.cuda_kernels()`. It is built on the engine's CUDA helpers
(`tinygrad_lite/kernels/cuda.py`: the block reduction, the launch stream, float32 checks) and
follows its conventions: CuPy arrays in and out on a GPU, NumPy arrays under the CUDA simulator
(NUMBA_ENABLE_CUDASIM=1), where tests/cuda_sim runs it without a GPU. The engine itself knows
nothing about word2vec.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_lite import kernels

_K = kernels.load("cuda")  # loads Numba the engine's way (compile cache, missing-extra error)
from numba import cuda, float32  # noqa: E402 - after the loader, which sets Numba's cache directory

THREADS = _K.THREADS
block_sum = _K.block_sum  # a module-level name: the kernel below calls it as a CUDA device function
# The center vector and its gradient live in shared memory: at most this many dimensions.
MAX_DIM = 1024


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
        s = block_sum(buf, s)
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
    _K.check_float32("sgns_update", w_in, w_out)
    if w_in.shape != w_out.shape or w_in.ndim != 2 or w_in.shape[1] > MAX_DIM:
        raise ValueError(f"sgns_update: w_in {w_in.shape} and w_out {w_out.shape} must be equal (V, D) with "
                         f"D <= {MAX_DIM}")
    pairs = centers.shape[0]
    if contexts.shape != (pairs,) or negatives.ndim != 2 or negatives.shape[0] != pairs:
        raise ValueError(f"sgns_update: centers {centers.shape}, contexts {contexts.shape}, negatives "
                         f"{negatives.shape} must be (B,), (B,), (B, K)")
    loss = _K.array_module(w_in).empty(pairs, np.float32)
    if pairs:
        arg = _K.as_device
        _sgns_update[pairs, THREADS, _K.launch_stream()](arg(w_in), arg(w_out), arg(centers), arg(contexts),
                                                          arg(negatives), np.float32(lr), arg(loss))
    return loss


KERNELS = {"sgns_update": _sgns_update}  # tests/test_cuda_ptx.py compiles each to PTX
