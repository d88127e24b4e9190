"""The basic layers: Linear, Embedding, LayerNorm, RMSNorm, Dropout, activations, MLP.

Every layer takes `dtype` (float32 by default) and `generator` (the engine's seeded Generator;
the default one when omitted) so that a model built twice from the same seed is bit-identical.
"""
from __future__ import annotations

import math
from typing import Any

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from tinygrad_lite import Generator, Tensor

from .module import Module, Parameter


def _gen(generator: Generator | None) -> Generator:
    return generator if generator is not None else tg.default_generator


def _dtype(dtype: Any) -> Any:
    return tg.dtypes.DEFAULT_FLOAT if dtype is None else tg.dtypes.to_dtype(dtype)


def uniform_parameter(shape: tuple[int, ...], bound: float, dtype: Any = None,
                      generator: Generator | None = None) -> Parameter:
    """A Parameter drawn from U(-bound, bound)."""
    return Parameter(_gen(generator).uniform(shape, _dtype(dtype), -bound, bound))


def normal_parameter(shape: tuple[int, ...], std: float, dtype: Any = None,
                     generator: Generator | None = None) -> Parameter:
    """A Parameter drawn from N(0, std²)."""
    return Parameter(_gen(generator).normal(shape, _dtype(dtype), 0.0, std))


class Linear(Module):
    """y = x·Wᵀ + b, with W of shape (out_features, in_features) as in PyTorch.

    Default init U(-1/√in, 1/√in) for W and b: it keeps the output variance near the input's
    for inputs of unit variance (PyTorch's default has the same bound).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None,
                 generator: Generator | None = None) -> None:
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: sizes must be positive, got in={in_features}, out={out_features}")
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = uniform_parameter((out_features, in_features), bound, dtype, generator)
        self.bias = uniform_parameter((out_features,), bound, dtype, generator) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: row i of `weight` (num_embeddings, embedding_dim) is token i's vector."""

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype: Any = None,
                 generator: Generator | None = None) -> None:
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = normal_parameter((num_embeddings, embedding_dim), 1.0, dtype, generator)

    def forward(self, idx: Any) -> Tensor:
        return F.embedding(idx, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalize the last axis to zero mean and unit variance, then scale and shift (fused op)."""

    def __init__(self, dim: int | tuple[int], eps: float = 1e-5, bias: bool = True, dtype: Any = None) -> None:
        if not isinstance(dim, int):  # PyTorch's normalized_shape, (n,)
            if len(tuple(dim)) != 1:
                raise ValueError(f"LayerNorm: normalizes the last axis only; give its size n or (n,), got {dim}")
            dim = int(tuple(dim)[0])
        self.dim, self.eps = dim, eps
        self.weight = Parameter(tg.ones(dim, dtype=_dtype(dtype)))
        self.bias = Parameter(tg.zeros(dim, dtype=_dtype(dtype))) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm({self.dim}): input has {x.shape[-1]} features (shape {x.shape})")
        return F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, bias={self.bias is not None}"


def layer_norm_reference(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float = 1e-5) -> Tensor:
    """Layer norm composed from primitive ops: slower than the fused op, but every step is
    differentiable to any order. The fused op is tested against it."""
    centered = x - x.mean(axis=-1, keepdims=True)
    y = centered / ((centered * centered).mean(axis=-1, keepdims=True) + eps).sqrt()
    if weight is not None:
        y = y * weight
    return y + bias if bias is not None else y


class RMSNorm(Module):
    """y = x / sqrt(mean(x²) + eps) · w (Zhang & Sennrich 2019): layer norm without centering."""

    def __init__(self, dim: int, eps: float = 1e-6, dtype: Any = None) -> None:
        self.dim, self.eps = dim, eps
        self.weight = Parameter(tg.ones(dim, dtype=_dtype(dtype)))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"RMSNorm({self.dim}): input has {x.shape[-1]} features (shape {x.shape})")
        return x / ((x * x).mean(axis=-1, keepdims=True) + self.eps).sqrt() * self.weight

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """Inverted dropout in training mode (zero with probability p, scale the rest by 1/(1-p));
    the identity in eval mode."""

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p, self.generator = p, generator

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GELU(Module):
    """x·Φ(x) (Hendrycks & Gimpel 2016). Exact by default, as fused op (erf evaluated once);
    fused=False uses the engine's composable op (double backward), "tanh" the approximation."""

    def __init__(self, approximate: str = "none", fused: bool = True) -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate, self.fused = approximate, fused

    def forward(self, x: Tensor) -> Tensor:
        if self.fused and self.approximate == "none":
            return F.fused_gelu(x)
        return x.gelu(self.approximate)

    def extra_repr(self) -> str:
        return "" if self.approximate == "none" else f"approximate={self.approximate!r}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class SiLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.silu()


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class MLP(Module):
    """The transformer's feed-forward block: Linear(d, 4d) -> GELU -> Linear(4d, d) -> Dropout.
    (Layer names c_fc / c_proj follow GPT-2's checkpoints.)"""

    def __init__(self, n_embd: int, hidden: int | None = None, dropout: float = 0.0, bias: bool = True,
                 dtype: Any = None, generator: Generator | None = None) -> None:
        hidden = hidden or 4 * n_embd
        self.c_fc = Linear(n_embd, hidden, bias, dtype, generator)
        self.gelu = GELU()
        self.c_proj = Linear(hidden, n_embd, bias, dtype, generator)
        self.dropout = Dropout(dropout)  # draws from the default generator at training time

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))
