"""Matrix multiplication, with NumPy's rules: 1-D operands are promoted to matrices and the
batch dimensions broadcast.  For C = A @ B:  dA = dC @ Bᵀ,  dB = Aᵀ @ dC  (summed over broadcast
batch dimensions by `unbroadcast`)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..function import Function, tangent_sum
from ..tensor import Tensor
from .broadcast import unbroadcast


class MatMul(Function):
    """Both operands have at least 2 dimensions (`matmul` below handles 1-D ones)."""

    def forward(self, a: Tensor, b: Tensor) -> Any:
        self.save_for_backward(a, b)
        return a.data @ b.data

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.saved_tensors
        ga = unbroadcast(g @ b.transpose(-1, -2), a.shape) if a.requires_grad else None
        gb = unbroadcast(a.transpose(-1, -2) @ g, b.shape) if b.requires_grad else None
        return ga, gb

    def jvp(self, da: Any, db: Any) -> Any:
        a, b = self.inputs  # d(a @ b) = da @ b + a @ db (the product rule; batch axes broadcast as in forward)
        return tangent_sum(None if da is None else da @ b.data, None if db is None else a.data @ db)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    a2 = a.unsqueeze(0) if a.ndim == 1 else a  # (n,) -> (1, n): a row vector
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b  # (n,) -> (n, 1): a column vector
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
            f"{a2.shape[-1]} (last axis of the first) != {b2.shape[-2]} (second-to-last of the second)"
        )
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])  # shapes only (CuPy has no broadcast_shapes)
    except ValueError as e:
        raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from e
    out = MatMul.apply(a2, b2)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out
