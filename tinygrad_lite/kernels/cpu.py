"""Numba CPU kernels (`njit`). Import through `tinygrad_lite.kernels.load("cpu")`, which sets up the
on-disk compile cache first and names the extra to install when Numba is missing.

Each kernel has a NumPy reference in the engine (the readable version, and the one used without
Numba); tests check that both agree and that gradients through either are right.
"""
from __future__ import annotations

import numpy as np
from numba import njit


# Serial on purpose. A `prange` version (each task owning a slice of the columns, so repeated
# indices never race) was measured 6-280x *slower* than this loop on GPT and word2vec shapes
# (benchmarks/scatter_add.py, docs/gpu.md): the scatter is well under a millisecond of memory traffic, less than the
# cost of waking a thread pool, and on a busy 2-core machine the pool's threads compete with the
# interpreter. One pass, in index order, with a contiguous inner loop that LLVM vectorizes.
@njit(cache=True, nogil=True)
def _index_add_rows(out: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    n_rows, n_cols = values.shape
    n_out = out.shape[0]
    for i in range(n_rows):
        r = idx[i]
        if r < 0:  # NumPy-style negative index (the forward pass already checked the range)
            r += n_out
        for c in range(n_cols):
            out[r, c] += values[i, c]


def index_add_rows(out: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    """out[idx[i], :] += values[i, :] for every i, in place; repeated indices accumulate.

    The same result as `np.add.at(out, (idx,), values)` for a 2-D `out`, a 1-D integer `idx` and
    `values` of shape (len(idx), out.shape[1]). Indices must already lie in [-len(out), len(out)).
    """
    if out.ndim != 2 or idx.ndim != 1 or values.shape != (idx.shape[0], out.shape[1]):
        raise ValueError(f"index_add_rows: shapes out {out.shape}, idx {idx.shape}, values {values.shape} "
                         f"do not fit out[idx] += values")
    _index_add_rows(out, idx, np.ascontiguousarray(values, dtype=out.dtype))
