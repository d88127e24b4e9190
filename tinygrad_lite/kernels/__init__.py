"""Compiled kernels: one module per target, imported lazily, serving one registry.

    kernels.cpu    Numba `njit` kernels for the CPU (extra: `pip install -e ".[fast]"`)
    kernels.cuda   Numba `cuda.jit` kernels for NVIDIA GPUs, with launch wrappers that take CuPy
                   arrays (extra: `pip install -e ".[gpu]"`); under NUMBA_ENABLE_CUDASIM=1 they
                   run in Numba's CUDA simulator on NumPy arrays (slowly), which is how CI tests
                   them without a GPU.

How an op finds its kernel: `get_backend(x.device).kernel(name, x.dtype)` (backend.py) returns the
function, or None, and then the op runs its own xp code, the readable reference. The device's
Backend knows which module serves it; each module lists what it serves in `DTYPES` (kernel name
-> the dtypes it takes). A name means the same arguments and results on every device:

    gelu_forward(x) -> (x·Φ(x), Φ(x))                          Φ: the standard normal CDF
    layer_norm_forward(x, w, b, eps) -> (y, x̂, rstd)           over the last axis; rstd (..., 1)
    layer_norm_backward(g, x̂, rstd, w, want_gx) -> (dx or None, dw, db)
    softmax_forward(x) -> y                                    softmax over the last axis
    softmax_backward(y, g) -> dx                               from the forward's output y
    cross_entropy_forward(logits, target, ignore_index, label_smoothing) -> (loss, lse)
                                   logits (N, C), target (N,); loss and logsumexp per row
    cross_entropy_backward(logits, target, lse, grad_rows, ignore_index, label_smoothing) -> dlogits
    adam_update(p, g, m, v, *, lr, b1, b2, eps, step, weight_decay, decoupled) -> None (in place)
    sum_of_squares(a) -> float                                 Σ a², accumulated in float64
    index_add_rows(out, idx, values) -> None                   out[idx[i]] += values[i], in place

Adding a kernel for a device: write it in that device's module under one of these names (or add
a name here and a reference path in the op that asks for it), list it in the module's `DTYPES`,
and test it against the op's reference path. Adding a device's kernels: give its Backend a
`kernel_module` that returns such a module.

The engine never needs them: every op has a NumPy/CuPy reference path. Importing this package
imports nothing heavy; `load("cpu")` / `load("cuda")` import Numba on first use, through
`backend.load_numba`, the one place the engine loads Numba.
"""
from __future__ import annotations

import importlib
from types import ModuleType

_EXTRA = {"cpu": "fast", "cuda": "gpu"}


def load(target: str) -> ModuleType:
    """The kernels module for `target` ("cpu" or "cuda"); without Numba, an error naming the extra.

    The module itself, whatever TGLITE_NUMBA says: for tests, benchmarks and the GPU notebook. The
    engine's ops ask `get_backend(device).kernel(name, dtype)` instead.
    """
    from ..backend import load_numba

    if target not in _EXTRA:
        raise ValueError(f"kernels: unknown target {target!r}; choose 'cpu' or 'cuda'")
    load_numba(f"compiling the {target.upper()} kernels", _EXTRA[target])
    return importlib.import_module(f"{__name__}.{target}")
