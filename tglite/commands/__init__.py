"""One module per `tglite` subcommand; see `tglite.cli` for the contract a module follows."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type for counts and sizes: a clear error for 0, negatives and non-numbers."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value
