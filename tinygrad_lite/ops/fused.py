"""Fused ops: several steps in one Function with hand-derived backward and jvp rules on raw arrays.

They are the fast path: one pass, no intermediate graph nodes. Their backward is not written
with Tensor ops, so they refuse double backward (`double_backward = False`); use the composed
version (e.g. `-(log_softmax(x) * onehot).sum()`) when you need higher-order gradients.

Where the device has a compiled kernel for an op (`get_backend(device).kernel(name, dtype)`: Numba
on the CPU, Numba CUDA on the GPU, see kernels/__init__.py), the op calls it; otherwise it runs the
xp code written here, which is the reference the kernels are tested against.
"""
from __future__ import annotations

import math
from typing import Any

from ..backend import get_backend
from ..function import Function, tangent_sum
from ..tensor import Tensor
from .reduce import log_softmax_array, softmax_array


class CrossEntropy(Function):
    """Mean over non-ignored rows of -Σ_c q_c log softmax(x)_c, with q the (smoothed) target.

    q = (1-ε)·onehot(y) + ε/C (label smoothing, Szegedy et al. 2016). Since Σ_c q_c = 1, the
    gradient with respect to the logits is simply softmax(x) - q, per row, divided by N.

    With a compiled kernel (the GPU's) forward keeps only each row's logsumexp, not log-softmax.
    """

    double_backward = False

    def forward(self, logits: Tensor, target: Any, ignore_index: int, label_smoothing: float, reduction: str) -> Any:
        xp = logits.xp
        x = logits.data.reshape(-1, logits.shape[-1])
        y = target.reshape(-1)
        keep = y != ignore_index
        y_safe = xp.where(keep, y, 0)
        n_classes = x.shape[1]
        if y.size and keep.any() and (int(y_safe.min()) < 0 or int(y_safe.max()) >= n_classes):
            raise IndexError(
                f"cross_entropy: targets must lie in [0, {n_classes}) or equal ignore_index={ignore_index}, "
                f"got range [{int(y[keep].min())}, {int(y[keep].max())}]"
            )
        self.y_safe, self.keep, self.rows = y_safe, keep, xp.arange(x.shape[0])
        self.eps, self.reduction, self.shape, self.ignore_index = label_smoothing, reduction, logits.shape, ignore_index
        backend = get_backend(logits.device)
        self.backward_kernel = backend.kernel("cross_entropy_backward", x.dtype)
        kernel = backend.kernel("cross_entropy_forward", x.dtype) if self.backward_kernel else None
        if kernel is not None:  # per-row loss and logsumexp in one compiled pass
            nll, self.lse = kernel(x, y, ignore_index, label_smoothing)
            self.x, self.y, self.logp = x, y, None
        else:
            self.logp = logp = log_softmax_array(xp, x, axis=1)
            nll = -logp[self.rows, y_safe]
            if label_smoothing:
                nll = (1.0 - label_smoothing) * nll - label_smoothing * logp.mean(axis=1)
            nll = xp.where(keep, nll, 0.0).astype(x.dtype, copy=False)
        count = int(keep.sum())
        if reduction == "none":
            return nll.reshape(logits.shape[:-1])
        if reduction == "sum":
            self.scale = 1.0
            return nll.sum()
        self.scale = 1.0 / max(count, 1)
        return (nll.sum() * self.scale).astype(x.dtype)

    def backward(self, g: Tensor) -> Tensor:
        xp = g.xp
        if self.logp is None:  # the compiled path: each row's gradient is scaled by its incoming gradient
            rows = g.data.reshape(-1) if self.reduction == "none" else \
                xp.full(self.x.shape[0], g.data * self.scale, dtype=self.x.dtype)
            grad = self.backward_kernel(self.x, self.y, self.lse, rows, self.ignore_index, self.eps)
            return Tensor._make(grad.reshape(self.shape), False, g.device)
        grad = xp.exp(self.logp)  # softmax
        n_classes = grad.shape[1]
        if self.eps:
            grad -= self.eps / n_classes
        grad[self.rows, self.y_safe] -= 1.0 - self.eps
        grad *= self.keep[:, None]
        if self.reduction == "none":
            grad *= g.data.reshape(-1, 1)
        else:
            grad *= g.data * self.scale
        return Tensor._make(grad.reshape(self.shape), False, g.device)

    def jvp(self, dlogits: Any) -> Any:
        # d(nll) = Σ_c (softmax(x)_c - q_c)·dx_c per row: backward's rows, taken along dx
        xp, eps = self.inputs[0].xp, self.eps
        dx = dlogits.reshape(-1, self.shape[-1])
        softmax = xp.exp(self.logp) if self.logp is not None else xp.exp(self.x - self.lse[:, None])
        d = (softmax * dx).sum(axis=1) - (1.0 - eps) * dx[self.rows, self.y_safe]
        if eps:
            d -= eps * dx.mean(axis=1)  # the ε/C spread over every class
        d = xp.where(self.keep, d, 0.0)
        return d.reshape(self.shape[:-1]) if self.reduction == "none" else d.sum() * self.scale


class LayerNorm(Function):
    """y = x̂·w + b over the last axis, with x̂ = (x - mean) / sqrt(var + eps) (Ba et al. 2016).

    With N features, r = 1/sqrt(var + eps) and ĝ = g·w (the gradient reaching x̂), the chain rule
    through the mean and the variance collapses to one line per input:
        dx = r · (ĝ - mean(ĝ) - x̂ · mean(ĝ · x̂))
        dw = Σ_rows g · x̂          db = Σ_rows g

    The xp code below is the reference; where the device has the kernels (Numba on the CPU, CUDA
    on the GPU) the same math runs as one compiled pass per row (`layer_norm_forward` / `_backward`).
    """

    double_backward = False

    def forward(self, x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Any:
        self.save_for_backward(weight)  # its version is checked: an in-place update would corrupt dx
        backend = get_backend(x.device)
        self.backward_kernel = backend.kernel("layer_norm_backward", x.dtype)  # both paths save x̂ and rstd
        kernel = backend.kernel("layer_norm_forward", x.dtype)
        if kernel is not None:
            y, self.xhat, self.rstd = kernel(x.data, weight.data, bias.data, eps)
            return y
        xp = x.xp
        mean = x.data.mean(axis=-1, keepdims=True)
        centered = x.data - mean
        rstd = 1.0 / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
        self.xhat, self.rstd = centered * rstd, rstd
        return self.xhat * weight.data + bias.data

    def backward(self, g: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, bias = self.parents
        gy, xhat = g.data, self.xhat
        lead = tuple(range(gy.ndim - 1))  # every axis but the features: the rows of the batch
        gx = gw = gb = None
        if self.backward_kernel is not None:
            gx, gw, gb = self.backward_kernel(gy, xhat, self.rstd, self.saved_tensors[0].data, want_gx=x.requires_grad)
            return tuple(None if a is None or not t.requires_grad else Tensor._make(a, False, g.device)
                         for a, t in ((gx, x), (gw, weight), (gb, bias)))
        if x.requires_grad:
            gxhat = gy * self.saved_tensors[0].data
            inner = gxhat.mean(axis=-1, keepdims=True) + xhat * (gxhat * xhat).mean(axis=-1, keepdims=True)
            gx = Tensor._make(self.rstd * (gxhat - inner), False, g.device)
        if weight.requires_grad:
            gw = Tensor._make((gy * xhat).sum(axis=lead), False, g.device)
        if bias.requires_grad:
            gb = Tensor._make(gy.sum(axis=lead), False, g.device)
        return gx, gw, gb

    def jvp(self, dx: Any, dw: Any, db: Any) -> Any:
        # dy = dx̂·w + x̂·dw + db, with dx̂ = r·(dx - mean(dx) - x̂·mean(x̂·dx)) (backward's operator: symmetric)
        xhat, dxhat = self.xhat, None
        if dx is not None:
            dxhat = self.rstd * (dx - dx.mean(axis=-1, keepdims=True) - xhat * (xhat * dx).mean(axis=-1, keepdims=True))
        return tangent_sum(None if dxhat is None else dxhat * self.inputs[1].data,
                           None if dw is None else xhat * dw, db)


class Linear(Function):
    """y = x·Wᵀ + b with W of shape (out, in), for x of shape (..., in).

    The leading axes are flattened into one, so forward and both weight gradients are single
    matrix products (one BLAS call each) instead of a batch of small ones:
        dx = g·W       dW = gᵀ·x (summed over every row)       db = Σ_rows g
    The backward is written with Tensor ops, so it stays differentiable (double backward works).
    """

    def forward(self, x: Tensor, weight: Tensor, *bias: Tensor) -> Any:
        self.save_for_backward(x, weight)
        rows = x.data.reshape(-1, x.shape[-1])
        out = rows @ weight.data.T
        if bias:
            out += bias[0].data
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, g: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = self.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g2 @ weight).reshape(x.shape) if x.requires_grad else None
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if weight.requires_grad else None
        if len(self.parents) == 2:
            return gx, gw
        gb = g2.sum(axis=0) if self.parents[2].requires_grad else None
        return gx, gw, gb

    def jvp(self, dx: Any, dw: Any, *db: Any) -> Any:
        x, w = self.inputs[0].data, self.inputs[1].data  # d(x·Wᵀ + b) = dx·Wᵀ + x·dWᵀ + db
        return tangent_sum(None if dx is None else dx @ w.T, None if dw is None else x @ dw.T, *db)


class FusedGelu(Function):
    """GELU(x) = x·Φ(x) with Φ the standard normal CDF; d/dx = Φ(x) + x·φ(x).

    The elementwise Gelu op evaluates erf again in its (differentiable) backward; here forward
    keeps Φ(x), so the costly erf runs once per element and backward is two multiplies and an exp.
    """

    double_backward = False

    def forward(self, x: Tensor) -> Any:
        self.x = x.data
        kernel = get_backend(x.device).kernel("gelu_forward", x.dtype)
        if kernel is not None:  # one compiled pass (a float32 erf); the same math as below
            y, self.cdf = kernel(x.data)
            return y
        erf = get_backend(x.device).erf
        self.cdf = (0.5 * (1.0 + erf(x.data * (1.0 / math.sqrt(2.0))))).astype(x.dtype, copy=False)
        return x.data * self.cdf

    def backward(self, g: Tensor) -> Tensor:
        grad = self._slope(g.xp)
        grad *= g.data
        return Tensor._make(grad, False, g.device)

    def jvp(self, dx: Any) -> Any:
        return self._slope(self.inputs[0].xp) * dx  # d(GELU) = (Φ(x) + x·φ(x))·dx

    def _slope(self, xp: Any) -> Any:
        """Φ(x) + x·φ(x) with φ(x) = exp(-x²/2)/√(2π): one new array, then in place."""
        x = self.x
        slope = x * x
        slope *= -0.5
        xp.exp(slope, out=slope)
        slope *= x
        slope *= 1.0 / math.sqrt(2.0 * math.pi)
        slope += self.cdf
        return slope


def _attention_forward(xp: Any, q: Any, k: Any, v: Any, scale: float, hide: Any, bias: Any,
                       keep: Any) -> tuple[Any, Any]:
    """(output, P) of attention on arrays q (..., L, E), k (..., S, E), v (..., S, Ev).

    `bias` (float, broadcastable to (..., L, S)) is added to the scores; `hide` (bool, the same)
    hides keys: True = may not look. A query that sees no key at all gets P = 0 and output 0, as
    PyTorch's scaled_dot_product_attention does, instead of softmax's 0/0 = NaN."""
    scores = q @ k.swapaxes(-1, -2)
    scores *= q.dtype.type(scale)  # in place, as every step below: no temporaries
    if bias is not None:
        scores += bias
    if hide is not None:
        xp.copyto(scores, -xp.inf, where=hide)  # `where` broadcasts: a (B, 1, 1, S) mask is not expanded
    # the all-hidden rows get P = 0, and so do their gradients
    p = softmax_array(xp, scores, axis=-1, in_place=True, masked=hide is not None or bias is not None)
    return (p if keep is None else p * keep) @ v, p


def _attention_backward(q: Any, k: Any, v: Any, p: Any, keep: Any, scale: float, g: Any) -> tuple[Any, Any, Any]:
    """(dq, dk, dv) from the forward's P and the output gradient g."""
    dv = (p if keep is None else p * keep).swapaxes(-1, -2) @ g
    dp = g @ v.swapaxes(-1, -2)
    if keep is not None:
        dp *= keep
    ds = dp  # dS = P ⊙ (dP - Σ_j dP ⊙ P), computed in place in dP's buffer
    ds -= (dp * p).sum(axis=-1, keepdims=True)
    ds *= p
    ds *= q.dtype.type(scale)
    return ds @ k, ds.swapaxes(-1, -2) @ q, dv


def _attention_jvp(q: Any, k: Any, v: Any, p: Any, keep: Any, scale: float, dq: Any, dk: Any, dv: Any) -> Any:
    """The output's tangent from the tangents dq, dk, dv (None: a constant) and the forward's P:
        dS = (dq·kᵀ + q·dkᵀ)·scale      dP = P ⊙ (dS - Σ_j P ⊙ dS)      dy = dP·v + P·dv
    (with dropout's `keep` applied to P and dP). Hidden keys have P = 0, so their dP is 0 too."""
    dy = None if dv is None else (p if keep is None else p * keep) @ dv
    ds = tangent_sum(None if dq is None else dq @ k.swapaxes(-1, -2), None if dk is None else q @ dk.swapaxes(-1, -2))
    if ds is not None:
        ds *= q.dtype.type(scale)  # in place: ds is a new array
        dp = p * (ds - (p * ds).sum(axis=-1, keepdims=True))
        dy = tangent_sum(dy, (dp if keep is None else dp * keep) @ v)
    return dy


class ScaledDotProductAttention(Function):
    """softmax(q·kᵀ·scale + bias, hidden keys masked) · v for q (..., L, E), k (..., S, E), v (..., S, Ev).

    With P the attention weights and G the output gradient:
        dv = Pᵀ·G      dP = G·vᵀ      dS = P ⊙ (dP - Σ_j dP ⊙ P)      dq = dS·k·scale   dk = dSᵀ·q·scale
    `hide` (optional, bool, broadcastable to P's shape): True = may not look (the causal mask, padding).
    `bias` (optional, float, the same): added to the scores; a constant, it gets no gradient.
    `keep` (optional, P's shape): an inverted-dropout mask already divided by 1 - p.
    Hidden keys get P = 0, so the rule above gives them no gradient without change.
    `tinygrad_lite.attention.scaled_dot_product_attention` builds the masks from PyTorch's arguments.
    """

    double_backward = False

    def forward(self, q: Tensor, k: Tensor, v: Tensor, scale: float, hide: Any = None, bias: Any = None,
                keep: Any = None) -> Any:
        y, self.p = _attention_forward(q.xp, q.data, k.data, v.data, scale, hide, bias, keep)
        self.keep, self.scale = keep, scale
        self.save_for_backward(q, k, v)
        return y

    def backward(self, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = (t.data for t in self.saved_tensors)
        grads = _attention_backward(q, k, v, self.p, self.keep, self.scale, g.data)
        return tuple(Tensor._make(a, False, g.device) for a in grads)  # type: ignore[return-value]

    def jvp(self, dq: Any, dk: Any, dv: Any) -> Any:
        q, k, v = (t.data for t in self.inputs)
        return _attention_jvp(q, k, v, self.p, self.keep, self.scale, dq, dk, dv)
