"""Saving figures: a matplotlib Figure as a PNG, written atomically (nn.files.atomic_write)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nn.files import atomic_write


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Save a matplotlib Figure as PNG, atomically."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
