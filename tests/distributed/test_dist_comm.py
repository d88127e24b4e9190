"""The communicator: collectives, their errors, the timeout, and a failing rank stopping the job."""
from __future__ import annotations

import os
import subprocess
import textwrap
import time

import numpy as np
import pytest
from launch import nested_mpiexec

from nn.distributed import launched_by_mpi

if not launched_by_mpi():
    pytest.skip("data-parallel tests run in their own CI step, under mpiexec: "
                "mpiexec -n 2 python -m pytest tests/distributed -m mpi (see .ci/run)", allow_module_level=True)

import tinygrad_lite as tg  # noqa: E402
from nn.distributed import (  # noqa: E402
    CollectiveTimeout,
    DistributedSampler,
    MPICommunicator,
    rank_seed,
    shard_rows,
)

pytestmark = pytest.mark.mpi
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_all_reduce_broadcast_all_gather_barrier(comm):
    r = comm.rank
    for dtype in (np.float32, np.float64, np.int64):
        a = np.arange(6, dtype=dtype).reshape(2, 3) * (r + 1)
        assert np.array_equal(comm.all_reduce(a), np.arange(6, dtype=dtype).reshape(2, 3) * 3)
        assert comm.all_reduce(np.array([r + 1.0]), "max")[0] == 2.0
        assert comm.all_reduce(np.array([r + 1.0]), "min")[0] == 1.0
    b = np.full(4, float(r))
    assert np.array_equal(comm.broadcast(b, root=1), np.ones(4))
    g = comm.all_gather(np.array([r, 10 * r]))
    assert g.shape == (2, 2) and np.array_equal(g, [[0, 0], [1, 10]])
    assert comm.all_gather_object({"rank": r, "text": "é" * r}) == [{"rank": 0, "text": ""}, {"rank": 1, "text": "é"}]
    assert comm.broadcast_object([1, None] if r == 0 else "ignored") == [1, None]
    comm.barrier()


def test_bad_arguments_are_named(comm):
    with pytest.raises(ValueError, match="op='mean'"):
        comm.all_reduce(np.zeros(2), "mean")
    with pytest.raises(ValueError, match="C-contiguous"):
        comm.all_reduce(np.zeros((4, 4))[:, 0])
    with pytest.raises(TypeError, match="expected a NumPy array"):
        comm.all_reduce([1.0, 2.0])
    with pytest.raises(ValueError, match="root=5"):
        comm.broadcast(np.zeros(2), root=5)


def test_a_missing_rank_times_out_with_an_error_naming_the_rank(comm):
    """Rank 1 arrives 3 s late; rank 0, with a 1 s limit, gets CollectiveTimeout naming rank 0 instead
    of waiting forever. (Rank 1 then joins, so the job continues cleanly.)"""
    late = MPICommunicator(timeout=1.0)
    x = np.ones(3)
    if comm.rank == 0:
        start = time.monotonic()
        with pytest.raises(CollectiveTimeout, match=r"rank 0: all_reduce\(sum\) of 3 float64 values did not "
                                                    r"complete within 1 s") as e:
            late.all_reduce(x)
        assert time.monotonic() - start < 2.9  # gave up before rank 1 arrived
        assert np.array_equal(e.value.work.wait(timeout=30), [2, 2, 2])  # still completes later
    else:
        time.sleep(3.0)
        assert np.array_equal(late.all_reduce(x), [2, 2, 2])
    comm.barrier()


def test_sampler_shards_are_disjoint_and_reproducible(comm):
    sampler = DistributedSampler(n=20, batch_size=6, comm=comm, seed=7)
    mine = list(sampler)
    assert len(mine) == 3 and all(len(b) == 3 for b in mine)
    everyone = comm.all_gather(np.stack(mine))  # (ranks, batches, rows)
    for b in range(3):
        rows = np.concatenate(everyone[:, b])
        assert len(set(rows.tolist())) == 6  # disjoint shards of one global batch
        assert np.array_equal(rows, tg.Generator(7).permutation(20)[b * 6 : (b + 1) * 6])  # = one process
    assert all(np.array_equal(a, b) for a, b in zip(mine, DistributedSampler(20, 6, comm, seed=7)))
    sampler.set_epoch(1)
    assert not all(np.array_equal(a, b) for a, b in zip(mine, sampler))
    with pytest.raises(ValueError, match="does not split evenly over 2 ranks"):
        DistributedSampler(n=20, batch_size=5, comm=comm)
    assert shard_rows(8, comm) == slice(4 * comm.rank, 4 * comm.rank + 4)
    seeds = comm.all_gather(np.array([rank_seed(1337, comm.rank)]))[:, 0]
    assert seeds[0] == 1337 and seeds[1] != 1337 and rank_seed(1337, 1) == seeds[1]


FAILING_JOB = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from nn.distributed import MPICommunicator, abort_on_exception
    comm = MPICommunicator()
    with abort_on_exception(comm):
        if sys.argv[1] == "raise" and comm.rank == 1:
            raise ValueError("planted failure")
        if sys.argv[1] == "die" and comm.rank == 1:
            os._exit(3)  # dies without a word: mpiexec sees the exit and stops the other rank
        if sys.argv[1] == "silent" and comm.rank == 1:
            time.sleep(60)  # alive but never joins the collective
        comm.all_reduce(np.ones(3))
        comm.barrier()
""")


def run_job(tmp_path, mode: str) -> subprocess.CompletedProcess:
    """mpiexec -n 2 of FAILING_JOB, started from rank 0 with the launcher's variables removed (so the
    inner mpiexec starts its own job instead of joining ours)."""
    script = tmp_path / "job.py"
    script.write_text(FAILING_JOB)
    command, env = nested_mpiexec(str(script), mode, TGLITE_DIST_TIMEOUT="3", PYTHONPATH=REPO)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=50)


@pytest.mark.parametrize("mode, culprit", [("raise", "rank 1 of 2 failed with ValueError: planted failure"),
                                           ("silent", "rank 0 of 2 failed with CollectiveTimeout: rank 0: "
                                                      "all_reduce(sum) of 3 float64 values did not complete "
                                                      "within 3 s"),
                                           ("die", "")])
def test_a_failing_rank_stops_the_job_with_its_name(comm, tmp_path, mode, culprit):
    """Without abort_on_exception (or a timeout) these jobs hang forever: rank 0 waits in all_reduce."""
    if comm.rank == 0:
        start = time.monotonic()
        done = run_job(tmp_path, mode)
        assert done.returncode == (3 if mode == "die" else 1), done.stderr
        assert culprit in done.stderr + done.stdout
        assert time.monotonic() - start < 45
    comm.barrier()
