"""Where one tiny op's time goes: the cost of `y = x * 0.999` on an (8,) float32 tensor, layer by layer.

Each row adds one layer of the engine to the one above it, so the differences are what each layer
costs; all rows are timed interleaved (round-robin) and the medians printed in µs per op.

    numpy              x * np.float32(0.999) on the raw array: the floor for an eager NumPy engine
    + Tensor wrap      the same, wrapped in a Tensor (Tensor._make): the output object
    forward, no_grad   Tensor * 0.999 under no_grad: operands, Function.apply, no graph recorded
    forward, grad      the same with requires_grad: the node is recorded (ctx, parents, saved tensors)
    backward per node  a 1,000-op chain's backward, divided by its 1,000 nodes
    PyTorch rows       the same two forwards and the backward in PyTorch eager, when it is installed

    python benchmarks/op_cost.py [--repeats 21]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from machine import machine_line  # noqa: E402

import tinygrad_lite as tg  # noqa: E402

N = 1000  # ops per timing


def rows(torch=None) -> dict:  # noqa: ANN001
    x_np = np.linspace(0.1, 0.8, 8).astype(np.float32)
    c = np.float32(0.999)
    x_tg = tg.tensor(x_np)
    x_grad = tg.tensor(x_np, requires_grad=True)

    def numpy_op() -> None:
        for _ in range(N):
            x_np * c

    def wrapped() -> None:
        for _ in range(N):
            tg.Tensor._make(x_np * c, False, "cpu")

    def forward_no_grad() -> None:
        with tg.no_grad():
            for _ in range(N):
                x_tg * 0.999

    def forward_grad() -> None:
        for _ in range(N):
            x_grad * 0.999

    def chain_backward() -> float:
        y = x_grad
        for _ in range(N):
            y = y * 0.999
        t = time.perf_counter()
        y.backward(tg.ones_like(y))
        return time.perf_counter() - t

    out = {"numpy": numpy_op, "+ Tensor wrap": wrapped, "forward, no_grad": forward_no_grad,
           "forward, grad": forward_grad, "backward per node": chain_backward}
    if torch is not None:
        xt = torch.tensor(x_np)
        xg = torch.tensor(x_np, requires_grad=True)

        def torch_no_grad() -> None:
            with torch.no_grad():
                for _ in range(N):
                    xt * 0.999

        def torch_grad() -> None:
            for _ in range(N):
                xg * 0.999

        def torch_backward() -> float:
            y = xg
            for _ in range(N):
                y = y * 0.999
            t = time.perf_counter()
            y.backward(torch.ones_like(y))
            return time.perf_counter() - t

        out.update({"torch forward, no_grad": torch_no_grad, "torch forward, grad": torch_grad,
                    "torch backward per node": torch_backward})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args()
    print(machine_line())
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(1)
        except ImportError:
            print("PyTorch is not installed: its rows are left out")
    fns = rows(torch)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            inner = fn()
            times[name].append(inner if inner is not None else time.perf_counter() - t)
    floor = statistics.median(times["numpy"]) / N * 1e6
    print(f"one op on an (8,) float32 tensor, µs per op (median of {args.repeats} x {N} ops)")
    for name, ts in times.items():
        us = statistics.median(ts) / N * 1e6
        print(f"  {name:26s} {us:7.2f} µs   ({us / floor:5.1f}x numpy's op)")


if __name__ == "__main__":
    main()
