"""What a benchmark ran on: the BLAS kernel and its threads, the forced-kernel variables, the load.

Every benchmark prints `machine_line()` first, so each recorded number says what produced it.

Our shared machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to force an old OpenBLAS kernel;
a user's machine picks its native one. Benchmark with both unset, in the benchmark command only:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gpt_train.py

Run as a script, it prints the line: `python benchmarks/machine.py`.
"""
from __future__ import annotations

import os

FORCING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_pools() -> list[dict]:
    """threadpoolctl's description of each BLAS library loaded in this process (NumPy's first)."""
    import numpy  # noqa: F401 - loads NumPy's BLAS, so there is a pool to describe
    from threadpoolctl import threadpool_info

    return [p for p in threadpool_info() if p.get("user_api") == "blas"]


def blas_description() -> str:
    """e.g. 'openblas 0.3.31 Haswell kernel, 1 thread'."""
    try:
        pools = blas_pools()
    except ImportError:
        return "BLAS kernel unknown (pip install threadpoolctl to report it)"
    if not pools:
        return "no BLAS library found by threadpoolctl"
    return "; ".join(f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} kernel, "
                     f"{p.get('num_threads')} thread{'s' if p.get('num_threads') != 1 else ''}" for p in pools)


def forcing_description() -> str:
    """Which of the kernel-forcing variables are set in this process's environment."""
    set_ = [f"{v}={os.environ[v]}" for v in FORCING_VARIABLES if v in os.environ]
    return "forced: " + ", ".join(set_) if set_ else "native kernel (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset)"


def load_description() -> str:
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min), {five:.2f} (5 min)"


def machine_line() -> str:
    """One line for the top of a benchmark's output."""
    return f"machine: BLAS {blas_description()}; {forcing_description()}; {load_description()}"


if __name__ == "__main__":
    print(machine_line())
