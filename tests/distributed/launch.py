"""Starting a separate MPI job from inside the data-parallel tests (which already run under mpiexec)."""
from __future__ import annotations


def nested_mpiexec(*args: str, **env: str) -> tuple[list[str], dict[str, str]]:
    """(command, environment) for a separate `mpiexec -n 2 python ARGS` job started from inside this one:
    the launcher's variables are removed, so the inner mpiexec starts its own job instead of joining
    ours. `env` adds variables (TGLITE_DIST_TIMEOUT, ...); OpenBLAS gets one thread per rank."""
    import os
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "HYDRA_", "MPI_", "OMPI_"))}
    clean.update(OPENBLAS_NUM_THREADS="1", **env)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return [mpiexec, "-n", "2", sys.executable, *args], clean
