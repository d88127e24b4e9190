"""Reductions. Their backward broadcasts the incoming gradient back over the reduced axes."""
from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

from ..backend import get_backend
from ..function import Function
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor
from .elementwise import where


def normalize_axis(axis: int | Sequence[int] | None, ndim: int, op: str) -> tuple[int, ...]:
    """None -> every axis; negative axes counted from the end; a clear error when out of range."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, one int in range: nothing to check
        return (axis % ndim,)
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

    def jvp(self, dx: Any) -> Any:
        # d(Σx) = Σdx (the reshape keeps or drops the reduced axes, as forward did)
        return dx.sum(axis=self.axes).reshape(self.result.shape)


class Max(Function):
    """Ties share the gradient evenly, so the rule matches the symmetric finite difference."""

    saves_output = True

    def forward(self, x: Tensor, axis: tuple[int, ...], keepdims: bool) -> Any:
        self.save_for_backward(x)
        self.axes = axis
        return x.data.max(axis=axis, keepdims=keepdims)

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved_tensors[0]
        kshape = keepdims_shape(x.shape, self.axes)
        is_max = x.data == self.output.data.reshape(kshape)
        share = is_max / is_max.sum(axis=self.axes, keepdims=True)
        return expand_reduced(g, x.shape, self.axes) * Tensor._make(share.astype(g.dtype), False, g.device)

    def jvp(self, dx: Any) -> Any:
        # d(max x) = the mean of dx over the positions that tie for the max (as backward shares g)
        x = self.inputs[0].data
        is_max = x == self.result.reshape(keepdims_shape(x.shape, self.axes))
        share = is_max / is_max.sum(axis=self.axes, keepdims=True)
        return (share * dx).sum(axis=self.axes).reshape(self.result.shape)


class LogSumExp(Function):
    """log Σ e^x, shifted by the max so nothing overflows. d/dx = softmax(x)."""

    saves_output = True

    def forward(self, x: Tensor, axis: tuple[int, ...], keepdims: bool) -> Any:
        xp = x.xp
        self.save_for_backward(x)
        self.axes = axis
        if x.data.size == 0:  # log of an empty sum is log 0 = -inf (PyTorch's answer too); max would raise
            out = xp.full(keepdims_shape(x.shape, axis), -xp.inf, dtype=x.dtype)
        else:
            m = x.data.max(axis=axis, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows stay -inf instead of NaN
            out = xp.log(xp.exp(x.data - m).sum(axis=axis, keepdims=True)) + m
        return out if keepdims else out.reshape([n for i, n in enumerate(out.shape) if i not in axis])

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved_tensors[0]
        kshape = keepdims_shape(x.shape, self.axes)
        return expand_reduced(g, x.shape, self.axes) * (x - self.output.reshape(kshape)).exp()

    def jvp(self, dx: Any) -> Any:
        # d(logsumexp x) = Σ softmax(x)·dx, with softmax(x) = e^(x - logsumexp x) as in backward
        x = self.inputs[0].data
        softmax = self.inputs[0].xp.exp(x - self.result.reshape(keepdims_shape(x.shape, self.axes)))
        return (softmax * dx).sum(axis=self.axes).reshape(self.result.shape)


def softmax_array(xp: Any, x: Any, axis: int, in_place: bool = False, masked: bool = False) -> Any:
    """e^(x - max) / Σ e^(x - max) along `axis` on a backend array: the math of `Softmax` and of the
    fused attention. in_place: overwrite x. masked: a row whose entries are all -inf (a query that
    may see no key) gives 0 instead of 0/0 = NaN."""
    row_max = x.max(axis=axis, keepdims=True)
    if masked:
        row_max[xp.isneginf(row_max)] = 0.0  # subtract 0 there, so exp gives 0 instead of exp(NaN)
    e = xp.subtract(x, row_max, out=x if in_place else None)
    xp.exp(e, out=e)
    total = e.sum(axis=axis, keepdims=True)
    if masked:
        total[total == 0.0] = 1.0  # the all-hidden rows stay 0
    e /= total
    return e


def log_softmax_array(xp: Any, x: Any, axis: int) -> Any:
    """x - logsumexp(x) along `axis` on a backend array, shifted by the max so nothing overflows:
    the math of `LogSoftmax` and of the fused cross-entropy."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """s = e^(x - max) / Σ e^(x - max).  Backward: s·(g - Σ g·s)  (the softmax Jacobian-vector product).

    Over the last axis, on a device with softmax kernels (the GPU's), forward is one compiled pass,
    and so is backward when it records no graph (create_graph=False); the code below is the reference.
    """

    saves_output = True
    backward_kernel = None

    def forward(self, x: Tensor, axis: int) -> Any:
        self.axis = axis
        if x.data.size == 0:  # nothing to normalize: an empty result, as in PyTorch (max would raise)
            return x.data.copy()
        if axis == x.ndim - 1:
            backend = get_backend(x.device)
            kernel = backend.kernel("softmax_forward", x.dtype)
            if kernel is not None:
                self.backward_kernel = backend.kernel("softmax_backward", x.dtype)
                return kernel(x.data)
        return softmax_array(x.xp, x.data, axis)

    def backward(self, g: Tensor) -> Tensor:
        s = self.output
        if self.backward_kernel is not None and g.dtype == s.dtype and not is_grad_enabled():
            return Tensor._make(self.backward_kernel(s.data, g.data), False, g.device)
        return s * (g - (g * s).sum(axis=self.axis, keepdims=True))

    def jvp(self, dx: Any) -> Any:
        s = self.result  # d(softmax) = s·(dx - Σ s·dx): the same symmetric matrix as backward
        return s * (dx - (s * dx).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """x - logsumexp(x).  Backward: g - softmax(x)·Σg."""

    saves_output = True

    def forward(self, x: Tensor, axis: int) -> Any:
        self.axis = axis
        if x.data.size == 0:  # an empty result, as softmax's
            return x.data.copy()
        return log_softmax_array(x.xp, x.data, axis)

    def backward(self, g: Tensor) -> Tensor:
        return g - self.output.exp() * g.sum(axis=self.axis, keepdims=True)

    def jvp(self, dx: Any) -> Any:
        softmax = self.inputs[0].xp.exp(self.result)  # d(log_softmax) = dx - Σ softmax·dx
        return dx - (softmax * dx).sum(axis=self.axis, keepdims=True)


def check_nonempty(op: str, shape: tuple[int, ...], axes: tuple[int, ...]) -> None:
    """max, min, argmax, argmin: an empty axis has no largest element, so reducing over one raises
    (PyTorch raises an IndexError too). A non-empty axis of a tensor empty elsewhere is fine: the
    result is empty, e.g. max over axis 0 of shape (2, 0) has shape (0,)."""
    if 0 in shape:
        for a in axes:
            if a < len(shape) and shape[a] == 0:
                raise IndexError(f"{op}: cannot reduce over axis {a} of size 0 (shape {shape}): an empty axis has "
                                 f"no {'largest' if 'max' in op else 'smallest'} element")


def max_min(x: Tensor, op: str, axes: tuple[int, ...], keepdims: bool) -> Tensor:
    """The values of max or min over `axes` (min(x) = -max(-x)); see Tensor.max for the forms."""
    check_nonempty(op, x.shape, axes)
    if op == "max":
        return Max.apply(x, axis=axes, keepdims=keepdims)
    return -Max.apply(-x, axis=axes, keepdims=keepdims)


def norm(x: Tensor, p: float | str, axes: tuple[int, ...], keepdims: bool) -> Tensor:
    """The vector p-norm (Σ|x|^p)^(1/p) over `axes`, composed from differentiable ops, as PyTorch's
    `norm` / `linalg.vector_norm`: p = inf (-inf) is the largest (smallest) |x|, p = 0 counts the
    non-zeros (a constant), "fro" is p = 2 (the Frobenius norm is the 2-norm of all entries)."""
    p = 2 if p == "fro" else p
    if isinstance(p, (str, bool)) or not isinstance(p, (int, float)):
        raise ValueError(f"norm: p must be a number, inf, -inf or 'fro' (vector norms), got {p!r}")
    if x.dtype.kind != "f":
        raise TypeError(f"norm: needs a floating-point tensor, got {x.dtype}; convert it first, e.g. x.double()")
    if p in (math.inf, -math.inf):
        return max_min(x.abs(), "max" if p > 0 else "min", axes, keepdims)
    if p == 0:
        return (x != 0).astype(x.dtype).sum(axis=axes, keepdims=keepdims)
    if p == 1:
        return x.abs().sum(axis=axes, keepdims=keepdims)
    total = (x * x if p == 2 else x.abs() ** p).sum(axis=axes, keepdims=keepdims)
    return root(total, p)


def root(total: Tensor, p: float) -> Tensor:
    """total ** (1/p) for total >= 0, with slope 0 where total is 0: the root's slope is infinite
    there (and 0·∞ = NaN in the chain rule), so norms of a zero vector and std of a constant row
    take PyTorch's subgradient 0, in reverse and in forward mode alike."""
    zero = total.data == 0
    if not zero.any():
        return total ** (1.0 / p)
    # Where total is 0, take the root of 1 instead and replace it by 0: no path carries a slope there.
    zero = Tensor._make(zero, False, total.device)
    return where(zero, 0.0, where(zero, 1.0, total) ** (1.0 / p))


def arg_reduce(x: Tensor, op: str, axis: int | None, keepdims: bool) -> Tensor:
    """argmax / argmin: integer indices, no gradient."""
    if axis is not None:
        axis = normalize_axis(axis, x.ndim, op)[0]
    check_nonempty(op, x.shape, tuple(range(x.ndim)) if axis is None else (axis,))
    out = getattr(x.xp, op)(x.data, axis=axis, keepdims=keepdims)
    return Tensor._make(x.xp.asarray(out, dtype="int64"), False, x.device)
