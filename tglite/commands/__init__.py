"""One module per `tglite` subcommand; see `tglite.cli` for the contract a module follows.

The helpers here are shared by the command modules: argparse types for counts, the one-line
error a command prints, and the check that a run folder holds no earlier run's files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn


class UsageError(ValueError):
    """A bad command-line value; the message is the one line the user sees."""


class Parser(argparse.ArgumentParser):
    """The parser of `tglite` and of every subcommand (add_subparsers passes its class on):
    a bad option is one line naming it (the usage is a --help away), and --help shows defaults."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`(default: X)` after each option's help, except where there is nothing to show (None, off)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == []:
            return action.help
        if action.help and "(default" in action.help:  # the help says it in words already
            return action.help
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    """argparse type for counts and sizes: a clear error for 0, negatives and non-numbers."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`key=value` words as a dict of strings (the config they go to converts and checks them)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"override {item!r} is not of the form key=value")
        out[key] = value
    return out


def print_error(command: str, error: BaseException) -> int:
    """Print `tglite COMMAND: error: MESSAGE` as one line on stderr (a library message may span
    several lines; a user should see one) and return exit code 2."""
    message = " ".join(str(error).split())
    print(f"tglite {command}: error: {message}", file=sys.stderr)
    return 2


def _shown(option: str, path: Path) -> str:
    """A path as the user gave it: `--out 'x'` for an option, `out_dir='x'` for a setting."""
    return f"{option} {str(path)!r}" if option.startswith("-") else f"{option}={str(path)!r}"


def _check_parents(path: Path, option: str) -> None:
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{_shown(option, path)}: {str(parent)!r} is a file, not a folder")


def check_folder(out: Path, option: str = "--out") -> None:
    """Refuse an output folder that is a file, or that lies under a file."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{_shown(option, out)} exists and is not a folder")
    _check_parents(out, option)


def check_out_dir(out: Path, force: bool, resumable: bool = False, option: str = "--out") -> None:
    """Refuse a run folder that is a file, or that already holds files unless `force` is set.

    `option` is how the user gave the folder: an option (`--out`) or a setting (`out_dir`), so the
    message names it as they wrote it. `resumable` adds `--resume` to the way out."""
    check_folder(out, option)
    if out.is_dir() and any(out.iterdir()) and not force:
        hint = "--force to replace its files" + (" or --resume to continue the run" if resumable else "")
        raise UsageError(f"{_shown(option, out)} already holds files (a previous run?); pass {hint}")


def check_out_file(out: Path, option: str = "--out") -> None:
    """Refuse an output file that is an existing folder, or that lies under a file."""
    if out.is_dir():
        raise UsageError(f"{option} {str(out)!r} is a folder; give the path of a file")
    _check_parents(out, option)
