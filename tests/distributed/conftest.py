"""Fixtures of the data-parallel tests, which run under `mpiexec -n 2 python -m pytest tests/distributed -m mpi`
(their own CI step, like tests/cuda_sim). In the main `python -m pytest` run each module skips itself.

Every rank runs the same tests in the same order, so their collectives match; a test that fails on one
rank makes the other's next collective time out (TIMEOUT seconds) instead of hanging the job.
"""
from __future__ import annotations

import pytest

TIMEOUT = 60.0  # seconds: far above any collective here, far below pytest-timeout's limit


@pytest.fixture(scope="session")
def comm():
    """The MPI communicator of this test process (a duplicate of COMM_WORLD)."""
    from nn.distributed import MPICommunicator

    c = MPICommunicator(timeout=TIMEOUT)
    if c.world_size < 2:
        pytest.skip("the data-parallel tests need at least 2 ranks: mpiexec -n 2 python -m pytest tests/distributed")
    return c


@pytest.fixture
def shared_tmp(comm, tmp_path):
    """A folder every rank sees: rank 0's tmp_path."""
    from pathlib import Path

    return Path(comm.broadcast_object(str(tmp_path)))
