"""Indexing. Reading x[idx] copies some elements (maybe some several times); the backward
scatter-*adds* the gradient into a zero tensor of x's shape, so repeated indices accumulate.
The scatter's own backward is the gather again, so both directions are differentiable.
"""
from __future__ import annotations

from typing import Any

from .. import dtypes
from ..backend import get_backend
from ..function import Function
from ..tensor import Tensor
from .reduce import normalize_axis


def _is_basic(index: tuple[Any, ...]) -> bool:
    """Only ints, slices, None and Ellipsis: every element is read at most once."""
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in index)


def normalize_index(x: Tensor, index: Any) -> tuple[Any, ...]:
    """Tensors and lists become arrays; boolean masks become the integer arrays of their
    True positions (the same selection, in a form the scatter-add understands)."""
    xp = x.xp
    items = index if isinstance(index, tuple) else (index,)
    out: list[Any] = []
    for i in items:
        if isinstance(i, Tensor):
            i = i.data
        elif isinstance(i, list):
            i = xp.asarray(i)
        if hasattr(i, "dtype") and hasattr(i, "ndim") and not isinstance(i, (int, bool)):
            if i.dtype == dtypes.bool_:
                out.extend(xp.nonzero(i))
                continue
            if i.dtype.kind not in "iu":
                raise IndexError(f"getitem: index arrays must be integer or bool, got {i.dtype}")
            if i.ndim == 0:
                i = int(i)
        out.append(i)
    return tuple(out)


class GetItem(Function):
    may_return_view = True  # views of the input (basic indexing, reshape, permute): see Function.apply

    def forward(self, x: Tensor, index: tuple[Any, ...]) -> Any:
        self.in_shape, self.index = x.shape, index
        try:
            return x.data[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor of shape {x.shape})") from e

    def backward(self, g: Tensor) -> Tensor:
        return IndexAdd.apply(g, index=self.index, shape=self.in_shape)


class IndexAdd(Function):
    """zeros(shape) with `g` added at `index` (np.add.at accumulates repeated indices)."""

    def forward(self, g: Tensor, index: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
        self.index = index
        out = g.xp.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g.data
        else:
            index_add = get_backend(g.device).index_add  # np.add.at, or a compiled kernel for it
            (index_add or g.xp.add.at)(out, index, g.data)
        return out

    def backward(self, g: Tensor) -> Tensor:
        return GetItem.apply(g, index=self.index)


def getitem(x: Tensor, index: Any) -> Tensor:
    return GetItem.apply(x, index=normalize_index(x, index))


def take_along_axis(x: Tensor, index: Any, axis: int) -> Tensor:
    """out[..., i, ...] = x[..., index[..., i, ...], ...] along `axis` (NumPy's take_along_axis)."""
    xp = x.xp
    idx = index.data if isinstance(index, Tensor) else xp.asarray(index)
    if idx.ndim != x.ndim:
        raise ValueError(f"take_along_axis: index has {idx.ndim} dimensions, the tensor {x.ndim} (shape {x.shape})")
    if idx.dtype.kind not in "iu":
        raise IndexError(f"take_along_axis: index must be integer, got {idx.dtype}")
    axis = normalize_axis(axis, x.ndim, "take_along_axis")[0]  # axis % ndim would wrap a bad axis silently
    n = x.shape[axis]
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):  # checked here so the error names this op
        raise IndexError(
            f"take_along_axis: indices must lie in [{-n}, {n}) for axis {axis} of shape {x.shape}, got range "
            f"[{int(idx.min())}, {int(idx.max())}]"
        )
    full = []
    for d in range(x.ndim):
        if d == axis:
            full.append(idx)
        else:
            shape = [1] * x.ndim
            shape[d] = x.shape[d]
            full.append(xp.arange(x.shape[d]).reshape(shape))
    return GetItem.apply(x, index=tuple(full))


def embedding(weight: Tensor, indices: Any) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by integer `indices` of any shape."""
    idx = indices.data if isinstance(indices, Tensor) else weight.xp.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= weight.shape[0]):
        raise IndexError(
            f"embedding: indices must lie in [0, {weight.shape[0]}), got range "
            f"[{int(idx.min())}, {int(idx.max())}]"
        )
    return GetItem.apply(weight, index=(idx,))


def one_hot(indices: Any, num_classes: int, dtype: Any = dtypes.float32) -> Tensor:
    """A constant (..., num_classes) tensor with a 1 at each index."""
    t = indices if isinstance(indices, Tensor) else Tensor(indices)
    idx = t.data
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise IndexError(f"one_hot: indices must lie in [0, {num_classes}), got [{int(idx.min())}, {int(idx.max())}]")
    out = (idx[..., None] == t.xp.arange(num_classes)).astype(dtypes.to_dtype(dtype))
    return Tensor._make(out, False, t.device)
