"""Indexing. Reading x[idx] copies some elements (maybe some several times); the backward
scatter-*adds* the gradient into a zero tensor of x's shape, so repeated indices accumulate.
The scatter's own backward is the gather again, so both directions are differentiable.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from .. import dtypes
from ..backend import get_backend
from ..function import Function
from ..spelling import spelled
from ..tensor import Tensor
from .reduce import _as_int, arg_reduce, check_nonempty, normalize_axis


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
            if i.size == 0:  # NumPy makes [] a float array; as an index it selects nothing: x[[], :]
                i = i.astype(dtypes.int64)
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

    def jvp(self, dx: Any) -> Any:
        return dx[self.index]  # d(x[i]) = dx[i]


class IndexAdd(Function):
    """zeros(shape) with `g` added at `index` (np.add.at accumulates repeated indices)."""

    def forward(self, g: Tensor, index: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
        self.index = index
        return _scatter_add(g.device, g.data, index, shape)

    def backward(self, g: Tensor) -> Tensor:
        return GetItem.apply(g, index=self.index)

    def jvp(self, dg: Any) -> Any:
        return _scatter_add(self.inputs[0].device, dg, self.index, self.result.shape)  # linear: the same scatter


def _scatter_add(device: str, values: Any, index: tuple[Any, ...], shape: tuple[int, ...]) -> Any:
    """zeros(shape) with `values` added at `index`, repeated indices accumulating."""
    backend = get_backend(device)
    out = backend.xp.zeros(shape, dtype=values.dtype)
    if _is_basic(index):
        out[index] = values
    else:
        (backend.index_add or backend.xp.add.at)(out, index, values)  # np.add.at, or a compiled kernel for it
    return out


def getitem(x: Tensor, index: Any) -> Tensor:
    return GetItem.apply(x, index=normalize_index(x, index))


def take_along_axis(x: Tensor, index: Any, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """out[..., i, ...] = x[..., index[..., i, ...], ...] along `axis`: NumPy's take_along_axis, whose
    index broadcasts against x on the other axes. `gather(x, dim, index)` is the same op in PyTorch's
    order and rule (there index may be smaller than x on the other axes and is never broadcast)."""
    axis = spelled("take_along_axis", "axis", axis, "dim", dim)
    if axis is None:
        raise TypeError("take_along_axis: give the axis, e.g. take_along_axis(x, index, axis=1)")
    return _along_axis(x, index, axis, "take_along_axis")


def gather(x: Tensor, dim: int, index: Any) -> Tensor:
    """PyTorch's gather: out[..., i, ...] = x[..., index[..., i, ...], ...] along `dim`, with
    out.shape == index.shape; on the other axes index may be shorter than x (it reads the leading
    block). The same op as `take_along_axis(x, index, axis)`, in NumPy's order and rule: where both
    give an answer, they differ only when index has length 1 on another axis (NumPy broadcasts it)."""
    return _along_axis(x, index, dim, "gather")


def _along_axis(x: Tensor, index: Any, axis: int, op: str) -> Tensor:
    xp = x.xp
    idx = index.data if isinstance(index, Tensor) else xp.asarray(index)
    if idx.ndim != x.ndim:
        raise ValueError(f"{op}: index has {idx.ndim} dimensions, the tensor {x.ndim} (shape {x.shape})")
    if idx.dtype.kind not in "iu":
        raise IndexError(f"{op}: index must be integer, got {idx.dtype}")
    axis = normalize_axis(axis, x.ndim, op)[0]  # axis % ndim would wrap a bad axis silently
    n = x.shape[axis]
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):  # checked here so the error names this op
        raise IndexError(
            f"{op}: indices must lie in [{-n}, {n}) for axis {axis} of shape {x.shape}, got range "
            f"[{int(idx.min())}, {int(idx.max())}]"
        )
    if op == "gather" and any(i > s for d, (i, s) in enumerate(zip(idx.shape, x.shape)) if d != axis):
        raise ValueError(f"gather: index of shape {idx.shape} is larger than the tensor's {x.shape} outside dim {axis}")
    full = []
    for d in range(x.ndim):
        if d == axis:
            full.append(idx)
        else:  # position along axis d: NumPy's rule broadcasts x's positions, PyTorch's takes index's
            n_d = idx.shape[d] if op == "gather" else x.shape[d]
            full.append(xp.arange(n_d).reshape([n_d if k == d else 1 for k in range(x.ndim)]))
    return GetItem.apply(x, index=tuple(full))


class ValuesIndices(NamedTuple):
    """What `x.max(dim)` and `x.min(dim)` return, as PyTorch's `torch.return_types.max` does: the
    values and their positions (int64), so that `values, indices = x.max(1)` unpacks the two."""

    values: Tensor
    indices: Tensor

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        # Without this, `x - x.max(1)` would turn the pair into one array of values and indices stacked.
        raise TypeError("max(dim) and min(dim) return a (values, indices) pair, as in PyTorch: take .values, or "
                        "write x.max(axis=...) for the values alone")


def values_indices(x: Tensor, op: str, dim: Any, keepdim: bool) -> ValuesIndices:
    """max or min along one `dim` and where it is. The index is argmax's (the first maximum, as in
    PyTorch) and the value is read at that index, so the gradient goes to that element alone, as
    PyTorch's max(dim) does (`max(axis=...)` shares it among ties instead)."""
    if _as_int(dim) is None:
        raise TypeError(f"{op}(dim): dim must be one int, as in PyTorch, got {dim!r}; for the {op} over several "
                        f"axes write {op}(axis={dim!r})")
    axis = normalize_axis(dim, x.ndim, op)[0]
    check_nonempty(op, x.shape, (axis,))
    flat = x.reshape(1) if x.ndim == 0 else x  # a 0-d tensor has one position, index 0
    indices = arg_reduce(flat, "argmax" if op == "max" else "argmin", axis, keepdims=True)
    values = take_along_axis(flat, indices, axis)
    if x.ndim == 0 or not keepdim:
        values, indices = values.squeeze(axis), indices.squeeze(axis)
    return ValuesIndices(values, indices)


def embedding(input: Any, weight: Tensor) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by integer indices `input` of any shape, in
    PyTorch's order: `embedding(indices, weight)`."""
    if not isinstance(weight, Tensor) or not dtypes.is_floating(weight.dtype):
        old_order = isinstance(input, Tensor) and dtypes.is_floating(input.dtype)
        raise TypeError(
            "embedding(input, weight): the argument order is PyTorch's, the indices first and the weight table "
            "second; this call passed the weight first (the old order embedding(weight, indices)): write "
            "embedding(indices, weight)" if old_order else
            f"embedding: weight must be a floating-point Tensor (num_embeddings, dim), got {type(weight).__name__}"
        )
    idx = input.data if isinstance(input, Tensor) else weight.xp.asarray(input)
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
