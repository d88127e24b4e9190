"""Keep freed memory in the process: the CPU backend's one allocator setting.

A training step allocates and frees the same few hundred arrays again and again. With glibc's
default settings each array above 128 KiB (most activations) is mapped fresh from the kernel by
`mmap` and unmapped on free, or the top of the heap is trimmed back to the kernel and regrown, so
the next step touches brand-new pages: one page fault per 4 KiB page, thousands per GPT step
(`[TGLITE_KEEP_FREED_MEMORY=0] python benchmarks/gpt_train.py` counts them; docs/benchmarks.md has
the measured cost). PyTorch and CuPy avoid the same cost with caching allocators.

`keep_freed_memory()` makes glibc serve those blocks from its heap and keep freed ones for reuse,
through `mallopt` (glibc's documented tunables; the same effect as the environment variables
MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_). Both settings are needed: setting either one
turns off glibc's own adaptive threshold, and alone each is slower than the default.

The cost: memory freed by a step is not returned to the operating system while the process
lives, so resident memory stays near the peak (which the next step reaches again anyway).
Set TGLITE_KEEP_FREED_MEMORY=0 to keep glibc's defaults. On other C libraries (macOS, musl,
Windows) this does nothing.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h> parameter numbers
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20  # blocks below 64 MiB come from the heap ...
TRIM_THRESHOLD = 256 << 20  # ... and up to 256 MiB of free heap top is kept for reuse

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the setting once per process; True when glibc accepted it."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get("TGLITE_KEEP_FREED_MEMORY", "1").strip().lower() in ("0", "false", "no"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded into this process
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; musl's stub returns 0 and changes nothing.
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
