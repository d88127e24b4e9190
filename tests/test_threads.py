"""The thread policy (tinygrad_lite/threads.py): one thread when another process keeps a core busy,
all of them when the cores are idle, and the BLAS's thread count given back afterwards.
Scripted /proc/stat samples make the decisions testable; nothing here times anything."""
from __future__ import annotations

import pytest

from tinygrad_lite import threads


# ------------------------------------------------------------------ the policy
@pytest.mark.parametrize("others, n_cores, ceiling, expected", [
    (0.0, 2, 2, 2), (0.3, 2, 2, 2), (0.7, 2, 2, 1), (1.0, 2, 2, 1), (2.0, 2, 2, 1),  # never fewer than 1
    (0.0, 2, 1, 1), (3.0, 8, 4, 4), (5.2, 8, 4, 3)])
def test_threads_for_counts_the_idle_cores(others, n_cores, ceiling, expected):
    assert threads.threads_for(others, n_cores, ceiling) == expected


def test_cores_used_by_others_subtracts_our_own_cpu_time():
    # 0.5 s of wall time; the machine was busy 1.5 CPU-s, 0.9 of them ours: others used 1.2 cores.
    assert threads.cores_used_by_others((10.0, 100.0, 5.0), (10.5, 101.5, 5.9)) == pytest.approx(1.2)
    assert threads.cores_used_by_others((10.0, 100.0, 5.0), (10.5, 100.2, 5.9)) == 0.0  # never negative


def test_update_follows_the_load_and_gives_the_blas_its_threads(monkeypatch):
    """Scripted /proc/stat samples: a busy neighbour -> one thread (the BLAS too); quiet again -> two."""
    monkeypatch.setenv("TGLITE_NUM_THREADS", "2")
    monkeypatch.delenv("TGLITE_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    threads.reset()
    clock = {"t": 0.0}
    samples = iter([(0.0, 0.0, 0.0), (1.0, 2.0, 1.0),  # others used 1 core -> 1 thread
                    (2.0, 2.1, 1.1),  # others ~0 -> 2 threads
                    ])
    monkeypatch.setattr(threads, "_sample", lambda: next(samples))
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock["t"])
    try:
        assert threads.update() == 2  # the first look only takes a sample
        clock["t"] = 0.1
        assert threads.update() == 2  # too soon for another look: no sample taken
        clock["t"] = 1.0
        assert threads.update() == 1
        assert all(pool.num_threads == 1 for pool in threads._blas_pools())
        clock["t"] = 2.0
        assert threads.update() == 2
        assert all(pool.num_threads == 2 for pool in threads._blas_pools())
        monkeypatch.setenv("TGLITE_THREADS", "fixed")  # the switch: the policy is off
        assert threads.update() == 2
    finally:
        monkeypatch.delenv("TGLITE_NUM_THREADS")
        threads.reset()
    assert all(pool.num_threads == threads.limit() for pool in threads._blas_pools())  # restored


def test_the_sample_counts_our_own_cpu_time():
    if threads._sample() is None:
        pytest.skip("no /proc/stat here")
    before = threads._sample()
    t_end = before[0] + 0.05
    while threads.time.perf_counter() < t_end:  # spin: this process's CPU time must grow
        pass
    after = threads._sample()
    assert after[0] > before[0] and after[2] - before[2] > 0.02 and after[1] >= before[1]


def test_use_checks_its_argument():
    with pytest.raises(ValueError, match=r"threads.use: n must lie in \[1, "):
        threads.use(0)
