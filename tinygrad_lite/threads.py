"""How many threads the engine uses: the thread policy.

A second thread speeds up a big matrix product or a compiled kernel only while a second core is
free. Beside one busy program on a 2-core machine (a browser, a second notebook, a test run), the
second thread keeps waiting for a core that is not free, and a GPT training step with two threads
took much longer than with one (docs/benchmarks.md, "Threads"). So, once per optimizer step
(`nn.Optimizer.step` calls `update()`) and at most every `INTERVAL` seconds, the policy looks at
how much CPU time the whole machine used since its last look (/proc/stat), takes away what this
process used itself, and runs as many threads as that leaves cores idle: at least 1, at most
`limit()`. The BLAS's thread pool follows it (through threadpoolctl, when installed); the
compiled kernels (kernels/cpu.py) run on one thread.

    limit()    the ceiling: the BLAS's thread count when the engine first looked (OPENBLAS_NUM_THREADS
               or OMP_NUM_THREADS when set, else one per core), or TGLITE_NUM_THREADS
    current()  the threads in use now
    update()   the per-step look

TGLITE_THREADS=fixed turns the policy off: always limit() threads, as NumPy and Numba do by
themselves. A run is then bit-reproducible. With the policy on and limit() > 1 it may not be, in
the last bits: OpenBLAS rounds some products differently with two threads than with one.
"""
from __future__ import annotations

import os
import time
from typing import Any

INTERVAL = 0.2  # seconds between looks: /proc/stat counts in 10 ms ticks, so a look sees >= 20 per core

_state: dict[str, Any] = {"current": None, "limit": None, "blas": None, "last": None}


def policy_enabled() -> bool:
    """False when TGLITE_THREADS=fixed (read on every call, so a test or benchmark can switch it)."""
    return os.environ.get("TGLITE_THREADS", "auto").strip().lower() != "fixed"


def _blas_pools() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded now (NumPy's OpenBLAS), or [] without it."""
    if _state["blas"] is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _state["blas"] = []
        else:
            import numpy  # noqa: F401 - loads NumPy's BLAS, so there is a library to find

            _state["blas"] = ThreadpoolController().select(user_api="blas").lib_controllers
    return _state["blas"]


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def limit() -> int:
    """The most threads the engine uses (see the module docstring)."""
    if _state["limit"] is None:
        pools = _blas_pools()
        env = os.environ.get("TGLITE_NUM_THREADS") or (
            None if pools else os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"))
        n = int(env) if env else max((p.num_threads for p in pools), default=cores())
        if n < 1:
            raise ValueError(f"threads.limit: the thread count must be >= 1, got {n}")
        _state["limit"] = n
    return _state["limit"]


def current() -> int:
    """The threads the engine runs with now: limit() until the policy decides otherwise."""
    if _state["current"] is None:
        _state["current"] = limit()
    return _state["current"] if policy_enabled() else limit()


def use(n: int) -> None:
    """Run with n threads from now on (1 <= n <= limit()): the BLAS's pool and the kernels."""
    if not 1 <= n <= limit():
        raise ValueError(f"threads.use: n must lie in [1, {limit()}], got {n}")
    if n != _state["current"]:
        for pool in _blas_pools():  # only on a change: it is a call into the library each time
            pool.set_num_threads(n)
        _state["current"] = n


def cores_used_by_others(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """How many cores other processes kept busy between two samples (wall s, machine busy s, own CPU s)."""
    wall = after[0] - before[0]
    if wall <= 0:
        return 0.0
    return max(0.0, ((after[1] - before[1]) - (after[2] - before[2])) / wall)


def threads_for(others: float, n_cores: int, ceiling: int) -> int:
    """Threads to run when other processes keep `others` cores busy: the idle cores, rounded
    (a core counts as idle when others use less than half of it), at least 1, at most `ceiling`."""
    return max(1, min(ceiling, int(n_cores - others + 0.5)))


def _sample() -> tuple[float, float, float] | None:
    """(wall seconds, CPU seconds the whole machine was busy, CPU seconds this process used), or None
    where /proc/stat does not exist (not Linux): then the policy keeps limit() threads."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait; steal is
    # time another virtual machine took from ours, so it counts as busy too.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return time.perf_counter(), busy / os.sysconf("SC_CLK_TCK"), time.process_time()


def update() -> int:
    """The per-step look: if INTERVAL has passed since the last one, run with as many threads as
    cores were idle since then. Returns the threads in use."""
    if not policy_enabled() or limit() == 1:
        return current()
    now = time.perf_counter()
    last = _state["last"]
    if last is not None and now - last[0] < INTERVAL:
        return current()
    sample = _sample()
    if sample is None:
        return current()
    if last is not None:
        use(threads_for(cores_used_by_others(last, sample), os.cpu_count() or 1, limit()))
    _state["last"] = sample
    return current()


def reset() -> None:
    """Forget what the policy saw and decided, and give the BLAS limit() threads again (for tests)."""
    if _state["current"] is not None and _state["limit"] is not None:
        for pool in _blas_pools():
            pool.set_num_threads(_state["limit"])
    _state.update(current=None, limit=None, last=None)
