"""Compile every Numba CUDA kernel to PTX for Hopper (sm_90) when the CUDA compiler (NVVM) is
installed: catches typing errors in kernel code (which the simulator, running plain Python, cannot)
without needing a GPU. Skipped where NVVM is missing, and in the simulator process."""
from __future__ import annotations

import os

import pytest

from tinygrad_lite import backend, kernels


def _nvvm_missing() -> str | None:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "the CUDA simulator has no compiler"
    if not backend.numba_available():
        return "numba not installed"
    try:
        from numba import cuda, float32

        def probe(a):  # noqa: ANN001, ANN202 - the smallest kernel there is
            a[0] = 1.0

        cuda.compile_ptx(probe, (float32[:],), cc=(9, 0))
    except Exception as e:  # noqa: BLE001 - any failure here means "no CUDA libraries": say which
        first = (str(e).strip().splitlines() or [""])[0]
        return f"cannot compile CUDA here ({type(e).__name__}: {first})"
    return None


@pytest.mark.gpu  # selected by benchmarks/gpu.py's `-m gpu` run too; needs only NVVM, not a device
@pytest.mark.skipif(_nvvm_missing() is not None, reason=str(_nvvm_missing()))
def test_kernels_compile_to_ptx_for_sm90(monkeypatch):
    import types

    import numba.cuda.dispatcher
    from numba import cuda, float32, int64

    if not cuda.is_available():
        # Compiling a kernel that calls a device function asks the *current device* for its compute
        # capability, which needs the driver. Without one, answer "sm_90" ourselves: PTX generation
        # itself needs only NVVM. (A Numba internal: if it moves, this raises and the test fails loudly.)
        monkeypatch.setattr(numba.cuda.dispatcher, "get_current_device",
                            lambda: types.SimpleNamespace(compute_capability=(9, 0)))

    from numba import boolean

    from embeddings import word2vec_fast

    K, W = kernels.load("cuda"), word2vec_fast.cuda_kernels()
    f2, f1, i1, i2, f = float32[:, :], float32[:], int64[:], int64[:, :], float32
    sigs = {"softmax_fwd": (f2, f2), "softmax_bwd": (f2, f2, f2),
            "layer_norm_fwd": (f2, f1, f1, f, f2, f2, f1), "layer_norm_bwd": (f2, f2, f1, f1, boolean, f2, f1, f1),
            "xent_fwd": (f2, i1, int64, f, f1, f1), "xent_bwd": (f2, i1, int64, f, f1, f1, f2),
            "gelu_fwd": (f1, f1, f1), "adam_update": (f1, f1, f1, f1, f, f, f, f, f, f, f),
            "sgns_update": (f2, f2, i1, i1, i2, f, f1)}
    kernels_by_name = K.KERNELS | W.KERNELS
    assert set(sigs) == set(kernels_by_name)
    for name, kernel in kernels_by_name.items():
        ptx, _ = cuda.compile_ptx(kernel.py_func, sigs[name], cc=(9, 0))
        assert ".target sm_90" in ptx, name
