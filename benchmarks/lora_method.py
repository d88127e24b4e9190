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

The measurement for notebook 06's shipped base (n_embd 128, 3000 pretraining steps: the
FinetuneConfig defaults; docs/lora.md), one seed per command so that no run is long on the
shared machine, seed 1337 on the shipped file itself (`tglite lora pretrain-base` made it):

    OPENBLAS_NUM_THREADS=1 python benchmarks/lora_method.py --width 128 --seeds 7 --json s7.json
    OPENBLAS_NUM_THREADS=1 python benchmarks/lora_method.py --width 128 --seeds 11 --json s11.json
    OPENBLAS_NUM_THREADS=1 python benchmarks/lora_method.py --width 128 --seeds 1337 \
        --base lora/checkpoints/comedies-base.npz --json s1337.json
    python benchmarks/lora_method.py --summarize s1337.json s7.json s11.json
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from typing import Any

from machine import machine_line

from lora.experiments import Corpus, FinetuneConfig, load_corpus, method_trial, spread
from nn.files import atomic_write_bytes

# LoRA's candidate placements under 2% trainable, per width: the ones the selection data in
# docs/lora.md named (n_embd 256: benchmarks/lora_model_size.py; n_embd 128:
# benchmarks/lora_lr_sensitivity.py). At n_embd 128 an r = 8 adapter on every c_fc is 2.5%, over budget.
PLACEMENTS_BY_WIDTH = {
    256: {
        "c_attn (all layers)": "c_attn",
        "c_attn + c_fc of layers 0-2": "c_attn,h.0.mlp.c_fc,h.1.mlp.c_fc,h.2.mlp.c_fc",
        "c_fc (all) + MLP c_proj of layers 0-1": "mlp.c_fc,h.0.mlp.c_proj,h.1.mlp.c_proj",
    },
    128: {
        "c_attn (all layers)": "c_attn",
        "c_fc of layers 0-2": "h.0.mlp.c_fc,h.1.mlp.c_fc,h.2.mlp.c_fc",
        "c_fc of layers 1-3": "h.1.mlp.c_fc,h.2.mlp.c_fc,h.3.mlp.c_fc",
    },
}
PLACEMENTS = PLACEMENTS_BY_WIDTH[256]


def print_summary(trials: list[dict], seconds: float | None = None) -> None:
    """The per-seed table and the mean ± sample std of the recovery, on test and on val."""
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    print(f"{trials[0]['n_parameters']:,} parameters; {len(trials)} seeds{took}")
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


def summarize(paths: list[str]) -> None:
    """--summarize: one table over the seeds of several --json files (seeds run one per command, so
    that no single run is long on a shared machine). Every file must come from the same settings."""
    runs = [json.loads(open(p, encoding="utf-8").read()) for p in paths]
    keys = ("width", "pretrain_steps", "full_lrs", "lora_lr", "max_fraction", "test_fraction")
    first = {k: runs[0]["args"][k] for k in keys}
    for path, run in zip(paths, runs):
        other = {k: run["args"][k] for k in keys}
        if other != first:
            raise SystemExit(f"--summarize: {path} was run with {other}, {paths[0]} with {first}: not one experiment")
    trials = [t for run in runs for t in run["trials"]]
    seeds = [t["pretrain_seed"] for t in trials]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--summarize: seeds {seeds} repeat; give each seed once")
    print(f"settings: {first}; from {', '.join(paths)}")
    print_summary(trials)


def given_base(path: str, c: FinetuneConfig, corpus: Corpus, n_seeds: int) -> Any:
    """--base: the saved base, after checking that it was pretrained exactly as this seed would pretrain it."""
    from lora import load_shipped_base

    if n_seeds != 1:
        raise SystemExit("--base: give one seed (--seeds N), the one the base was pretrained with")
    model, info = load_shipped_base(path, tokenizer=corpus.tokenizer)
    saved = info["pretrain"]
    seed = c.seed if c.pretrain_seed is None else c.pretrain_seed
    saved_seed = saved["seed"] if saved.get("pretrain_seed") is None else saved["pretrain_seed"]
    keys = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "pretrain_steps", "pretrain_lr")
    differ = {k: (saved.get(k), getattr(c, k)) for k in keys if saved.get(k) != getattr(c, k)}
    if saved_seed != seed:
        differ["pretrain seed"] = (saved_seed, seed)
    if differ:
        raise SystemExit(f"--base {path}: pretrained with other settings (saved, this run): {differ}")
    print(f"  the base: {path} (pretrained {saved['pretrain_steps']} steps, seed {saved_seed})", flush=True)
    return model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1337,7,11", help="comma-separated; each pretrains its own base")
    ap.add_argument("--width", type=int, default=256, choices=sorted(PLACEMENTS_BY_WIDTH),
                    help="n_embd of the GPT (it sets LoRA's candidate placements)")
    ap.add_argument("--pretrain-steps", type=int, default=3000)
    ap.add_argument("--full-lrs", default="2.5e-4,3.5e-4,5e-4", help="full fine-tuning lrs to choose from")
    ap.add_argument("--lora-lr", type=float, default=5e-3)
    ap.add_argument("--max-fraction", type=float, default=0.02, help="LoRA's budget: trainable share below this")
    ap.add_argument("--test-fraction", type=float, default=0.1, help="the tragedies' opening held out as test")
    ap.add_argument("--progress", action="store_true", help="tqdm bars for every run (on stderr)")
    ap.add_argument("--json", default=None, help="write the results here (after every seed)")
    ap.add_argument("--base", default=None, metavar="FILE",
                    help="with one seed: fine-tune this base (`tglite lora pretrain-base`'s file, made with the "
                         "same settings and seed) instead of pretraining it again")
    ap.add_argument("--summarize", nargs="+", metavar="JSON", default=None,
                    help="print one table over the seeds of these --json files (runs nothing)")
    args = ap.parse_args(argv)
    if args.summarize:
        summarize(args.summarize)
        return
    seeds = [int(s) for s in args.seeds.split(",") if s]
    full_lrs = [float(x) for x in args.full_lrs.split(",") if x]
    placements = PLACEMENTS_BY_WIDTH[args.width]
    print(machine_line())
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
        base = given_base(args.base, cs, corpus, len(seeds)) if args.base else None
        trial = method_trial(corpus, cs, full_lrs, placements, args.lora_lr, r=c.r, max_fraction=args.max_fraction,
                             progress=args.progress,
                             log=lambda line: print(line, flush=True), base=base)
        trials.append(trial)
        print(f"  chosen on val: full lr {trial['full_lr']:g} (interior: {trial['full_lr_interior']}), LoRA on "
              f"{trial['placement']} ({100 * trial['lora_fraction']:.2f}%)\n"
              f"  test: base {trial['base_test']:.4f}, full {trial['full_test']:.4f}, LoRA {trial['lora_test']:.4f}"
              f"; recovery on test {100 * trial['recovery_test']:.1f}% (on val {100 * trial['recovery_val']:.1f}%)",
              flush=True)
        if args.json:
            atomic_write_bytes(args.json, json.dumps({"args": vars(args), "config": dataclasses.asdict(c),
                                                      "trials": trials}, indent=1).encode())
    print_summary(trials, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
