"""`tglite rl ...`: the reasoning lectures from the command line (the rl package).

    tglite rl train-policy --preset small        supervised fine-tuning of a policy (resumable)
    tglite rl train-rm --policy policy-small     the ORM and three PRMs, their report and a figure
    tglite rl search --level 2 --n 8             one selection or search method on test problems
    tglite rl evaluate --policy policy-large     greedy accuracy and pass@k per level
    tglite rl claims [--quick]                   the test-time-compute claims, measured and judged
    tglite rl grpo --policy policy-small-mid     GRPO from a policy (resumable; --lora)

A checkpoint option (CKPT) takes a file or the name of a model shipped with the package
(policy-small, policy-small-mid, policy-large, orm, prm). Settings are `key=value` words after the
options; `--settings` lists them with their defaults. Every value is checked before anything is
written; a bad one gets one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import DefaultsHelpFormatter, Parser, UsageError, check_out_dir, positive_int
from . import stop_between_steps as _stop_between_steps

METHODS = ("majority", "best_of_n", "weighted", "beam", "dvts")
# Ctrl-C, and `kill` or a batch system's time limit: both finish the step and write a checkpoint.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Needed while the parser is built, when rl (numpy, the engine) is not imported yet; tests check them.
LEVELS = (1, 2, 3, 4, 5)  # rl.LEVELS
TEST_SET_SIZE = 200  # problems in each level's fixed test set (rl.test_set's default n)


class _HelpFormatter(DefaultsHelpFormatter):
    """tglite's help (defaults shown after each option), and descriptions keep their line breaks."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        lines = []
        for line in text.splitlines():
            hang = " " * (len(line) - len(line.lstrip()) + (12 if line.startswith("  ") else 0))
            lines.append(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent + hang,
                                       break_on_hyphens=False))
        return "\n".join(lines)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


# ----------------------------------------------------------------------------- the parser
def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "rl", help="reasoning: train policies and reward models, test-time search, GRPO",
        description="The reasoning lectures (rl package): supervised fine-tuning of policies, outcome and "
        "process reward models, best-of-N / beam search / DVTS against FLOPs, the test-time-compute claims "
        "and GRPO. `tglite rl SUBCOMMAND --help` for the options of one.")
    sub = parser.add_subparsers(title="subcommands", dest="rl_command", metavar="SUBCOMMAND", required=True,
                                parser_class=Parser)

    def command(name: str, help_: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=description, formatter_class=_HelpFormatter)

    tp = command("train-policy", "supervised fine-tuning of a policy GPT on canonical solutions",
                 "Train a policy (a small GPT) on the canonical step-by-step solutions of fresh problems, "
                 "evaluating held-out loss and greedy accuracy per level every eval_interval steps.\n"
                 "Writes to --out: ckpt.npz (resumable), step_XXXXX.npz (weights at every evaluation), "
                 "policy_config.json and sft_curve.png.\n"
                 "Ctrl-C finishes the current step and writes a resumable checkpoint; --resume continues it.\n"
                 "Example: tglite rl train-policy --preset tiny --out runs/tiny max_iters=40")
    tp.add_argument("--preset", choices=("small", "large", "tiny"), default=None,
                    help="model size and schedule (rl.PRESETS); without --resume: small")
    tp.add_argument("--out", type=Path, default=None, metavar="DIR", help="run folder; default runs/policy-PRESET")
    tp.add_argument("--extend", action="store_true",
                    help="with --resume and max_iters=N: continue to a larger N under the longer cosine schedule")
    _run_folder_flags(tp)
    _common_flags(tp)

    rm = command("train-rm", "train the ORM and three PRMs (true / Math-Shepherd hard / soft labels)",
                 "Sample solutions from a policy, label every step three ways (the checker's verdict, and "
                 "Math-Shepherd's hard and soft Monte-Carlo labels), train an outcome reward model and one "
                 "process reward model per label source (each from the policy's weights), and evaluate them "
                 "on held-out solutions.\n"
                 "Writes to --out: orm.npz, prm-true.npz, prm-mc-hard.npz, prm-mc-soft.npz, reward_report.json, "
                 "aggregation_bias.png (files appear only when everything is done).\n"
                 "The shipped `orm` and `prm` are orm.npz and prm-true.npz of `train-rm --policy policy-small`.")
    rm.add_argument("--policy", default="policy-small", metavar="CKPT", help="the policy to sample from and start from")
    rm.add_argument("--out", type=Path, default=Path("runs/reward-models"), metavar="DIR", help="output folder")
    rm.add_argument("--force", action="store_true", help="overwrite the files of a previous run in --out")
    _common_flags(rm)

    se = command("search", "one selection or search method on test problems: accuracy and FLOPs",
                 "Run one test-time method on the first K problems of a level's fixed test set and print its "
                 "accuracy and inference FLOPs per problem (2 x parameters per token read or generated), next "
                 "to greedy decoding and pass@N.\n"
                 "  majority    majority vote over N samples (no verifier)\n"
                 "  best_of_n   the sample the verifier scores highest\n"
                 "  weighted    the answer with the largest total verifier score (weighted best-of-N)\n"
                 "  beam        step-level beam search with the PRM (N beams, --beam-width M)\n"
                 "  dvts        diverse verifier tree search: N/M independent subtrees of M beams\n"
                 "Writes nothing.")
    se.add_argument("--policy", default="policy-small", metavar="CKPT", help="the policy that samples")
    se.add_argument("--prm", default="prm", metavar="CKPT", help="process reward model")
    se.add_argument("--orm", default="orm", metavar="CKPT", help="outcome reward model (used with --verifier orm)")
    se.add_argument("--level", type=int, choices=LEVELS, default=2, help="difficulty level")
    se.add_argument("--n", type=positive_int, default=8, metavar="N", help="samples (or beams) per problem")
    se.add_argument("--method", choices=METHODS, default="weighted", help="the method (see above)")
    se.add_argument("--verifier", choices=("prm", "orm"), default="prm",
                    help="who scores samples for best_of_n / weighted (beam and dvts always use the PRM)")
    se.add_argument("--aggregation", choices=("min", "prod", "last"), default="min",
                    help="one PRM score from its step scores, for best_of_n / weighted (beam and dvts rank "
                    "rows by the last step's score, search-and-learn's default)")
    se.add_argument("--beam-width", type=positive_int, default=4, metavar="M", help="beam width for beam / dvts")
    se.add_argument("--problems", type=positive_int, default=20, metavar="K",
                    help=f"how many test problems (1..{TEST_SET_SIZE})")
    se.add_argument("--seed", type=_non_negative_int, default=0, help="sampling seed")
    se.set_defaults(handler=run)

    ev = command("evaluate", "greedy accuracy and pass@k of a policy per level, on the fixed test sets",
                 "Greedy accuracy (pass@1, greedy) on the first K problems of each level's fixed test set and, "
                 "with --samples N, pass@k for k = 1, 2, 4, ... N from N samples per problem (the unbiased "
                 "estimator of Chen et al. 2021). Writes nothing.\n"
                 "Example: tglite rl evaluate --policy policy-large --problems 100 --samples 16")
    ev.add_argument("--policy", default="policy-small", metavar="CKPT", help="the policy (a file or a shipped name)")
    ev.add_argument("--levels", default="1,2,3,4,5", metavar="L,L", help="levels to evaluate")
    ev.add_argument("--problems", type=positive_int, default=100, metavar="K",
                    help=f"test problems per level (1..{TEST_SET_SIZE})")
    ev.add_argument("--samples", type=_non_negative_int, default=0, metavar="N", help="samples per problem for pass@k")
    ev.add_argument("--seed", type=_non_negative_int, default=0, help="sampling seed")
    ev.set_defaults(handler=run)

    cl = command("claims", "measure and judge the lectures' test-time-compute claims",
                 "Measure, per difficulty level, coverage, every selection rule against N and FLOPs, greedy "
                 "decoding of the small and the large policy, beam search and DVTS; then judge each of the "
                 "lectures' claims against the measurements (an honest 'no' is a result too).\n"
                 "Writes to --out: compute_claims.json, claims.md, coverage.png, accuracy_vs_flops.png and "
                 "accuracy_vs_flops_no_verifier.png. Settings (key=value) are rl.ComputeClaimsConfig's, e.g. "
                 "levels=1,2 problems_per_level=20 ns=1,4,16 n_max=16 search_settings=beam:4:2,dvts:4:2.\n"
                 "Measured: n_max=32 ns=1,2,4,8,16,32 search_problems_per_level=20 took 4.5 minutes on 2 shared "
                 "cores (docs/rl.md); --quick takes seconds.")
    cl.add_argument("--quick", action="store_true", help="ComputeClaimsConfig.quick(): fewer problems and samples")
    cl.add_argument("--out", type=Path, default=Path("runs/claims"), metavar="DIR", help="output folder")
    cl.add_argument("--force", action="store_true", help="overwrite the files of a previous run in --out")
    cl.add_argument("--small", default="policy-small", metavar="CKPT", help="the small policy (it searches)")
    cl.add_argument("--large", default="policy-large", metavar="CKPT", help="the large policy (greedy baseline)")
    cl.add_argument("--orm", default="orm", metavar="CKPT", help="outcome reward model")
    cl.add_argument("--prm", default="prm", metavar="CKPT", help="process reward model")
    _common_flags(cl)

    gr = command("grpo", "GRPO on the arithmetic task, from a policy (resumable; --lora)",
                 "Group Relative Policy Optimization (DeepSeekMath): sample G completions per problem, reward "
                 "the right answers, push the policy toward the better-than-group-average ones. Settings "
                 "(key=value) are rl.GRPOTrainerConfig's, and grpo.FIELD sets a field of its rl.GRPOConfig, "
                 "e.g. steps=50 prompts_per_step=16 grpo.num_generations=8 grpo.beta=0.04 levels=1,2; "
                 "process_rewards=checker (or prm) trains on per-step rewards instead of the answer's.\n"
                 "Writes to --out: grpo_log.csv (every step), grpo.png and ckpt.npz (every save_interval "
                 "steps and at the end), grpo_config.json.\n"
                 "Ctrl-C finishes the current step and writes a resumable checkpoint; --resume continues it "
                 "(steps=... may be raised to train longer).")
    gr.add_argument("--policy", default=None, metavar="CKPT",
                    help="the starting policy; default policy-small-mid (with --resume: the run's own weights)")
    gr.add_argument("--out", type=Path, default=Path("runs/grpo"), metavar="DIR", help="run folder")
    gr.add_argument("--lora", action="store_true", help="train LoRA adapters only (use_lora=true)")
    _run_folder_flags(gr)
    _common_flags(gr)
    return parser


def _run_folder_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its ckpt.npz")
    p.add_argument("--force", action="store_true", help="start afresh, replacing the files of a previous run in --out")


def _common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--settings", action="store_true", help="list the key=value settings and their defaults, then exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="change a setting (after the options)")
    p.set_defaults(handler=run)


# ----------------------------------------------------------------------------- running
def run(args: argparse.Namespace) -> int:
    import nn
    from tinygrad_lite.extras import MissingExtraError

    name = args.rl_command
    handler = {"train-policy": _train_policy, "train-rm": _train_rm, "search": _search, "evaluate": _evaluate,
               "claims": _claims,
               "grpo": _grpo}[name]
    try:
        return handler(args)
    except (ValueError, OSError, nn.CheckpointError, MissingExtraError) as e:
        message = " ".join(str(e).split())  # one line, whatever the library wrote
        print(f"tglite rl {name}: error: {message[:600]}", file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------- settings (key=value)
def _type_text(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            inner = args[0]
            if typing.get_origin(inner) is tuple:
                return "comma-separated items of the form " + ":".join(_type_text(a) for a in typing.get_args(inner))
            return f"comma-separated {_type_text(inner)}s"
        return f"{len(args)} comma-separated values ({', '.join(_type_text(a) for a in args)})"
    return {int: "integer", float: "number", bool: "true/false", str: "text", type(None): "none"}.get(tp, str(tp))


def _convert(text: str, tp: Any, sep: str = ",") -> Any:
    """`text` as a value of type `tp` (int, float, bool, str, tuples, unions with None); ValueError if not."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() == "none":
            return None
        # Most specific first; a tuple only when the text has a separator, so "all-linear" stays text.
        order = {bool: 0, int: 1, float: 2, tuple: 3, str: 4}
        members = sorted((a for a in args if a is not type(None)),
                         key=lambda a: order.get(typing.get_origin(a) or a, 5))
        for member in members:
            if typing.get_origin(member) is tuple and sep not in text:
                continue
            try:
                return _convert(text, member, sep)
            except ValueError:
                pass
        raise ValueError(text)
    if origin is tuple:
        parts = [p.strip() for p in text.split(sep) if p.strip()]
        if len(args) == 2 and args[1] is Ellipsis:
            if not parts:
                raise ValueError(text)
            return tuple(_convert(p, args[0], ":") for p in parts)
        if len(parts) != len(args):
            raise ValueError(text)
        return tuple(_convert(p, a, ":") for p, a in zip(parts, args))
    if tp is bool:
        if text.lower() in ("true", "yes", "on", "1"):
            return True
        if text.lower() in ("false", "no", "off", "0"):
            return False
        raise ValueError(text)
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str:
        return text
    raise ValueError(text)


def _setting_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _parse_settings(items: Sequence[str], cls: type, nested: dict[str, type] | None = None) -> dict[str, Any]:
    """key=value words as typed values for the fields of dataclass `cls`; `nested` maps a field to the
    dataclass of its sub-settings (prefix.field=value), returned as a dict under that field."""
    nested = nested or {}
    types_ = {k: v for k, v in _setting_types(cls).items() if k not in nested}
    for prefix, sub in nested.items():
        types_.update({f"{prefix}.{k}": v for k, v in _setting_types(sub).items()})
    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise UsageError(f"{item!r} is not of the form key=value (settings are key=value words such as steps=100)")
        if key not in types_:
            raise UsageError(f"unknown setting {key!r}; the settings are: {', '.join(types_)}")
        try:
            value = _convert(text, types_[key])
        except ValueError:
            expected = {int: "an integer", float: "a number"}.get(types_[key], _type_text(types_[key]))
            raise UsageError(f"setting {key}={text!r}: expected {expected}") from None
        prefix, dot, field = key.partition(".")
        if dot:
            out.setdefault(prefix, {})[field] = value
        else:
            out[key] = value
    return out


def _with_settings(config: Any, settings: dict[str, Any]) -> Any:
    """dataclasses.replace with nested dicts applied to nested dataclasses; the config checks the values."""
    changes = {}
    for key, value in settings.items():
        current = getattr(config, key)
        changes[key] = dataclasses.replace(current, **value) if isinstance(value, dict) else value
    return dataclasses.replace(config, **changes)


def _print_settings(config: Any, nested: Sequence[str] = ()) -> int:
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in nested:
            for g in dataclasses.fields(value):
                print(f"  {f.name}.{g.name}={_show(getattr(value, g.name))}")
        else:
            print(f"  {f.name}={_show(value)}")
    return 0


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(":".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


# ----------------------------------------------------------------------------- checkpoints, folders
def _resolve(spec: str, shipped: Sequence[str], option: str) -> Path:
    """A shipped model's file, or an existing file."""
    if spec in shipped:
        from rl.shipped import shipped_path

        return shipped_path(spec)
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"{option} {spec!r}: no such file, and not a shipped model (shipped: {', '.join(shipped)})")
    return path


def _checkpoint_config(path: Path, option: str, spec: str) -> dict[str, Any]:
    """The config of a valid checkpoint file (nn.load_checkpoint checks format and checksums)."""
    import nn

    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # every .npz file is a zip archive
            raise UsageError(f"{option} {spec!r} is not a checkpoint (.npz) file")
    try:
        return nn.load_checkpoint(path).config
    except nn.CheckpointError as e:
        raise UsageError(f"{option} {spec!r}: {e}") from None


def _load_policy(spec: str, option: str = "--policy") -> Any:
    from rl import load_policy
    from rl.shipped import POLICIES

    path = _resolve(spec, POLICIES, option)
    config = _checkpoint_config(path, option, spec)
    if "reward_kind" in config:
        raise UsageError(f"{option} {spec!r} is a reward model ({config['reward_kind']}), not a policy")
    if "model" not in config:
        raise UsageError(f"{option} {spec!r} is not a policy checkpoint (train-policy's or grpo's ckpt.npz, "
                         f"step_*.npz, or one of {', '.join(POLICIES)})")
    return load_policy(path)[0]


def _load_reward_model(spec: str, option: str, kind: str) -> Any:
    from rl import load_reward_model
    from rl.shipped import REWARD_MODELS

    path = _resolve(spec, REWARD_MODELS, option)
    config = _checkpoint_config(path, option, spec)
    if config.get("reward_kind") != kind:
        names = {"orm": "an outcome reward model (orm)", "prm": "a process reward model (prm)"}
        what = names.get(config.get("reward_kind"), "not a reward model")
        raise UsageError(f"{option} {spec!r} is {what}; it must be {names[kind]}: a file from train-rm, "
                         f"or the shipped {kind!r}")
    return load_reward_model(path)


def _remove_outputs(out: Path, patterns: Sequence[str]) -> None:
    """--force: remove the files a previous run of this command left (only those)."""
    if out.is_dir():
        for pattern in patterns:
            for path in out.glob(pattern):
                if path.is_file():
                    path.unlink()


def _need_course_extra(progress: bool) -> None:
    from tinygrad_lite.extras import require

    require("matplotlib", "course", "tglite rl (figures)")
    if progress:
        require("tqdm", "course", "tglite rl (progress bars)")


def _quiet(text: str) -> None:
    """`_say` on the data-parallel ranks other than 0."""


def _say(text: str) -> None:
    print(text, flush=True)


# ----------------------------------------------------------------------------- train-policy
POLICY_OUTPUTS = ("ckpt.npz", "step_*.npz", "policy_config.json", "sft_curve.png")


def _train_policy(args: argparse.Namespace) -> int:
    from rl import PRESETS, PolicyConfig, PolicyRun

    preset = args.preset or "small"
    if args.settings:
        print(f"settings of preset {preset!r} (rl.PolicyConfig):")
        return _print_settings(PRESETS[preset])
    out = args.out if args.out is not None else Path("runs") / f"policy-{preset}"
    if args.resume and args.force:
        raise UsageError("--resume continues the run in --out and --force replaces it: choose one")
    settings = _parse_settings(args.overrides, PolicyConfig)
    if args.resume:
        ckpt_path = out / "ckpt.npz"
        if not ckpt_path.is_file():
            raise UsageError(f"--resume: no checkpoint {str(ckpt_path)!r} to continue (is --out right?)")
        saved_dict = _checkpoint_config(ckpt_path, "--resume", str(ckpt_path)).get("policy")
        if saved_dict is None:
            raise UsageError(f"--resume: {str(ckpt_path)!r} is not a train-policy checkpoint")
        try:
            config = PolicyConfig(**saved_dict)
        except TypeError as e:
            raise UsageError(f"--resume: {str(ckpt_path)!r} holds settings this version does not know ({e})") from None
        if args.preset or settings:
            wanted = _with_settings(PRESETS[args.preset] if args.preset else config, settings)
            differ = [f.name for f in dataclasses.fields(config) if getattr(wanted, f.name) != getattr(config, f.name)]
            if args.extend and differ == ["max_iters"]:
                config, differ = wanted, []
            if differ:
                raise UsageError("--resume: the run in --out was trained with "
                                 + ", ".join(f"{k}={_show(getattr(config, k))}" for k in differ)
                                 + "; resume with its own settings (or leave out --preset and key=value)")
        run = PolicyRun(config)
        try:
            run.resume(ckpt_path, extend=args.extend)
        except ValueError as e:
            raise UsageError(f"--resume: {e}") from None
    else:
        if args.extend:
            raise UsageError("--extend continues a run: use it with --resume and max_iters=N")
        config = _with_settings(PRESETS[preset], settings)
        check_out_dir(out, args.force, resumable=True)
        run = PolicyRun(config)
    _need_course_extra(not args.no_progress)
    label = args.preset or "policy"

    if args.resume:
        _say(f"resumed {str(out)!r} at step {run.step} of {config.max_iters}")
        if run.step >= config.max_iters:
            _say("the run is already complete; train longer with a new run (the schedule depends on max_iters)")
            return 0
    elif args.force:
        _remove_outputs(out, POLICY_OUTPUTS)
    from rl.plots import plot_sft_curves

    with _stop_between_steps(run, STOP_SIGNALS) as interrupt:
        try:
            run.run(out, progress=not args.no_progress, log=_say)
        except KeyboardInterrupt:
            if not interrupt.at_step_boundary:
                raise
            path = run.save(out / "ckpt.npz")
            if run.evals:
                plot_sft_curves({label: run.evals}, out / "sft_curve.png")
            print(f"interrupted at step {run.step} of {config.max_iters}: resumable checkpoint {path}\n"
                  f"continue with: tglite rl train-policy --out {out} --resume", file=sys.stderr)
            return 130
    plot_sft_curves({label: run.evals}, out / "sft_curve.png")
    last = run.evals[-1] if run.evals else None
    if last is not None:
        accs = ", ".join(f"L{k} {v:.2f}" for k, v in last["accuracy"].items())
        _say(f"step {last['step']}: held-out loss {last['val_loss']:.4f}, greedy accuracy {accs}")
    _say(f"run folder {out.resolve()}:\n"
         f"  ckpt.npz            the policy at step {run.step}, with optimizer state (--resume continues it)\n"
         f"  step_XXXXX.npz      the policy's weights at every evaluation (usable as --policy)\n"
         f"  policy_config.json  the settings\n"
         f"  sft_curve.png       held-out loss and greedy accuracy per level against the step")
    return 0


# ----------------------------------------------------------------------------- train-rm
def _train_rm(args: argparse.Namespace) -> int:
    import json

    from nn.files import atomic_write_text
    from rl import RewardStudyConfig, build_reward_data, evaluate_reward_models, save_reward_model, train_reward_models
    from rl.plots import plot_aggregation_bias

    if args.settings:
        print("settings (rl.RewardStudyConfig):")
        return _print_settings(RewardStudyConfig())
    config = _with_settings(RewardStudyConfig(), _parse_settings(args.overrides, RewardStudyConfig))
    policy = _load_policy(args.policy)
    check_out_dir(args.out, args.force)
    _need_course_extra(not args.no_progress)

    _say(f"sampling {config.train_problems} x {config.samples_per_problem} training solutions from "
         f"{args.policy!r} and {config.rollouts} Math-Shepherd rollouts per step (this is the slow part)...")
    data = build_reward_data(policy, config, log=_say)
    models = train_reward_models(policy, data, config, progress=not args.no_progress)
    report = evaluate_reward_models(models, data)
    report = {"policy": args.policy, "config": dataclasses.asdict(config), **report}

    # Everything is computed: only now is anything written (each file atomically).
    written = [save_reward_model(args.out / f"{name}.npz", rm, extra={"policy": args.policy,
                                                                       "config": dataclasses.asdict(config)})
               for name, rm in models.items()]
    written.append(atomic_write_text(args.out / "reward_report.json", json.dumps(report, indent=2, default=_jsonable)))
    plot_aggregation_bias(report["aggregation_bias"], args.out / "aggregation_bias.png")
    written.append(args.out / "aggregation_bias.png")

    _say(_reward_table(report))
    _say(f"files in {args.out.resolve()}: " + ", ".join(p.name for p in written))
    _say("the shipped `orm` and `prm` correspond to orm.npz and prm-true.npz")
    return 0


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def _reward_table(report: dict[str, Any]) -> str:
    lines = ["", f"{'model':<13} {'step acc':>8} {'1st-err F1':>10} {'lucky accepted':>14} {'clean accepted':>14}"]
    for name, row in report["models"].items():
        lines.append(f"{name:<13} {_fmt(row.get('step_accuracy')):>8} {_fmt(row.get('first_error_f1')):>10} "
                     f"{_fmt(row.get('lucky_accepted')):>14} {_fmt(row.get('clean_accepted')):>14}")
    lucky = report["lucky"]
    lines.append(f"lucky solutions (right answer, a wrong step): {lucky['count']} of {lucky['of']} held-out "
                 f"({lucky['fraction_of_right_answers']:.1%} of the right answers)")
    for source, noise in report["label_noise"].items():
        lines.append(f"{source} labels vs the checker: agreement {noise['agreement']:.3f}, bad steps called good "
                     f"{noise['false_positive_rate']:.3f}, good steps called bad {noise['false_negative_rate']:.3f} "
                     f"({noise['steps']} steps)")
    lines.append("(step acc, first-error F1: PRMs only; 'accepted' = final score >= 0.5, PRMs aggregated by min)")
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# ----------------------------------------------------------------------------- search
def _search(args: argparse.Namespace) -> int:
    import rl
    from rl.compute_study import greedy_baseline, sample_pool, step_search
    from rl.search import FlopModel, evaluate_selection

    if args.problems > TEST_SET_SIZE:
        raise UsageError(f"--problems {args.problems}: each level's test set has {TEST_SET_SIZE} problems; "
                         f"choose 1..{TEST_SET_SIZE}")
    step_level = args.method in ("beam", "dvts")
    if step_level and args.n % args.beam_width:
        raise UsageError(f"--n {args.n} with --method {args.method}: N must be a multiple of --beam-width "
                         f"({args.beam_width})")
    if step_level and args.verifier == "orm":
        raise UsageError(f"--verifier orm with --method {args.method}: step-level search needs the PRM's step scores")
    policy = _load_policy(args.policy)
    prm = _load_reward_model(args.prm, "--prm", "prm")
    orm = _load_reward_model(args.orm, "--orm", "orm") if args.verifier == "orm" else None
    verifier = orm if orm is not None else prm

    problems = rl.test_set(args.level)[: args.problems]
    uses_verifier = args.method != "majority"
    flops = FlopModel(policy.num_parameters(), verifier.num_parameters() if uses_verifier else 0)
    greedy = greedy_baseline(policy, problems, flops)
    if step_level:
        result = step_search(policy, prm, problems, args.method, args.n, args.beam_width, flops, seed=args.seed)
        name = f"{'beam search' if args.method == 'beam' else 'DVTS'} with the PRM, N={args.n} beams, " \
               f"width {args.beam_width}"
        accuracy, cost, extra = result["accuracy"], result["flops"], ""
    else:
        pool = sample_pool(policy, problems, args.n, seed=args.seed)
        scores = None
        if uses_verifier:
            pool.score(args.verifier, verifier, aggregations=(args.aggregation,))
            scores = pool.scores["orm" if orm is not None else f"prm:{args.aggregation}"]
        rule = {"majority": "majority", "best_of_n": "best_of_n", "weighted": "weighted_best_of_n"}[args.method]
        curve = evaluate_selection(pool.answers, scores, [p.answer for p in problems], [args.n], rule, seeds=1,
                                   subsample="prefix", flop_model=flops, prompt_tokens=pool.prompt_tokens,
                                   completion_tokens=pool.completion_tokens)
        accuracy, cost = float(curve.mean[0]), float(curve.flops[0])
        who = "" if not uses_verifier else \
            f" ({'ORM' if orm is not None else f'PRM, {args.aggregation} of the step scores'})"
        name = {"majority": "majority vote", "best_of_n": "best-of-N", "weighted": "weighted best-of-N"}[args.method] \
            + who + f", N={args.n}"
        extra = f"; pass@{args.n} (some sample right) {float(pool.correct.any(axis=1).mean()):.3f}"
    k = len(problems)
    _say(f"level {args.level}, the first {k} test problems, policy {args.policy!r} "
         f"({policy.num_parameters() / 1e6:.2f}M parameters)")
    _say(f"  {name}: accuracy {accuracy:.3f} ({round(accuracy * k)}/{k}), {cost:.3g} FLOPs per problem")
    _say(f"  greedy decoding: accuracy {greedy['accuracy']:.3f} ({round(greedy['accuracy'] * k)}/{k}), "
         f"{greedy['flops']:.3g} FLOPs per problem{extra}")
    _say("  (FLOPs: 2 x parameters per token the policy generates or reads"
         + (", plus 2 x the verifier's parameters per token it reads)" if uses_verifier else ")"))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from rl.compute_study import policy_report

    if args.problems > TEST_SET_SIZE:
        raise UsageError(f"--problems {args.problems}: each level's test set has {TEST_SET_SIZE} problems; "
                         f"choose 1..{TEST_SET_SIZE}")
    try:
        levels = [int(x) for x in args.levels.split(",")]
    except ValueError:
        raise UsageError(f"--levels {args.levels!r}: give levels as comma-separated integers, e.g. 1,2,3") from None
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise UsageError(f"--levels {args.levels!r}: levels are {', '.join(map(str, LEVELS))}")
    policy = _load_policy(args.policy)
    report = policy_report(policy, levels, args.problems, args.samples, args.seed)
    _say(f"policy {args.policy!r} ({policy.num_parameters() / 1e6:.2f}M parameters), the first {args.problems} "
         f"test problems of each level")
    for lv, row in report.items():
        line = f"  level {lv}: greedy accuracy {row['greedy']:.3f}"
        if "pass_at_k" in row:
            line += "; " + ", ".join(f"pass@{k} {v:.3f}" for k, v in row["pass_at_k"].items())
        _say(line)
    mean = sum(r["greedy"] for r in report.values()) / len(report)
    _say(f"  mean over levels: greedy accuracy {mean:.3f}")
    return 0


# ----------------------------------------------------------------------------- claims
CLAIMS_OUTPUTS = ("compute_claims.json", "claims.md", "coverage.png", "accuracy_vs_flops.png",
                  "accuracy_vs_flops_no_verifier.png")


def _claims(args: argparse.Namespace) -> int:
    import json

    from nn.files import atomic_write_text
    from rl import ComputeClaimsConfig, claims_markdown, judge_compute_claims, run_compute_claims
    from rl.plots import plot_accuracy_vs_flops, plot_coverage

    from ..extras import progress

    base = ComputeClaimsConfig.quick() if args.quick else ComputeClaimsConfig()
    if args.settings:
        print(f"settings (rl.ComputeClaimsConfig{'.quick()' if args.quick else ''}):")
        return _print_settings(base)
    config = _with_settings(base, _parse_settings(args.overrides, ComputeClaimsConfig))
    small = _load_policy(args.small, "--small")
    large = _load_policy(args.large, "--large")
    orm = _load_reward_model(args.orm, "--orm", "orm")
    prm = _load_reward_model(args.prm, "--prm", "prm")
    check_out_dir(args.out, args.force)
    _need_course_extra(not args.no_progress)

    # One level at a time, for a progress bar; every level's samples are seeded by (seed, level)
    # alone, so this measures exactly what one call with every level would.
    results: dict[str, Any] = {"config": dataclasses.asdict(config), "params": None, "levels": {}}
    bar = None if args.no_progress else progress(total=len(config.levels), desc="claims", unit="level")
    for lv in config.levels:
        part = run_compute_claims(small, large, orm, prm, dataclasses.replace(config, levels=(lv,)),
                                  log=_say if bar is None else bar.write)
        results["params"] = part["params"]
        results["levels"].update(part["levels"])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    rows = judge_compute_claims(results)
    table = claims_markdown(rows)

    header = (f"# Test-time compute: the lectures' claims, measured\n\nSmall policy {args.small!r}, large "
              f"{args.large!r}, ORM {args.orm!r}, PRM {args.prm!r}; settings: "
              + ", ".join(f"{k}={_show(getattr(config, k))}" for k in results["config"]) + "\n\n")
    atomic_write_text(args.out / "compute_claims.json", json.dumps(results, indent=2, default=_jsonable))
    atomic_write_text(args.out / "claims.md", header + table + "\n")
    plot_coverage(results["levels"], args.out / "coverage.png")
    plot_accuracy_vs_flops(results["levels"], args.out / "accuracy_vs_flops.png")
    plot_accuracy_vs_flops(results["levels"], args.out / "accuracy_vs_flops_no_verifier.png", without_verifier=True)

    for r in rows:
        verdict = {True: "holds", False: "DOES NOT HOLD", None: "see numbers"}[r["holds"]]
        _say(f"\n[{verdict}] {r['claim']}\n    measured: {r['measured']}" + (f"\n    note: {r['note']}"
                                                                               if r["note"] else ""))
    _say(f"\nfiles in {args.out.resolve()}: " + ", ".join(CLAIMS_OUTPUTS))
    return 0


# ----------------------------------------------------------------------------- grpo
GRPO_OUTPUTS = ("ckpt.npz", "grpo_log.csv", "grpo.png", "grpo_config.json")


def _grpo(args: argparse.Namespace) -> int:
    """Under `mpiexec -n N` the run is data parallel (rl.GRPOTrainer with a communicator): only rank 0
    prints and writes, and an error during training stops every rank."""
    import numpy as np

    import nn
    from nn.distributed import get_communicator
    from rl import GRPOConfig, GRPOTrainer, GRPOTrainerConfig
    from rl.grpo_trainer import plot_logs, write_logs_csv

    comm = get_communicator()
    say = _say if comm.rank == 0 else _quiet
    if args.settings:
        print("settings (rl.GRPOTrainerConfig; grpo.FIELD: rl.GRPOConfig):")
        return _print_settings(GRPOTrainerConfig(), nested=("grpo",))
    if args.resume and args.force:
        raise UsageError("--resume continues the run in --out and --force replaces it: choose one")
    settings = _parse_settings(args.overrides, GRPOTrainerConfig, nested={"grpo": GRPOConfig})
    if settings.get("process_rewards") == "custom":
        raise UsageError("process_rewards=custom takes a Python step reward function (rl.GRPOTrainer's "
                         "step_reward_fn); on the command line choose checker or prm")
    if args.lora:
        settings["use_lora"] = True
    out = args.out
    if args.resume:
        ckpt_path = out / "ckpt.npz"
        if not ckpt_path.is_file():
            raise UsageError(f"--resume: no checkpoint {str(ckpt_path)!r} to continue (is --out right?)")
        saved = _checkpoint_config(ckpt_path, "--resume", str(ckpt_path))
        if "grpo_trainer" not in saved:
            raise UsageError(f"--resume: {str(ckpt_path)!r} is not a grpo checkpoint")
        if args.policy is not None:
            raise UsageError("--policy with --resume: a resumed run continues from its own weights; leave --policy out")
        try:
            run_config = GRPOTrainerConfig(**saved["grpo_trainer"])
        except TypeError as e:
            raise UsageError(f"--resume: {str(ckpt_path)!r} holds settings this version does not know ({e})") from None
        config = _with_settings(run_config, settings)
        differ = [k for k in settings if k != "steps" and getattr(config, k) != getattr(run_config, k)]
        if differ:
            raise UsageError("--resume: only steps=... may change; the run in --out has "
                             + ", ".join(f"{k}={_show(getattr(run_config, k))}" for k in differ))
        policy = nn.GPT(nn.GPTConfig.from_dict(saved["model"]))  # its weights come from the checkpoint
    else:
        config = _with_settings(GRPOTrainerConfig(), settings)
        policy = _load_policy(args.policy or "policy-small-mid")
        check_out_dir(out, args.force, resumable=True)
    comm.barrier()  # every rank has checked --out before rank 0 writes to it
    trainer = GRPOTrainer(policy, config, comm=comm)
    if args.resume:
        trainer.resume(out / "ckpt.npz")  # checks that only `steps` differs from the run's settings
    _need_course_extra(not args.no_progress)

    if args.resume:
        say(f"resumed {str(out)!r} at step {trainer.step} of {config.steps}")
        if trainer.step >= config.steps:
            say(f"the run is already at step {trainer.step}: give steps=... larger than that to train longer")
            return 0
    elif args.force and comm.rank == 0:
        _remove_outputs(out, GRPO_OUTPUTS)
    g = config.grpo
    say(f"GRPO: {config.prompts_per_step} problems x G={g.num_generations} completions per step, levels "
        f"{list(config.levels)}, {config.steps} steps, lr {config.learning_rate:g}, beta {g.beta:g}"
        + (f", LoRA r={config.lora_r}" if config.use_lora else ", full fine-tuning")
        + (f", {comm.world_size} ranks x {g.num_generations // comm.world_size} completions" if comm.world_size > 1
           else ""))
    agree = None if comm.world_size == 1 else (  # stop at the same step on every rank
        lambda flag: bool(comm.all_reduce(np.array([int(flag)]), "max")[0]))
    with _stop_between_steps(trainer, STOP_SIGNALS, agree) as interrupt:
        try:
            logs = trainer.run(out, progress=not args.no_progress)
        except KeyboardInterrupt:
            if not interrupt.at_step_boundary:
                raise
            path = trainer.save(out / "ckpt.npz")
            if comm.rank == 0:
                write_logs_csv(trainer.logs, out / "grpo_log.csv")
                plot_logs(trainer.logs, out / "grpo.png")
                print(f"interrupted at step {trainer.step} of {config.steps}: resumable checkpoint {path}\n"
                      f"continue with: tglite rl grpo --out {out} --resume", file=sys.stderr)
            return 130
        except (ValueError, OSError, RuntimeError) as e:
            if comm.world_size == 1:
                raise
            comm.abort(f"tglite rl grpo: error on rank {comm.rank} of {comm.world_size}: {e}; stopping every rank", 2)
    say(grpo_summary(logs))
    say(f"run folder {out.resolve()}:\n"
        f"  grpo_log.csv      one row per step (reward, accuracy, KL, entropy, clipping, ...)\n"
        f"  grpo.png          those curves against the step\n"
        f"  ckpt.npz          the policy at step {trainer.step}, with optimizer state (--resume continues it)\n"
        f"  grpo_config.json  the settings")
    return 0


def grpo_before_after(logs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean reward over the first and the last k training steps (k <= 5, at most half the steps), and
    the first and the last evaluation rows (None when there are none)."""
    trained = [r for r in logs if r.get("reward") is not None]
    evals = [r for r in logs if "accuracy_mean" in r]
    k = max(1, min(5, len(trained) // 2))
    return {"k": k,
            "reward_first": sum(r["reward"] for r in trained[:k]) / k if trained else None,
            "reward_last": sum(r["reward"] for r in trained[-k:]) / k if trained else None,
            "eval_first": evals[0] if evals else None, "eval_last": evals[-1] if evals else None}


def grpo_summary(logs: Sequence[dict[str, Any]]) -> str:
    """Reward and held-out accuracy at the start and the end of a GRPO run (also used by the tour)."""
    s = grpo_before_after(logs)
    lines = []
    if s["reward_first"] is not None:
        steps = "step" if s["k"] == 1 else f"{s['k']} steps"
        lines.append(f"mean reward of the sampled completions: {s['reward_first']:.3f} (first {steps}) -> "
                     f"{s['reward_last']:.3f} (last {steps})")
    a, b = s["eval_first"], s["eval_last"]
    if a is not None:
        levels = [k for k in a if k.startswith("accuracy_L")]
        per = ", ".join(f"{k[len('accuracy_'):]} {a[k]:.2f} -> {b.get(k, float('nan')):.2f}" for k in levels)
        lines.append(f"held-out greedy accuracy: step {a['step']} {a['accuracy_mean']:.3f} -> step {b['step']} "
                     f"{b['accuracy_mean']:.3f} ({per})")
    return "\n".join(lines)
