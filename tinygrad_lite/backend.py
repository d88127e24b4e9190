"""Backends: the array module (`xp`) and the compiled kernels behind each device.

Every op reaches its array library through `tensor.xp`, never by importing numpy for math
directly, so a new device only has to register a `Backend` here. The CPU backend is NumPy.

The backend also owns the device's compiled kernels (the kernel registry). An op that has a fast
path asks `get_backend(x.device).kernel(name, x.dtype)`: it gets the compiled function, or None,
and then runs its own xp code (the reference). No code outside this file compares device names.
`tinygrad_lite/kernels/__init__.py` lists the kernel names and what each takes and returns.
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .allocator import keep_freed_memory
from .extras import install_command, require


@dataclass(frozen=True)
class Backend:
    """What the engine needs from a device: its array module, a few extra functions, its kernels."""

    device: str
    xp: ModuleType
    erf: Callable[[Any], Any] = field(repr=False)
    to_numpy: Callable[[Any], np.ndarray] = field(repr=False)
    # index_add(out, index, values): out[index] += values in place, repeated indices accumulating
    # (NumPy's np.add.at). None: use xp.add.at.
    index_add: Callable[[Any, tuple[Any, ...], Any], None] | None = field(default=None, repr=False)
    # kernel_module(): the module of compiled kernels for this device's arrays, or None (then every
    # op runs its xp reference code). Called on each lookup, so Numba loads on first use only.
    kernel_module: Callable[[], ModuleType | None] = field(default=lambda: None, repr=False)
    # uniform(seed, shape, dtype): U[0, 1) drawn on the device by its own generator, seeded with
    # `seed`. None: the engine's host generator draws and the array is moved (NumPy devices).
    uniform: Callable[[int, tuple[int, ...], Any], Any] | None = field(default=None, repr=False)

    def kernel(self, name: str, dtype: Any = None) -> Callable[..., Any] | None:
        """The compiled kernel `name` for this device's arrays of `dtype`, or None.

        None means "run your reference code": the device has no such kernel, or none for this
        dtype, or Numba is not installed, or TGLITE_NUMBA=0. A kernels module says what it serves
        in its `DTYPES` table (kernel name -> the dtypes it takes).
        """
        module = self.kernel_module()
        if module is None:
            return None
        dtypes = module.DTYPES.get(name)
        if dtypes is None or (dtype is not None and dtype not in dtypes):
            return None
        return getattr(module, name)  # looked up on each call, so a test can wrap it with a spy


def _numpy_erf() -> Callable[[Any], Any]:
    # NumPy has no erf. SciPy's is exact to ~1 ulp and fast; without SciPy we fall back to the
    # standard library's math.erf element by element (same accuracy, much slower).
    try:
        from scipy.special import erf

        return erf
    except ImportError:  # pragma: no cover - depends on the environment
        vec = np.vectorize(math.erf, otypes=[np.float64])
        return lambda x: vec(x).astype(np.asarray(x).dtype, copy=False)


# ---------------------------------------------------------------------- Numba, loaded one way
# Set TGLITE_NUMBA=0 to keep the reference code even where Numba is installed (e.g. to compare).
USE_NUMBA = os.environ.get("TGLITE_NUMBA", "1").strip().lower() not in ("0", "false", "no")


@functools.lru_cache(maxsize=1)
def numba_available() -> bool:
    """Whether Numba is installed (without importing it: that takes ~0.5 s)."""
    return importlib.util.find_spec("numba") is not None


def default_numba_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinygrad_lite" / "numba"


def ensure_numba_cache_dir() -> str:
    """Point Numba's on-disk cache (`cache=True`) at a writable directory unless the user chose one.

    By default Numba writes its cache next to the source file (`__pycache__`), which fails
    silently for a read-only install (site-packages, a container image), and then every new process
    compiles every kernel again (seconds each). This must run before numba is imported: Numba reads
    NUMBA_CACHE_DIR once, at import.
    """
    if not os.environ.get("NUMBA_CACHE_DIR"):
        path = default_numba_cache_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
            os.environ["NUMBA_CACHE_DIR"] = str(path)
        except OSError:  # no writable home: leave Numba's default (it then just does not cache)
            pass
    return os.environ.get("NUMBA_CACHE_DIR", "")


def load_numba(purpose: str, extra: str = "fast") -> ModuleType:
    """Import Numba for `purpose` (e.g. "the fast word2vec trainer"): the one way the project loads it.

    First points Numba's compile cache at a writable directory (see ensure_numba_cache_dir);
    without Numba, raises the project's MissingExtraError naming the pip extra that installs it.
    """
    ensure_numba_cache_dir()
    return require("numba", extra, purpose)


def compiled_kernels(target: str) -> ModuleType | None:
    """The Numba kernels module for `target` ("cpu" or "cuda"), or None without Numba or with
    TGLITE_NUMBA=0 (read on every call, so a test or benchmark can switch it): what a Backend's
    `kernel_module` returns."""
    if not USE_NUMBA or not numba_available():
        return None
    module = _KERNEL_MODULES.get(target)
    if module is None:
        from . import kernels

        module = _KERNEL_MODULES[target] = kernels.load(target)
    return module


_KERNEL_MODULES: dict[str, ModuleType] = {}


def _numpy_index_add(out: np.ndarray, index: tuple[Any, ...], values: np.ndarray) -> None:
    """np.add.at, except for the embedding backward (one integer index array on axis 0), where the
    Numba kernel, when Numba is installed, is much faster on GPT and word2vec shapes (docs/benchmarks.md).
    The result is the same up to float rounding order."""
    if (len(index) == 1 and isinstance(index[0], np.ndarray) and index[0].dtype.kind in "iu"
            and out.size and values.dtype == out.dtype and out.flags.c_contiguous):
        kernel = get_backend("cpu").kernel("index_add_rows", out.dtype)
        if kernel is not None:
            idx = index[0].reshape(-1)
            rows = out.reshape(out.shape[0], -1)  # a view: `out` is contiguous
            kernel(rows, idx, values.reshape(idx.size, rows.shape[1]))
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


def available_devices() -> list[str]:
    return sorted(_REGISTRY)


def _numpy_backend() -> Backend:
    keep_freed_memory()  # reuse freed blocks instead of fresh pages each step (allocator.py)
    return Backend("cpu", np, _numpy_erf(), lambda a: np.asarray(a), _numpy_index_add,
                   kernel_module=functools.partial(compiled_kernels, "cpu"))


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
        return f"CuPy is not installed ({install_command('gpu')} on a machine with an NVIDIA GPU)"
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
    return Backend("cuda", cupy, erf, cupy.asnumpy, index_add,
                   kernel_module=functools.partial(compiled_kernels, "cuda"), uniform=_cupy_uniform)


def _cupy_uniform(seed: int, shape: tuple[int, ...], dtype: Any) -> Any:
    """U[0, 1) drawn on the GPU by cuRAND's Philox4x32-10 generator, seeded with `seed`.

    A fresh generator per draw keeps the engine's host generator the only random state (its
    get_state/set_state and manual_seed cover GPU draws too); Philox is counter-based, so seeding
    it costs no state initialization. The mask of a dropout layer never crosses the PCIe bus.
    """
    import cupy

    rng = cupy.random.RandomState(seed, method=cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
    return rng.random_sample(shape, dtype)


register_backend("cuda", _cupy_backend)


def as_numpy(a: Any) -> Any:
    """A NumPy copy of a device array (CuPy's `.get()`); anything else is returned unchanged.
    For code that holds arrays without knowing their device (checkpoints, optimizer state)."""
    if isinstance(a, np.ndarray) or not hasattr(a, "__cuda_array_interface__"):
        return a
    return a.get()
