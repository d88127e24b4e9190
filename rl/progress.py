"""One progress bar for every long rl loop (tqdm, imported only when a bar is wanted)."""
from __future__ import annotations

from typing import Any

from tinygrad_lite.extras import require


def progress_bar(enabled: bool, total: int, desc: str, initial: int = 0) -> Any:
    """A tqdm bar, or None when disabled (callers skip their updates then)."""
    if not enabled:
        return None
    tqdm = require("tqdm", "course", "the progress bar", hint="Or pass progress=False.").tqdm
    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, mininterval=0.5)
