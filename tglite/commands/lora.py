"""`tglite lora ...`: the LoRA experiments from the command line (lora.experiments).

    tglite lora memory [--preset 7b]             the analytic memory table
    tglite lora recovery                         low-rank recovery vs the Eckart–Young tail
    tglite lora ranks                            why α/r starves high ranks (rsLoRA)
    tglite lora finetune --method lora --rank 8  one comedies -> tragedies fine-tune vs the base
    tglite lora sweep [--quick] [key=value ...]  the whole comparison, LoRA+ and quantization error
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value")
        out[key] = value
    return out


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "lora", help="LoRA experiments: memory table, low-rank recovery, fine-tuning sweeps",
        description="LoRA and its family (lora package). Each subcommand prints measured results and "
        "saves its plots under --out.")
    sub = parser.add_subparsers(title="experiments", dest="experiment", metavar="EXPERIMENT", required=True)
    mem = sub.add_parser("memory", help="bytes for full fine-tuning, LoRA and QLoRA (analytic)")
    mem.add_argument("--preset", default="7b", help="7b, gpt-cpu or gpt-small (default: %(default)s)")
    mem.add_argument("--rank", type=int, default=8)
    mem.add_argument("--batch", type=int, default=1)
    mem.add_argument("--seq", type=int, default=512)
    mem.add_argument("--precision", default="mixed", choices=["mixed", "fp32"])
    for name, help_ in (("recovery", "fit a known rank-k matrix with LoRA of each rank"),
                        ("ranks", "gradient of B and fit vs rank for alpha/r and alpha/sqrt(r)")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--out", type=Path, default=Path("out/lora"))
    for name, help_ in (("finetune", "one fine-tuning run: comedies -> tragedies"),
                        ("sweep", "every method and rank, LoRA+ vs LoRA, quantization error")):
        p = sub.add_parser(name, help=help_, description=f"{help_}. Settings (key=value): the fields of "
                           "lora.experiments.FinetuneConfig, e.g. pretrain_steps=1500 finetune_steps=300 "
                           "methods=full,lora,dora ranks=1,2,4,8,16 targets=all-linear")
        p.add_argument("--quick", action="store_true", help="the notebook's small settings")
        p.add_argument("--no-progress", action="store_true")
        p.add_argument("--out", type=Path, default=Path("out/lora"))
        if name == "finetune":
            p.add_argument("--method", default="lora", help="full, lora, rslora, dora, pissa, olora, qlora, vera")
            p.add_argument("--rank", type=int, default=None)
            p.add_argument("--loraplus", type=float, default=None, metavar="RATIO", help="lr_B = RATIO * lr_A")
        p.add_argument("overrides", nargs="*", metavar="key=value")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import sys

    try:
        return _run(args)
    except (ValueError, ImportError, RuntimeError) as e:
        print(f"tglite lora: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import lora
    from lora import experiments as E

    if args.experiment == "memory":
        print(f"preset {args.preset}, r={args.rank}, batch {args.batch}, sequence {args.seq}, {args.precision}")
        print(lora.memory_table(args.preset, args.rank, args.batch, args.seq, args.precision))
        return 0
    if args.experiment == "recovery":
        rows = E.low_rank_recovery()
        for x in rows:
            print(f"r={x['r']:>3}  error {x['error']:.3e}  Eckart–Young tail {x['tail']:.3e}  "
                  f"(‖ΔW‖² = {x['total']:.0f})")
        print(f"plot: {E.plot_recovery(rows, args.out / 'lora_recovery.png')}")
        return 0
    if args.experiment == "ranks":
        for x in E.rank_scaling():
            print(f"r={x['r']:>4}  {x['rule']:<14} s={x['scale']:.3f}  ‖∇B‖ at start {x['grad_B']:.3f}  "
                  f"relative error after 60 steps {x['relative_error']:.3f}")
        return 0
    config = E.FinetuneConfig.quick() if args.quick else E.FinetuneConfig()
    config = config.with_overrides(_overrides(args.overrides))
    progress = not args.no_progress
    if args.experiment == "finetune":
        corpus = E.load_corpus()
        model = E.pretrain(corpus, config, progress)
        base = E.evaluate(model, corpus.ft_val, config)
        row = E.finetune(model, corpus, config, args.method, args.rank, args.loraplus, progress)
        print(f"tragedies val loss: before {base:.4f}, after {args.method} {row['val_loss']:.4f}; trainable "
              f"{row['trainable']:,} of {row['total']:,} ({100 * row['fraction']:.2f}%), optimizer state "
              f"{row['optimizer_bytes']:,} bytes, {row['seconds']:.1f} s")
        return 0
    sweep = E.finetune_sweep(config, progress=progress)
    print(E.results_table(sweep))
    print(f"plot: {E.plot_finetune(sweep, args.out / 'lora_finetune.png')}")
    plus = E.loraplus_vs_lora(sweep["model"], sweep["corpus"], config, progress=progress)
    print(f"LoRA+ vs LoRA (r={config.r}): steps to a smoothed train loss of {plus['threshold']:.4f}: "
          f"LoRA {plus['steps_lora']}, LoRA+ {plus['steps_loraplus']}; val loss {plus['lora']['val_loss']:.4f} vs "
          f"{plus['loraplus']['val_loss']:.4f}")
    print(f"plot: {E.plot_loraplus(plus, args.out / 'lora_plus.png')}")
    print("quantization MSE (NF4, NF4 + double quant, int4 absmax; blocks of 64):")
    for x in E.quantization_comparison(E.gpt_linear_weights(sweep["model"])):
        print(f"  {x['weights']:<40} nf4 {x['nf4']:.3e}  nf4-dq {x['nf4-dq']:.3e}  int4 {x['int4']:.3e}  "
              f"int4/nf4 {x['int4/nf4']:.2f}")
    return 0
