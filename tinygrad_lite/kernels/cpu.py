"""Numba CPU kernels (`njit`). Import through `tinygrad_lite.kernels.load("cpu")`, which sets up the
on-disk compile cache first and names the extra to install when Numba is missing.

Each kernel has a NumPy reference in the engine (the readable version, and the one used without
Numba); tests check that both agree and that gradients through either are right. The ops find
these through the CPU backend's registry (`DTYPES` at the end says which kernels serve which dtypes).
"""
from __future__ import annotations

import numpy as np
from numba import njit  # numba is already loaded (and its cache directory set) by kernels.load

# LLVM's fast-math flags minus "nnan" and "ninf": the compiler may reorder sums (so loops vectorize)
# but may not assume the data is finite, so NaN and Inf propagate as they do in NumPy (a NaN
# gradient must still reach clip_grad_norm_'s check and detect_anomaly).
_FAST = {"reassoc", "contract", "arcp", "nsz", "afn"}


# Serial on purpose. A `prange` version (each task owning a slice of the columns, so repeated
# indices never race) was measured 6-280x *slower* than this loop on GPT and word2vec shapes
# (benchmarks/scatter_add.py, docs/gpu.md): the scatter is well under a millisecond of memory traffic, less than the
# cost of waking a thread pool, and on a busy 2-core machine the pool's threads compete with the
# interpreter. One pass, in index order, with a contiguous inner loop that LLVM vectorizes.
@njit(cache=True, nogil=True)
def _index_add_rows(out: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    n_rows, n_cols = values.shape
    n_out = out.shape[0]
    for i in range(n_rows):
        r = idx[i]
        if r < 0:  # NumPy-style negative index (the forward pass already checked the range)
            r += n_out
        for c in range(n_cols):
            out[r, c] += values[i, c]


def index_add_rows(out: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    """out[idx[i], :] += values[i, :] for every i, in place; repeated indices accumulate.

    The same result as `np.add.at(out, (idx,), values)` for a 2-D `out`, a 1-D integer `idx` and
    `values` of shape (len(idx), out.shape[1]). Indices must already lie in [-len(out), len(out)).
    """
    if out.ndim != 2 or idx.ndim != 1 or values.shape != (idx.shape[0], out.shape[1]):
        raise ValueError(f"index_add_rows: shapes out {out.shape}, idx {idx.shape}, values {values.shape} "
                         f"do not fit out[idx] += values")
    _index_add_rows(out, idx, np.ascontiguousarray(values, dtype=out.dtype))


# ------------------------------------------------------------------ GELU (float32)
# erf(z) ≈ z·P(z²)/Q(z²), a rational interpolant with odd numerator (degree 9) and even
# denominator (degree 12), clamped at |z| = c = erfinv(1 - 2⁻²³) beyond which float32 erf is ±1.
# Coefficients from Eigen's `generic_fast_erf_float` (SpecialFunctionsImpl.h; Eigen documents it as
# accurate to 3 ulp in float32). Unlike the libm erf it has no branches and no exp, so LLVM
# vectorizes the loop (AVX-512 here). `error_model="numpy"` matters: with Numba's default
# ("python") every float division checks for zero to raise ZeroDivisionError, and that branch alone
# keeps LLVM from vectorizing (about 10x slower in a one-off A/B of this loop compiled both ways).
# `python benchmarks/cpu_kernels.py` measures this kernel against the SciPy-based NumPy path.
_F = np.float32  # Numba freezes module-level scalars as compile-time constants
_ERF_CLAMP, _INV_SQRT2, _HALF = _F(3.832506856900711), _F(0.7071067811865476), _F(0.5)
_P1, _P3, _P5, _P7, _P9 = _F(1.128379143519084), _F(0.18520832239976145), _F(0.050955695062380861), \
    _F(0.0034082910107109506), _F(0.00022905065861350646)
_Q0, _Q2, _Q4, _Q6, _Q8, _Q10, _Q12 = _F(1.0), _F(0.49746925110067538), _F(0.11098505178285362), \
    _F(0.014070470171167667), _F(0.0010179625278914885), _F(0.000023547966471313185), _F(-1.1791602954361697e-7)


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _gelu_forward_f32(x: np.ndarray, y: np.ndarray, cdf: np.ndarray) -> None:
    for i in range(x.size):
        xi = x[i]
        z = min(max(xi * _INV_SQRT2, -_ERF_CLAMP), _ERF_CLAMP)
        z2 = z * z
        num = z * (_P1 + z2 * (_P3 + z2 * (_P5 + z2 * (_P7 + z2 * _P9))))
        den = _Q0 + z2 * (_Q2 + z2 * (_Q4 + z2 * (_Q6 + z2 * (_Q8 + z2 * (_Q10 + z2 * _Q12)))))
        phi = _HALF + _HALF * (num / den)  # Φ(x) = (1 + erf(x/√2)) / 2
        cdf[i] = phi
        y[i] = xi * phi


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x·Φ(x), Φ(x)) for a float32 array in one pass; Φ is the standard normal CDF.

    Φ has an absolute error below 2e-7 (float32 rounding level); float64 callers use the exact erf.
    """
    if x.dtype != np.float32:
        raise ValueError(f"gelu_forward: the float32 kernel got {x.dtype}")
    flat = np.ascontiguousarray(x).reshape(-1)
    y, cdf = np.empty_like(flat), np.empty_like(flat)
    _gelu_forward_f32(flat, y, cdf)
    return y.reshape(x.shape), cdf.reshape(x.shape)


# ------------------------------------------------------------------ layer norm (rows)
# One pass per row instead of NumPy's ~5 (forward) and ~9 (backward) whole-array passes. Row sums
# are accumulated in float64 whatever the input dtype.
@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _layer_norm_forward(x, w, b, eps, y, xhat, rstd):  # noqa: ANN001, ANN202 - Numba infers the types
    rows, n = x.shape
    for r in range(rows):
        total = 0.0
        for j in range(n):
            total += x[r, j]
        mean = total / n
        sq = 0.0
        for j in range(n):
            d = x[r, j] - mean
            sq += d * d
        rs = 1.0 / np.sqrt(sq / n + eps)
        rstd[r] = rs
        for j in range(n):
            h = (x[r, j] - mean) * rs
            xhat[r, j] = h
            y[r, j] = h * w[j] + b[j]


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _layer_norm_backward(g, xhat, rstd, w, gx, gw, gb, want_gx):  # noqa: ANN001, ANN202
    rows, n = g.shape
    for r in range(rows):
        s1 = 0.0  # Σ_j ĝ_j, with ĝ = g·w the gradient reaching x̂
        s2 = 0.0  # Σ_j ĝ_j·x̂_j
        for j in range(n):
            gh = g[r, j] * w[j]
            s1 += gh
            s2 += gh * xhat[r, j]
            gw[j] += g[r, j] * xhat[r, j]
            gb[j] += g[r, j]
        if want_gx:
            m1, m2, rs = s1 / n, s2 / n, rstd[r]
            for j in range(n):
                gx[r, j] = rs * (g[r, j] * w[j] - m1 - xhat[r, j] * m2)


def _rows_of(name: str, a: np.ndarray) -> np.ndarray:
    if a.ndim < 1 or a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: expected a float32 or float64 array with a feature axis, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


def layer_norm_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, x̂, rstd) of layer norm over the last axis; rstd has shape x.shape[:-1] + (1,)."""
    rows = _rows_of("layer_norm_forward", x)
    y, xhat = np.empty_like(rows), np.empty_like(rows)
    rstd = np.empty(rows.shape[0], x.dtype)
    _layer_norm_forward(rows, w.astype(x.dtype, copy=False), b.astype(x.dtype, copy=False), eps, y, xhat, rstd)
    return y.reshape(x.shape), xhat.reshape(x.shape), rstd.reshape(x.shape[:-1] + (1,))


def layer_norm_backward(g: np.ndarray, xhat: np.ndarray, rstd: np.ndarray, w: np.ndarray, want_gx: bool = True
                        ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx or None, dw, db) of layer norm from the forward's x̂ and rstd and the output gradient g."""
    g2, xhat2 = _rows_of("layer_norm_backward", g), _rows_of("layer_norm_backward", xhat).astype(g.dtype, copy=False)
    gx = np.empty_like(g2)
    gw, gb = np.zeros(g2.shape[1], np.float64), np.zeros(g2.shape[1], np.float64)
    _layer_norm_backward(g2, xhat2, rstd.reshape(-1), w.astype(g.dtype, copy=False), gx, gw, gb, want_gx)
    return (gx.reshape(g.shape) if want_gx else None), gw.astype(g.dtype), gb.astype(g.dtype)


# ------------------------------------------------------------------ optimizer steps
# nn.Adam's update is about a dozen NumPy passes over each parameter (plus temporaries); this is
# one pass that reads p, g, m, v once and writes p, m, v once.
@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _adam_update(p, g, m, v, step_size, b1, b2, eps, bias2, decay, l2):  # noqa: ANN001, ANN202
    for i in range(p.size):
        gi = g[i] + l2 * p[i]  # Adam's L2 weight decay (l2 = 0 for AdamW)
        mi = b1 * m[i] + (1.0 - b1) * gi
        vi = b2 * v[i] + (1.0 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * decay - step_size * mi / (np.sqrt(vi / bias2) + eps)  # decay < 1: AdamW's


def adam_update(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, *, lr: float, b1: float, b2: float,
                eps: float, step: int, weight_decay: float, decoupled: bool) -> None:
    """One Adam/AdamW step in place on p, m and v (all C-contiguous, one dtype), as in nn.Adam.update."""
    if not (p.shape == g.shape == m.shape == v.shape and p.dtype == g.dtype == m.dtype == v.dtype
            and all(a.flags.c_contiguous for a in (p, g, m, v))):
        raise ValueError("adam_update: p, g, m and v must be C-contiguous arrays of one shape and dtype")
    decay, l2 = (1.0 - lr * weight_decay, 0.0) if decoupled else (1.0, weight_decay)
    _adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), lr / (1.0 - b1**step), b1, b2, eps,
                 1.0 - b2**step, decay, l2)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _sum_of_squares(a):  # noqa: ANN001, ANN202
    total = 0.0
    for i in range(a.size):
        x = np.float64(a[i])
        total += x * x
    return total


def sum_of_squares(a: np.ndarray) -> float:
    """Σ a², accumulated in float64 (for gradient-norm clipping), in one pass without temporaries."""
    return float(_sum_of_squares(np.ascontiguousarray(a).reshape(-1)))


# The registry: which kernels this module serves, for which dtypes (Backend.kernel reads it).
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
DTYPES: dict[str, tuple[np.dtype, ...]] = {
    "gelu_forward": (_F32,),  # float64 keeps SciPy's exact erf: the gradient checks run in float64
    "layer_norm_forward": (_F32, _F64),
    "layer_norm_backward": (_F32, _F64),
    "adam_update": (_F32, _F64),
    "sum_of_squares": (_F32, _F64),
    "index_add_rows": (_F32, _F64),
}
