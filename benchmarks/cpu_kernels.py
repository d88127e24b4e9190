"""The Numba CPU kernels against the NumPy reference paths they replace, on GPT training shapes.

    python benchmarks/cpu_kernels.py [--repeats 51]

Each row runs the same engine operation twice, switching `tinygrad_lite.backend.USE_NUMBA` (the
switch `TGLITE_NUMBA=0` sets) between the NumPy reference path and the compiled kernel, interleaved
(A, B, A, B, ...) so machine noise hits both alike; medians and the ratio are printed. Shapes are
those of one step of the shakespeare-char CPU GPT (batch 12 x 64 tokens, n_embd 128, 4 layers):

  GELU forward        fused_gelu on (12, 64, 512) float32 (the MLP's hidden layer)
  layer norm fwd+bwd  F.layer_norm on (12, 64, 128) and its backward
  AdamW step          nn.AdamW.step over the GPT's 809,856 parameters
  clip_grad_norm_     the global gradient norm over the same parameters

One thread for NumPy's BLAS: OPENBLAS_NUM_THREADS defaults to 1 here (none of these is a matmul).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from machine import machine_line  # noqa: E402

import nn  # noqa: E402
import tinygrad_lite as tg  # noqa: E402
import tinygrad_lite.functional as F  # noqa: E402
from tinygrad_lite import backend  # noqa: E402


def interleaved_ab(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of fn() on the NumPy path and on the Numba path, alternating."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for use in (False, True):  # warm-up (and compile) both
        backend.USE_NUMBA = use
        fn()
    for _ in range(repeats):
        for use in (False, True):
            backend.USE_NUMBA = use
            t0 = time.perf_counter()
            fn()
            times[use].append(time.perf_counter() - t0)
    backend.USE_NUMBA = True
    return statistics.median(times[False]), statistics.median(times[True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=51)
    args = parser.parse_args()
    if not backend.numba_available():
        raise SystemExit('this benchmark compares the Numba kernels: pip install -e ".[fast]"')
    rng = np.random.default_rng(0)

    h = tg.Tensor(rng.standard_normal((12, 64, 512)).astype(np.float32))
    x = tg.Tensor(rng.standard_normal((12, 64, 128)).astype(np.float32), requires_grad=True)
    w = tg.Tensor(1 + 0.1 * rng.standard_normal(128).astype(np.float32), requires_grad=True)
    b = tg.Tensor(0.1 * rng.standard_normal(128).astype(np.float32), requires_grad=True)
    g = tg.Tensor(rng.standard_normal((12, 64, 128)).astype(np.float32))

    def layer_norm_step() -> None:
        x.grad = w.grad = b.grad = None
        F.layer_norm(x, w.shape, w, b).backward(g)

    model = nn.GPT(nn.GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128),
                   generator=tg.Generator(0))
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    tokens = rng.integers(0, 65, (12, 65))
    model(tokens[:, :-1], tokens[:, 1:])[1].backward()  # real gradients for the optimizer rows
    params = list(model.parameters())

    rows = [
        ("GELU forward (12x64x512)", lambda: F.fused_gelu(h)),
        ("layer norm fwd+bwd (12x64x128)", layer_norm_step),
        (f"AdamW step ({sum(p.size for p in params):,} params)", opt.step),
        ("clip_grad_norm_ (same params)", lambda: nn.clip_grad_norm_(params, 1e9)),
    ]
    print(machine_line())
    print(f"NumPy reference vs Numba kernel, float32, median of {args.repeats} (ms), interleaved")
    for name, fn in rows:
        ref, fast = interleaved_ab(fn, args.repeats)
        print(f"  {name:<36} numpy {ref * 1e3:8.3f}   numba {fast * 1e3:8.3f}   numba is {ref / fast:5.1f}x faster")


if __name__ == "__main__":
    main()
