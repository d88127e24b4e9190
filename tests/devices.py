"""Devices for device-parametrized tests.

`DEVICES` lists the devices the engine's ops are tested on here: always "cpu", plus "cuda" when
a usable GPU is present. On a CPU-only machine the list is just ["cpu"], so a device-parametrized
test can never report a pass for a GPU path that did not run.

`fake_device()` registers "fakecuda", a second device backed by NumPy (with a copying transfer).
It proves the device *plumbing* (to(), factories, the mixed-device check, Module.to,
checkpoints) without a GPU; it cannot catch NumPy-only calls that CuPy would reject (that is
what the `gpu` tests are for, on a machine that has one).

`cuda_sim_device()` registers "cuda-sim": NumPy arrays, and the Numba CUDA kernels as its kernel
registry. Under NUMBA_ENABLE_CUDASIM=1 those kernels take NumPy arrays, so every op on "cuda-sim"
finds and runs the same kernels as on "cuda" (tests/cuda_sim/test_cuda_dispatch.py).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tinygrad_lite import backend

FAKE = "fakecuda"


def test_devices() -> list:
    # "cuda" carries the `gpu` marker, so `pytest -m gpu` selects exactly the runs on the GPU.
    return ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.gpu)] if backend.cuda_available() else [])


DEVICES = test_devices()
OTHER_DEVICES = [FAKE] + DEVICES[1:]  # devices other than "cpu" to move models to
test_devices.__test__ = False  # a helper, not a test, despite its name


@contextlib.contextmanager
def fake_device(name: str = FAKE, **fields: Any) -> Iterator[str]:
    """Register a NumPy-backed device (by default "fakecuda") for the duration of a test; `fields`
    are further Backend fields (kernel_module=, uniform=)."""
    erf = backend.get_backend("cpu").erf
    backend.register_backend(name, lambda: backend.Backend(name, np, erf, lambda a: np.array(a), **fields))
    try:
        yield name
    finally:  # unregister, so other tests (and `tglite info`) see the usual device list
        backend._REGISTRY.pop(name, None)
        backend._CACHE.pop(name, None)
        backend.XP_BY_DEVICE.pop(name, None)


CUDA_SIM = "cuda-sim"


def cuda_sim_device() -> contextlib.AbstractContextManager[str]:
    """Register "cuda-sim": NumPy arrays, with the Numba CUDA kernels as its registry (use it with
    NUMBA_ENABLE_CUDASIM=1, where those kernels run in the simulator on NumPy arrays)."""
    return fake_device(CUDA_SIM, kernel_module=lambda: backend.compiled_kernels("cuda"))
