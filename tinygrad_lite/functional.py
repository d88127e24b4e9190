"""Functional forms of losses and layers-without-parameters (`import tinygrad_lite.functional as F`)."""
from __future__ import annotations

from typing import Any

from . import dtypes
from .attention import scaled_dot_product_attention, scaled_dot_product_attention_reference
from .ops.elementwise import where
from .ops.fused import CrossEntropy, FusedGelu, LayerNorm, Linear
from .ops.indexing import embedding, one_hot, take_along_axis
from .random import Generator, default_generator
from .tensor import Tensor

__all__ = [
    "relu", "gelu", "silu", "sigmoid", "tanh", "softplus", "log_sigmoid", "leaky_relu",
    "softmax", "log_softmax", "logsumexp", "cross_entropy", "nll_loss",
    "binary_cross_entropy_with_logits", "mse", "mse_loss", "dropout", "embedding", "one_hot",
    "take_along_axis", "where", "layer_norm", "linear", "fused_gelu", "scaled_dot_product_attention",
    "scaled_dot_product_attention_reference",
]


def relu(x: Tensor) -> Tensor:
    return x.relu()


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    return x.gelu(approximate)


def silu(x: Tensor) -> Tensor:
    return x.silu()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def softplus(x: Tensor) -> Tensor:
    return x.softplus()


def log_sigmoid(x: Tensor) -> Tensor:
    return x.log_sigmoid()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return x.leaky_relu(negative_slope)


def softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    return x.softmax(axis, dim=dim)


def log_softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    return x.log_softmax(axis, dim=dim)


def logsumexp(x: Tensor, axis: Any = None, keepdims: bool = False, *, dim: Any = None,
              keepdim: bool | None = None) -> Tensor:
    return x.logsumexp(axis, keepdims, dim=dim, keepdim=keepdim)


def _check_targets(op: str, logits: Tensor, target: Any) -> Any:
    y = target.data if isinstance(target, Tensor) else logits.xp.asarray(target)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got {y.dtype}")
    if logits.ndim < 1 or y.shape != logits.shape[:-1]:
        raise ValueError(
            f"{op}: logits of shape {logits.shape} need targets of shape {logits.shape[:-1]} "
            f"(classes on the last axis), got {y.shape}"
        )
    return y


def cross_entropy(
    logits: Tensor, target: Any, ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """Softmax cross-entropy of `logits` (..., C) against integer `target` (...), fused.

    Rows whose target equals `ignore_index` contribute nothing; the mean is over the others.
    """
    y = _check_targets("cross_entropy", logits, target)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return CrossEntropy.apply(logits, target=y, ignore_index=ignore_index, label_smoothing=label_smoothing,
                              reduction=reduction)


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Composed (not fused) negative log-likelihood: differentiable to any order."""
    y = _check_targets("nll_loss", log_probs, target)
    picked = -take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]
    return _reduce("nll_loss", picked, reduction)


def _target(op: str, x: Tensor, target: Any, names: tuple[str, str] = ("input", "target")) -> Tensor:
    """`target` as a tensor beside `x`. An array or list of floats takes x's float dtype, as a Python
    float does: float64 targets must not turn the loss of a float32 model into float64. (A Tensor
    target keeps its dtype, and the two promote as PyTorch's do.)"""
    y = x._const(target)
    if not isinstance(target, Tensor) and y.dtype.kind == "f" and x.dtype.kind == "f":
        y = y.astype(x.dtype)
    if y.shape != x.shape:
        raise ValueError(f"{op}: {names[0]} {x.shape} and {names[1]} {y.shape} differ in shape")
    return y


def _reduce(op: str, loss: Tensor, reduction: str) -> Tensor:
    """PyTorch's `reduction=`: "mean" (the default), "sum", or "none" (one loss per element)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """-[y log σ(x) + (1-y) log(1-σ(x))] = softplus(x) - x·y, stable for any |x|."""
    y = _target("binary_cross_entropy_with_logits", logits, target, ("logits", "targets"))
    return _reduce("binary_cross_entropy_with_logits", logits.softplus() - logits * y, reduction)


def mse(x: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error."""
    y = _target("mse", x, target)
    diff = x - y
    return _reduce("mse", diff * diff, reduction)


mse_loss = mse


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator: Generator | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p),
    so the expected value is unchanged and evaluation needs no rescaling."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    gen = generator or default_generator
    # drawn on x's device (by its own generator where it has one: no mask crosses the bus)
    keep = gen.uniform(x.shape, dtypes.float64 if x.dtype == dtypes.float64 else dtypes.float32, device=x.device) >= p
    mask = Tensor._make((keep / (1.0 - p)).astype(x.dtype), False, x.device)
    return x * mask



def layer_norm(x: Tensor, normalized_shape: Any = None, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Fused layer norm over the last axis: (x - mean) / sqrt(var + eps) · weight + bias, in PyTorch's
    argument order. It normalizes the last axis only: normalized_shape is (n,) (or n, or None)."""
    if isinstance(normalized_shape, Tensor):
        raise TypeError("layer_norm(input, normalized_shape, weight, bias, eps): the argument order is PyTorch's, "
                        "and this call passed a Tensor as normalized_shape (the old order layer_norm(x, weight, "
                        "bias)): write layer_norm(x, weight.shape, weight, bias)")
    n = x.shape[-1]
    given = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    if given is not None and tuple(given) != (n,):
        raise ValueError(f"layer_norm: normalizes the last axis only, so normalized_shape must be ({n},) for an "
                         f"input of shape {x.shape}, got {normalized_shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (n,):
            raise ValueError(f"layer_norm: {name} must have shape ({n},) for input of shape {x.shape}, got {p.shape}")
    weight = weight if weight is not None else Tensor._make(x.xp.ones(n, dtype=x.dtype), False, x.device)
    bias = bias if bias is not None else Tensor._make(x.xp.zeros(n, dtype=x.dtype), False, x.device)
    return LayerNorm.apply(x, weight, bias, eps=eps)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Fused x·Wᵀ + b for W of shape (out, in) and x of shape (..., in)."""
    if not isinstance(x, Tensor):  # as PyTorch: an array is not silently wrapped (which dtype would it get?)
        raise TypeError(f"linear: the input must be a Tensor, got {type(x).__name__}; wrap it first with "
                        f"tinygrad_lite.tensor(x, dtype=...) (a copy) or tinygrad_lite.from_numpy(x) (shared memory); "
                        f"the weight is {weight.dtype}")
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {weight.shape} (out, in)")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)


def fused_gelu(x: Tensor) -> Tensor:
    """Exact GELU, x·Φ(x), as one fused op (fast; no double backward: use `gelu` for that)."""
    return FusedGelu.apply(x)
