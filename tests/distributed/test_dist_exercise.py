"""The ring all-reduce exercise (exercises/ring_allreduce.py): its grader passes the solution, and fails
planted mistakes and the student stub."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from nn.distributed import launched_by_mpi

if not launched_by_mpi():
    pytest.skip("data-parallel tests run in their own CI step, under mpiexec: "
                "mpiexec -n 2 python -m pytest tests/distributed -m mpi (see .ci/run)", allow_module_level=True)

from tglite.exercises import strip_solutions  # noqa: E402

pytestmark = pytest.mark.mpi
SOURCE = Path(__file__).resolve().parents[2] / "exercises" / "ring_allreduce.py"


def load(source: str, name: str):
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, str(SOURCE), "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def world():
    from mpi4py import MPI

    comm = MPI.COMM_WORLD.Dup()
    yield comm
    comm.Free()


def test_the_solution_passes(world):
    ex = load(SOURCE.read_text(), "ring_solution")
    assert all(v == "passed" for _, v in ex.grade(ex.ring_all_reduce, world))


def test_planted_mistakes_fail(world):
    ex = load(SOURCE.read_text(), "ring_mistakes")

    def reduce_scatter_only(comm, x):  # forgets the all-gather: each rank has one complete chunk
        n, r = comm.Get_size(), comm.Get_rank()
        out, bounds = x.copy(), ex.chunk_bounds(x.size, n)
        for s in range(n - 1):
            (a, b), (c, d) = bounds[(r - s) % n], bounds[(r - s - 1) % n]
            incoming = np.empty(d - c, dtype=out.dtype)
            comm.Sendrecv(out[a:b], dest=(r + 1) % n, recvbuf=incoming, source=(r - 1) % n)
            out[c:d] += incoming
        return out

    def in_place(comm, x):  # right values, but overwrites the caller's array
        x[...] = ex.ring_all_reduce(comm, x)
        return x

    verdicts = [v for _, v in ex.grade(reduce_scatter_only, world)]
    assert all(v.startswith("FAILED: largest difference from MPI_Allreduce") for v in verdicts)
    assert all(v == "FAILED: the input array was modified" for _, v in ex.grade(in_place, world))


def test_the_student_stub_is_not_attempted(world):
    student, blocks = strip_solutions(SOURCE.read_text(), "exercise 'ring_all_reduce'")
    assert blocks == 1
    ex = load(student, "ring_student")
    assert all(v == "not attempted" for _, v in ex.grade(ex.ring_all_reduce, world))
