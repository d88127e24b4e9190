"""Forward mode: carry each value's tangent along with it (dual numbers).

A `Dual` holds a primal array x and a tangent array ẋ: the derivative of x along one chosen
direction v of the inputs. Every op computes its output and, right next to it, the output's
tangent by the chain rule applied *forwards* (the op's JVP rule):

    y = f(x)        ẏ = f'(x) · ẋ

After one pass the output's tangent is J·v, a Jacobian-vector product. No graph is recorded and
nothing runs backwards; the tangent costs a small constant times the forward pass. One pass
gives one *column* of the Jacobian (reverse mode gives one *row*, vᵀ·J, per backward pass), so
forward mode wins when a function has few inputs and many outputs.

A tangent of `None` is a symbolic zero: constants (a weight we do not differentiate, a mask, a
literal) add no terms, so `x @ W` with a constant W costs one extra matmul, not two.

Broadcasting needs no special rule here: a tangent is broadcast exactly like its value. (Reverse
mode must *sum* gradients back over broadcast axes; forward mode never goes that way.)

    out, tangent = jvp(lambda x, w: (x @ w).tanh().sum(axis=1), (x, w), (vx, vw))
    J = jacobian(f, x, mode="fwd")      # one JVP per input element
"""
from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import dtypes
from .autograd import grad as reverse_grad
from .backend import get_backend
from .grad_mode import no_grad
from .ops.reduce import normalize_axis
from .tensor import Tensor

Array = Any  # a backend array (numpy.ndarray on CPU)


def _add(*terms: Array | None) -> Array | None:
    """Sum of tangent terms, skipping symbolic zeros (None)."""
    out = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out


def _map(t: Array | None, fn: Callable[[Array], Array]) -> Array | None:
    """Apply a linear map to a tangent; the zero tangent stays zero."""
    return None if t is None else fn(t)


class Dual:
    """(primal, tangent): a value and its directional derivative. Mirrors the Tensor API for the
    ops that have a tangent rule; anything else raises a clear AttributeError."""

    __slots__ = ("primal", "tangent", "device")
    __array_ufunc__ = None  # `ndarray <op> Dual` defers to Dual's reflected operator

    def __init__(self, primal: Array, tangent: Array | None = None, device: str = "cpu") -> None:
        if tangent is not None:
            if tangent.shape != primal.shape:  # e.g. x + c with a constant c broadcast larger
                tangent = get_backend(device).xp.broadcast_to(tangent, primal.shape)
            if tangent.dtype != primal.dtype:
                tangent = tangent.astype(primal.dtype)
        self.primal, self.tangent, self.device = primal, tangent, device

    # ------------------------------------------------------------------ plumbing
    @property
    def xp(self) -> Any:
        return get_backend(self.device).xp

    def _new(self, primal: Array, tangent: Array | None) -> Dual:
        return Dual(primal, tangent, self.device)

    def _const(self, value: Any) -> Dual:
        """A constant operand (zero tangent): a Tensor, array or Python number."""
        if isinstance(value, Dual):
            return value
        if isinstance(value, Tensor):
            return self._new(value.data, None)
        if isinstance(value, (bool, int, float)):
            dt = self.dtype  # a Python scalar takes the dual's dtype, as Tensor._const does
            if isinstance(value, float) and not dtypes.is_floating(dt):
                dt = dtypes.DEFAULT_FLOAT
            return self._new(self.xp.asarray(value, dtype=dt), None)
        return self._new(self.xp.asarray(value), None)

    def _chain(self, y: Array, local: Callable[[], Array]) -> Dual:
        """An elementwise op: ẏ = f'(x)·ẋ, with f'(x) = local() computed only if needed."""
        return self._new(y, None if self.tangent is None else self.tangent * local())

    def _linear(self, fn: Callable[[Array], Array]) -> Dual:
        """A linear op (reshape, sum, slicing, ...): it acts on the tangent as on the value."""
        return self._new(fn(self.primal), _map(self.tangent, fn))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.primal.shape

    @property
    def ndim(self) -> int:
        return self.primal.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.primal.dtype

    @property
    def size(self) -> int:
        return self.primal.size

    def __len__(self) -> int:
        return len(self.primal)

    def __repr__(self) -> str:
        return f"Dual(primal={self.primal!r}, tangent={self.tangent!r})"

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "a Dual cannot be turned into an array: some code treated a forward-mode value as a "
            "constant and would drop its tangent. Put the Dual on the left (`x @ W`, not `W @ x` "
            "with a Tensor W), pass the Tensor as a primal of jvp with a zero tangent, and use "
            "tinygrad_lite.forward_mode.where / concatenate / stack / maximum / minimum for the "
            "free functions."
        )

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"forward mode: `{name}` has no tangent rule (Dual supports the elementwise, "
            f"reduction, shape and matmul ops of Tensor; fused ops such as cross_entropy and "
            f"anything built on Function.apply only run in reverse mode)"
        )

    # ------------------------------------------------------------ binary ops
    def _binary(self, name: str, other: Any, fn: Callable[[Array, Array], Array]) -> tuple[Dual, Array]:
        o = self._const(other)
        try:
            return o, fn(self.primal, o.primal)
        except ValueError as e:
            raise ValueError(f"{name}: shapes {self.shape} and {o.shape} do not broadcast together") from e

    def __add__(self, other: Any) -> Dual:
        o, y = self._binary("add", other, operator.add)
        return self._new(y, _add(self.tangent, o.tangent))  # (a + b)' = ȧ + ḃ

    def __sub__(self, other: Any) -> Dual:
        o, y = self._binary("sub", other, operator.sub)
        return self._new(y, _add(self.tangent, _map(o.tangent, operator.neg)))

    def __mul__(self, other: Any) -> Dual:
        o, y = self._binary("mul", other, operator.mul)
        a, b = self.primal, o.primal
        return self._new(y, _add(_map(self.tangent, lambda t: t * b), _map(o.tangent, lambda t: a * t)))

    def __truediv__(self, other: Any) -> Dual:
        o, y = self._binary("div", other, operator.truediv)
        b = o.primal  # (a/b)' = ȧ/b - ḃ·a/b² = (ȧ - ḃ·y)/b
        return self._new(y, _map(_add(self.tangent, _map(o.tangent, lambda t: -t * y)), lambda t: t / b))

    def __pow__(self, other: Any) -> Dual:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            y = self.primal**other  # (x^k)' = k·x^(k-1)·ẋ
            return self._chain(y, lambda: other * self.primal ** (other - 1))
        o, y = self._binary("pow", other, operator.pow)
        a, b = self.primal, o.primal  # (a^b)' = b·a^(b-1)·ȧ + a^b·log(a)·ḃ
        return self._new(y, _add(_map(self.tangent, lambda t: t * b * a ** (b - 1)),
                                 _map(o.tangent, lambda t: t * y * self.xp.log(a))))

    def __matmul__(self, other: Any) -> Dual:
        o, y = self._binary("matmul", other, operator.matmul)
        a, b = self.primal, o.primal  # (A B)' = Ȧ B + A Ḃ  (the product rule, for matrices)
        return self._new(y, _add(_map(self.tangent, lambda t: t @ b), _map(o.tangent, lambda t: a @ t)))

    def __radd__(self, other: Any) -> Dual:
        return self._const(other) + self

    def __rsub__(self, other: Any) -> Dual:
        return self._const(other) - self

    def __rmul__(self, other: Any) -> Dual:
        return self._const(other) * self

    def __rtruediv__(self, other: Any) -> Dual:
        return self._const(other) / self

    def __rpow__(self, other: Any) -> Dual:
        return self._const(other) ** self

    def __rmatmul__(self, other: Any) -> Dual:
        return self._const(other) @ self

    add, sub, mul, div, pow, matmul = __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__

    def __neg__(self) -> Dual:
        return self._linear(operator.neg)

    def maximum(self, other: Any) -> Dual:
        return _select(self, self._const(other), operator.gt, self.xp.maximum)

    def minimum(self, other: Any) -> Dual:
        return _select(self, self._const(other), operator.lt, self.xp.minimum)

    # Comparisons give constant bool Tensors (no tangent), as they do for Tensor.
    def _compare(self, other: Any, fn: Callable[[Array, Array], Array]) -> Tensor:
        o = other.primal if isinstance(other, Dual) else other.data if isinstance(other, Tensor) else other
        return Tensor._make(fn(self.primal, o), False, self.device)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, operator.eq)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, operator.ne)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, operator.lt)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, operator.le)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, operator.gt)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, operator.ge)

    __hash__ = object.__hash__

    # ------------------------------------------------------------- unary ops
    def exp(self) -> Dual:
        y = self.xp.exp(self.primal)
        return self._chain(y, lambda: y)  # (e^x)' = e^x

    def log(self) -> Dual:
        return self._chain(self.xp.log(self.primal), lambda: 1.0 / self.primal)

    def sqrt(self) -> Dual:
        y = self.xp.sqrt(self.primal)
        return self._chain(y, lambda: 0.5 / y)

    def abs(self) -> Dual:
        return self._chain(self.xp.abs(self.primal), lambda: self.xp.sign(self.primal))

    def sin(self) -> Dual:
        return self._chain(self.xp.sin(self.primal), lambda: self.xp.cos(self.primal))

    def cos(self) -> Dual:
        return self._chain(self.xp.cos(self.primal), lambda: -self.xp.sin(self.primal))

    def tanh(self) -> Dual:
        y = self.xp.tanh(self.primal)
        return self._chain(y, lambda: 1.0 - y * y)

    def sigmoid(self) -> Dual:
        y = _sigmoid(self.xp, self.primal)
        return self._chain(y, lambda: y * (1.0 - y))

    def softplus(self) -> Dual:  # log(1 + e^x); derivative sigmoid(x)
        y = self.xp.logaddexp(self.dtype.type(0), self.primal)
        return self._chain(y, lambda: _sigmoid(self.xp, self.primal))

    def log_sigmoid(self) -> Dual:  # -softplus(-x); derivative sigmoid(-x)
        y = -self.xp.logaddexp(self.dtype.type(0), -self.primal)
        return self._chain(y, lambda: _sigmoid(self.xp, -self.primal))

    def relu(self) -> Dual:
        return self._chain(self.xp.maximum(self.primal, 0), lambda: self.primal > 0)

    def leaky_relu(self, negative_slope: float = 0.01) -> Dual:
        x = self.primal
        y = self.xp.where(x > 0, x, x * x.dtype.type(negative_slope))
        return self._chain(y, lambda: self.xp.where(x > 0, 1.0, negative_slope).astype(x.dtype))

    def silu(self) -> Dual:  # x·s(x); derivative s + x·s·(1 - s)
        s = _sigmoid(self.xp, self.primal)
        return self._chain(self.primal * s, lambda: s * (1.0 + self.primal * (1.0 - s)))

    def erf(self) -> Dual:
        x = self.primal
        y = get_backend(self.device).erf(x).astype(x.dtype, copy=False)
        return self._chain(y, lambda: (2.0 / math.sqrt(math.pi)) * self.xp.exp(-x * x))

    def gelu(self, approximate: str = "none") -> Dual:
        x = self.primal
        if approximate == "none":  # x·Φ(x); derivative Φ(x) + x·φ(x)
            cdf = 0.5 * (1.0 + get_backend(self.device).erf(x / math.sqrt(2.0)))
            y = (x * cdf).astype(x.dtype, copy=False)
            return self._chain(y, lambda: cdf + x * self.xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))
        if approximate == "tanh":  # 0.5·x·(1 + tanh(u)), u = c·(x + 0.044715·x³)
            c = math.sqrt(2.0 / math.pi)
            t = self.xp.tanh(c * (x + 0.044715 * x**3))
            y = 0.5 * x * (1.0 + t)
            return self._chain(y, lambda: 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * x * x))
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")

    def clip(self, min: float | None = None, max: float | None = None) -> Dual:  # noqa: A002
        x = self.primal  # derivative 1 inside [min, max] (boundaries included), 0 outside
        inside = self.xp.ones(x.shape, dtype=bool)
        if min is not None:
            inside &= x >= min
        if max is not None:
            inside &= x <= max
        return self._chain(self.xp.clip(x, min, max), lambda: inside)

    clamp = clip

    def square(self) -> Dual:
        return self * self

    def reciprocal(self) -> Dual:
        return 1.0 / self

    def astype(self, dtype: Any) -> Dual:
        dtype = dtypes.to_dtype(dtype)
        if not dtypes.is_floating(dtype):  # integers carry no derivative
            return self._new(self.primal.astype(dtype), None)
        return self._linear(lambda a: a.astype(dtype))

    def float(self) -> Dual:
        return self.astype(dtypes.float32)

    def double(self) -> Dual:
        return self.astype(dtypes.float64)

    def detach(self) -> Dual:
        return self._new(self.primal, None)

    # ------------------------------------------------------------ reductions
    def sum(self, axis: Any = None, keepdims: bool = False) -> Dual:
        axes = normalize_axis(axis, self.ndim, "sum")
        return self._linear(lambda a: a.sum(axis=axes, keepdims=keepdims))

    def mean(self, axis: Any = None, keepdims: bool = False) -> Dual:
        axes = normalize_axis(axis, self.ndim, "mean")
        count = math.prod(self.shape[a] for a in axes)
        if count == 0:
            raise ValueError(f"mean: reducing an empty axis of shape {self.shape}")
        return self._linear(lambda a: a.sum(axis=axes, keepdims=keepdims) / count)

    def max(self, axis: Any = None, keepdims: bool = False) -> Dual:
        axes = normalize_axis(axis, self.ndim, "max")
        x = self.primal
        y = x.max(axis=axes, keepdims=True)
        # The max moves with the arg-max element; ties share evenly (as the reverse rule does).
        is_max = x == y
        share = is_max / is_max.sum(axis=axes, keepdims=True)
        t = _map(self.tangent, lambda t: (t * share).sum(axis=axes, keepdims=keepdims))
        return self._new(y if keepdims else y.reshape(_drop(y.shape, axes)), t)

    def min(self, axis: Any = None, keepdims: bool = False) -> Dual:
        return -(-self).max(axis, keepdims)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Dual:
        axes = normalize_axis(axis, self.ndim, "var")
        count = math.prod(self.shape[a] for a in axes)
        if count - ddof <= 0:
            raise ValueError(f"var: {count} elements with ddof={ddof} leaves no degrees of freedom")
        centered = self - self.mean(axis=axes, keepdims=True)  # composed: no rule of its own
        return (centered * centered).sum(axis=axes, keepdims=keepdims) * (1.0 / (count - ddof))

    def std(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Dual:
        return self.var(axis, keepdims, ddof).sqrt()

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> Dual:
        axes = normalize_axis(axis, self.ndim, "logsumexp")
        x = self.primal
        m = x.max(axis=axes, keepdims=True)
        y = self.xp.log(self.xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
        # d logsumexp = Σ softmax(x)·ẋ
        t = _map(self.tangent, lambda t: (self.xp.exp(x - y) * t).sum(axis=axes, keepdims=keepdims))
        return self._new(y if keepdims else y.reshape(_drop(y.shape, axes)), t)

    def softmax(self, axis: int = -1) -> Dual:
        axis = normalize_axis(axis, self.ndim, "softmax")[0]
        e = self.xp.exp(self.primal - self.primal.max(axis=axis, keepdims=True))
        s = e / e.sum(axis=axis, keepdims=True)
        # ṡ = s·(ẋ - Σ s·ẋ): the Jacobian diag(s) - s sᵀ applied to ẋ
        return self._new(s, _map(self.tangent, lambda t: s * (t - (s * t).sum(axis=axis, keepdims=True))))

    def log_softmax(self, axis: int = -1) -> Dual:
        axis = normalize_axis(axis, self.ndim, "log_softmax")[0]
        shifted = self.primal - self.primal.max(axis=axis, keepdims=True)
        y = shifted - self.xp.log(self.xp.exp(shifted).sum(axis=axis, keepdims=True))
        s = self.xp.exp(y)
        return self._new(y, _map(self.tangent, lambda t: t - (s * t).sum(axis=axis, keepdims=True)))

    # -------------------------------------------------- shape and movement
    # All linear: the tangent moves exactly like the value.
    def reshape(self, *shape: Any) -> Dual:
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        try:
            return self._linear(lambda a: a.reshape(shape))
        except ValueError as e:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {self.shape} into {shape}") from e

    view = reshape

    def permute(self, *axes: Any) -> Dual:
        axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return self._linear(lambda a: a.transpose(axes))

    def transpose(self, axis0: int = -2, axis1: int = -1) -> Dual:
        return self._linear(lambda a: self.xp.swapaxes(a, axis0, axis1))

    swapaxes = transpose

    @property
    def T(self) -> Dual:
        return self._linear(lambda a: a.T)

    def expand(self, *shape: Any) -> Dual:
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        lead = len(shape) - self.ndim
        shape = tuple(self.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(shape))
        return self._linear(lambda a: self.xp.broadcast_to(a, shape))

    broadcast_to = expand

    def squeeze(self, axis: Any = None) -> Dual:
        axes = None if axis is None else normalize_axis(axis, self.ndim, "squeeze")
        return self._linear(lambda a: a.squeeze(axis=axes))

    def unsqueeze(self, axis: int) -> Dual:
        return self._linear(lambda a: self.xp.expand_dims(a, axis))

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Dual:
        if self.ndim == 0:
            return self.reshape(1)
        s = normalize_axis(start_axis, self.ndim, "flatten")[0]
        e = normalize_axis(end_axis, self.ndim, "flatten")[0]
        return self.reshape(self.shape[:s] + (math.prod(self.shape[s : e + 1]),) + self.shape[e + 1 :])

    def __getitem__(self, index: Any) -> Dual:
        items = index if isinstance(index, tuple) else (index,)
        idx = tuple(i.data if isinstance(i, Tensor) else i for i in items)
        return self._linear(lambda a: a[idx])

    def take_along_axis(self, index: Any, axis: int) -> Dual:
        idx = index.data if isinstance(index, Tensor) else self.xp.asarray(index)
        return self._linear(lambda a: self.xp.take_along_axis(a, idx, axis))

    def pad(self, pad_width: Any, value: float = 0.0) -> Dual:
        y = self.xp.pad(self.primal, pad_width, mode="constant", constant_values=value)
        return self._new(y, _map(self.tangent, lambda t: self.xp.pad(t, pad_width, mode="constant")))

    def tril(self, k: int = 0) -> Dual:
        return self._linear(lambda a: self.xp.tril(a, k))

    def triu(self, k: int = 0) -> Dual:
        return self._linear(lambda a: self.xp.triu(a, k))

    def masked_fill(self, mask: Any, value: float) -> Dual:
        m = mask.data if isinstance(mask, Tensor) else self.xp.asarray(mask)
        y = self.xp.where(m, self.dtype.type(value), self.primal)
        return self._new(y, _map(self.tangent, lambda t: self.xp.where(m, 0, t)))

    def split(self, split_size_or_sections: int | Sequence[int], axis: int = 0) -> list[Dual]:
        axis = normalize_axis(axis, self.ndim, "split")[0]
        n = self.shape[axis]
        if isinstance(split_size_or_sections, int):
            sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
        else:
            sizes = list(split_size_or_sections)
        bounds = np.cumsum([0] + sizes)
        lead = (slice(None),) * axis
        return [self[lead + (slice(int(b), int(e)),)] for b, e in zip(bounds[:-1], bounds[1:])]

    def chunk(self, chunks: int, axis: int = 0) -> list[Dual]:
        n = self.shape[normalize_axis(axis, self.ndim, "chunk")[0]]
        return self.split(max(1, -(-n // chunks)), axis)


# --------------------------------------------------------------- helpers
def _sigmoid(xp: Any, x: Array) -> Array:
    e = xp.exp(-xp.abs(x))  # never overflows
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _drop(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _select(x: Dual, y: Dual, x_wins: Callable[[Array, Array], Array], pick: Callable[[Array, Array], Array]) -> Dual:
    """maximum / minimum: the tangent of whichever operand is chosen; ties take the average
    (the same convention as the reverse rule, and what a central difference sees)."""
    a, b = x.primal, y.primal
    share = (x_wins(a, b) + 0.5 * (a == b)).astype(np.result_type(a, b))
    return x._new(pick(a, b), _add(_map(x.tangent, lambda t: t * share), _map(y.tangent, lambda t: t * (1 - share))))


def _lift_all(xs: Sequence[Any]) -> list[Dual]:
    ref = next((x for x in xs if isinstance(x, Dual)), None)
    if ref is None:
        raise TypeError("forward_mode: expected at least one Dual among the operands")
    return [ref._const(x) for x in xs]


def where(cond: Any, x: Any, y: Any) -> Dual:
    """Elementwise `x if cond else y`; the tangent is picked the same way."""
    x, y = _lift_all([x, y])
    c = cond.data if isinstance(cond, Tensor) else x.xp.asarray(cond)
    t = None
    if x.tangent is not None or y.tangent is not None:
        tx = x.tangent if x.tangent is not None else 0  # a symbolic zero becomes a real 0 here
        ty = y.tangent if y.tangent is not None else 0
        t = x.xp.where(c, tx, ty)
    return x._new(x.xp.where(c, x.primal, y.primal), t)


def maximum(a: Any, b: Any) -> Dual:
    a, b = _lift_all([a, b])
    return a.maximum(b)


def minimum(a: Any, b: Any) -> Dual:
    a, b = _lift_all([a, b])
    return a.minimum(b)


def matmul(a: Any, b: Any) -> Dual:
    a, b = _lift_all([a, b])
    return a @ b


def concatenate(xs: Sequence[Any], axis: int = 0) -> Dual:
    ds = _lift_all(list(xs))
    xp = ds[0].xp
    y = xp.concatenate([d.primal for d in ds], axis=axis)
    if all(d.tangent is None for d in ds):
        return ds[0]._new(y, None)
    t = xp.concatenate([d.tangent if d.tangent is not None else xp.zeros_like(d.primal) for d in ds], axis=axis)
    return ds[0]._new(y, t)


def stack(xs: Sequence[Any], axis: int = 0) -> Dual:
    return concatenate([d.unsqueeze(axis) for d in _lift_all(list(xs))], axis=axis)


# ------------------------------------------------------------------ public API
def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _array(x: Any) -> tuple[Array, str]:
    if isinstance(x, Tensor):
        return x.data, x.device
    return np.asarray(x), "cpu"


def _unpack(out: Any) -> tuple[Tensor, Tensor]:
    if isinstance(out, Dual):
        t = out.tangent if out.tangent is not None else out.xp.zeros_like(out.primal)
        return Tensor._make(out.primal, False, out.device), Tensor._make(out.xp.array(t), False, out.device)
    if isinstance(out, Tensor):  # the output does not depend on the primals: its tangent is zero
        return out.detach(), Tensor._make(out.xp.zeros_like(out.data), False, out.device)
    raise TypeError(f"jvp: the function must return Dual/Tensor values (or a tuple of them), got {type(out).__name__}")


def jvp(fn: Callable[..., Any], primals: Sequence[Any] | Any, tangents: Sequence[Any] | Any) -> tuple[Any, Any]:
    """Evaluate `fn(*primals)` and its Jacobian-vector product J·tangents in one forward pass.

    `fn` is written with Tensor methods (`x @ w`, `.tanh()`, `.sum(axis=1)`, ...); it receives
    `Dual` values. Returns `(outputs, output_tangents)` as constant Tensors, each a tuple when
    `fn` returns a tuple. Nothing is recorded and no backward pass runs.
    """
    primals, tangents = _as_tuple(primals), _as_tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; give one tangent per primal")
    duals = []
    for i, (x, v) in enumerate(zip(primals, tangents)):
        xa, device = _array(x)
        if not dtypes.is_floating(xa.dtype):
            raise TypeError(f"jvp: primal {i} has dtype {xa.dtype}; only floating-point inputs have tangents")
        va = None if v is None else _array(v)[0]
        if va is not None and va.shape != xa.shape:
            raise ValueError(f"jvp: tangent {i} has shape {va.shape} but its primal has shape {xa.shape}")
        duals.append(Dual(xa, va, device))
    with no_grad():  # if fn touches ordinary Tensors too, record nothing
        out = fn(*duals)
    if isinstance(out, (tuple, list)):
        pairs = [_unpack(o) for o in out]
        return tuple(p for p, _ in pairs), tuple(t for _, t in pairs)
    return _unpack(out)


def jacobian(fn: Callable[[Any], Any], x: Any, mode: str = "rev") -> Tensor:
    """The full Jacobian of `fn` at `x`, shaped `out.shape + x.shape`.

    mode="fwd": one JVP per input element (n forward passes, one column each).
    mode="rev": one forward pass, then one backward pass per output element (m rows).
    Forward mode is cheaper when n << m, reverse mode when n >> m (a loss: m = 1).
    """
    xa, device = _array(x)
    if not dtypes.is_floating(xa.dtype):
        raise TypeError(f"jacobian: x has dtype {xa.dtype}; only floating-point inputs have derivatives")
    xp = get_backend(device).xp
    if mode == "fwd":
        columns, out_shape = [], None
        for k in range(xa.size):
            e_k = xp.zeros(xa.size, dtype=xa.dtype)
            e_k[k] = 1
            out, tangent = jvp(fn, (Tensor._make(xa, False, device),), (e_k.reshape(xa.shape),))
            if not isinstance(out, Tensor):
                raise TypeError("jacobian: fn must return a single Tensor")
            columns.append(tangent.data.reshape(-1))
            out_shape = out.shape
        if out_shape is None:  # an empty input: evaluate once for the output shape
            out_shape = jvp(fn, (Tensor._make(xa, False, device),), (None,))[0].shape
        J = xp.stack(columns, axis=1) if columns else xp.zeros((math.prod(out_shape), 0), dtype=xa.dtype)
        return Tensor._make(J.reshape(out_shape + xa.shape), False, device)
    if mode == "rev":
        leaf = Tensor._make(xa.copy(), True, device)
        out = fn(leaf)
        if not isinstance(out, Tensor):
            raise TypeError("jacobian: fn must return a single Tensor")
        J = xp.zeros((out.size, xa.size), dtype=out.dtype)
        if out.requires_grad:
            for m in range(out.size):
                onehot = xp.zeros(out.size, dtype=out.dtype)
                onehot[m] = 1
                (g,) = reverse_grad(out, [leaf], grad_outputs=Tensor._make(onehot.reshape(out.shape), False, device),
                                    retain_graph=True, allow_unused=True)
                if g is not None:
                    J[m] = g.data.reshape(-1)
        return Tensor._make(J.reshape(out.shape + xa.shape), False, device)
    raise ValueError(f"jacobian: mode must be 'fwd' or 'rev', got {mode!r}")


__all__ = ["Dual", "jvp", "jacobian", "where", "maximum", "minimum", "matmul", "concatenate", "stack"]
