"""The CPU backend's allocator setting (tinygrad_lite/allocator.py): on glibc, freed blocks are kept
for reuse, so a loop that allocates and frees the same large arrays stops taking fresh pages from
the kernel. Page faults are counted, not timed."""
import ctypes.util
import json
import os
import subprocess
import sys

import pytest

IS_GLIBC = sys.platform.startswith("linux") and "libc.so" in str(ctypes.util.find_library("c"))
glibc_only = pytest.mark.skipif(not IS_GLIBC, reason="mallopt tuning applies to glibc on Linux only")

CHILD = """
import json, resource
import numpy as np
import tinygrad_lite as tg
applied = tg.backend.keep_freed_memory()
tg.ones(1)  # creating the CPU backend applies the setting (a no-op if already done or disabled)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):  # like a training step: forward keeps 20 activations of 1 MiB alive, then all are freed
    activations = [np.full(262_144, float(i), np.float32) for i in range(20)]
    del activations
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "faults": faults}))
"""


def run_child(keep: str) -> dict:
    env = dict(os.environ, TGLITE_KEEP_FREED_MEMORY=keep)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    kept, default = run_child("1"), run_child("0")
    assert kept["applied"] is True and default["applied"] is False
    # Without the setting glibc gives the freed heap top back to the kernel after each "step", so
    # every step faults its 20 MiB in again (5,120 pages of 4 KiB, 50 times); with it, pages are reused.
    assert default["faults"] > 50_000
    assert kept["faults"] * 10 < default["faults"], (kept, default)
