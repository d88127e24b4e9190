"""One module per `tglite` subcommand; see `tglite.cli` for the contract a module follows.

The helpers here are shared by the command modules: argparse types for counts, the one-line
error a command prints, the check that a run folder holds no earlier run's files, and the Ctrl-C
handling of a command that trains (stop between two steps, so that a checkpoint can be saved).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn


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


def encoding_name(text: str) -> str:
    """argparse type for --encoding: a text encoding Python knows (utf-8, latin-1, cp1252, ...)."""
    import encodings

    # The standard library's codecs only: an installed package may register a codec search function
    # that answers any name (codecs.lookup("klingon") then succeeds).
    info = encodings.search_function(text.lower())
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise argparse.ArgumentTypeError(f"unknown encoding {text!r} (e.g. utf-8, latin-1, cp1252)")
    return text


def read_text_file(path: Path, encoding: str = "utf-8", option: str = "--corpus") -> str:
    """A text file's contents. One that is not in `encoding` is a one-line error naming the file, the
    first byte that does not decode, and --encoding (instead of a bare "'utf-8' codec can't decode")."""
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise UsageError(f"{option} {str(path)!r} is not {encoding} text (byte 0x{e.object[e.start]:02x} at "
                         f"offset {e.start}); give its encoding, e.g. --encoding latin-1") from None


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


# ----------------------------------------------------------------------------- Ctrl-C
@dataclasses.dataclass
class Interrupt:
    requested: bool = False
    at_step_boundary: bool = False  # raised between two steps: the state is whole and can be saved
    signal_name: str = ""  # the signal that asked to stop: "Ctrl-C" (SIGINT) or "SIGTERM"


@contextlib.contextmanager
def stop_between_steps(obj: Any, signals: Sequence[int] = (signal.SIGINT,),
                       agree: Callable[[bool], bool] | None = None) -> Iterator[Interrupt]:
    """The first Ctrl-C (or another of `signals`, e.g. SIGTERM from `kill` or a batch system)
    lets the running step (and its evaluation / saving) finish and raises KeyboardInterrupt when
    the next step would start, so a checkpoint written then is consistent; a second one stops at
    once. Wraps `obj.train_step`.

    The caller catches KeyboardInterrupt: with `at_step_boundary` set it saves and exits 130;
    otherwise (the second signal) it lets it go, and nothing is saved.

    `agree(requested) -> bool` makes the decision collective (data-parallel ranks: stop if any rank
    was asked to), so that every rank stops at the same step."""
    state = Interrupt()
    original: Callable[..., Any] = obj.train_step

    def on_signal(signum: int, frame: Any) -> None:
        if state.requested:
            raise KeyboardInterrupt
        state.requested = True
        state.signal_name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        again = "press Ctrl-C" if signum == signal.SIGINT else f"send {state.signal_name}"
        print(f"\n{state.signal_name}: stopping after this step ({again} again to stop at once, "
              "without saving)", file=sys.stderr, flush=True)

    def train_step(*a: Any, **kw: Any) -> Any:
        if agree is not None and agree(state.requested) and not state.requested:
            state.requested, state.signal_name = True, "another rank's signal"
        if state.requested:
            state.at_step_boundary = True
            raise KeyboardInterrupt
        return original(*a, **kw)

    obj.train_step = train_step
    previous: dict[int, Any] = {}
    try:
        for signum in signals:
            previous[signum] = signal.signal(signum, on_signal)
    except ValueError:  # not the main thread: a signal cannot be caught here and stops at once
        pass
    try:
        yield state
    finally:
        del obj.train_step
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (`kill`, a batch system's time limit) raises KeyboardInterrupt, like Ctrl-C, so a command
    without checkpoints still stops through its own clean-up (a one-line message, exit code 130, no
    temporary file left) instead of dying on the spot."""
    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
