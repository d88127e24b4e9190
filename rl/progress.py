"""One progress bar for every long rl loop (tqdm, imported only when a bar is wanted)."""
from __future__ import annotations

from typing import Any


def progress_bar(enabled: bool, total: int, desc: str, initial: int = 0) -> Any:
    """A tqdm bar, or None when disabled (callers skip their updates then)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, mininterval=0.5)
