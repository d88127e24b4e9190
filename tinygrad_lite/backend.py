"""Backends: the array module (`xp`) behind each device.

Every op reaches its array library through `tensor.xp`, never by importing numpy for math
directly, so a new device only has to register a `Backend` here. The CPU backend is NumPy.
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .allocator import keep_freed_memory


@dataclass(frozen=True)
class Backend:
    """What the engine needs from a device: its array module and a few extra functions."""

    device: str
    xp: ModuleType
    erf: Callable[[Any], Any] = field(repr=False)
    to_numpy: Callable[[Any], np.ndarray] = field(repr=False)
    # index_add(out, index, values): out[index] += values in place, repeated indices accumulating
    # (NumPy's np.add.at). None: use xp.add.at.
    index_add: Callable[[Any, tuple[Any, ...], Any], None] | None = field(default=None, repr=False)
    # compiled_kernels(): the module of compiled kernels for this device's arrays, or None (then the
    # fused ops and optimizers run their reference xp code). Called on use, so it can load lazily.
    compiled_kernels: Callable[[], ModuleType | None] = field(default=lambda: None, repr=False)


def _numpy_erf() -> Callable[[Any], Any]:
    # NumPy has no erf. SciPy's is exact to ~1 ulp and fast; without SciPy we fall back to the
    # standard library's math.erf element by element (same accuracy, much slower).
    try:
        from scipy.special import erf

        return erf
    except ImportError:  # pragma: no cover - depends on the environment
        vec = np.vectorize(math.erf, otypes=[np.float64])
        return lambda x: vec(x).astype(np.asarray(x).dtype, copy=False)


# Set TGLITE_NUMBA=0 to keep the NumPy reference even where Numba is installed (e.g. to compare).
USE_NUMBA = os.environ.get("TGLITE_NUMBA", "1").strip().lower() not in ("0", "false", "no")
_cpu_kernels: Any = None  # the Numba kernels module, loaded on first use; False: unavailable


def cpu_kernels() -> ModuleType | None:
    """The Numba CPU kernels (`tinygrad_lite.kernels.cpu`), or None without Numba or with TGLITE_NUMBA=0.

    Fused ops call this to take their compiled fast path; each keeps a NumPy reference path for
    when it returns None (and for CuPy arrays), and tests run both.
    """
    global _cpu_kernels
    if not USE_NUMBA:
        return None
    if _cpu_kernels is None:
        from . import kernels

        _cpu_kernels = kernels.load("cpu") if kernels.numba_available() else False
    return _cpu_kernels or None


def _numpy_index_add(out: np.ndarray, index: tuple[Any, ...], values: np.ndarray) -> None:
    """np.add.at, except for the embedding backward (one integer index array on axis 0), where the
    Numba kernel, when Numba is installed, is 17-97x faster on GPT and word2vec shapes (docs/gpu.md).
    The result is the same up to float rounding order."""
    if (USE_NUMBA and len(index) == 1 and isinstance(index[0], np.ndarray) and index[0].dtype.kind in "iu"
            and out.size and out.dtype in (np.float32, np.float64) and values.dtype == out.dtype
            and out.flags.c_contiguous):
        compiled = cpu_kernels()
        if compiled is not None:
            idx = index[0].reshape(-1)
            rows = out.reshape(out.shape[0], -1)  # a view: `out` is contiguous
            compiled.index_add_rows(rows, idx, values.reshape(idx.size, rows.shape[1]))
            return
    np.add.at(out, index, values)


DEFAULT_DEVICE = "cpu"  # where a Tensor lives unless told otherwise
_REGISTRY: dict[str, Callable[[], Backend]] = {}
_CACHE: dict[str, Backend] = {}
XP_BY_DEVICE: dict[str, ModuleType] = {}  # filled as backends load; Tensor.xp reads it on every op


def register_backend(device: str, factory: Callable[[], Backend]) -> None:
    """Make `device` usable; `factory` is called once, on first use."""
    _REGISTRY[device] = factory
    _CACHE.pop(device, None)
    XP_BY_DEVICE.pop(device, None)


def get_backend(device: str) -> Backend:
    """The backend for `device` ("cpu", ...); a clear error for an unknown or unusable device."""
    backend = _CACHE.get(device)
    if backend is not None:
        return backend
    if device not in _REGISTRY:
        raise ValueError(
            f"unknown device {device!r}; available devices: {sorted(_REGISTRY)}"
        )
    backend = _CACHE[device] = _REGISTRY[device]()
    XP_BY_DEVICE[device] = backend.xp
    return backend


def kernels_for(device: str) -> ModuleType | None:
    """The compiled kernels for arrays on `device` (the Numba CPU kernels for "cpu"), or None:
    what a fused op asks before taking its compiled fast path."""
    return get_backend(device).compiled_kernels()


def available_devices() -> list[str]:
    return sorted(_REGISTRY)


def _numpy_backend() -> Backend:
    keep_freed_memory()  # reuse freed blocks instead of fresh pages each step (allocator.py)
    return Backend("cpu", np, _numpy_erf(), lambda a: np.asarray(a), _numpy_index_add, cpu_kernels)


register_backend("cpu", _numpy_backend)


# ---------------------------------------------------------------------- CUDA (CuPy)
# The "cuda" device is CuPy: the same Function code runs on cupy.ndarray, since CuPy mirrors
# NumPy's API. Nothing here imports cupy until "cuda" is first asked for, so CPU-only programs
# never pay its (slow) import and never need it installed.
FORCE_CPU_ENV = "TGLITE_FORCE_CPU"


def _force_cpu() -> bool:
    return os.environ.get(FORCE_CPU_ENV, "").strip().lower() not in ("", "0", "false", "no")


@functools.lru_cache(maxsize=1)
def _cuda_probe() -> str | None:
    """None if CuPy imports and sees a CUDA device, else why not. Cached: probing the driver
    costs ~0.1-1 s, and the answer does not change while the process runs."""
    if importlib.util.find_spec("cupy") is None:
        return 'CuPy is not installed (pip install -e ".[gpu]" on a machine with an NVIDIA GPU)'
    try:
        import cupy

        if not cupy.cuda.is_available():
            return "CuPy is installed but finds no CUDA device (no NVIDIA GPU, or no driver)"
    except Exception as e:  # noqa: BLE001 - a broken CUDA install: report it, do not crash
        return f"CuPy failed to initialise CUDA ({type(e).__name__}: {e})"
    return None


def cuda_unavailable_reason() -> str | None:
    """None when device "cuda" can be used here; otherwise a sentence saying what is missing."""
    if _force_cpu():
        return f"{FORCE_CPU_ENV} is set in the environment, which forces the CPU"
    return _cuda_probe()


def cuda_available() -> bool:
    return cuda_unavailable_reason() is None


def _cupy_backend() -> Backend:
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"device 'cuda' is not available: {reason}. Use device='cpu'.")
    import cupy
    import cupyx
    from cupyx.scipy.special import erf

    # CuPy >= 13 has NumPy's `add.at`; older releases only cupyx.scatter_add (same arguments).
    index_add = cupy.add.at if hasattr(cupy.add, "at") else cupyx.scatter_add
    return Backend("cuda", cupy, erf, cupy.asnumpy, index_add)


register_backend("cuda", _cupy_backend)


def as_numpy(a: Any) -> Any:
    """A NumPy copy of a device array (CuPy's `.get()`); anything else is returned unchanged.
    For code that holds arrays without knowing their device (checkpoints, optimizer state)."""
    if isinstance(a, np.ndarray) or not hasattr(a, "__cuda_array_interface__"):
        return a
    return a.get()
