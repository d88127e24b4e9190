"""The Tensor: an array, a device, and the record of how it was made.

A Tensor holds a backend array in `.data`. When it was produced by a differentiable op while
grad mode was on and some input required grad, `._ctx` points at that op's `Function` node,
whose `.parents` are the input Tensors: following `_ctx.parents` from the loss walks the whole
computation graph backwards. Leaves (tensors you created) have `_ctx = None`.

The methods here are thin: each one names the `Function` that does the work (see `ops/`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from . import dtypes
from .backend import DEFAULT_DEVICE, get_backend
from .backend import XP_BY_DEVICE as _XP
from .grad_mode import STATE
from .spelling import axis_keepdims, spelled

Axis = int | Sequence[int] | None


class Size(int):
    """`x.size`: the number of elements, an int as in NumPy, that can also be called as in PyTorch:
    `x.size()` is the shape and `x.size(d)` the length of axis d. One attribute serves both habits,
    so neither silently gets the other's answer."""

    shape: tuple[int, ...]

    def __new__(cls, shape: tuple[int, ...]) -> Size:
        out = super().__new__(cls, math.prod(shape))
        out.shape = shape
        return out

    def __call__(self, dim: int | None = None) -> Any:
        if dim is None:
            return self.shape
        if not -len(self.shape) <= dim < len(self.shape):
            raise IndexError(f"size({dim}): dim out of range for a tensor with {len(self.shape)} dimensions")
        return self.shape[dim]

    def __reduce__(self) -> Any:  # pickles (and copies) as the plain int it is
        return int, (int(self),)


class Tensor:
    __slots__ = (
        "data", "requires_grad", "grad", "_ctx", "_vc", "_retains_grad", "_hooks",
        "device", "name", "_tangent", "__weakref__",
    )
    __array_priority__ = 1000  # so `ndarray * Tensor` calls Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, device: str = DEFAULT_DEVICE) -> None:
        xp = get_backend(device).xp
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            arr = xp.array(data, dtype=dtypes.to_dtype(dtype))
        else:
            arr = xp.array(data)
            if (not isinstance(data, (np.ndarray, np.generic)) and not hasattr(data, "__cuda_array_interface__")
                    and arr.dtype == np.float64):  # an array (NumPy or CuPy) keeps its dtype
                arr = arr.astype(dtypes.DEFAULT_FLOAT)  # Python floats -> float32, as in PyTorch
        _init(self, arr, False, device)
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(data: Any, requires_grad: bool, device: str) -> Tensor:
        """Internal constructor: wraps an existing backend array without copying."""
        t = _new_tensor(Tensor)
        if isinstance(data, np.generic):
            # NumPy reductions and x[i] return scalars (np.float32 ...), not 0-d arrays; a scalar
            # has no in-place methods or item assignment, so `.data` is always kept an array.
            data = np.asarray(data)
        _init(t, data, requires_grad, device)
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> Size:
        """The number of elements (NumPy's `x.size`); `x.size()` is the shape and `x.size(d)` the
        length of axis d, as in PyTorch (see `Size`)."""
        return Size(self.data.shape)

    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        """The number of axes: PyTorch's name for `ndim`."""
        return self.data.ndim

    @property
    def xp(self) -> Any:
        """The array module (numpy, cupy) of this tensor's device."""
        return _XP.get(self.device) or get_backend(self.device).xp

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        """The Function node that made this tensor (None for a leaf), under PyTorch's name."""
        return self._ctx

    @property
    def T(self) -> Tensor:
        """All axes reversed, as NumPy's `.T`."""
        return self.permute(tuple(range(self.ndim - 1, -1, -1)))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        extra = ""
        if self._ctx is not None:
            extra = f", grad_fn={type(self._ctx).__name__}"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        dev = "" if self.device == DEFAULT_DEVICE else f", device={self.device!r}"
        body = np.array2string(get_backend(self.device).to_numpy(self.data), separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.dtype}{dev}{extra})"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.data)

    __hash__ = object.__hash__  # __eq__ is elementwise, but tensors stay usable as dict keys

    # ---------------------------------------------------------------- conversions
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on CPU)."""
        return get_backend(self.device).to_numpy(self.data)

    def item(self) -> Any:
        return self._one_value("item()")

    def __float__(self) -> float:
        return float(self._one_value("float()"))

    def __int__(self) -> int:
        return int(self._one_value("int()"))  # truncates toward zero, as int(2.7) and PyTorch's int(t)

    def _one_value(self, op: str) -> Any:
        if self.data.size != 1:
            raise ValueError(f"{op}: only one-element tensors can be converted, got shape {self.shape}; "
                             f".tolist() gives every value")
        return self.data.item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """Same data (and version counter), cut from the graph."""
        out = Tensor._make(self.data, False, self.device)
        out._vc = self._shared_counter()
        return out

    def astype(self, dtype: Any) -> Tensor:
        """Differentiable between float dtypes; casting to int/bool gives a constant."""
        dtype = dtypes.to_dtype(dtype)
        if dtype == self.dtype:
            return self
        if not dtypes.is_floating(dtype):  # integers have no gradient: a constant
            return Tensor._make(self.data.astype(dtype), False, self.device)
        return M.Cast.apply(self, dtype=dtype)

    def float(self) -> Tensor:
        return self.astype(dtypes.float32)

    def double(self) -> Tensor:
        return self.astype(dtypes.float64)

    def long(self) -> Tensor:
        return self.astype(dtypes.int64)

    def clone(self) -> Tensor:
        """A copy in new memory, differentiable (the gradient passes through unchanged), as PyTorch's."""
        return M.Cast.apply(self, dtype=self.dtype)  # astype always copies, so a same-dtype cast is a copy

    def contiguous(self) -> Tensor:
        """`self` if its memory is one C-ordered block, else a copy (`clone`), as in PyTorch. The ops
        here take any memory layout (reshape copies when it must), so this only decides aliasing."""
        return self if self.data.flags.c_contiguous else self.clone()

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not dtypes.is_floating(self.dtype):
            raise TypeError(
                f"requires_grad_: only floating-point tensors can require gradients, this one is "
                f"{self.dtype}. Integer and bool tensors hold indices, counts or masks: a small change "
                f"of their value is not defined, so they have no gradient."
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach() instead")
        self.requires_grad = requires_grad
        return self

    # -------------------------------------------------------------------- autograd
    def backward(self, grad: Tensor | None = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (see autograd.backward)."""
        from .autograd import backward

        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def retain_grad(self) -> Tensor:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True
        return self

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call `hook(grad)` when this tensor's gradient is computed; a returned tensor replaces
        the gradient. Returns a handle whose `.remove()` takes the hook off again."""
        if not self.requires_grad:
            raise RuntimeError("register_hook() on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return RemovableHandle(self._hooks, hook)

    def zero_grad_(self) -> None:
        self.grad = None

    # ------------------------------------------------------------ version counter
    # Every in-place update bumps a counter; an op that saved a tensor for backward remembers the
    # count and backward refuses to run if it changed. Views (reshape, slices, transposes,
    # detach) share memory with their base, so they share the counter too: an update through
    # any alias is seen by all. The counter is a one-element list created on first need.
    @property
    def _version(self) -> int:
        return 0 if self._vc is None else self._vc[0]

    def _shared_counter(self) -> list[int]:
        if self._vc is None:
            self._vc = [0]
        return self._vc

    # --------------------------------------------------------------------- in place
    # In-place ops change `.data` and bump the version counter, so backward can detect that a
    # tensor it saved was overwritten. They build no graph: use them under no_grad (optimizers).
    def _check_inplace(self, op: str) -> None:
        if STATE.grad_enabled and self.requires_grad:
            if self._ctx is None:  # PyTorch's error for the same mistake, with its explanation
                raise RuntimeError(
                    f"{op}: a leaf Variable that requires grad is being used in an in-place operation. "
                    f"Changing a parameter in place while grad mode is on would make the recorded graph "
                    f"wrong. Update parameters under `with tinygrad_lite.no_grad():` (as optimizers do: "
                    f"`w -= lr * w.grad`)"
                )
            raise RuntimeError(
                f"{op}: in-place update of a tensor that is part of the recorded graph. tinygrad_lite records "
                f"no in-place ops; write it out of place instead (`x = x + y` for `x += y`)"
            )

    def _inplace(self, op: str, fn: Callable[[Any], Any]) -> Tensor:
        self._check_inplace(op)
        if STATE.forward_ad:  # tangents are not updated in place: the result would be silently wrong
            raise RuntimeError(f"{op}: in-place update inside forward mode (jvp), which does not follow "
                               f"in-place updates; write it out of place (`x = x * 3` for `x.mul_(3)`)")
        fn(self.data)
        self._shared_counter()[0] += 1
        return self

    def add_(self, other: Any, alpha: float = 1.0) -> Tensor:
        o = _data(other)
        return self._inplace("add_", lambda d: d.__iadd__(o * alpha if alpha != 1.0 else o))

    def sub_(self, other: Any) -> Tensor:
        o = _data(other)
        return self._inplace("sub_", lambda d: d.__isub__(o))

    def mul_(self, other: Any) -> Tensor:
        o = _data(other)
        return self._inplace("mul_", lambda d: d.__imul__(o))

    def div_(self, other: Any) -> Tensor:
        o = _data(other)
        return self._inplace("div_", lambda d: d.__itruediv__(o))

    def copy_(self, other: Any) -> Tensor:
        o = _data(other)
        try:  # broadcast_shapes raises its own (unnamed) error for shapes that do not broadcast at all
            fits = np.broadcast_shapes(np.shape(o), self.shape) == self.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"copy_: cannot copy shape {np.shape(o)} into shape {self.shape}")
        return self._inplace("copy_", lambda d: d.__setitem__(..., o))

    def fill_(self, value: float) -> Tensor:
        return self._inplace("fill_", lambda d: d.fill(value))

    def zero_(self) -> Tensor:
        return self.fill_(0)

    # `x += y` and friends are in place, as in PyTorch: the same tensor object changes, so a parameter
    # stays in its module. A right operand that requires grad would lose its gradient: refused.
    def _inplace_operand(self, op: str, other: Any) -> Any:
        if STATE.grad_enabled and isinstance(other, Tensor) and other.requires_grad:
            raise RuntimeError(
                f"{op}: the right operand requires grad, and an in-place update records no graph, so its "
                f"gradient would be lost; write it out of place instead (`x = x + y` for `x += y`)"
            )
        return other

    def __iadd__(self, other: Any) -> Tensor:
        o = _data(self._inplace_operand("+=", other))
        return self._inplace("+=", lambda d: d.__iadd__(o))

    def __isub__(self, other: Any) -> Tensor:
        o = _data(self._inplace_operand("-=", other))
        return self._inplace("-=", lambda d: d.__isub__(o))

    def __imul__(self, other: Any) -> Tensor:
        o = _data(self._inplace_operand("*=", other))
        return self._inplace("*=", lambda d: d.__imul__(o))

    def __itruediv__(self, other: Any) -> Tensor:
        o = _data(self._inplace_operand("/=", other))
        return self._inplace("/=", lambda d: d.__itruediv__(o))

    def __setitem__(self, index: Any, value: Any) -> None:
        o, idx = _data(value), _index_data(index)
        self._inplace("__setitem__", lambda d: d.__setitem__(idx, o))

    # ------------------------------------------------------------ binary operators
    def _const(self, value: Any) -> Tensor:
        """Wrap a Python scalar / array as a constant of a matching dtype on this device."""
        if isinstance(value, Tensor):
            return value
        xp = get_backend(self.device).xp
        if isinstance(value, (bool, int, float)) and not isinstance(value, np.ndarray):
            # A Python scalar takes the tensor's dtype, unless a float meets an int tensor.
            dt = self.dtype
            if isinstance(value, float) and not dtypes.is_floating(dt):
                dt = dtypes.DEFAULT_FLOAT
            return Tensor._make(xp.asarray(value, dtype=dt), False, self.device)
        return Tensor._make(xp.asarray(value), False, self.device)

    def _operands(self, other: Any, true_div: bool = False) -> tuple[Tensor, Tensor]:
        """(self, other) as two Tensors of one dtype, following `_promote`'s rule."""
        fast = _operands_fast_path(self, other, true_div)
        return fast if fast is not None else _promote(self, self._const(other), true_div)

    def add(self, other: Any) -> Tensor:
        return E.Add.apply(*self._operands(other))

    def sub(self, other: Any) -> Tensor:
        return E.Sub.apply(*self._operands(other))

    def mul(self, other: Any) -> Tensor:
        return E.Mul.apply(*self._operands(other))

    def div(self, other: Any) -> Tensor:
        return E.Div.apply(*self._operands(other, true_div=True))

    def pow(self, exponent: Any) -> Tensor:
        if isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
            return E.PowScalar.apply(self, exponent=exponent)
        return E.Pow.apply(*_promote(self, self._const(exponent)))

    def maximum(self, other: Any) -> Tensor:
        return E.Maximum.apply(*_promote(self, self._const(other)))

    def minimum(self, other: Any) -> Tensor:
        return E.Minimum.apply(*_promote(self, self._const(other)))

    def matmul(self, other: Tensor) -> Tensor:
        return L.matmul(self, self._const(other))

    __add__ = add
    __sub__ = sub
    __mul__ = mul
    __truediv__ = div
    __pow__ = pow
    __matmul__ = matmul

    def __radd__(self, other: Any) -> Tensor:
        return E.Add.apply(*self._operands(other)[::-1])

    def __rsub__(self, other: Any) -> Tensor:
        return E.Sub.apply(*self._operands(other)[::-1])

    def __rmul__(self, other: Any) -> Tensor:
        return E.Mul.apply(*self._operands(other)[::-1])

    def __rtruediv__(self, other: Any) -> Tensor:
        return E.Div.apply(*self._operands(other, true_div=True)[::-1])

    def __rpow__(self, other: Any) -> Tensor:
        return E.Pow.apply(*_promote(self._const(other), self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return L.matmul(self._const(other), self)

    def __neg__(self) -> Tensor:
        return E.Neg.apply(self)

    # Comparisons give bool tensors (constants: no gradient flows through a comparison).
    def _compare(self, other: Any, fn: Callable[[Any, Any], Any]) -> Tensor:
        return Tensor._make(fn(self.data, _data(other)), False, self.device)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, lambda a, b: a >= b)

    def __invert__(self) -> Tensor:
        if self.dtype != dtypes.bool_:
            raise TypeError(f"~ (logical not) needs a bool tensor, got {self.dtype}")
        return Tensor._make(~self.data, False, self.device)

    def __and__(self, other: Any) -> Tensor:
        return self._compare(other, lambda a, b: a & b)

    def __or__(self, other: Any) -> Tensor:
        return self._compare(other, lambda a, b: a | b)

    def any(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: bool | None = None
            ) -> Tensor:
        axis, keepdims = axis_keepdims("any", axis, keepdims, dim, keepdim)
        return Tensor._make(self.xp.any(self.data, axis=axis, keepdims=keepdims), False, self.device)

    def all(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: bool | None = None
            ) -> Tensor:
        axis, keepdims = axis_keepdims("all", axis, keepdims, dim, keepdim)
        return Tensor._make(self.xp.all(self.data, axis=axis, keepdims=keepdims), False, self.device)

    def sign(self) -> Tensor:
        """Constant (no gradient: the derivative of sign is zero almost everywhere)."""
        return Tensor._make(self.xp.sign(self.data), False, self.device)

    # --------------------------------------------------------------- unary ops
    def exp(self) -> Tensor:
        return E.Exp.apply(self)

    def log(self) -> Tensor:
        return E.Log.apply(self)

    def sqrt(self) -> Tensor:
        return E.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return E.Abs.apply(self)

    def sin(self) -> Tensor:
        return E.Sin.apply(self)

    def cos(self) -> Tensor:
        return E.Cos.apply(self)

    def tanh(self) -> Tensor:
        return E.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return E.Sigmoid.apply(self)

    def log_sigmoid(self) -> Tensor:
        return E.LogSigmoid.apply(self)

    def relu(self) -> Tensor:
        return E.Relu.apply(self)

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        return E.LeakyRelu.apply(self, slope=negative_slope)

    def gelu(self, approximate: str = "none") -> Tensor:
        """GELU: x·Φ(x) exactly (`approximate="none"`) or with the tanh formula (`"tanh"`)."""
        if approximate == "none":
            return E.Gelu.apply(self)
        if approximate == "tanh":
            return E.GeluTanh.apply(self)
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")

    def erf(self) -> Tensor:
        return E.Erf.apply(self)

    def silu(self) -> Tensor:
        return E.Silu.apply(self)

    def softplus(self) -> Tensor:
        return E.Softplus.apply(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        if min is not None and max is not None and min > max:
            raise ValueError(f"clip: min={min} is greater than max={max}")
        return E.Clip.apply(self, lo=min, hi=max)

    clamp = clip

    def square(self) -> Tensor:
        return E.Mul.apply(self, self)

    def reciprocal(self) -> Tensor:
        return 1.0 / self

    # -------------------------------------------------------------- reductions
    # Each reduction takes NumPy's `axis=`/`keepdims=` and PyTorch's `dim=`/`keepdim=` (spelling.py).
    def sum(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: bool | None = None
            ) -> Tensor:
        axis, keepdims = axis_keepdims("sum", axis, keepdims, dim, keepdim)
        return R.Sum.apply(self, axis=R.normalize_axis(axis, self.ndim, "sum"), keepdims=keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: bool | None = None
             ) -> Tensor:
        axis, keepdims = axis_keepdims("mean", axis, keepdims, dim, keepdim)
        axes = R.normalize_axis(axis, self.ndim, "mean")
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        if count == 0:
            raise ValueError(f"mean: reducing an empty axis of shape {self.shape}")
        return R.Sum.apply(self, axis=axes, keepdims=keepdims) * (1.0 / count)

    def max(self, dim: Any = None, keepdim: bool | None = None, *, axis: Axis = None, keepdims: bool | None = None
            ) -> Any:
        """The largest values. Three forms, each meaning what it means in its library:
        `x.max()` and NumPy's `x.max(axis=..., keepdims=...)` give the values (ties share the gradient);
        PyTorch's `x.max(dim)` / `x.max(dim=d)` give the pair (values, indices), so `v, i = x.max(1)`
        unpacks as in PyTorch (the gradient goes to the returned index); `x.max(other_tensor)` is
        the elementwise `maximum`, as torch.max(x, other)."""
        return self._max_min("max", dim, keepdim, axis, keepdims)

    def min(self, dim: Any = None, keepdim: bool | None = None, *, axis: Axis = None, keepdims: bool | None = None
            ) -> Any:
        """The smallest values; the same three forms as `max`."""
        return self._max_min("min", dim, keepdim, axis, keepdims)

    def _max_min(self, op: str, dim: Any, keepdim: bool | None, axis: Axis, keepdims: bool | None) -> Any:
        if isinstance(dim, Tensor):
            return self.maximum(dim) if op == "max" else self.minimum(dim)
        axis, keep = axis_keepdims(op, axis, keepdims, dim, keepdim)
        if dim is not None:  # PyTorch's form: the (values, indices) pair
            return I.values_indices(self, op, axis, keep)
        return R.max_min(self, op, R.normalize_axis(axis, self.ndim, op), keep)

    # var and std: NumPy divides by n (ddof=0), PyTorch by n - 1 (correction=1). The spelling of the
    # call says which library it follows: with `axis=` or `keepdims=` (and no PyTorch name) NumPy's
    # default, otherwise (no argument, a positional dim, `dim=`, `keepdim=`) PyTorch's. `ddof=` or
    # `correction=` (the same number), or PyTorch's older `unbiased=` (True is 1), chooses explicitly.
    def var(self, dim: Axis = None, keepdim: bool | None = None, *, correction: float | None = None,
            axis: Axis = None, keepdims: bool | None = None, ddof: float | None = None,
            unbiased: bool | None = None) -> Tensor:
        """Σ(x - mean)² / (n - ddof); the default ddof follows the spelling of the call (see above)."""
        return self._var("var", dim, keepdim, correction, axis, keepdims, ddof, unbiased)

    def std(self, dim: Axis = None, keepdim: bool | None = None, *, correction: float | None = None,
            axis: Axis = None, keepdims: bool | None = None, ddof: float | None = None,
            unbiased: bool | None = None) -> Tensor:
        """sqrt(var); the default ddof follows the spelling of the call (see var)."""
        # R.root: at a constant row the slope of sqrt(var) is 0·∞; it takes 0 there, as PyTorch does.
        return R.root(self._var("std", dim, keepdim, correction, axis, keepdims, ddof, unbiased), 2)

    def _var(self, op: str, dim: Axis, keepdim: bool | None, correction: float | None, axis: Axis,
             keepdims: bool | None, ddof: float | None, unbiased: bool | None) -> Tensor:
        numpy_call = dim is None and keepdim is None and (axis is not None or keepdims is not None)
        if unbiased is not None:
            correction = spelled(op, "correction", correction, "unbiased", int(unbiased))
        ddof = spelled(op, "ddof", ddof, "correction", correction, 0 if numpy_call else 1)
        axis, keepdims = axis_keepdims(op, axis, keepdims, dim, keepdim)
        axes = R.normalize_axis(axis, self.ndim, op)  # `op`: so that std's errors name std, not var
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        if count - ddof <= 0:
            raise ValueError(f"{op}: {count} elements with ddof={ddof} leaves no degrees of freedom")
        centered = self - self.mean(axis=axes, keepdims=True)
        return (centered * centered).sum(axis=axes, keepdims=keepdims) * (1.0 / (count - ddof))

    def logsumexp(self, axis: Axis = None, keepdims: bool = False, *, dim: Axis = None, keepdim: bool | None = None
                  ) -> Tensor:
        axis, keepdims = axis_keepdims("logsumexp", axis, keepdims, dim, keepdim)
        return R.LogSumExp.apply(self, axis=R.normalize_axis(axis, self.ndim, "logsumexp"), keepdims=keepdims)

    def softmax(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        axis = spelled("softmax", "axis", axis, "dim", dim, -1)
        return R.Softmax.apply(self, axis=R.normalize_axis(axis, self.ndim, "softmax")[0])

    def log_softmax(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        axis = spelled("log_softmax", "axis", axis, "dim", dim, -1)
        return R.LogSoftmax.apply(self, axis=R.normalize_axis(axis, self.ndim, "log_softmax")[0])

    def argmax(self, axis: int | None = None, keepdims: bool = False, *, dim: int | None = None,
               keepdim: bool | None = None) -> Tensor:
        return R.arg_reduce(self, "argmax", *axis_keepdims("argmax", axis, keepdims, dim, keepdim))

    def argmin(self, axis: int | None = None, keepdims: bool = False, *, dim: int | None = None,
               keepdim: bool | None = None) -> Tensor:
        return R.arg_reduce(self, "argmin", *axis_keepdims("argmin", axis, keepdims, dim, keepdim))

    def norm(self, p: float | str = 2, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None,
             keepdims: bool | None = None) -> Tensor:
        """The vector p-norm (Σ|x|^p)^(1/p) over `dim` (every axis by default), as PyTorch's `norm`."""
        axis, keepdims = axis_keepdims("norm", axis, keepdims, dim, keepdim)
        return R.norm(self, p, R.normalize_axis(axis, self.ndim, "norm"), keepdims)

    # -------------------------------------------------------- shape and movement
    def reshape(self, *shape: Any) -> Tensor:
        return M.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    view = reshape

    def permute(self, *axes: Any) -> Tensor:
        axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return M.permute(self, axes)

    def transpose(self, axis0: int | None = None, axis1: int | None = None, *, dim0: int | None = None,
                  dim1: int | None = None) -> Tensor:
        """Swap two axes (default: the last two, the matrix transpose)."""
        return M.swapaxes(self, spelled("transpose", "axis0", axis0, "dim0", dim0, -2),
                          spelled("transpose", "axis1", axis1, "dim1", dim1, -1))

    swapaxes = transpose

    def expand(self, *shape: Any) -> Tensor:
        return M.broadcast_to(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    broadcast_to = expand

    def squeeze(self, axis: Axis = None, *, dim: Axis = None) -> Tensor:
        return M.squeeze(self, spelled("squeeze", "axis", axis, "dim", dim))

    def unsqueeze(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        axis = spelled("unsqueeze", "axis", axis, "dim", dim)
        if axis is None:
            raise TypeError("unsqueeze: give the position of the new axis, e.g. x.unsqueeze(0)")
        return M.unsqueeze(self, axis)

    def flatten(self, start_axis: int | None = None, end_axis: int | None = None, *, start_dim: int | None = None,
                end_dim: int | None = None) -> Tensor:
        return M.flatten(self, spelled("flatten", "start_axis", start_axis, "start_dim", start_dim, 0),
                         spelled("flatten", "end_axis", end_axis, "end_dim", end_dim, -1))

    def repeat(self, *repeats: Any) -> Tensor:
        """PyTorch's repeat (NumPy's tile, not np.repeat): `x.repeat(2, 3)` stacks 2 x 3 copies of x."""
        return M.repeat(self, repeats[0] if len(repeats) == 1 and isinstance(repeats[0], (tuple, list)) else repeats)

    def pad(self, pad_width: Any, value: float = 0.0) -> Tensor:
        return M.pad(self, pad_width, value)

    def tril(self, k: int | None = None, *, diagonal: int | None = None) -> Tensor:
        return M.Tril.apply(self, k=spelled("tril", "k", k, "diagonal", diagonal, 0), upper=False)

    def triu(self, k: int | None = None, *, diagonal: int | None = None) -> Tensor:
        return M.Tril.apply(self, k=spelled("triu", "k", k, "diagonal", diagonal, 0), upper=True)

    def masked_fill(self, mask: Any, value: float) -> Tensor:
        return M.masked_fill(self, mask, value)

    def split(self, split_size_or_sections: int | Sequence[int], axis: int | None = None, *,
              dim: int | None = None) -> list[Tensor]:
        return M.split(self, split_size_or_sections, axis, dim=dim)

    def chunk(self, chunks: int, axis: int | None = None, *, dim: int | None = None) -> list[Tensor]:
        return M.chunk(self, chunks, axis, dim=dim)

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index: Any) -> Tensor:
        return I.getitem(self, index)

    def gather(self, dim: int, index: Any) -> Tensor:
        """PyTorch's gather (its order and rule); `take_along_axis` is the same op in NumPy's."""
        return I.gather(self, dim, index)

    def take_along_axis(self, index: Any, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        """NumPy's take_along_axis (its order and broadcasting rule); `gather` is the same op in PyTorch's."""
        return I.take_along_axis(self, index, axis, dim=dim)

    # ---------------------------------------------------------------- devices
    def to(self, *args: Any, dtype: Any = None, device: str | None = None) -> Tensor:
        """This tensor on another device and/or as another dtype, as PyTorch's `to`: `x.to("cuda")`,
        `x.to(tg.float64)`, `x.to("cuda", tg.float64)`, or `x.to(other)` (other's device and dtype).
        A string is a device name; anything else a dtype. Differentiable; `self` when nothing changes."""
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str):
                device = a
            else:
                dtype = a
        out = self if device is None or device == self.device else M.ToDevice.apply(self, device=device)
        return out if dtype is None else out.astype(dtype)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        """A copy on the GPU (CuPy); a clear error when no usable GPU is present."""
        return self.to("cuda")


class RemovableHandle:
    """Returned by `register_hook`; `.remove()` (safe to call twice) unregisters the hook."""

    def __init__(self, hooks: list[Any], hook: Any) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    __call__ = remove  # older code called the returned object directly


def _init(t: Tensor, data: Any, requires_grad: bool, device: str) -> None:
    t.data, t.requires_grad, t.device = data, requires_grad, device
    t.grad = t._ctx = t._vc = t._hooks = t.name = None
    t._tangent = None  # forward mode: the directional derivative carried along (see forward_mode.py)
    t._retains_grad = False


_new_tensor = object.__new__


# ---------------------------------------------------------------------- fast paths
# Each one skips general machinery in a common case and must give what the reference gives;
# tests/test_fast_paths.py checks each against its reference.
def _operands_fast_path(a: Tensor, other: Any, true_div: bool) -> tuple[Tensor, Tensor] | None:
    """`_operands` for the cases of almost every arithmetic op (backward included), without
    `_const` and `_promote`; None for every other case. Two tensors of one dtype; a float tensor
    with a bool mask (NumPy keeps the float dtype, so no cast is needed); a float tensor with a
    Python scalar, which takes the tensor's dtype."""
    if type(other) is Tensor and not true_div:
        if other.data.dtype is a.data.dtype:
            return a, other
        if other.data.dtype.kind == "b" and a.data.dtype.kind == "f":
            return a, other
    if (type(other) is float or type(other) is int) and a.data.dtype.kind == "f":
        xp = _XP.get(a.device) or a.xp
        return a, Tensor._make(xp.asarray(other, dtype=a.data.dtype), False, a.device)
    return None


def _promote(a: Tensor, b: Tensor, true_div: bool = False) -> tuple[Tensor, Tensor]:
    """The operands of an arithmetic op, with PyTorch's dtype rule: a float operand decides the
    result dtype and an integer/bool one joins it. NumPy alone would turn int64 with float32 into
    float64, so `arange(5) * 0.5` would silently leave the float32 training default. True division
    of two integer tensors gives the default float (as PyTorch), not NumPy's float64."""
    fa, fb = dtypes.is_floating(a.dtype), dtypes.is_floating(b.dtype)
    if fa and not fb:
        return a, b.astype(a.dtype)
    if fb and not fa:
        return a.astype(b.dtype), b
    if true_div and not fa and not fb:
        return a.astype(dtypes.DEFAULT_FLOAT), b.astype(dtypes.DEFAULT_FLOAT)
    return a, b


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _index_data(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_data(i) for i in index)
    return _data(index)


def as_tensor(x: Any, like: Tensor | None = None) -> Tensor:
    """`x` if it is already a Tensor, else a constant Tensor (matching `like`'s dtype/device)."""
    if isinstance(x, Tensor):
        return x
    if like is not None:
        return like._const(x)
    return Tensor(x)


def tensors(xs: Iterable[Any]) -> list[Tensor]:
    return [as_tensor(x) for x in xs]


# The op modules import Tensor from this module, so they are imported after it is defined.
from .ops import elementwise as E  # noqa: E402
from .ops import indexing as I  # noqa: E402
from .ops import linalg as L  # noqa: E402
from .ops import movement as M  # noqa: E402
from .ops import reduce as R  # noqa: E402
