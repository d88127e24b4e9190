"""Reductions. Their backward broadcasts the incoming gradient back over the reduced axes."""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from ..function import Function
from ..tensor import Tensor


def normalize_axis(axis: int | Sequence[int] | None, ndim: int, op: str) -> tuple[int, ...]:
    """None -> every axis; negative axes counted from the end; a clear error when out of range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if _as_int(axis) is not None else tuple(axis)
    out = []
    for a in axes:
        i = _as_int(a)
        if i is None or not -ndim <= i < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(i % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def _as_int(a: Any) -> int | None:
    """An int or a NumPy integer (axes often come out of NumPy computations) as int; else None."""
    try:
        return operator.index(a)
    except TypeError:
        return None


def keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def expand_reduced(g: Tensor, shape: tuple[int, ...], axes: tuple[int, ...]) -> Tensor:
    """Gradient of a reduction: put the reduced axes back (size 1) and broadcast to `shape`."""
    return g.reshape(keepdims_shape(shape, axes)).expand(shape)


class Sum(Function):
    def forward(self, x: Tensor, axis: tuple[int, ...], keepdims: bool) -> Any:
        self.shape, self.axes = x.shape, axis
        return x.data.sum(axis=axis, keepdims=keepdims)

    def backward(self, g: Tensor) -> Tensor:
        return expand_reduced(g, self.shape, self.axes)


class Max(Function):
    """Ties share the gradient evenly, so the rule matches the symmetric finite difference."""

    saves_output = True

    def forward(self, x: Tensor, axis: tuple[int, ...], keepdims: bool) -> Any:
        if x.data.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
        self.save_for_backward(x)
        self.axes = axis
        return x.data.max(axis=axis, keepdims=keepdims)

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved_tensors[0]
        kshape = keepdims_shape(x.shape, self.axes)
        is_max = x.data == self.output.data.reshape(kshape)
        share = is_max / is_max.sum(axis=self.axes, keepdims=True)
        return expand_reduced(g, x.shape, self.axes) * Tensor._make(share.astype(g.dtype), False, g.device)


class LogSumExp(Function):
    """log Σ e^x, shifted by the max so nothing overflows. d/dx = softmax(x)."""

    saves_output = True

    def forward(self, x: Tensor, axis: tuple[int, ...], keepdims: bool) -> Any:
        xp = x.xp
        self.save_for_backward(x)
        self.axes = axis
        m = x.data.max(axis=axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows stay -inf instead of NaN
        out = xp.log(xp.exp(x.data - m).sum(axis=axis, keepdims=True)) + m
        return out if keepdims else out.reshape([n for i, n in enumerate(out.shape) if i not in axis])

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved_tensors[0]
        kshape = keepdims_shape(x.shape, self.axes)
        return expand_reduced(g, x.shape, self.axes) * (x - self.output.reshape(kshape)).exp()


class Softmax(Function):
    """s = e^(x - max) / Σ e^(x - max).  Backward: s·(g - Σ g·s)  (the softmax Jacobian-vector product)."""

    saves_output = True

    def forward(self, x: Tensor, axis: int) -> Any:
        self.axis = axis
        e = x.xp.exp(x.data - x.data.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def backward(self, g: Tensor) -> Tensor:
        s = self.output
        return s * (g - (g * s).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """x - logsumexp(x).  Backward: g - softmax(x)·Σg."""

    saves_output = True

    def forward(self, x: Tensor, axis: int) -> Any:
        self.axis = axis
        shifted = x.data - x.data.max(axis=axis, keepdims=True)
        return shifted - x.xp.log(x.xp.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(self, g: Tensor) -> Tensor:
        return g - self.output.exp() * g.sum(axis=self.axis, keepdims=True)


def arg_reduce(x: Tensor, op: str, axis: int | None, keepdims: bool) -> Tensor:
    """argmax / argmin: integer indices, no gradient."""
    if x.data.size == 0:
        raise ValueError(f"{op}: empty tensor of shape {x.shape}")
    if axis is not None:
        axis = normalize_axis(axis, x.ndim, op)[0]
    out = getattr(x.xp, op)(x.data, axis=axis, keepdims=keepdims)
    return Tensor._make(x.xp.asarray(out, dtype="int64"), False, x.device)
