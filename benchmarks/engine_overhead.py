"""Engine overhead: our forward+backward against hand-written NumPy and PyTorch eager (if installed).

    python benchmarks/engine_overhead.py [--repeats 15]

Two workloads, each timed with the implementations interleaved in a rotating order (A B C,
B C A, C A B, ...), so that machine noise hits all of them alike (and, for the multi-threaded MLP,
with a short pause before each step, so that no thread pool left spinning by one implementation
slows the next); we print medians and ratios.

1. chain: 1,000 elementwise ops (mul, add, tanh, sin in turn) on a tiny (8,) tensor, then
   backward. Almost no arithmetic: this measures per-op bookkeeping.
2. mlp:   a 4-layer ReLU MLP of width 1024 on a 512-row float32 batch, forward + backward.
   The matmuls dominate: this measures whether the engine adds anything to BLAS.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
from machine import machine_line

import tinygrad_lite as tg

CHAIN_LEN = 1000
MLP_WIDTH, MLP_BATCH, MLP_LAYERS = 1024, 512, 4
MLP_PAUSE_S = 0.02  # before each timed MLP step, so no thread pool still spins from the previous one


# ------------------------------------------------------------------ chain workload
def chain_ours(x0: np.ndarray) -> float:
    x = tg.Tensor(x0, requires_grad=True)
    y = x
    for i in range(CHAIN_LEN):
        k = i % 4
        y = y * 0.999 if k == 0 else y + 0.01 if k == 1 else y.tanh() if k == 2 else y.sin()
    y.sum().backward()
    return float(x.grad.data[0])


def chain_numpy(x0: np.ndarray) -> float:
    y, saved = x0, []
    for i in range(CHAIN_LEN):
        k = i % 4
        if k == 0:
            y = y * np.float32(0.999)
        elif k == 1:
            y = y + np.float32(0.01)
        elif k == 2:
            y = np.tanh(y)
            saved.append(y)
        else:
            saved.append(y)
            y = np.sin(y)
    g = np.ones_like(y)
    for i in reversed(range(CHAIN_LEN)):
        k = i % 4
        if k == 0:
            g = g * np.float32(0.999)
        elif k == 2:
            t = saved.pop()
            g = g * (1 - t * t)
        elif k == 3:
            g = g * np.cos(saved.pop())
    return float(g[0])


def chain_torch(x0: np.ndarray) -> float:
    import torch

    x = torch.tensor(x0, requires_grad=True)
    y = x
    for i in range(CHAIN_LEN):
        k = i % 4
        y = y * 0.999 if k == 0 else y + 0.01 if k == 1 else y.tanh() if k == 2 else y.sin()
    y.sum().backward()
    return float(x.grad[0])


# -------------------------------------------------------------------- mlp workload
def make_mlp(seed: int = 0) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((MLP_BATCH, MLP_WIDTH), dtype=np.float32)
    layers = [
        (rng.standard_normal((MLP_WIDTH, MLP_WIDTH), dtype=np.float32) / np.float32(np.sqrt(MLP_WIDTH)),
         np.zeros(MLP_WIDTH, dtype=np.float32))
        for _ in range(MLP_LAYERS)
    ]
    return x, layers


# Each implementation builds its parameters once (as a training loop would); the timed step is
# forward + backward only, so no implementation pays for copying 16 MB of weights per step.
def mlp_ours_step(x0: np.ndarray, layers: list) -> Callable[[], float]:
    params = [(tg.Tensor(w, requires_grad=True), tg.Tensor(b, requires_grad=True)) for w, b in layers]
    x = tg.Tensor(x0)

    def step() -> float:
        for w, b in params:
            w.grad = b.grad = None
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i < len(params) - 1:
                h = h.relu()
        loss = (h * h).mean()
        loss.backward()
        return float(params[0][0].grad.data[0, 0])

    return step


def mlp_numpy_step(x0: np.ndarray, layers: list) -> Callable[[], float]:
    def step() -> float:
        acts, h = [], x0
        for i, (w, b) in enumerate(layers):
            acts.append(h)
            h = h @ w + b
            if i < len(layers) - 1:
                h = np.maximum(h, 0)
        g = h * np.float32(2.0 / h.size)  # d mean(h²) / dh
        grads = []
        for i in reversed(range(len(layers))):
            w, _ = layers[i]
            if i < len(layers) - 1:
                g = g * (acts[i + 1] > 0)  # relu'(pre-activation) == (post-activation > 0)
            grads.append((acts[i].T @ g, g.sum(axis=0)))
            if i > 0:  # the input needs no gradient
                g = g @ w.T
        return float(grads[-1][0][0, 0])

    return step


def mlp_torch_step(x0: np.ndarray, layers: list) -> Callable[[], float]:
    import torch

    params = [(torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) for w, b in layers]
    x = torch.tensor(x0)

    def step() -> float:
        for w, b in params:
            w.grad = b.grad = None
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i < len(params) - 1:
                h = h.relu()
        (h * h).mean().backward()
        return float(params[0][0].grad[0, 0])

    return step


# ---------------------------------------------------------------------- harness
def interleaved(impls: dict[str, Callable[[], float]], repeats: int, pause: float = 0.0) -> dict[str, float]:
    values = {name: fn() for name, fn in impls.items()}  # warm-up, and the results to compare
    ref = next(iter(values.values()))
    for name, v in values.items():
        assert abs(v - ref) <= 1e-3 * max(1.0, abs(ref)), f"{name} computed {v}, expected {ref}"
    times: dict[str, list[float]] = {name: [] for name in impls}
    names = list(impls)
    for r in range(repeats):
        # Rotate the order (A B C, B C A, C A B, ...), and for multi-threaded work pause before each
        # run: PyTorch's OpenMP threads (and OpenBLAS's) keep spinning for a while after a call, and
        # in a one-off A/B here they slowed whatever ran next by 4-5 ms of a 75 ms MLP step; in a fixed
        # order that cost always landed on the implementation after PyTorch (ours).
        for name in names[r % len(names):] + names[:r % len(names)]:
            if pause:
                time.sleep(pause)
            t0 = time.perf_counter()
            impls[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def report(title: str, med: dict[str, float], per: float, unit: str) -> None:
    print(f"\n{title}")
    base = med["ours"]
    for name, t in med.items():
        ratio = "" if name == "ours" else f"   ours/{name} = {base / t:5.2f}x"
        print(f"  {name:<8} {t * 1e3:9.2f} ms  ({t / per * 1e6:7.2f} {unit}){ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", choices=["chain", "mlp"], help="run one of the two workloads")
    parser.add_argument("--no-torch", action="store_true",
                        help="leave PyTorch out even if installed (its allocations change glibc's heap for everyone)")
    args = parser.parse_args()
    print(machine_line())
    try:
        if args.no_torch:
            raise ImportError
        import torch

        torch.set_num_threads(2)
        have_torch = True
        print(f"numpy {np.__version__}, torch {torch.__version__} (threads={torch.get_num_threads()})")
    except ImportError:
        have_torch = False
        print(f"numpy {np.__version__}, torch not installed or --no-torch (PyTorch columns skipped)")

    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"TGLITE_KEEP_FREED_MEMORY={os.environ.get('TGLITE_KEEP_FREED_MEMORY', 'unset')}")
    if args.only != "mlp":
        x0 = np.linspace(-1, 1, 8, dtype=np.float32)
        impls = {"ours": lambda: chain_ours(x0), "numpy": lambda: chain_numpy(x0)}
        if have_torch:
            impls["torch"] = lambda: chain_torch(x0)
        med = interleaved(impls, args.repeats)
        report(f"chain of {CHAIN_LEN} elementwise ops on shape (8,), forward+backward (median of {args.repeats})",
               med, CHAIN_LEN, "us/op")
    if args.only == "chain":
        return

    x, layers = make_mlp()
    impls = {"ours": mlp_ours_step(x, layers), "numpy": mlp_numpy_step(x, layers)}
    if have_torch:
        impls["torch"] = mlp_torch_step(x, layers)
    med = interleaved(impls, args.repeats, pause=MLP_PAUSE_S)
    report(f"{MLP_LAYERS}-layer MLP, width {MLP_WIDTH}, batch {MLP_BATCH}, float32, forward+backward",
           med, 1, "us/step")


if __name__ == "__main__":
    main()
