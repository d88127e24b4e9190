"""Shared pytest configuration: hypothesis profiles, and a fixed thread count.

    ci   (default)  25 examples per test, derandomized: the same examples on every run, so a CI
                    failure reproduces locally; no deadline (gradcheck timings vary on shared CPUs)
    dev             many more random examples, for hunting bugs locally:
                    HYPOTHESIS_PROFILE=dev pytest tests/test_ops_elementwise.py
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The thread policy (tinygrad_lite/threads.py) changes the BLAS thread count with the machine's load,
# and OpenBLAS rounds some products differently at one thread and at two: tests that train twice and
# compare bit for bit would then depend on what else the machine runs. Tests run with the policy off;
# tests/test_threads.py switches it on where it is the subject.
os.environ.setdefault("TGLITE_THREADS", "fixed")


def pytest_report_header(config: object) -> str:
    """Say which device mode this run tests: a GPU, the Numba CUDA simulator, or the CPU only."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "tinygrad_lite devices: CUDA simulator (NUMBA_ENABLE_CUDASIM=1; CUDA kernels run on the CPU)"
    from tinygrad_lite import backend

    reason = backend.cuda_unavailable_reason()
    if reason is None:
        return "tinygrad_lite devices: GPU (cpu + cuda; `gpu` tests run)"
    return f"tinygrad_lite devices: CPU only (`gpu` tests skipped: {reason})"


@pytest.fixture(autouse=True)
def _numpy_print_options_are_restored():
    """Tests that run notebook cells in-process (the course exercises) may set NumPy's print options;
    restore them so that a later test (the docs' printed outputs) sees NumPy's defaults."""
    saved = np.get_printoptions()
    yield
    np.set_printoptions(**saved)
