"""Data-parallel training on one machine: two threads in one process, or two MPI ranks?

One run measures, side by side, the GPT's training speed (tokens/s of the global batch) for
    1 process, 1 BLAS thread        the baseline
    1 process, 2 BLAS threads       NumPy's matmuls use both cores; our elementwise work does not
    2 MPI ranks, 1 thread each      nn.distributed.DistributedDataParallel, half the batch each
and the all-reduce over 2 ranks against message size, next to the ring all-reduce cost model
    t(bytes) = 2(N-1)/N · bytes / B   (B: the point-to-point bandwidth, measured with Sendrecv)
It also reports how far 2 ranks drift from 1 process in float32 after 5 AdamW steps (same global batch).

    python benchmarks/distributed.py                   # the nanoGPT shakespeare-char CPU model
    python benchmarks/distributed.py --steps 10 --rounds 1

The configurations run one after another, alternating over --rounds rounds (A B C A B C ...), so a
change in machine load hits each alike; the median step time of each is reported. Each runs in a
child process: BLAS reads its thread count when NumPy loads. Needs the `distributed` extra.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from machine import machine_line

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))


# ----------------------------------------------------------------------------- the children
def make_model(args: argparse.Namespace, dtype: str = "float32"):  # noqa: ANN201
    import nn
    import tinygrad_lite as tg

    config = nn.GPTConfig(block_size=args.block_size, vocab_size=65, n_layer=args.n_layer, n_head=args.n_head,
                          n_embd=args.n_embd, dropout=0.0)
    model = nn.GPT(config, dtype=dtype, generator=tg.Generator(0))
    return model, model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))


def batch(args: argparse.Namespace, step: int, rows: slice = slice(None)):  # noqa: ANN201
    import tinygrad_lite as tg

    tokens = np.random.default_rng(step).integers(0, 65, (args.batch_size, args.block_size + 1))
    return tg.Tensor(tokens[rows, :-1]), tg.Tensor(tokens[rows, 1:])


def time_steps(step_model, optimizer, args: argparse.Namespace, rows: slice, comm=None) -> list[float]:  # noqa: ANN001
    import nn

    times = []
    for i in range(args.warmup + args.steps):
        if comm is not None:
            comm.barrier()  # both ranks start the step together
        t0 = time.perf_counter()
        nn.train_step(step_model, optimizer, [batch(args, i, rows)], grad_clip=1.0)
        if comm is not None:
            comm.barrier()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return times


def child_single(args: argparse.Namespace) -> None:
    model, opt = make_model(args)
    times = time_steps(model, opt, args, slice(None))
    print(json.dumps({"times": times, "machine": machine_line()}))


def child_ranks(args: argparse.Namespace) -> None:
    import nn
    from nn.distributed import DistributedDataParallel, MPICommunicator, shard_rows

    comm = MPICommunicator()
    rows = shard_rows(args.batch_size, comm)
    out: dict = {}
    # float32 drift: 5 AdamW steps on 2 ranks vs one process (here, in-process) on the whole batch.
    ref, ref_opt = make_model(args)
    model, opt = make_model(args)
    ddp = DistributedDataParallel(model, comm)
    for i in range(5):
        nn.train_step(ref, ref_opt, [batch(args, 1000 + i)], grad_clip=1.0)
        nn.train_step(ddp, opt, [batch(args, 1000 + i, rows)], grad_clip=1.0)
    out["float32_drift"] = max(float(np.abs(p.numpy() - q.numpy()).max())
                               for p, q in zip(model.parameters(), ref.parameters()))
    model, opt = make_model(args)
    ddp = DistributedDataParallel(model, comm)  # 25 MB buckets: one bucket for this model
    out["times"] = time_steps(ddp, opt, args, rows, comm)
    out["buckets"] = len(ddp.buckets)
    model, opt = make_model(args)
    ddp = DistributedDataParallel(model, comm, bucket_cap_mb=args.small_bucket_mb)
    out["times_small_buckets"] = time_steps(ddp, opt, args, rows, comm)
    out["small_buckets"] = len(ddp.buckets)
    out["grad_bytes"] = sum(p.size * p.data.dtype.itemsize for p in model.parameters())
    out["allreduce"] = allreduce_sweep(comm, args)
    if comm.rank == 0:
        print(json.dumps(out))


def allreduce_sweep(comm, args: argparse.Namespace) -> dict:  # noqa: ANN001
    """Median time of an all-reduce (ours: nonblocking + polling; MPI's blocking Allreduce) per size,
    and the point-to-point bandwidth B from a large Sendrecv."""
    MPI = comm.MPI
    raw = comm.comm
    peer = 1 - comm.rank

    def median_time(fn, reps: int) -> float:  # noqa: ANN001
        ts = []
        for _ in range(reps):
            raw.Barrier()
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    big = np.ones(args.p2p_bytes // 8)
    incoming = np.empty_like(big)
    p2p = median_time(lambda: raw.Sendrecv(big, dest=peer, recvbuf=incoming, source=peer), 5)
    bandwidth = big.nbytes / p2p  # bytes/s each way (Sendrecv sends and receives at once)
    rows = []
    for nbytes in [2**k for k in range(10, 27, 2)]:
        a = np.ones(nbytes // 4, dtype=np.float32)
        b = np.empty_like(a)
        reps = 20 if nbytes <= 2**20 else 5
        ours = median_time(lambda: comm.all_reduce(a), reps)  # noqa: B023
        theirs = median_time(lambda: raw.Allreduce(a, b, op=MPI.SUM), reps)  # noqa: B023
        rows.append({"bytes": nbytes, "ours": ours, "mpi": theirs})
    return {"p2p_bandwidth": bandwidth, "p2p_bytes": big.nbytes, "rows": rows}


# ----------------------------------------------------------------------------- the driver
def run_child(kind: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k != "child" and not isinstance(v, bool)]
    if kind == "ranks":
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        command = [mpiexec, "-n", "2", sys.executable, HERE, "--child=ranks", *flags]
    else:
        threads = kind.split("-")[1]
        env.update(OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        command = [sys.executable, HERE, "--child=single", *flags]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration and round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds over the configurations")
    parser.add_argument("--batch-size", type=int, default=12, help="the global batch (rows)")
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--small-bucket-mb", type=float, default=0.25, help="the bucket size of the second DDP row")
    parser.add_argument("--p2p-bytes", type=int, default=2**25, help="message size for the bandwidth B")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "single":
        return child_single(args)
    if args.child == "ranks":
        return child_ranks(args)

    print(machine_line())
    print(f"GPT {args.n_layer}x{args.n_embd}, {args.n_head} heads, block {args.block_size}, global batch "
          f"{args.batch_size}: {args.steps} timed steps x {args.rounds} rounds per configuration")
    kinds = ["single-1", "single-2", "ranks"]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    results: dict[str, dict] = {}
    for _ in range(args.rounds):
        for kind in kinds:
            results[kind] = run_child(kind, args)
            times[kind] += results[kind]["times"]
            if kind == "ranks":
                times["ranks-small"] = times.get("ranks-small", []) + results[kind]["times_small_buckets"]
    print("the 1-thread child's " + results["single-1"]["machine"])
    tokens = args.batch_size * args.block_size
    base = tokens / statistics.median(times["single-1"])
    print(f"\n{'configuration':34s} {'median step':>12s} {'tok/s':>9s} {'vs 1 thread':>12s}")
    r = results["ranks"]
    names = {"single-1": "1 process, 1 BLAS thread", "single-2": "1 process, 2 BLAS threads",
             "ranks": f"2 ranks x 1 thread, {r['buckets']} bucket",
             "ranks-small": f"2 ranks x 1 thread, {r['small_buckets']} buckets"}
    for kind in [*kinds, "ranks-small"]:
        step = statistics.median(times[kind])
        print(f"{names[kind]:34s} {step * 1e3:10.1f} ms {tokens / step:9,.0f} {tokens / step / base:11.2f}x")
    two_threads = tokens / statistics.median(times["single-2"])
    two_ranks = tokens / statistics.median(times["ranks"])
    print(f"2 ranks / 2 threads: {two_ranks / two_threads:.2f}x   "
          f"({r['buckets']} bucket(s), {r['grad_bytes'] / 2**20:.2f} MiB of gradients all-reduced per step)")
    print(f"float32, 2 ranks vs 1 process after 5 AdamW steps: largest weight difference {r['float32_drift']:.2e}")

    sweep = r["allreduce"]
    bw = sweep["p2p_bandwidth"]
    print(f"\nall-reduce on 2 ranks (float32); point-to-point bandwidth B = {bw / 1e9:.2f} GB/s "
          f"(Sendrecv of {sweep['p2p_bytes'] / 2**20:.0f} MiB)")
    print(f"{'bytes':>10s} {'ours':>10s} {'MPI':>10s} {'ring model':>11s} {'MPI/model':>10s} {'bus GB/s':>9s}")
    n = 2
    for row in sweep["rows"]:
        model = 2 * (n - 1) / n * row["bytes"] / bw
        bus = 2 * (n - 1) / n * row["bytes"] / row["mpi"] / 1e9
        print(f"{row['bytes']:10,d} {row['ours'] * 1e6:8.1f}us {row['mpi'] * 1e6:8.1f}us {model * 1e6:9.1f}us "
              f"{row['mpi'] / model:10.2f} {bus:9.2f}")
    print("(the model has no latency term: small messages are latency-bound, large ones approach it)")
    load = os.getloadavg()
    print(f"load average after the run {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
