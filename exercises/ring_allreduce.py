"""Exercise: a ring all-reduce from MPI point-to-point messages, graded against MPI_Allreduce.

For learning only: the project's data parallelism uses MPI's own all-reduce (nn.distributed), which
picks a tuned algorithm for the message size and the network. Here you write the algorithm that
large-message all-reduces (and NCCL's rings) are built on, and see why each rank sends only
2(N-1)/N of the data whatever the number of ranks N. docs/distributed.md explains the method.

Run the grader (any number of ranks; 2 to 4 on a laptop):

    mpiexec -n 4 python exercises/ring_allreduce.py

The student version is this file with the solution replaced by a stub:

    python -c "from tglite.exercises import strip_solutions; import sys; \
print(strip_solutions(open('exercises/ring_allreduce.py').read(), 'exercise ring_all_reduce')[0])" > my_ring.py

The algorithm, on N ranks in a ring (rank r sends to r+1 and receives from r-1, modulo N), with the
array cut into N chunks:
  1. reduce-scatter, N-1 steps: at step s, rank r sends chunk (r - s) mod N to its right neighbour,
     receives chunk (r - s - 1) mod N from its left one and adds it into its own copy. Afterwards
     rank r holds the complete sum of chunk (r + 1) mod N.
  2. all-gather, N-1 steps: at step s, rank r sends chunk (r + 1 - s) mod N (complete) and receives
     chunk (r - s) mod N, which it copies (no addition: it is already the complete sum).
Each step moves one chunk (1/N of the array) per rank: 2(N-1) steps, 2(N-1)/N of the array in all.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np


def chunk_bounds(size: int, n: int) -> list[tuple[int, int]]:
    """The [start, stop) of each of n nearly equal chunks (the first size % n are one longer)."""
    edges = [i * (size // n) + min(i, size % n) for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


def ring_all_reduce(comm: Any, x: np.ndarray) -> np.ndarray:
    """The elementwise sum of every rank's 1-D array x, on every rank, with comm.Sendrecv only.
    `comm` is an mpi4py communicator; x is not modified."""
    # BEGIN SOLUTION
    # HINT: copy x, cut it with chunk_bounds, then N-1 Sendrecv steps that add (reduce-scatter) and N-1 that copy
    # HINT 2: at step s rank r sends chunk (r - s) % n to (r + 1) % n, receives chunk (r - s - 1) % n from (r - 1) % n
    n, r = comm.Get_size(), comm.Get_rank()
    out = np.array(x, copy=True)
    bounds = chunk_bounds(out.size, n)
    right, left = (r + 1) % n, (r - 1) % n
    for s in range(n - 1):  # reduce-scatter
        a, b = bounds[(r - s) % n]
        c, d = bounds[(r - s - 1) % n]
        incoming = np.empty(d - c, dtype=out.dtype)
        comm.Sendrecv(out[a:b], dest=right, recvbuf=incoming, source=left)
        out[c:d] += incoming
    for s in range(n - 1):  # all-gather
        a, b = bounds[(r + 1 - s) % n]
        c, d = bounds[(r - s) % n]
        comm.Sendrecv(out[a:b], dest=right, recvbuf=out[c:d], source=left)
    return out
    # END SOLUTION


# ----------------------------------------------------------------------------- the grader
# (size, dtype): sizes smaller than, equal to and not divisible by the number of ranks, and a large one.
CASES = [(1, "float64"), (7, "float64"), (64, "float32"), (1000, "int64"), (100_003, "float64")]


def grade(implementation: Callable[[Any, np.ndarray], np.ndarray], comm: Any) -> list[tuple[str, str]]:
    """Run `implementation` on every case and compare with MPI_Allreduce (comm.Allreduce). Returns one
    (case, verdict) pair per case; the verdict is "passed", "not attempted" or "FAILED: why". Every
    rank must call it (it communicates); the verdicts are gathered, so a case fails if it failed anywhere."""
    from mpi4py import MPI

    results = []
    for size, dtype in CASES:
        rng = np.random.default_rng([size, comm.Get_rank()])
        x = (rng.integers(-100, 100, size) if dtype == "int64" else rng.standard_normal(size)).astype(dtype)
        expected = np.empty_like(x)
        comm.Allreduce(x, expected, op=MPI.SUM)
        before = x.copy()
        try:
            got = implementation(comm, x)
            if not isinstance(got, np.ndarray) or got.shape != x.shape:
                shape = getattr(got, "shape", None)
                verdict = f"FAILED: returned {type(got).__name__} of shape {shape}, expected {x.shape}"
            elif not np.array_equal(x, before):
                verdict = "FAILED: the input array was modified"
            else:
                # a different summation order than MPI's: equal up to round-off (exactly, for integers)
                tol = 0 if dtype == "int64" else (1e-5 if dtype == "float32" else 1e-12) * comm.Get_size()
                err = float(np.abs(got.astype(np.float64) - expected).max())
                verdict = "passed" if err <= tol * max(1.0, float(np.abs(expected).max())) else (
                    f"FAILED: largest difference from MPI_Allreduce {err:.3g} at index "
                    f"{int(np.abs(got.astype(np.float64) - expected).argmax())}")
        except NotImplementedError:
            verdict = "not attempted"
        except Exception as e:  # a student's error is a verdict, not a crash of the grader
            verdict = f"FAILED: raised {type(e).__name__}: {e}"
        verdicts = comm.allgather(verdict)
        worst = next((v for v in verdicts if v != "passed"), "passed")
        results.append((f"{size} {dtype} on {comm.Get_size()} ranks", worst))
    return results


def main() -> int:
    from mpi4py import MPI

    results = grade(ring_all_reduce, MPI.COMM_WORLD)
    if MPI.COMM_WORLD.Get_rank() == 0:
        for case, verdict in results:
            print(f"ring_all_reduce  {case:28s} {verdict}")
        passed = sum(v == "passed" for _, v in results)
        print(f"{passed} of {len(results)} cases passed")
    return 0 if all(v == "passed" for _, v in results) else 1


if __name__ == "__main__":
    sys.exit(main())
