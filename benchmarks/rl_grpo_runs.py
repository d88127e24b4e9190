"""GRPO runs side by side: held-out greedy accuracy of each run's final policy on the fixed test
sets, and the training curves as one figure.

    OPENBLAS_NUM_THREADS=1 python benchmarks/rl_grpo_runs.py LABEL=RUN_DIR ... [--problems 200] [--plot PNG]

Each RUN_DIR is a `tglite rl grpo --out` folder (its ckpt.npz holds the policy and the logs).
The starting policy (policy-small-mid) and any plain policy checkpoint (LABEL=FILE.npz, e.g. an SFT
snapshot) can be listed too; they get a table row and no curve. The runs, commands and results
are in docs/rl.md ("GRPO"). Greedy decoding has no randomness: the table is exact for the weights.
"""
import argparse
import math
import time
from pathlib import Path

import numpy as np
from machine import machine_line

import nn
from rl import LEVELS, load_policy, load_shipped_policy, test_set
from rl.plots import plot_grpo_runs
from rl.policy import greedy_accuracy

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("runs", nargs="+", metavar="LABEL=PATH")
parser.add_argument("--problems", type=int, default=200, help="test problems per level (at most 200)")
parser.add_argument("--plot", type=Path, default=None, help="write the curves of the GRPO runs here")
args = parser.parse_args()
print(machine_line(), flush=True)

t0 = time.time()
problems = {lv: test_set(lv)[: args.problems] for lv in LEVELS}
curves, table = {}, []
for item in args.runs:
    label, _, spec = item.partition("=")
    path = Path(spec)
    if path.is_dir():
        path = path / "ckpt.npz"
        curves[label] = nn.load_checkpoint(path).extra.get("logs", [])
    model, _ = load_policy(path) if path.suffix == ".npz" else load_shipped_policy(spec)
    acc = greedy_accuracy(model, problems)
    table.append((label, acc))
    print(f"evaluated {label} ({round(time.time() - t0)} s)", flush=True)

n = args.problems
print(f"\ngreedy accuracy, the first {n} test problems of each level (one problem = {100 / n:.1f} points; "
      f"binomial standard error at p = 0.3: ±{100 * math.sqrt(0.3 * 0.7 / n):.1f} points per level)")
print("| policy | " + " | ".join(f"L{lv}" for lv in LEVELS) + " | mean L1-L3 | mean L1-L5 |")
print("|---|" + "---|" * (len(LEVELS) + 2))
for label, acc in table:
    cells = " | ".join(f"{acc[lv]:.3f}" for lv in LEVELS)
    print(f"| {label} | {cells} | {np.mean([acc[lv] for lv in (1, 2, 3)]):.3f} | {np.mean(list(acc.values())):.3f} |")
if args.plot is not None and curves:
    plot_grpo_runs(curves, args.plot)
    print(f"saved {args.plot}")
print(f"({round(time.time() - t0)} s)")
