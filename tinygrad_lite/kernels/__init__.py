"""Compiled kernels: one module per target, each imported lazily.

    kernels.cpu    Numba `njit` kernels for the CPU (extra: `pip install -e ".[fast]"`)
    kernels.cuda   Numba `cuda.jit` kernels for NVIDIA GPUs, with launch wrappers that take CuPy
                   arrays (extra: `pip install -e ".[gpu]"`); under NUMBA_ENABLE_CUDASIM=1 they
                   run in Numba's CUDA simulator on NumPy arrays (slowly), which is how CI tests
                   them without a GPU.

The engine never needs them: every op has a NumPy/CuPy reference path. Importing this package
imports nothing heavy; `load("cpu")` / `load("cuda")` import Numba on first use.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType

_EXTRA = {"cpu": "fast", "cuda": "gpu"}


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinygrad_lite" / "numba"


def ensure_numba_cache_dir() -> str:
    """Point Numba's on-disk cache (`cache=True`) at a writable directory unless the user chose one.

    By default Numba writes its cache next to the source file (`__pycache__`), which fails
    silently for a read-only install (site-packages, a container image), and then every new process
    compiles every kernel again (seconds each). This must run before numba is imported: Numba reads
    NUMBA_CACHE_DIR once, at import.
    """
    if not os.environ.get("NUMBA_CACHE_DIR"):
        path = default_cache_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
            os.environ["NUMBA_CACHE_DIR"] = str(path)
        except OSError:  # no writable home: leave Numba's default (it then just does not cache)
            pass
    return os.environ.get("NUMBA_CACHE_DIR", "")


def numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def load(target: str) -> ModuleType:
    """The kernels module for `target` ("cpu" or "cuda"); a clear error naming the extra."""
    if target not in _EXTRA:
        raise ValueError(f"kernels: unknown target {target!r}; choose 'cpu' or 'cuda'")
    ensure_numba_cache_dir()
    try:
        import numba  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"the {target} kernels need Numba, which is not installed: "
            f'pip install -e ".[{_EXTRA[target]}]"'
        ) from e
    return importlib.import_module(f"{__name__}.{target}")
