"""Fused ops: several steps in one Function with a hand-derived backward on raw arrays.

They are the fast path: one pass, no intermediate graph nodes. Their backward is not written
with Tensor ops, so they refuse double backward (`double_backward = False`); use the composed
version (e.g. `-(log_softmax(x) * onehot).sum()`) when you need higher-order gradients.
"""
from __future__ import annotations

from typing import Any

from ..function import Function
from ..tensor import Tensor


class CrossEntropy(Function):
    """Mean over non-ignored rows of -Σ_c q_c log softmax(x)_c, with q the (smoothed) target.

    q = (1-ε)·onehot(y) + ε/C (label smoothing, Szegedy et al. 2016). Since Σ_c q_c = 1, the
    gradient with respect to the logits is simply softmax(x) - q, per row, divided by N.
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
        shifted = x - x.max(axis=1, keepdims=True)
        logsumexp = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        logp = shifted - logsumexp  # log-softmax, stable for logits of any magnitude
        rows = xp.arange(x.shape[0])
        nll = -logp[rows, y_safe]
        if label_smoothing:
            nll = (1.0 - label_smoothing) * nll - label_smoothing * logp.mean(axis=1)
        nll = xp.where(keep, nll, 0.0).astype(x.dtype, copy=False)
        count = int(keep.sum())
        self.logp, self.y_safe, self.keep, self.rows = logp, y_safe, keep, rows
        self.eps, self.reduction, self.shape = label_smoothing, reduction, logits.shape
        if reduction == "none":
            return nll.reshape(logits.shape[:-1])
        if reduction == "sum":
            self.scale = 1.0
            return nll.sum()
        self.scale = 1.0 / max(count, 1)
        return (nll.sum() * self.scale).astype(x.dtype)

    def backward(self, g: Tensor) -> Tensor:
        xp = g.xp
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
