"""LoRA r=8 against full fine-tuning, chosen on validation and reported on a held-out test split.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/lora_method.py --pretrain-steps 1500

(the run in docs/lora.md: 54 minutes on one core of the shared 2-core machine; the default, 3000
pretraining steps as in benchmarks/lora_model_size.py, takes about 25 minutes more)

benchmarks/lora_model_size.py chose LoRA's placement and full fine-tuning's learning rate on the
same validation text it then reported, with one base model for every seed. Here, for each seed:

1. pretrain its own base (n_embd 256, 4 layers, --pretrain-steps on the comedies; the seed sets the
   init and batch order of pretraining *and* of fine-tuning);
2. fine-tune on the tragedies' training split: full fine-tuning at three learning rates, LoRA
   r = 8 (alpha 16, lr 5e-3) on the three placements under 2% that docs/lora.md names;
3. choose full fine-tuning's lr and LoRA's placement by the validation loss (the last 10% of the
   tragedies, mostly Timon of Athens), as lora.experiments.method_trial does;
4. measure the base and the two chosen runs on the test split (the first 10% of the tragedies:
   the opening of Hamlet), which nothing before this step reads.

Recovery = (base - LoRA) / (base - full), on test; printed per seed, then mean ± sample std
(ddof 1) and min-max over seeds. --json writes everything measured.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time

from lora.experiments import FinetuneConfig, load_corpus, method_trial, spread
from nn.files import atomic_write_bytes

PLACEMENTS = {
    "c_attn (all layers)": "c_attn",
    "c_attn + c_fc of layers 0-2": "c_attn,h.0.mlp.c_fc,h.1.mlp.c_fc,h.2.mlp.c_fc",
    "c_fc (all) + MLP c_proj of layers 0-1": "mlp.c_fc,h.0.mlp.c_proj,h.1.mlp.c_proj",
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1337,7,11", help="comma-separated; each pretrains its own base")
    ap.add_argument("--width", type=int, default=256, help="n_embd of the GPT")
    ap.add_argument("--pretrain-steps", type=int, default=3000)
    ap.add_argument("--full-lrs", default="2.5e-4,3.5e-4,5e-4", help="full fine-tuning lrs to choose from")
    ap.add_argument("--lora-lr", type=float, default=5e-3)
    ap.add_argument("--max-fraction", type=float, default=0.02, help="LoRA's budget: trainable share below this")
    ap.add_argument("--test-fraction", type=float, default=0.1, help="the tragedies' opening held out as test")
    ap.add_argument("--progress", action="store_true", help="tqdm bars for every run (on stderr)")
    ap.add_argument("--json", default=None, help="write the results here (after every seed)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    full_lrs = [float(x) for x in args.full_lrs.split(",") if x]
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; threads: "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'unset')}", flush=True)

    c = dataclasses.replace(FinetuneConfig(), n_embd=args.width, pretrain_steps=args.pretrain_steps)
    corpus = load_corpus(test_fraction=args.test_fraction)
    print(f"tragedies: train {len(corpus.ft_train):,} chars, val {len(corpus.ft_val):,} (the last 10%), "
          f"test {len(corpus.ft_test):,} (the first {100 * args.test_fraction:g}%), disjoint spans; "
          f"n_embd {c.n_embd}, {c.n_layer} layers, {c.pretrain_steps} pretraining steps, "
          f"{c.finetune_steps} fine-tuning steps; LoRA r {c.r}, alpha {c.alpha:g}, lr {args.lora_lr:g}", flush=True)
    t0 = time.perf_counter()
    trials = []
    for k, seed in enumerate(seeds):
        print(f"seed {seed} ({k + 1}/{len(seeds)}, {time.perf_counter() - t0:.0f} s so far):", flush=True)
        cs = dataclasses.replace(c, pretrain_seed=seed, finetune_seed=seed)
        trial = method_trial(corpus, cs, full_lrs, PLACEMENTS, args.lora_lr, r=c.r, max_fraction=args.max_fraction,
                             progress=args.progress,
                             log=lambda line: print(line, flush=True))
        trials.append(trial)
        print(f"  chosen on val: full lr {trial['full_lr']:g} (interior: {trial['full_lr_interior']}), LoRA on "
              f"{trial['placement']} ({100 * trial['lora_fraction']:.2f}%)\n"
              f"  test: base {trial['base_test']:.4f}, full {trial['full_test']:.4f}, LoRA {trial['lora_test']:.4f}"
              f"; recovery on test {100 * trial['recovery_test']:.1f}% (on val {100 * trial['recovery_val']:.1f}%)",
              flush=True)
        if args.json:
            atomic_write_bytes(args.json, json.dumps({"args": vars(args), "config": dataclasses.asdict(c),
                                                      "trials": trials}, indent=1).encode())
    print(f"{trials[0]['n_parameters']:,} parameters; {len(seeds)} seeds in {time.perf_counter() - t0:.0f} s")
    print(f"{'seed':>6}{'full lr':>9}  {'LoRA placement (chosen on val)':<40}{'base':>8}{'full':>8}{'LoRA':>8}"
          f"{'test rec.':>10}{'val rec.':>10}")
    for t in trials:
        print(f"{t['pretrain_seed']:>6}{t['full_lr']:>9g}  {t['placement']:<40}{t['base_test']:>8.4f}"
              f"{t['full_test']:>8.4f}{t['lora_test']:>8.4f}{100 * t['recovery_test']:>9.1f}%"
              f"{100 * t['recovery_val']:>9.1f}%")
    for split in ("test", "val"):
        s = spread([t[f"recovery_{split}"] for t in trials])
        print(f"recovery on {split}: mean {100 * s['mean']:.1f}% ± {100 * s['std']:.1f} (sample std over "
              f"{s['n']} seeds), min {100 * s['min']:.1f}%, max {100 * s['max']:.1f}%")


if __name__ == "__main__":
    main()
