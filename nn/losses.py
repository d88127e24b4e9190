"""Loss modules, as in PyTorch's `torch.nn`: `nn.CrossEntropyLoss()(logits, target)` is
`F.cross_entropy(logits, target)` with the options stored on the module. Each one only wraps the
functional form (tinygrad_lite.functional), where the math and the checks live.
"""
from __future__ import annotations

from typing import Any

import tinygrad_lite.functional as F
from tinygrad_lite import Tensor

from .module import Module


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits (..., C) against integer class targets (...). Note: the
    classes are on the LAST axis (PyTorch puts them on axis 1: the two agree for (N, C) logits)."""

    def __init__(self, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        self.ignore_index, self.reduction, self.label_smoothing = ignore_index, reduction, label_smoothing

    def forward(self, input: Any, target: Any) -> Tensor:
        return F.cross_entropy(input, target, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
                               reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}"


class NLLLoss(Module):
    """Negative log-likelihood of log-probabilities (..., C) at integer targets (...)."""

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = reduction

    def forward(self, input: Any, target: Any) -> Tensor:
        return F.nll_loss(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(Module):
    """Mean squared error between an input and a target of the same shape."""

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = reduction

    def forward(self, input: Any, target: Any) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy of logits against targets in [0, 1] (stable for any logit)."""

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = reduction

    def forward(self, input: Any, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
