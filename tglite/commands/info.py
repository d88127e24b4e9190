"""`tglite info`: versions, and which compute backends work on this machine.

Each backend is checked by actually using it (a tiny computation or kernel), not just by
importing it: an importable Numba whose LLVM is broken, or a CuPy without a GPU, is not usable.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass


@dataclass
class Check:
    name: str
    status: str  # "usable", "unusable" or "not installed"
    detail: str


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "info",
        help="show versions and which backends (NumPy, Numba, CuPy, CUDA simulator) work here",
        description="Print the versions of Python, NumPy, tinygrad_lite and the optional packages, "
        "then check each compute backend by running something tiny on it: NumPy, Numba on the CPU "
        "(compiles a small njit function), CuPy on a GPU, and the Numba CUDA simulator (runs a small "
        "kernel in a subprocess with NUMBA_ENABLE_CUDASIM=1).",
    )
    parser.add_argument("--json", action="store_true", help="print the same facts as JSON")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                        help="time limit for the CUDA-simulator subprocess (default: %(default)s)")
    parser.set_defaults(handler=run)
    return parser


# ------------------------------------------------------------------ versions
def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cupy_version() -> str | None:
    # CuPy is published as cupy-cuda12x, cupy-cuda13x, ... : ask the importable module instead,
    # but only when it is there: importing cupy is slow and never needed to say "not installed".
    if importlib.util.find_spec("cupy") is None:
        return None
    try:
        import cupy

        return str(cupy.__version__)
    except Exception as e:  # noqa: BLE001 - a broken install is worth reporting, not crashing on
        return f"installed but fails to import ({type(e).__name__}: {e})"


def versions() -> dict[str, str | None]:
    import numpy as np

    import tinygrad_lite

    return {
        "python": f"{platform.python_version()} ({platform.python_implementation()}, {sys.platform}, "
        f"{platform.machine()})",
        "tinygrad_lite": f"{tinygrad_lite.__version__} ({os.path.dirname(tinygrad_lite.__file__)})",
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "numba": _version("numba"),
        "llvmlite": _version("llvmlite"),
        "cupy": _cupy_version(),
        "matplotlib": _version("matplotlib"),
        "tqdm": _version("tqdm"),
    }


# ------------------------------------------------------------------ backends
def check_numpy() -> Check:
    import tinygrad_lite as tg

    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    (x * x).sum().backward()
    ok = x.grad is not None and x.grad.tolist() == [2.0, 4.0, 6.0]
    return Check("NumPy (device 'cpu')", "usable" if ok else "unusable",
                 "forward + backward of sum(x*x)" + ("" if ok else ": WRONG result"))


def check_numba_cpu() -> Check:
    from tinygrad_lite import backend
    from tinygrad_lite.extras import install_command

    name = "Numba CPU (njit)"
    if not backend.numba_available():
        return Check(name, "not installed", f"optional: {install_command('fast')}")
    try:
        import numpy as np

        njit = backend.load_numba("the Numba check").njit  # the engine's loader (sets the compile cache)

        def axpy(a: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return a * x + y

        t0 = time.perf_counter()
        out = njit(cache=False)(axpy)(2.0, np.arange(4.0), np.ones(4))
        secs = time.perf_counter() - t0
        if not np.array_equal(out, 2.0 * np.arange(4.0) + 1.0):
            return Check(name, "unusable", f"compiled kernel gave a wrong result: {out}")
        return Check(name, "usable", f"compiled and ran a test kernel in {secs:.2f} s")
    except Exception as e:  # noqa: BLE001 - any failure means "not usable"; say why
        return Check(name, "unusable", f"{type(e).__name__}: {e}")


def check_cupy() -> Check:
    from tinygrad_lite.extras import install_command

    name = "CuPy (CUDA GPU)"
    if importlib.util.find_spec("cupy") is None:
        return Check(name, "not installed", f"optional: {install_command('gpu')} on a machine with an NVIDIA GPU")
    try:
        import cupy

        if not cupy.cuda.is_available():
            return Check(name, "unusable", "CuPy is installed but finds no CUDA device")
        n = cupy.cuda.runtime.getDeviceCount()
        props = cupy.cuda.runtime.getDeviceProperties(0)
        gpu = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        total = float((cupy.arange(4, dtype=cupy.float64) * 2).sum())
        if total != 12.0:
            return Check(name, "unusable", f"a test computation on the GPU gave {total}, not 12")
        return Check(name, "usable", f"{n} device(s); device 0: {gpu}")
    except Exception as e:  # noqa: BLE001
        return Check(name, "unusable", f"{type(e).__name__}: {e}")


_CUDASIM_PROGRAM = """
import numpy as np
from numba import cuda

@cuda.jit
def add_one(a):
    i = cuda.grid(1)
    if i < a.size:
        a[i] += 1.0

a = np.arange(8.0)
add_one[2, 4](a)
assert np.array_equal(a, np.arange(8.0) + 1.0), a
print("ok")
"""


def check_cuda_simulator(timeout: float) -> Check:
    from tinygrad_lite import backend
    from tinygrad_lite.extras import install_command

    name = "Numba CUDA simulator"
    if not backend.numba_available():
        return Check(name, "not installed", f"needs numba: {install_command('fast')}")
    # The simulator is chosen when numba is first imported, so it needs a fresh process.
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    t0 = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", _CUDASIM_PROGRAM], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Check(name, "unusable", f"the test kernel did not finish within {timeout:g} s")
    secs = time.perf_counter() - t0
    if done.returncode != 0 or done.stdout.strip() != "ok":
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Check(name, "unusable", f"the test kernel failed: {last}")
    return Check(name, "usable", f"ran a test kernel with NUMBA_ENABLE_CUDASIM=1 in {secs:.1f} s")


def cpu_fast_paths(numba_check: Check) -> dict[str, str]:
    """What the engine's CPU backend does here: compiled kernels on or off, the allocator setting."""
    from tinygrad_lite import allocator, backend

    if not backend.USE_NUMBA:
        kernels = "off (TGLITE_NUMBA=0): every op takes its NumPy reference path"
    elif numba_check.status == "usable":
        kernels = "on: fused ops, the embedding backward and AdamW use the Numba kernels (tinygrad_lite/kernels/cpu.py)"
    else:
        kernels = f"off (Numba {numba_check.status}): every op takes its NumPy reference path"
    kept = allocator.keep_freed_memory()
    memory = ("freed memory kept for reuse (glibc mallopt; TGLITE_KEEP_FREED_MEMORY=0 turns it off)" if kept
              else "the C library's defaults (TGLITE_KEEP_FREED_MEMORY=0, or not glibc)")
    return {"kernels": kernels, "allocator": memory}


def run(args: argparse.Namespace) -> int:
    import tinygrad_lite as tg

    facts = versions()
    checks = [check_numpy(), check_numba_cpu(), check_cupy(), check_cuda_simulator(args.timeout)]
    why_not = tg.cuda_unavailable_reason()  # the engine's own answer: what device="cuda" would do
    gpu_mode = "GPU: device 'cuda' is usable" if why_not is None else f"CPU only: device 'cuda' unavailable ({why_not})"
    fast_paths = cpu_fast_paths(checks[1])
    if args.json:
        print(json.dumps({"versions": facts, "devices": tg.available_devices(), "gpu_mode": gpu_mode,
                          "cpu_fast_paths": fast_paths, "backends": [asdict(c) for c in checks]}, indent=2))
    else:
        print("Versions")
        for key, value in facts.items():
            print(f"  {key:<14} {value if value is not None else 'not installed'}")
        print(f"\nDevices registered in the engine: {', '.join(tg.available_devices())}")
        print(f"GPU mode: {gpu_mode}")
        print(f"CPU kernels: {fast_paths['kernels']}")
        print(f"CPU allocator: {fast_paths['allocator']}")
        print("\nBackends")
        for c in checks:
            print(f"  {c.name:<22} {c.status:<14} {c.detail}")
        if facts["scipy"] is None:
            print("\nNote: without scipy, GELU's exact erf falls back to math.erf per element (slow).")
    return 0 if checks[0].status == "usable" else 1
