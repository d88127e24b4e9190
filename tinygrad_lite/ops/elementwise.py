"""Elementwise ops. Binary ops broadcast as NumPy does; `unbroadcast` sums gradients back.

Each backward is the local derivative times the incoming gradient `g` (the chain rule),
written with Tensor ops so it can itself be differentiated.
"""
from __future__ import annotations

import math
import operator
from typing import Any

from ..backend import get_backend
from ..function import Function, tangent_sum
from ..tensor import Tensor
from .broadcast import unbroadcast


def _binary(name: str, fn: Any, x: Tensor, y: Tensor) -> Any:
    # Python's operators (operator.add, ...) work on NumPy and CuPy arrays alike.
    try:
        return fn(x.data, y.data)
    except ValueError as e:
        raise ValueError(f"{name}: shapes {x.shape} and {y.shape} do not broadcast together") from e


def _const(x: Tensor, array: Any) -> Tensor:
    """A constant (no-grad) tensor on x's device: masks and other non-differentiable factors."""
    return Tensor._make(array, False, x.device)


# ------------------------------------------------------------------------- binary
class Add(Function):
    def forward(self, x: Tensor, y: Tensor) -> Any:
        return _binary("add", operator.add, x, y)

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, y = self.parents
        return (unbroadcast(g, x.shape) if x.requires_grad else None,
                unbroadcast(g, y.shape) if y.requires_grad else None)

    def jvp(self, dx: Any, dy: Any) -> Any:
        return tangent_sum(dx, dy)


class Sub(Function):
    def forward(self, x: Tensor, y: Tensor) -> Any:
        return _binary("sub", operator.sub, x, y)

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, y = self.parents
        return (unbroadcast(g, x.shape) if x.requires_grad else None,
                unbroadcast(-g, y.shape) if y.requires_grad else None)

    def jvp(self, dx: Any, dy: Any) -> Any:
        return tangent_sum(dx, None if dy is None else -dy)


class Mul(Function):
    def forward(self, x: Tensor, y: Tensor) -> Any:
        self.save_for_backward(x, y)
        return _binary("mul", operator.mul, x, y)

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, y = self.saved_tensors
        gx = unbroadcast(g * y, x.shape) if x.requires_grad else None
        gy = unbroadcast(g * x, y.shape) if y.requires_grad else None
        return gx, gy

    def jvp(self, dx: Any, dy: Any) -> Any:
        x, y = self.inputs
        return tangent_sum(None if dx is None else dx * y.data, None if dy is None else x.data * dy)


class Div(Function):
    def forward(self, x: Tensor, y: Tensor) -> Any:
        self.save_for_backward(x, y)
        return _binary("div", operator.truediv, x, y)

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, y = self.saved_tensors
        gx = unbroadcast(g / y, x.shape) if x.requires_grad else None
        gy = unbroadcast(-g * x / (y * y), y.shape) if y.requires_grad else None  # d(x/y)/dy = -x/y²
        return gx, gy

    def jvp(self, dx: Any, dy: Any) -> Any:
        y = self.inputs[1].data  # d(x/y) = dx/y - (x/y)·dy/y
        return tangent_sum(None if dx is None else dx / y, None if dy is None else -dy * self.result / y)


class Pow(Function):
    """x ** y with both tensors: d/dx = y·x^(y-1), d/dy = x^y·log(x) (defined for x > 0)."""

    saves_output = True

    def forward(self, x: Tensor, y: Tensor) -> Any:
        self.save_for_backward(x, y)
        return _binary("pow", x.xp.power, x, y)

    def backward(self, g: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, y = self.saved_tensors
        gx = unbroadcast(g * y * x ** (y - 1.0), x.shape) if x.requires_grad else None
        gy = unbroadcast(g * self.output * x.log(), y.shape) if y.requires_grad else None
        return gx, gy

    def jvp(self, dx: Any, dy: Any) -> Any:
        x, y = self.inputs[0].data, self.inputs[1].data  # d(x^y) = y·x^(y-1)·dx + x^y·log(x)·dy
        return tangent_sum(None if dx is None else dx * y * x ** (y - 1.0),
                           None if dy is None else dy * self.result * self.inputs[0].xp.log(x))


class PowScalar(Function):
    """x ** p for a Python number p: d/dx = p·x^(p-1)."""

    def forward(self, x: Tensor, exponent: float) -> Any:
        self.save_for_backward(x)
        self.p = exponent
        return x.data ** exponent

    def backward(self, g: Tensor) -> Tensor:
        (x,) = self.saved_tensors
        if self.p == 0:  # x**0 is the constant 1; the rule below would give 0·x^-1 = NaN at x = 0
            return g * 0.0
        if self.p == 2:
            return g * x * 2.0
        return g * (x ** (self.p - 1)) * float(self.p)

    def jvp(self, dx: Any) -> Any:
        if self.p == 0:  # the constant 1 (the same guard as backward)
            return None
        x = self.inputs[0].data
        return dx * x * 2.0 if self.p == 2 else dx * (x ** (self.p - 1)) * float(self.p)


class Maximum(Function):
    """Where x == y the gradient is split evenly: the average of the two one-sided slopes."""

    def forward(self, x: Tensor, y: Tensor) -> Any:
        self.save_for_backward(x, y)
        return _binary("maximum", x.xp.maximum, x, y)

    def backward(self, g: Tensor) -> tuple[Tensor, Tensor]:
        x, y = self.saved_tensors
        share_x = _const(x, ((x.data > y.data) + 0.5 * (x.data == y.data)).astype(g.dtype))
        return unbroadcast(g * share_x, x.shape), unbroadcast(g * (1.0 - share_x), y.shape)

    def jvp(self, dx: Any, dy: Any) -> Any:
        x, y = self.inputs[0].data, self.inputs[1].data  # the chosen operand's tangent; ties: the average
        share_x = ((x > y) + 0.5 * (x == y)).astype(self.result.dtype)
        return tangent_sum(None if dx is None else dx * share_x, None if dy is None else dy * (1.0 - share_x))


class Minimum(Function):
    def forward(self, x: Tensor, y: Tensor) -> Any:
        self.save_for_backward(x, y)
        return _binary("minimum", x.xp.minimum, x, y)

    def backward(self, g: Tensor) -> tuple[Tensor, Tensor]:
        x, y = self.saved_tensors
        share_x = _const(x, ((x.data < y.data) + 0.5 * (x.data == y.data)).astype(g.dtype))
        return unbroadcast(g * share_x, x.shape), unbroadcast(g * (1.0 - share_x), y.shape)

    def jvp(self, dx: Any, dy: Any) -> Any:
        x, y = self.inputs[0].data, self.inputs[1].data
        share_x = ((x < y) + 0.5 * (x == y)).astype(self.result.dtype)
        return tangent_sum(None if dx is None else dx * share_x, None if dy is None else dy * (1.0 - share_x))


class Where(Function):
    """where(cond, x, y): the gradient goes to x where cond holds and to y elsewhere."""

    def forward(self, x: Tensor, y: Tensor, cond: Any) -> Any:
        self.shapes = x.shape, y.shape
        self.cond = cond
        try:
            return x.xp.where(cond, x.data, y.data)
        except ValueError as e:
            raise ValueError(
                f"where: condition {cond.shape}, x {x.shape} and y {y.shape} do not broadcast together"
            ) from e

    def backward(self, g: Tensor) -> tuple[Tensor, Tensor]:
        gx = g * _const(g, self.cond)
        gy = g * _const(g, ~self.cond)
        return unbroadcast(gx, self.shapes[0]), unbroadcast(gy, self.shapes[1])

    def jvp(self, dx: Any, dy: Any) -> Any:
        return self.inputs[0].xp.where(self.cond, 0 if dx is None else dx, 0 if dy is None else dy)


def where(cond: Any, x: Any, y: Any) -> Tensor:
    """Elementwise `x if cond else y`, differentiable in x and y."""
    ref = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else Tensor(x)
    x, y = ref._const(x), ref._const(y)
    cond = cond.data if isinstance(cond, Tensor) else get_backend(ref.device).xp.asarray(cond)
    if cond.dtype.kind != "b":
        raise TypeError(f"where: the condition must be a bool tensor, got {cond.dtype}")
    return Where.apply(x, y, cond=cond)


# -------------------------------------------------------------------------- unary
class Neg(Function):
    def forward(self, x: Tensor) -> Any:
        return -x.data

    def backward(self, g: Tensor) -> Tensor:
        return -g

    def jvp(self, dx: Any) -> Any:
        return -dx


class Exp(Function):
    saves_output = True

    def forward(self, x: Tensor) -> Any:
        return x.xp.exp(x.data)

    def backward(self, g: Tensor) -> Tensor:
        return g * self.output  # d e^x = e^x

    def jvp(self, dx: Any) -> Any:
        return dx * self.result


class Log(Function):
    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        return x.xp.log(x.data)

    def backward(self, g: Tensor) -> Tensor:
        return g / self.saved_tensors[0]

    def jvp(self, dx: Any) -> Any:
        return dx / self.inputs[0].data


class Sqrt(Function):
    saves_output = True

    def forward(self, x: Tensor) -> Any:
        return x.xp.sqrt(x.data)

    def backward(self, g: Tensor) -> Tensor:
        return g / (self.output * 2.0)  # d sqrt(x) = 1 / (2 sqrt(x))

    def jvp(self, dx: Any) -> Any:
        return dx / (2.0 * self.result)


class Abs(Function):
    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        return x.xp.abs(x.data)

    def backward(self, g: Tensor) -> Tensor:
        return g * self.saved_tensors[0].sign()

    def jvp(self, dx: Any) -> Any:
        return dx * self.inputs[0].xp.sign(self.inputs[0].data)


class Sin(Function):
    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        return x.xp.sin(x.data)

    def backward(self, g: Tensor) -> Tensor:
        return SinGrad.apply(g, self.saved_tensors[0])  # g·cos(x) in one op

    def jvp(self, dx: Any) -> Any:
        return dx * self.inputs[0].xp.cos(self.inputs[0].data)


class SinGrad(Function):
    """sin's backward, g·cos(x), as a single op (see TanhGrad): one op in the backward graph instead
    of two (cos, then mul). Differentiable:  ∂/∂g = cos(x),  ∂/∂x = -g·sin(x)."""

    def forward(self, g: Tensor, x: Tensor) -> Any:
        self.save_for_backward(g, x)
        return g.data * x.xp.cos(x.data)

    def backward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        g, x = self.saved_tensors
        return h * x.cos(), -(h * g * x.sin())

    def jvp(self, dg: Any, dx: Any) -> Any:
        g, x = self.inputs[0].data, self.inputs[1].data
        xp = self.inputs[0].xp
        return tangent_sum(None if dg is None else dg * xp.cos(x), None if dx is None else -g * xp.sin(x) * dx)


class Cos(Function):
    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        return x.xp.cos(x.data)

    def backward(self, g: Tensor) -> Tensor:
        return CosGrad.apply(g, self.saved_tensors[0])  # -g·sin(x) in one op

    def jvp(self, dx: Any) -> Any:
        return -dx * self.inputs[0].xp.sin(self.inputs[0].data)


class CosGrad(Function):
    """cos's backward, -g·sin(x), as a single op:  ∂/∂g = -sin(x),  ∂/∂x = -g·cos(x)."""

    def forward(self, g: Tensor, x: Tensor) -> Any:
        self.save_for_backward(g, x)
        return -(g.data * x.xp.sin(x.data))

    def backward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        g, x = self.saved_tensors
        return -(h * x.sin()), -(h * g * x.cos())

    def jvp(self, dg: Any, dx: Any) -> Any:
        g, x = self.inputs[0].data, self.inputs[1].data
        xp = self.inputs[0].xp
        return tangent_sum(None if dg is None else -dg * xp.sin(x), None if dx is None else -g * xp.cos(x) * dx)


class Tanh(Function):
    saves_output = True

    def forward(self, x: Tensor) -> Any:
        return x.xp.tanh(x.data)

    def backward(self, g: Tensor) -> Tensor:
        return TanhGrad.apply(g, self.output)  # g·(1 - t²) in one op

    def jvp(self, dx: Any) -> Any:
        return dx * (1.0 - self.result * self.result)


class TanhGrad(Function):
    """tanh's backward, g·(1 - t²) with t = tanh(x), as a single op: one pass over the data instead
    of three Tensor ops. It is an ordinary Function, so it has its own (Tensor-op) backward and
    second derivatives still work:  ∂/∂g = 1 - t²,  ∂/∂t = -2·g·t."""

    def forward(self, g: Tensor, t: Tensor) -> Any:
        self.save_for_backward(g, t)
        # g - g·t² rather than g·(1 - t²): the same value, but no Python scalar for NumPy to convert
        # on every call, which on small arrays costs about as much as the arithmetic.
        gt = g.data * t.data
        return g.data - gt * t.data

    def backward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        g, t = self.saved_tensors
        return h * (1.0 - t * t), h * g * t * -2.0

    def jvp(self, dg: Any, dt: Any) -> Any:
        g, t = self.inputs[0].data, self.inputs[1].data
        return tangent_sum(None if dg is None else dg * (1.0 - t * t), None if dt is None else -2.0 * g * t * dt)


def stable_sigmoid(xp: Any, x: Any) -> Any:
    """1/(1+e^-x) without overflow: exp is only ever taken of -|x| <= 0."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


class Sigmoid(Function):
    saves_output = True

    def forward(self, x: Tensor) -> Any:
        return stable_sigmoid(x.xp, x.data)

    def backward(self, g: Tensor) -> Tensor:
        return SigmoidGrad.apply(g, self.output)  # g·s·(1 - s) in one op

    def jvp(self, dx: Any) -> Any:
        return dx * self.result * (1.0 - self.result)


class SigmoidGrad(Function):
    """sigmoid's backward, g·s·(1 - s), as a single op (see TanhGrad):
    ∂/∂g = s·(1 - s),  ∂/∂s = g·(1 - 2s)."""

    def forward(self, g: Tensor, s: Tensor) -> Any:
        self.save_for_backward(g, s)
        gs = g.data * s.data  # g·s - g·s·s: no Python scalar to convert (see TanhGrad)
        return gs - gs * s.data

    def backward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        g, s = self.saved_tensors
        return h * s * (1.0 - s), h * g * (1.0 - s * 2.0)

    def jvp(self, dg: Any, ds: Any) -> Any:
        g, s = self.inputs[0].data, self.inputs[1].data
        return tangent_sum(None if dg is None else dg * s * (1.0 - s), None if ds is None else g * (1.0 - 2.0 * s) * ds)


class Softplus(Function):
    """log(1 + e^x), computed as logaddexp(0, x) so it never overflows; derivative sigmoid(x)."""

    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        return x.xp.logaddexp(x.data.dtype.type(0), x.data)

    def backward(self, g: Tensor) -> Tensor:
        return g * self.saved_tensors[0].sigmoid()

    def jvp(self, dx: Any) -> Any:
        return dx * stable_sigmoid(self.inputs[0].xp, self.inputs[0].data)


class LogSigmoid(Function):
    """log(sigmoid(x)) = -softplus(-x); derivative sigmoid(-x)."""

    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        return -x.xp.logaddexp(x.data.dtype.type(0), -x.data)

    def backward(self, g: Tensor) -> Tensor:
        return g * (-self.saved_tensors[0]).sigmoid()

    def jvp(self, dx: Any) -> Any:
        return dx * stable_sigmoid(self.inputs[0].xp, -self.inputs[0].data)


class Relu(Function):
    # The mask comes from the output (out > 0 exactly where x > 0), so the input need not be kept
    # alive for backward: in an MLP, the pre-activation arrays are freed right after forward.
    saves_output = True

    def forward(self, x: Tensor) -> Any:
        return x.xp.maximum(x.data, 0)

    def backward(self, g: Tensor) -> Tensor:
        return g * _const(g, self.output.data > 0)

    def jvp(self, dx: Any) -> Any:
        return dx * (self.result > 0)


class LeakyRelu(Function):
    def forward(self, x: Tensor, slope: float) -> Any:
        self.save_for_backward(x)
        self.slope = slope
        return x.xp.where(x.data > 0, x.data, x.data * x.data.dtype.type(slope))

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved_tensors[0]
        return g * _const(g, x.xp.where(x.data > 0, 1.0, self.slope).astype(g.dtype))

    def jvp(self, dx: Any) -> Any:
        x = self.inputs[0].data
        return dx * self.inputs[0].xp.where(x > 0, 1.0, self.slope).astype(self.result.dtype)


class Clip(Function):
    """Gradient 1 inside [lo, hi] (boundaries included, as PyTorch), 0 outside."""

    def forward(self, x: Tensor, lo: float | None, hi: float | None) -> Any:
        self.save_for_backward(x)
        self.lo, self.hi = lo, hi
        return x.xp.clip(x.data, lo, hi)

    def backward(self, g: Tensor) -> Tensor:
        d = self.saved_tensors[0].data
        inside = g.xp.ones(d.shape, dtype=bool)
        if self.lo is not None:
            inside &= d >= self.lo
        if self.hi is not None:
            inside &= d <= self.hi
        return g * _const(g, inside)

    def jvp(self, dx: Any) -> Any:
        d = self.inputs[0].data
        inside = self.inputs[0].xp.ones(d.shape, dtype=bool)
        if self.lo is not None:
            inside &= d >= self.lo
        if self.hi is not None:
            inside &= d <= self.hi
        return dx * inside


class Erf(Function):
    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        return get_backend(x.device).erf(x.data).astype(x.dtype, copy=False)

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved_tensors[0]
        return g * (-(x * x)).exp() * (2.0 / math.sqrt(math.pi))  # d erf = 2/sqrt(pi) e^(-x²)

    def jvp(self, dx: Any) -> Any:
        x = self.inputs[0].data
        return dx * self.inputs[0].xp.exp(-(x * x)) * (2.0 / math.sqrt(math.pi))


class Gelu(Function):
    """GELU(x) = x·Φ(x), Φ the standard normal CDF. d/dx = Φ(x) + x·φ(x) (Hendrycks & Gimpel 2016)."""

    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        erf = get_backend(x.device).erf
        return (0.5 * x.data * (1.0 + erf(x.data * (1.0 / math.sqrt(2.0))))).astype(x.dtype, copy=False)

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved_tensors[0]
        cdf = ((x * (1.0 / math.sqrt(2.0))).erf() + 1.0) * 0.5
        pdf = (x * x * -0.5).exp() * (1.0 / math.sqrt(2.0 * math.pi))
        return g * (cdf + x * pdf)

    def jvp(self, dx: Any) -> Any:
        x = self.inputs[0].data
        cdf = 0.5 * (1.0 + get_backend(self.inputs[0].device).erf(x * (1.0 / math.sqrt(2.0))))
        pdf = self.inputs[0].xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return dx * (cdf + x * pdf)


_GELU_C = math.sqrt(2.0 / math.pi)


class GeluTanh(Function):
    """0.5·x·(1 + tanh(u)), u = sqrt(2/pi)·(x + 0.044715x³): the approximation GPT-2 used."""

    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        d = x.data
        return 0.5 * d * (1.0 + x.xp.tanh(_GELU_C * (d + 0.044715 * d * d * d)))

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved_tensors[0]
        t = ((x + x * x * x * 0.044715) * _GELU_C).tanh()
        du = (x * x * (3 * 0.044715) + 1.0) * _GELU_C
        return g * ((t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * du)

    def jvp(self, dx: Any) -> Any:
        x = self.inputs[0].data
        t = self.inputs[0].xp.tanh(_GELU_C * (x + 0.044715 * x * x * x))
        du = (1.0 + 3 * 0.044715 * x * x) * _GELU_C
        return dx * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)


class Silu(Function):
    """x·sigmoid(x); d/dx = s + x·s·(1 - s) with s = sigmoid(x)."""

    def forward(self, x: Tensor) -> Any:
        self.save_for_backward(x)
        return x.data * stable_sigmoid(x.xp, x.data)

    def backward(self, g: Tensor) -> Tensor:
        x = self.saved_tensors[0]
        s = x.sigmoid()
        return g * s * (x * (1.0 - s) + 1.0)

    def jvp(self, dx: Any) -> Any:
        x = self.inputs[0].data
        s = stable_sigmoid(self.inputs[0].xp, x)
        return dx * (s + x * s * (1.0 - s))
