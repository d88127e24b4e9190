"""Optional dependencies of the front door: a figure and a progress bar, imported only when used.

`tglite info` and `tglite gradcheck-demo` run on NumPy alone; the tour needs the `course` extra
(matplotlib for figures, tqdm for progress bars). A missing package gives the engine's
MissingExtraError (tinygrad_lite.extras.require), which names the extra to install.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tinygrad_lite.extras import require


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
