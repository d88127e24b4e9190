"""Shape and movement ops: they move or copy values without arithmetic, so each backward
applies the inverse movement to the gradient (reshape back, permute back, sum a broadcast, ...).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..backend import get_backend
from ..function import Function
from ..spelling import spelled
from ..tensor import Tensor
from .broadcast import unbroadcast
from .reduce import normalize_axis


# ----------------------------------------------------------------------- reshape
class Reshape(Function):
    may_return_view = True  # views of the input (basic indexing, reshape, permute): see Function.apply

    def forward(self, x: Tensor, shape: tuple[int, ...]) -> Any:
        self.in_shape = x.shape
        return x.data.reshape(shape)

    def backward(self, g: Tensor) -> Tensor:
        return g.reshape(self.in_shape)

    def jvp(self, dx: Any) -> Any:
        return dx.reshape(self.result.shape)  # a movement moves the tangent the same way


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    shape = tuple(int(n) for n in shape)
    if shape == x.shape:
        return x
    known = math.prod(n for n in shape if n != -1)
    bad = shape.count(-1) > 1 or any(n < -1 for n in shape)
    if not bad:
        if -1 in shape:
            bad = known == 0 or x.data.size % known != 0
        else:
            bad = known != x.data.size
    if bad:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}")
    return Reshape.apply(x, shape=shape)


def squeeze(x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
    if axis is None:
        return reshape(x, [n for n in x.shape if n != 1])
    axes = normalize_axis(axis, x.ndim, "squeeze")
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1 (shape {x.shape})")
    return reshape(x, [n for i, n in enumerate(x.shape) if i not in axes])


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"unsqueeze: axis {axis} is out of range for a tensor with {x.ndim} dimensions")
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def flatten(x: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, (1,))
    s = normalize_axis(start_axis, x.ndim, "flatten")[0]
    e = normalize_axis(end_axis, x.ndim, "flatten")[0]
    if s > e:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
    return reshape(x, x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


def repeat(x: Tensor, repeats: Sequence[int]) -> Tensor:
    """PyTorch's repeat (NumPy's tile): x copied repeats[i] times along axis i; extra leading counts
    add new axes. Built from a reshape, an expand and a reshape, so Expand's backward (a sum over the
    copies) is its gradient: (a, b) -> (1, a, 1, b) -> (r0, a, r1, b) -> (r0·a, r1·b)."""
    repeats = tuple(int(r) for r in repeats)
    if len(repeats) < x.ndim or any(r < 0 for r in repeats):
        raise ValueError(f"repeat: needs a count >= 0 for each of the {x.ndim} axes of shape {x.shape} (extra "
                         f"leading counts add axes), got {repeats}")
    shape = (1,) * (len(repeats) - x.ndim) + x.shape
    spaced = [n for s in shape for n in (1, s)]
    copies = [n for r, s in zip(repeats, shape) for n in (r, s)]
    return reshape(broadcast_to(reshape(x, spaced), copies), [r * s for r, s in zip(repeats, shape)])


# ----------------------------------------------------------------------- permute
class Permute(Function):
    may_return_view = True  # views of the input (basic indexing, reshape, permute): see Function.apply

    def forward(self, x: Tensor, axes: tuple[int, ...]) -> Any:
        self.axes = axes
        return x.data.transpose(axes)

    def backward(self, g: Tensor) -> Tensor:
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return g.permute(tuple(inverse))

    def jvp(self, dx: Any) -> Any:
        return dx.transpose(self.axes)


def permute(x: Tensor, axes: Sequence[int]) -> Tensor:
    axes = tuple(axes)
    # Range first: a % ndim alone would quietly accept an axis like 5 on a 3-d tensor as axis 2.
    in_range = all(-x.ndim <= a < x.ndim for a in axes)
    if len(axes) != x.ndim or not in_range or sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
        raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} axes of shape {x.shape}")
    axes = tuple(a % x.ndim for a in axes)
    if axes == tuple(range(x.ndim)):
        return x
    return Permute.apply(x, axes=axes)


def swapaxes(x: Tensor, a: int, b: int) -> Tensor:
    a, b = (normalize_axis(a, x.ndim, "transpose")[0], normalize_axis(b, x.ndim, "transpose")[0])
    if a == b:
        return x
    axes = list(range(x.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return Permute.apply(x, axes=tuple(axes))  # a permutation by construction: permute's checks would pass


# ------------------------------------------------------------------------ expand
class Expand(Function):
    """Broadcast without copying; every copy of an element sends its gradient back: a sum."""

    may_return_view = True  # a broadcast view of the input (see Function.apply)

    def forward(self, x: Tensor, shape: tuple[int, ...]) -> Any:
        self.in_shape = x.shape
        return x.xp.broadcast_to(x.data, shape)

    def backward(self, g: Tensor) -> Tensor:
        return unbroadcast(g, self.in_shape)

    def jvp(self, dx: Any) -> Any:
        return self.inputs[0].xp.broadcast_to(dx, self.result.shape)  # every copy moves with its original


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    shape = tuple(int(n) for n in shape)
    lead = len(shape) - x.ndim
    shape = tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(shape))
    if shape == x.shape:
        return x
    ok = lead >= 0 and all(n >= 0 for n in shape[:lead])  # a -1 only keeps an existing size
    ok = ok and all(a == b or a == 1 for a, b in zip(x.shape, shape[lead:]))
    if not ok:
        raise ValueError(f"expand: cannot broadcast shape {x.shape} to {shape}")
    return Expand.apply(x, shape=shape)


# ---------------------------------------------------------------- concat / stack
class Concatenate(Function):
    def forward(self, *xs: Tensor, axis: int) -> Any:
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        return xs[0].xp.concatenate([x.data for x in xs], axis=axis)

    def backward(self, g: Tensor) -> tuple[Tensor, ...]:
        return tuple(split(g, self.sizes, self.axis))

    def jvp(self, *dxs: Any) -> Any:
        xp = self.inputs[0].xp  # the tangents side by side; a constant piece contributes zeros
        return xp.concatenate([xp.zeros_like(x.data) if dx is None else dx for x, dx in zip(self.inputs, dxs)],
                              axis=self.axis)


def _as_tensors(xs: list[Any]) -> list[Tensor]:
    ref = next((x for x in xs if isinstance(x, Tensor)), None)
    ref = ref if ref is not None else Tensor(xs[0])
    return [ref._const(x) for x in xs]


def concatenate(xs: Sequence[Tensor], axis: int | None = None, *, dim: int | None = None) -> Tensor:
    axis = spelled("concatenate", "axis", axis, "dim", dim, 0)
    xs = list(xs)
    if not xs:
        raise ValueError("concatenate: need at least one tensor")
    xs = _as_tensors(xs)
    if xs[0].ndim == 0:  # normalize_axis accepts axis 0 of a 0-d tensor (for reductions); there is no axis to join on
        raise ValueError("concatenate: zero-dimensional tensors have no axis to join; use stack")
    axis = normalize_axis(axis, xs[0].ndim, "concatenate")[0]
    for x in xs[1:]:
        if x.ndim != xs[0].ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, xs[0].shape)) if i != axis):
            raise ValueError(
                f"concatenate: shapes {[t.shape for t in xs]} differ outside axis {axis}"
            )
    return Concatenate.apply(*xs, axis=axis)


def stack(xs: Sequence[Tensor], axis: int | None = None, *, dim: int | None = None) -> Tensor:
    axis = spelled("stack", "axis", axis, "dim", dim, 0)
    xs = list(xs)
    if not xs:
        raise ValueError("stack: need at least one tensor")
    xs = _as_tensors(xs)
    if any(x.shape != xs[0].shape for x in xs):
        raise ValueError(f"stack: all tensors need the same shape, got {[x.shape for x in xs]}")
    return concatenate([unsqueeze(x, axis) for x in xs], axis=axis)


class Split(Function):
    """The pieces of x along an axis, each a view; one node with one output per piece. Backward
    joins the pieces' gradients in one concatenate (zeros for a piece no gradient reached), instead
    of one zero-filled, x-sized gradient per piece added together."""

    multiple_outputs = True
    may_return_view = True

    def forward(self, x: Tensor, axis: int, sizes: tuple[int, ...]) -> tuple[Any, ...]:
        self.axis, self.sizes = axis, sizes
        return tuple(x.xp.split(x.data, np.cumsum(sizes)[:-1].tolist(), axis=axis))

    def backward(self, grads: tuple[Tensor | None, ...]) -> Tensor:
        x = self.parents[0]
        pieces = []
        for g, n in zip(grads, self.sizes):
            if g is None:
                shape = x.shape[:self.axis] + (n,) + x.shape[self.axis + 1:]
                g = Tensor._make(x.xp.zeros(shape, dtype=x.dtype), False, x.device)
            pieces.append(g)
        return concatenate(pieces, axis=self.axis)

    def jvp(self, dx: Any) -> tuple[Any, ...]:
        return tuple(self.inputs[0].xp.split(dx, np.cumsum(self.sizes)[:-1].tolist(), axis=self.axis))


def split(x: Tensor, split_size_or_sections: int | Sequence[int], axis: int | None = None, *,
          dim: int | None = None) -> list[Tensor]:
    """PyTorch semantics: an int is the size of each piece (the last may be smaller);
    a list gives the size of every piece and must add up to the axis length."""
    axis = normalize_axis(spelled("split", "axis", axis, "dim", dim, 0), x.ndim, "split")[0]
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split size must be positive, got {split_size_or_sections}")
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ValueError(f"split: sections {sizes} do not add up to the axis length {n} (shape {x.shape})")
    return list(Split.apply(x, axis=axis, sizes=tuple(sizes))) if sizes else []


def chunk(x: Tensor, chunks: int, axis: int | None = None, *, dim: int | None = None) -> list[Tensor]:
    """PyTorch's chunk: `chunks` pieces of ceil(n / chunks) along the axis (the last may be smaller)."""
    axis = spelled("chunk", "axis", axis, "dim", dim, 0)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[normalize_axis(axis, x.ndim, "chunk")[0]]
    return split(x, max(1, -(-n // chunks)), axis)


# --------------------------------------------------------------------------- pad
class Pad(Function):
    def forward(self, x: Tensor, widths: tuple[tuple[int, int], ...], value: float) -> Any:
        self.slices = tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape))
        return x.xp.pad(x.data, widths, mode="constant", constant_values=value)

    def backward(self, g: Tensor) -> Tensor:
        return g[self.slices]

    def jvp(self, dx: Any) -> Any:
        out = self.inputs[0].xp.zeros_like(self.result)  # the padding is a constant: tangent 0
        out[self.slices] = dx
        return out


def pad(x: Tensor, pad_width: Any, value: float = 0.0) -> Tensor:
    """Constant padding, NumPy style: `pad_width` is ((before, after), ...) per axis, or an int."""
    if isinstance(pad_width, int):
        widths = ((pad_width, pad_width),) * x.ndim
    else:
        widths = tuple((int(p[0]), int(p[1])) if isinstance(p, (tuple, list)) else (int(p), int(p)) for p in pad_width)
    if len(widths) != x.ndim or any(b < 0 or a < 0 for b, a in widths):
        raise ValueError(
            f"pad: pad_width {pad_width} needs one non-negative (before, after) pair per axis of shape {x.shape}"
        )
    if x.ndim == 0:  # nothing to pad (and np.pad rejects the empty pad_width of a 0-d array)
        return x
    return Pad.apply(x, widths=widths, value=value)


# --------------------------------------------------------------- tril, masked_fill
class Tril(Function):
    def forward(self, x: Tensor, k: int, upper: bool) -> Any:
        if x.ndim < 2:
            raise ValueError(f"{'triu' if upper else 'tril'}: needs at least 2 dimensions, got shape {x.shape}")
        self.k, self.upper = k, upper
        return (x.xp.triu if upper else x.xp.tril)(x.data, k)

    def backward(self, g: Tensor) -> Tensor:
        return g.triu(self.k) if self.upper else g.tril(self.k)

    def jvp(self, dx: Any) -> Any:
        return (self.inputs[0].xp.triu if self.upper else self.inputs[0].xp.tril)(dx, self.k)


class MaskedFill(Function):
    """Positions where mask is True take `value`; they pass no gradient back."""

    def forward(self, x: Tensor, mask: Any, value: float) -> Any:
        self.mask, self.in_shape = mask, x.shape
        return x.xp.where(mask, x.data.dtype.type(value), x.data)

    def backward(self, g: Tensor) -> Tensor:
        # A mask larger than x broadcast x to the output's shape: sum the gradient back to x's shape.
        return unbroadcast(g * Tensor._make(~self.mask, False, g.device), self.in_shape)

    def jvp(self, dx: Any) -> Any:
        return self.inputs[0].xp.where(self.mask, 0, dx)  # the filled positions are constants


def masked_fill(x: Tensor, mask: Any, value: float) -> Tensor:
    mask = mask.data if isinstance(mask, Tensor) else x.xp.asarray(mask)
    if mask.dtype != dtypes.bool_:
        raise TypeError(f"masked_fill: the mask must be bool, got {mask.dtype}")
    try:  # the output has the broadcast shape of x and the mask, as in PyTorch (it may be larger than x)
        np.broadcast_shapes(x.shape, mask.shape)  # shapes only (CuPy has no broadcast_shapes)
    except ValueError as e:
        raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast with the tensor's "
                         f"{x.shape}") from e
    return MaskedFill.apply(x, mask=mask, value=value)


# ----------------------------------------------------------------- dtype, device
class Cast(Function):
    def forward(self, x: Tensor, dtype: Any) -> Any:
        self.in_dtype = x.dtype
        return x.data.astype(dtype)

    def backward(self, g: Tensor) -> Tensor:
        return g.astype(self.in_dtype)

    def jvp(self, dx: Any) -> Any:
        return dx.astype(self.result.dtype)


class ToDevice(Function):
    def forward(self, x: Tensor, device: str) -> Any:
        self.in_device, self.out_device = x.device, device
        data = get_backend(x.device).to_numpy(x.data)
        return get_backend(device).xp.asarray(data)

    def backward(self, g: Tensor) -> Tensor:
        return g.to(self.in_device)

    def jvp(self, dx: Any) -> Any:
        return get_backend(self.out_device).xp.asarray(get_backend(self.in_device).to_numpy(dx))  # moves along

    @classmethod
    def apply(cls, x: Tensor, device: str) -> Tensor:  # type: ignore[override]
        out = super().apply(x, device=device)
        out.device = device
        return out
