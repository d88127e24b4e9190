"""The one home of the broadcasting rule for gradients.

If forward broadcast an input of shape (3, 1) to (4, 3, 5), each input element was used 4·5
times, so its gradient is the *sum* of the output gradients over the broadcast positions:
sum over the new leading axes and over the axes where the input had size 1.
"""
from __future__ import annotations

from ..tensor import Tensor


def unbroadcast(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum `grad` down to `shape` (the inverse of NumPy broadcasting, for gradients)."""
    if grad.data.shape == shape:  # nothing was broadcast (the common case, checked first)
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad.reshape(shape)
