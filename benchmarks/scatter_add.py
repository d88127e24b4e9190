"""Embedding backward (scatter-add of rows): NumPy's np.add.at against our Numba CPU kernel.

    python benchmarks/scatter_add.py [--repeats 21]

out[idx[i]] += g[i] for every i, on the shapes the project trains with. Three implementations,
interleaved (A, B, C, A, B, C, ...) so machine noise hits them alike; medians and ratios printed:
  add.at   np.add.at(out, (idx,), g)                    the engine's reference path
  numba    tinygrad_lite.kernels.cpu.index_add_rows       serial njit: what the engine uses
  prange   the same loop split over column blocks with prange (kept here only to show why the
           engine's kernel is serial)
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from machine import machine_line

from tinygrad_lite import kernels

SHAPES = [  # (name, rows of the table, width, number of indices)
    ("GPT char tokens  (vocab 65, C=128, 32x64 tokens)", 65, 128, 32 * 64),
    ("GPT BPE tokens   (vocab 8192, C=512, 32x256)", 8192, 512, 32 * 256),
    ("GPT positions    (256, C=512, 32x256)", 256, 512, 32 * 256),
    ("word2vec         (vocab 10k, dim 100, 1024x(1+5))", 10_000, 100, 1024 * 6),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    print(machine_line())
    K = kernels.load("cpu")
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def prange_rows(out, idx, values):  # noqa: ANN001, ANN202 - each task owns 64 columns: no races
        n_rows, n_cols = values.shape
        for task in prange((n_cols + 63) // 64):
            for i in range(n_rows):
                r = idx[i]
                for c in range(task * 64, min(task * 64 + 64, n_cols)):
                    out[r, c] += values[i, c]

    rng = np.random.default_rng(0)
    print(f"np.add.at vs Numba scatter-add, float32, median of {args.repeats} (ms); out zeroed each call")
    for name, n_out, width, n in SHAPES:
        idx = rng.integers(0, n_out, n)
        g = rng.standard_normal((n, width)).astype(np.float32)
        impls = {
            "add.at": lambda out, idx=idx, g=g: np.add.at(out, (idx,), g),
            "numba": lambda out, idx=idx, g=g: K.index_add_rows(out, idx, g),
            "prange": lambda out, idx=idx, g=g: prange_rows(out, idx, g),
        }
        results = {}
        for key, fn in impls.items():  # compile + check they agree
            out = np.zeros((n_out, width), np.float32)
            fn(out)
            results[key] = out
        assert all(np.allclose(r, results["add.at"], atol=1e-3) for r in results.values())
        times: dict[str, list[float]] = {k: [] for k in impls}
        for _ in range(args.repeats):
            for key, fn in impls.items():
                out = np.zeros((n_out, width), np.float32)
                t0 = time.perf_counter()
                fn(out)
                times[key].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        print(f"  {name}: add.at {med['add.at']:8.3f}  numba {med['numba']:7.3f}  prange {med['prange']:7.3f}   "
              f"numba is {med['add.at'] / med['numba']:5.0f}x faster than add.at, "
              f"{med['prange'] / med['numba']:5.1f}x faster than prange")


if __name__ == "__main__":
    main()
