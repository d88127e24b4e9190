"""One thread against two: our GPT training step, on a quiet machine and beside one busy process.

Each measurement is a fresh child process that trains the GPT of benchmarks/gpt_train.py for a few
steps and reports its tokens/s (median step). A variant sets the threads the child may use:

    1       OPENBLAS_NUM_THREADS=1: one BLAS thread, the serial Numba kernels
    2       two threads allowed: the thread policy (tinygrad_lite/threads.py) decides per step
    2fixed  two threads, policy off (TGLITE_THREADS=fixed): two BLAS threads whatever the machine
            is doing, what the engine did before the policy

"busy" starts one other process that spins on one core (a Python `while True` loop) for the length
of the measurement, so the load is the same every time: the browser or second notebook of a laptop.
Runs alternate (variants in turn, loads in turn, the order flipped every round), and the ratios are
of medians over rounds. Sizes:

    small   the 0.2M GPT: n_layer 4, n_head 4, n_embd 64 (198,272 parameters)
    cpu     nanoGPT's shakespeare-char CPU config: n_layer 4, n_head 4, n_embd 128 (809,856)

both with batch 12 x 64 tokens. `--matmul` also times single float32 matmuls of the GPT's shapes at
one and two BLAS threads (the crossover: from what size two threads pay).

    python benchmarks/threads.py                          # both sizes, quiet and busy, 3 rounds, 1/2/2fixed
    python benchmarks/threads.py --sizes cpu --loads quiet --variants 1,2 --rounds 5
    python benchmarks/threads.py --matmul --rounds 0      # the matmul crossover only
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = {"small": 64, "cpu": 128}  # n_embd; everything else is gpt_train.py's default
VARIANTS = {"1": {"BENCH_THREADS": "1"},
            "2": {"BENCH_THREADS": "2"},
            "2fixed": {"BENCH_THREADS": "2", "TGLITE_THREADS": "fixed"}}
SPIN = "while True:\n    pass\n"


def load_now() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def child(size: str, steps: int, warmup: int) -> None:
    """Train for warmup + steps steps in this process; print one JSON line."""
    sys.path.insert(0, str(HERE))
    import gpt_train  # sets OPENBLAS_NUM_THREADS from BENCH_THREADS before NumPy loads
    import numpy as np

    import nn
    import tinygrad_lite as tg

    config = nn.GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=SIZES[size])
    model, opt, *_ = gpt_train.build(config, want_torch=False)
    gen = tg.Generator(1)
    times, chosen = [], []
    for i in range(warmup + steps):
        b = np.asarray(gen.integers(0, 65, (12, 65)))
        t0 = time.perf_counter()
        gpt_train.ours_step(model, opt, b[:, :-1], b[:, 1:])
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            chosen.append(_threads_in_use())
    print(json.dumps({"tok_s": 768 / statistics.median(times), "threads": chosen}))


def _threads_in_use() -> int | None:
    try:
        from tinygrad_lite import threads
    except ImportError:  # before the policy existed
        return None
    return threads.current()


def run_child(size: str, variant: str, steps: int, warmup: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(VARIANTS[variant])
    out = subprocess.run([sys.executable, __file__, "--child", size, "--steps", str(steps), "--warmup", str(warmup)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def gpt_rounds(args: argparse.Namespace) -> None:
    variants = args.variants.split(",")
    results: dict[tuple[str, str, str], list[float]] = {}
    for r in range(args.rounds):
        for load in args.loads.split(","):
            spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if load == "busy" else None
            try:
                time.sleep(0.5 if spinner else 0)  # let the spinner start
                for size in args.sizes.split(","):
                    order = variants if r % 2 == 0 else variants[::-1]
                    for v in order:
                        res = run_child(size, v, args.steps, args.warmup)
                        results.setdefault((size, load, v), []).append(res["tok_s"])
                        picked = sorted(set(res["threads"])) if res["threads"][0] is not None else "-"
                        print(f"round {r} {load:5} {size:5} {v:6}: {res['tok_s']:8,.0f} tok/s  "
                              f"(threads chosen {picked}; {load_now()})", flush=True)
            finally:
                if spinner:
                    spinner.kill()
                    spinner.wait()
    print(f"\nmedians over {args.rounds} rounds (tok/s) and ratios to one thread:")
    for size in args.sizes.split(","):
        for load in args.loads.split(","):
            base = statistics.median(results[(size, load, "1")]) if "1" in variants else None
            line = f"  {size:5} {load:5}"
            for v in variants:
                med = statistics.median(results[(size, load, v)])
                line += f"   {v}: {med:8,.0f}" + (f" ({med / base:.2f}x)" if base and v != "1" else "")
            print(line)


def matmul_crossover(repeats: int) -> None:
    """x (rows, k) @ W.T (k, n) at 1 and 2 BLAS threads, interleaved: what two threads gain per size."""
    import numpy as np
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas").lib_controllers[0]
    rng = np.random.default_rng(0)
    print("\nfloat32 matmul (rows x k) @ (k x n), median of", repeats, "(ms), 1 vs 2 BLAS threads, interleaved")
    for rows, k, n in [(64, 64, 64), (128, 64, 64), (256, 64, 64), (768, 64, 64), (768, 64, 192), (768, 64, 256),
                       (768, 128, 128), (768, 128, 384), (768, 128, 512), (768, 512, 128), (3072, 128, 512)]:
        a = rng.standard_normal((rows, k), dtype=np.float32)
        w = rng.standard_normal((n, k), dtype=np.float32)
        times: dict[int, list[float]] = {1: [], 2: []}
        inner = max(1, int(2e8 / (2 * rows * k * n)))  # ~0.1 s of work per sample at 1 thread
        for _ in range(repeats):
            for t in (1, 2):
                blas.set_num_threads(t)
                a @ w.T
                t0 = time.perf_counter()
                for _ in range(inner):
                    a @ w.T
                times[t].append((time.perf_counter() - t0) / inner)
        one, two = statistics.median(times[1]), statistics.median(times[2])
        print(f"  {rows:5} x {k:4} x {n:4} ({2 * rows * k * n / 1e6:7.1f} MFLOP): 1 thread {one * 1e3:7.3f}   "
              f"2 threads {two * 1e3:7.3f}   2 threads are {one / two:4.2f}x  ({load_now()})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="small,cpu")
    p.add_argument("--loads", default="quiet,busy")
    p.add_argument("--variants", default="1,2,2fixed")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--matmul", action="store_true", help="also time single matmuls at 1 and 2 threads")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args.steps, args.warmup)
    sys.path.insert(0, str(HERE))
    from machine import machine_line

    os.environ.pop("OPENBLAS_NUM_THREADS", None)  # the line should show the BLAS's own default
    print(machine_line())
    if args.rounds:
        gpt_rounds(args)
    if args.matmul:
        matmul_crossover(max(args.rounds, 5))


if __name__ == "__main__":
    main()
