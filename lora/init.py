"""Initializations that start the adapter in the base weight's most useful subspace.

Both rewrite the frozen base weight as a residual so that the adapted layer's *initial output is
unchanged*: W_res = W0 - s·B·A, so W_res + s·B·A = W0 exactly (up to rounding), and training then
moves B and A. Both follow PEFT's `pissa_init` / `olora_init`, so A and B are the numbers a PEFT
user gets for the same weight, r and α.

  PiSSA (Meng et al. 2024): the top-r singular triplets of W0 = U·S·Vᵀ,
        B = U_r·√S_r / √s,  A = √S_r·V_rᵀ / √s,  so s·B·A = U_r·S_r·V_rᵀ and the residual holds the
        small singular values. The adapter starts on the principal directions, so it trains the
        part that matters most.
  OLoRA (Büyükakyüz 2024): a QR decomposition W0 = Q·R, B = Q_r = Q[:, :r], A = R_r = R[:r],
        W_res = W0 - s·Q_r·R_r. The factors are *not* divided by √s: B keeps orthonormal columns
        (BᵀB = I), which is the point of the method (the paper reports faster convergence). With
        s ≠ 1 the residual is therefore not "the rest" of W0 but W0 minus s times its first r QR
        terms; the output at the start is still exactly the base model's.

The residual lives in the base layer, so turning the adapter off (disable_adapter) gives the
residual model, not the original one; merge() gives back the full weight.
"""
from __future__ import annotations

import numpy as np

import tinygrad_lite as tg

from .adapter import LoRAAdapter


def _factors_pissa(w0: np.ndarray, r: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    u, sv, vt = np.linalg.svd(w0.astype(np.float64), full_matrices=False)
    root = np.sqrt(sv[:r] / scale)  # the forward multiplies by s: divide it out of both factors
    return u[:, :r] * root, root[:, None] * vt[:r]  # B (out, r), A (r, in)


def _factors_olora(w0: np.ndarray, r: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    q, rr = np.linalg.qr(w0.astype(np.float64))  # q (out, k), rr (k, in), k = min(out, in)
    return q[:, :r], rr[:r]  # B = Q_r (orthonormal columns), A = R_r; s stays in the residual


def init_from_weight(adapter: LoRAAdapter, weight: np.ndarray, how: str) -> np.ndarray:
    """Set adapter.A, adapter.B from `weight` (PiSSA: how="pissa", OLoRA: how="olora") and return
    the residual weight W0 - s·B·A that the base layer must hold from now on."""
    if adapter.r > min(weight.shape):
        raise ValueError(f"{how}: rank r={adapter.r} exceeds min{weight.shape} = {min(weight.shape)}")
    factors = {"pissa": _factors_pissa, "olora": _factors_olora}
    if how not in factors:
        raise ValueError(f"unknown init {how!r}; choose 'pissa' or 'olora'")
    b, a = factors[how](weight, adapter.r, adapter.scale)
    with tg.no_grad():
        adapter.A.copy_(a)
        adapter.B.copy_(b)
    delta = adapter.scale * (adapter.B.data.astype(np.float64) @ adapter.A.data.astype(np.float64))
    return (weight.astype(np.float64) - delta).astype(weight.dtype)
