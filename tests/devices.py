"""Devices for device-parametrized tests.

`DEVICES` lists the devices the engine's ops are tested on here: always "cpu", plus "cuda" when
a usable GPU is present. On a CPU-only machine the list is just ["cpu"], so a device-parametrized
test can never report a pass for a GPU path that did not run.

`fake_device()` registers "fakecuda", a second device backed by NumPy (with a copying transfer).
It proves the device *plumbing* (to(), factories, the mixed-device check, Module.to,
checkpoints) without a GPU; it cannot catch NumPy-only calls that CuPy would reject (that is
what the `gpu` tests are for, on a machine that has one).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
def fake_device() -> Iterator[str]:
    """Register the NumPy-backed "fakecuda" device for the duration of a test."""
    erf = backend.get_backend("cpu").erf
    backend.register_backend(FAKE, lambda: backend.Backend(FAKE, np, erf, lambda a: np.array(a)))
    try:
        yield FAKE
    finally:  # unregister, so other tests (and `tglite info`) see the usual device list
        backend._REGISTRY.pop(FAKE, None)
        backend._CACHE.pop(FAKE, None)
        backend.XP_BY_DEVICE.pop(FAKE, None)
