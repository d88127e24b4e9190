"""Initializations that start the adapter in the base weight's most useful subspace.

Both rewrite the frozen base weight as a residual so that the adapted layer's *initial output is
unchanged*: W0 = W_res + s·B·A exactly (up to rounding), and training then moves B and A.

  PiSSA (Meng et al. 2024): the top-r singular triplets of W0 = U·S·Vᵀ,
        B = U_r·√S_r / √s,  A = √S_r·V_rᵀ / √s,  W_res = W0 - s·B·A  (the small singular values).
        The adapter starts on the principal directions, so it trains the part that matters most.
  OLoRA (Büyükakyüz 2024): a QR decomposition W0 = Q·R, B = Q[:, :r] / √s, A = R[:r] / √s,
        W_res = W0 - s·B·A: orthonormal columns in B, which the paper reports speeds convergence.

The residual lives in the base layer, so turning the adapter off (disable_adapter) gives the
residual model, not the original one; merge() gives back the full weight.
"""
from __future__ import annotations

import math

import numpy as np

from .adapter import LoRAAdapter


def _factors_pissa(w0: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(w0.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:r])
    return u[:, :r] * root, root[:, None] * vt[:r]  # B (out, r), A (r, in)


def _factors_olora(w0: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    q, rr = np.linalg.qr(w0.astype(np.float64))  # q (out, k), rr (k, in), k = min(out, in)
    return q[:, :r], rr[:r]


def init_from_weight(adapter: LoRAAdapter, weight: np.ndarray, how: str) -> np.ndarray:
    """Set adapter.A, adapter.B from `weight` (PiSSA: how="pissa", OLoRA: how="olora") and return
    the residual weight W0 - s·B·A that the base layer must hold from now on."""
    if adapter.r > min(weight.shape):
        raise ValueError(f"{how}: rank r={adapter.r} exceeds min{weight.shape} = {min(weight.shape)}")
    factors = {"pissa": _factors_pissa, "olora": _factors_olora}
    if how not in factors:
        raise ValueError(f"unknown init {how!r}; choose 'pissa' or 'olora'")
    b, a = factors[how](weight, adapter.r)
    root_s = math.sqrt(adapter.scale)  # the forward multiplies by s: divide it out of both factors
    adapter.A.data[...] = a / root_s
    adapter.B.data[...] = b / root_s
    delta = adapter.scale * (adapter.B.data.astype(np.float64) @ adapter.A.data.astype(np.float64))
    return (weight.astype(np.float64) - delta).astype(weight.dtype)
