"""Backends: the array module (`xp`) behind each device.

Every op reaches its array library through `tensor.xp`, never by importing numpy for math
directly, so a new device only has to register a `Backend` here. The CPU backend is NumPy.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Backend:
    """What the engine needs from a device: its array module and a few extra functions."""

    device: str
    xp: ModuleType
    erf: Callable[[Any], Any] = field(repr=False)
    to_numpy: Callable[[Any], np.ndarray] = field(repr=False)


def _numpy_erf() -> Callable[[Any], Any]:
    # NumPy has no erf. SciPy's is exact to ~1 ulp and fast; without SciPy we fall back to the
    # standard library's math.erf element by element (same accuracy, much slower).
    try:
        from scipy.special import erf

        return erf
    except ImportError:  # pragma: no cover - depends on the environment
        vec = np.vectorize(math.erf, otypes=[np.float64])
        return lambda x: vec(x).astype(np.asarray(x).dtype, copy=False)


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


register_backend(
    "cpu", lambda: Backend("cpu", np, _numpy_erf(), lambda a: np.asarray(a))
)
