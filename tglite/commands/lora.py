"""`tglite lora ...`: the LoRA experiments from the command line (lora.experiments).

    tglite lora memory [--preset 7b]             the analytic memory table
    tglite lora recovery                         low-rank recovery vs the Eckart–Young tail
    tglite lora ranks                            why α/r starves high ranks (rsLoRA)
    tglite lora finetune --method lora --rank 8  one comedies -> tragedies fine-tune vs the base
    tglite lora sweep [--quick] [key=value ...]  the whole comparison, LoRA+ and quantization error
    tglite lora pretrain-base --out FILE         pretrain the base that notebook 06 fine-tunes (shipped in
                                                 lora/checkpoints/comedies-base.npz)

Every experiment but `memory` and `pretrain-base` writes its numbers (JSON) and its plots (PNG) under
--out, each file atomically, and prints where each one went; `pretrain-base` writes one checkpoint
file. They keep no checkpoint (they are measurements, minutes long at most with --quick, about 10
for pretrain-base): Ctrl-C stops at once, says which files were complete by then, exits 130.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import (
    UsageError,
    check_folder,
    check_out_file,
    parse_overrides,
    positive_int,
    print_error,
    sigterm_as_interrupt,
)

# "full" and lora.apply.METHODS, written out so that building the parser imports no numpy (a test checks them).
FINETUNE_METHODS = ("full", "lora", "rslora", "dora", "pissa", "olora", "qlora", "vera")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "lora", help="LoRA experiments: memory table, low-rank recovery, fine-tuning sweeps",
        description="LoRA and its family (lora package). Each subcommand prints measured results and "
        "saves its plots under --out.")
    sub = parser.add_subparsers(title="experiments", dest="experiment", metavar="EXPERIMENT", required=True)
    mem = sub.add_parser("memory", help="bytes for full fine-tuning, LoRA and QLoRA (analytic)",
                         description="The memory of fine-tuning a model in full, with LoRA and with QLoRA: "
                         "weights, gradients, Adam state and activations, computed from the model's shape "
                         "(lora.memory_report), not measured. Writes nothing.")
    mem.add_argument("--preset", default="7b", help="the model: 7b (LLaMA-7B), gpt-cpu or gpt-small")
    mem.add_argument("--rank", type=positive_int, default=8, help="LoRA rank r")
    mem.add_argument("--batch", type=positive_int, default=1, help="sequences per batch (for the activations)")
    mem.add_argument("--seq", type=positive_int, default=512, help="tokens per sequence (for the activations)")
    mem.add_argument("--precision", default="mixed", choices=["mixed", "fp32"],
                     help="mixed: 16-bit weights with fp32 master copies; fp32: what our engine trains in")
    for name, help_, description in (
            ("recovery", "fit a known rank-k matrix with LoRA of each rank",
             "Fit a matrix of known rank with LoRA adapters of increasing rank and compare the error with "
             "the Eckart-Young bound (the tail of its singular values). Saves the plot lora_recovery.png "
             "and the numbers, lora_recovery.json, under --out."),
            ("ranks", "gradient of B and fit vs rank for alpha/r and alpha/sqrt(r)",
             "Why alpha/r starves high ranks: the gradient of B at the start, and the fit after 60 steps, for "
             "each rank under the LoRA scale alpha/r and the rsLoRA scale alpha/sqrt(r). Prints a table and saves "
             "it, lora_ranks.json, with its plot, lora_ranks.png, under --out.")):
        p = sub.add_parser(name, help=help_, description=description)
        p.add_argument("--out", type=Path, default=Path("out/lora"), help="folder for the plot and the numbers")
    for name, help_, files in (
            ("finetune", "one fine-tuning run: comedies -> tragedies",
             "Saves the numbers and the training-loss curve as lora_finetune_METHOD[_rR].json and .png"),
            ("sweep", "every method and rank, LoRA+ vs LoRA, quantization error",
             "Saves lora_sweep.json (every number printed), lora_finetune.png and lora_plus.png")):
        p = sub.add_parser(name, help=help_, description=f"{help_}. {files} under --out. Settings (key=value): "
                           "the fields of lora.experiments.FinetuneConfig, e.g. pretrain_steps=1500 "
                           "finetune_steps=300 methods=full,lora,dora ranks=1,2,4,8,16 targets=all-linear")
        p.add_argument("--quick", action="store_true", help="the notebook's small settings")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--out", type=Path, default=Path("out/lora"), help="folder for the plots and the numbers")
        if name == "finetune":
            p.add_argument("--method", default="lora", choices=FINETUNE_METHODS,
                           help="full fine-tuning, or an adapter method of lora.apply_lora")
            p.add_argument("--rank", type=positive_int, default=None, help="adapter rank (default: the config's r)")
            p.add_argument("--loraplus", type=float, default=None, metavar="RATIO", help="lr_B = RATIO * lr_A")
        p.add_argument("overrides", nargs="*", metavar="key=value",
                       help="change a setting of lora.experiments.FinetuneConfig")
    pb = sub.add_parser("pretrain-base", help="pretrain the base GPT that notebook 06 fine-tunes",
                        description="Pretrain our GPT on the comedies with lora.experiments.FinetuneConfig "
                        "(its defaults: 4 layers, n_embd 128, 3000 steps, seed 1337, as the held-out "
                        "measurement in docs/lora.md) and write it, with its config, tokenizer and its "
                        "measured losses, as one checkpoint file (atomically, with checksums). The shipped "
                        "base, lora/checkpoints/comedies-base.npz, is this command with no settings changed; "
                        "lora.load_shipped_base reads it.")
    pb.add_argument("--out", type=Path, default=Path("out/lora/comedies-base.npz"), metavar="FILE",
                    help="the checkpoint file to write")
    pb.add_argument("--force", action="store_true", help="replace the file at --out if there is one")
    pb.add_argument("--no-progress", action="store_true", help="no progress bar")
    pb.add_argument("overrides", nargs="*", metavar="key=value",
                    help="change a setting of lora.experiments.FinetuneConfig (e.g. seed=7 pretrain_steps=1500)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    written: list[Path] = []  # the files complete so far, named if the run is interrupted
    try:
        if args.experiment == "pretrain-base":
            check_out_file(args.out)
            if args.out.exists() and not args.force:
                raise UsageError(f"--out {str(args.out)!r} exists; pass --force to replace it")
        elif args.experiment != "memory":
            check_folder(args.out)  # before any work: a file there would fail only at the end
        with sigterm_as_interrupt():
            return _run(args, written)
    except (ValueError, ImportError, RuntimeError) as e:
        return print_error("lora", e)
    except KeyboardInterrupt:
        done = "written before it: " + ", ".join(map(str, written)) if written else "nothing written"
        print(f"\ntglite lora {args.experiment}: interrupted; {done} (an experiment keeps no checkpoint: "
              "run it again)", file=sys.stderr)
        return 130


def _jsonable(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)  # NumPy scalars; anything else as text


def _save_json(data: Any, path: Path, written: list[Path]) -> None:
    from nn.files import atomic_write_text

    written.append(atomic_write_text(path, json.dumps(data, indent=1, default=_jsonable) + "\n"))
    print(f"numbers: {path}")


def _save_plot(plot: Any, path: Path, written: list[Path]) -> None:
    written.append(plot(path))
    print(f"plot: {path}")


def _run(args: argparse.Namespace, written: list[Path]) -> int:
    import dataclasses

    import lora
    from lora import experiments as E

    if args.experiment == "memory":
        table = lora.memory_table(args.preset, args.rank, args.batch, args.seq, args.precision)
        print(f"preset {args.preset}, r={args.rank}, batch {args.batch}, sequence {args.seq}, {args.precision}")
        print(table)
        return 0
    if args.experiment == "recovery":
        rows = E.low_rank_recovery()
        for x in rows:
            print(f"r={x['r']:>3}  error {x['error']:.3e}  Eckart–Young tail {x['tail']:.3e}  "
                  f"(‖ΔW‖² = {x['total']:.0f})")
        _save_json(rows, args.out / "lora_recovery.json", written)
        _save_plot(lambda path: E.plot_recovery(rows, path), args.out / "lora_recovery.png", written)
        return 0
    if args.experiment == "ranks":
        rows = E.rank_scaling()
        for x in rows:
            print(f"r={x['r']:>4}  {x['rule']:<14} s={x['scale']:.3f}  ‖∇B‖ at start {x['grad_B']:.3f}  "
                  f"relative error after 60 steps {x['relative_error']:.3f}")
        _save_json(rows, args.out / "lora_ranks.json", written)
        _save_plot(lambda path: E.plot_rank_scaling(rows, path), args.out / "lora_ranks.png", written)
        return 0
    if args.experiment == "pretrain-base":
        return _pretrain_base(args, written)
    config = E.FinetuneConfig.quick() if args.quick else E.FinetuneConfig()
    config = config.with_overrides(parse_overrides(args.overrides))
    progress = not args.no_progress
    if args.experiment == "finetune":
        corpus = E.load_corpus()
        model = E.pretrain(corpus, config, progress)
        base = E.evaluate(model, corpus.ft_val, config)
        row = E.finetune(model, corpus, config, args.method, args.rank, args.loraplus, progress)
        print(f"tragedies val loss: before {base:.4f}, after {args.method} {row['val_loss']:.4f}; trainable "
              f"{row['trainable']:,} of {row['total']:,} ({100 * row['fraction']:.2f}%), optimizer state "
              f"{row['optimizer_bytes']:,} bytes, {row['seconds']:.1f} s")
        name = "lora_finetune_" + args.method + (f"_r{row['r']}" if row["r"] else "") + \
            (f"_loraplus{args.loraplus:g}" if args.loraplus else "")
        result = {"config": dataclasses.asdict(config), "base_val_loss": base, "runs": [row]}
        _save_json(result, args.out / f"{name}.json", written)
        _save_plot(lambda path: E.plot_finetune(result, path), args.out / f"{name}.png", written)
        return 0
    sweep = E.finetune_sweep(config, progress=progress)
    print(E.results_table(sweep))
    _save_plot(lambda path: E.plot_finetune(sweep, path), args.out / "lora_finetune.png", written)
    plus = E.loraplus_vs_lora(sweep["model"], sweep["corpus"], config, progress=progress)
    print(f"LoRA+ vs LoRA (r={config.r}): steps to a smoothed train loss of {plus['threshold']:.4f}: "
          f"LoRA {plus['steps_lora']}, LoRA+ {plus['steps_loraplus']}; val loss {plus['lora']['val_loss']:.4f} vs "
          f"{plus['loraplus']['val_loss']:.4f}")
    _save_plot(lambda path: E.plot_loraplus(plus, path), args.out / "lora_plus.png", written)
    print("quantization MSE (NF4, NF4 + double quant, int4 absmax; blocks of 64):")
    quant = E.quantization_comparison(E.gpt_linear_weights(sweep["model"]))
    for x in quant:
        print(f"  {x['weights']:<40} nf4 {x['nf4']:.3e}  nf4-dq {x['nf4-dq']:.3e}  int4 {x['int4']:.3e}  "
              f"int4/nf4 {x['int4/nf4']:.2f}")
    numbers = {"config": sweep["config"], "base_val_loss": sweep["base_val_loss"], "runs": sweep["runs"],
               "loraplus_vs_lora": plus, "quantization": quant}
    _save_json(numbers, args.out / "lora_sweep.json", written)
    return 0


def _pretrain_base(args: argparse.Namespace, written: list[Path]) -> int:
    """Pretrain on the comedies, measure the base (comedies val; tragedies val and test, the test
    split being the tragedies' first 10% as in benchmarks/lora_method.py) and save it."""
    import datetime
    import time

    from lora import experiments as E
    from lora.shipped import save_base

    config = E.FinetuneConfig().with_overrides(parse_overrides(args.overrides))
    corpus = E.load_corpus(test_fraction=0.1)  # the test split only changes what is measured, not the training
    t0 = time.perf_counter()
    model = E.pretrain(corpus, config, progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    total = sum(p.numpy().size for p in model.parameters())
    measured = {
        "parameters": total, "pretrain_seconds": round(seconds, 1),
        "comedies_val": E.evaluate(model, corpus.pre_val, config),
        "tragedies_val": E.evaluate(model, corpus.ft_val, config),
        "tragedies_test": E.evaluate(model, corpus.ft_test, config), "test_fraction": 0.1,
        "command": " ".join(["tglite lora pretrain-base"] + list(args.overrides)),
        "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
    }
    print(f"pretrained {total:,} parameters for {config.pretrain_steps} steps in {seconds:.0f} s; val loss: comedies "
          f"{measured['comedies_val']:.4f}, tragedies {measured['tragedies_val']:.4f} (test "
          f"{measured['tragedies_test']:.4f}) before fine-tuning")
    written.append(save_base(args.out, model, config, corpus.tokenizer, measured))
    print(f"base model: {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0
