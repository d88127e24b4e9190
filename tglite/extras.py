"""Optional dependencies of the front door, imported only by the code that needs them.

`tglite info` and `tglite gradcheck-demo` run on NumPy alone; the tour needs the `course` extra
(matplotlib for figures, tqdm for progress bars). A missing package gives an error that names
the extra to install instead of a bare ImportError.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import Any


class MissingExtraError(ImportError):
    """An optional package is missing; the message says which extra installs it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or raise MissingExtraError naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{purpose} needs the package {module.split('.')[0]!r}, which is not installed. "
            f'Install it with:  pip install -e ".[{extra}]"  (from the repository root)'
        ) from e


def new_figure(width: float = 6.0, height: float = 4.5) -> Any:
    """A matplotlib Figure drawn by the Agg (PNG) backend.

    We build `matplotlib.figure.Figure` directly instead of going through pyplot: no GUI window,
    no global "current figure" state, nothing to close, and importing tglite never changes the
    backend of a notebook that uses it.
    """
    figure = require("matplotlib.figure", "course", "plotting")
    return figure.Figure(figsize=(width, height))


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A tqdm progress bar (`tqdm(iterable, **kwargs)`)."""
    tqdm = require("tqdm", "course", "the progress bar")
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.2)
    return tqdm.tqdm(iterable, **kwargs)
