"""The `tglite` console script: one subcommand per module listed in COMMANDS.

A command module exposes

    add_parser(subparsers) -> argparse.ArgumentParser
        adds its subcommand (name, help, arguments) and calls `parser.set_defaults(handler=run)`
    run(args: argparse.Namespace) -> int
        does the work and returns the exit code

To add a command, write `tglite/commands/NAME.py` and append its module path to COMMANDS.
Command modules import only the standard library at the top and load heavy packages (the
engine's optional backends, matplotlib, tqdm) inside `run`, so that `tglite --help` is instant
and works without the optional extras.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# In the order `tglite --help` lists them.
COMMANDS = [
    "tglite.commands.info",
    "tglite.commands.gradcheck_demo",
    "tglite.commands.tour",
    "tglite.commands.demo",
    "tglite.commands.exercises",
    "tglite.commands.train",
    "tglite.commands.sample",
    "tglite.commands.lora",
    "tglite.commands.word2vec",
    "tglite.commands.search",
    "tglite.commands.rl",
]


def build_parser() -> argparse.ArgumentParser:
    from tinygrad_lite import __version__  # one version for the whole distribution

    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)  # bad input: argparse prints usage + error, exits with 2
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


if __name__ == "__main__":  # pragma: no cover - `python -m tglite` goes through __main__.py
    sys.exit(main())
