"""The `tglite` console script: one subcommand per module listed in COMMANDS.

A command module exposes

    add_parser(subparsers) -> argparse.ArgumentParser
        adds its subcommand (name, help, arguments) and calls `parser.set_defaults(handler=run)`
    run(args: argparse.Namespace) -> int
        does the work and returns the exit code

To add a command, write `tglite/commands/NAME.py` and append its module path to COMMANDS.
Every parser is a `tglite.commands.Parser` (one-line errors, defaults in --help). A command that
takes `key=value` settings names that positional `overrides`; the settings may then stand
anywhere among the options (`--config tiny max_iters=5 --resume out_dir=run`).
Command modules import only the standard library at the top and load heavy packages (the
engine's optional backends, matplotlib, tqdm) inside `run`, so that `tglite --help` is instant
and works without the optional extras.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tglite.commands import Parser

# In the order `tglite --help` lists them.
COMMANDS = [
    "tglite.commands.info",
    "tglite.commands.gradcheck_demo",
    "tglite.commands.tour",
    "tglite.commands.demo",
    "tglite.commands.exercises",
    "tglite.commands.book",
    "tglite.commands.train",
    "tglite.commands.sample",
    "tglite.commands.lora",
    "tglite.commands.word2vec",
    "tglite.commands.search",
    "tglite.commands.rl",
]


def build_parser() -> argparse.ArgumentParser:
    from tinygrad_lite import __version__  # one version for the whole distribution

    parser = Parser(
        prog="tglite",
        description="The front door of tinygrad_lite: lecture demos, gradient checks and "
        "environment checks. Run `tglite COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]), run the chosen command and return its exit code."""
    parser = build_parser()
    args = parse_args(parser, argv)  # bad input: one line naming it, exit code 2
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        print("\ntglite: error: choose a COMMAND (listed above)", file=sys.stderr)
        return 2
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """parser.parse_args, except that `key=value` words may follow options.

    argparse gives a positional list (nargs="*") only the words of one run between options, so
    `--config tiny a=1 --resume b=2` leaves `b=2` over. Those words join the command's `overrides`
    in the order given; anything else left over is an error from the subcommand's own parser."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        leaf = _chosen_parser(parser, args)
        words = [w for w in extras if "=" in w and not w.startswith("-")]
        if any(a.dest == "overrides" and not a.option_strings for a in leaf._actions):
            args.overrides = [*(args.overrides or []), *words]
            extras = [w for w in extras if w not in words]
        if extras:
            leaf.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub)subcommand that `args` chose, e.g. that of `tglite train gpt`."""
    while True:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subparsers[0].dest, None) if subparsers else None
        if name is None:
            return parser
        parser = subparsers[0].choices[name]


if __name__ == "__main__":  # pragma: no cover - `python -m tglite` goes through __main__.py
    sys.exit(main())
