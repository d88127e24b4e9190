"""DoRA: weight-decomposed low-rank adaptation (Liu et al. 2024).

Split the adapted weight into a direction and a magnitude per output row,

    W' = m ⊙ V / ‖V‖,   V = W0 + s·B·A,   ‖V‖ the L2 norm of each output row (shape (out,)),

and train m (starting at ‖W0‖, so W' = W0 at the start since B = 0) together with A and B.
Without dropout (or in eval mode) the layer output is y = (m / ‖V‖) ⊙ (W0·x + s·B·A·x) + b.

With dropout in training, x̃ = dropout(x) (one mask) feeds *both* of DoRA's additions to the base
layer: the magnitude correction of the base path and the low-rank path,

    y = W0·x + b  +  (m/‖V‖ - 1) ⊙ W0·x̃  +  (m/‖V‖) ⊙ s·B·A·x̃,

which is what PEFT's DoRA layer and NVlabs' reference compute (the base output W0·x + b keeps the
clean x). With x̃ = x it is the formula above.

Two gradients are on offer:
  detach_norm=True   the paper's choice (§4.3): ‖V‖ is treated as a constant in backward, which
                     saves memory (no graph through the norm) and barely changes training. It is
                     *not* the gradient of the forward function, so finite differences do not
                     match it; it matches the gradient of the function in which ‖V‖ is frozen
                     at its current value, which is how the tests check it.
  detach_norm=False  the exact gradient (also through ‖V‖); finite differences agree with it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from nn import Module, Parameter
from tinygrad_lite import Generator, Tensor

from .adapter import LoRAAdapter


def base_weight(base: Module) -> Tensor:
    """The base layer's weight as a (constant) Tensor; quantized layers dequantize it."""
    return base.weight


def _base_bias(base: Module) -> Tensor | None:
    return getattr(base, "bias", None)


class DoRAAdapter(LoRAAdapter):
    method = "dora"

    def __init__(self, base: Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 use_rslora: bool = False, init: str = "uniform", detach_norm: bool = True, dtype: Any = None,
                 generator: Generator | None = None) -> None:
        super().__init__(base.in_features, base.out_features, r, alpha, dropout, use_rslora, init, dtype, generator)
        self.detach_norm = detach_norm
        w0 = base_weight(base).numpy()
        self.magnitude = Parameter(np.sqrt((w0.astype(np.float64) ** 2).sum(axis=1)).astype(self.A.dtype))

    def config(self) -> dict[str, Any]:
        return super().config() | {"detach_norm": self.detach_norm}

    def row_norm(self, w0: Tensor) -> Tensor:
        """‖W0 + s·B·A‖ per output row, detached if the adapter says so."""
        v = w0 + self.delta_weight()
        norm = (v * v).sum(axis=1).sqrt()
        return norm.detach() if self.detach_norm else norm

    def output(self, base: Module, x: Tensor) -> Tensor:
        w0 = base_weight(base)
        scale = self.magnitude / self.row_norm(w0)  # m/‖V‖, shape (out,)
        x_drop = self.dropout(x)
        if x_drop is x:  # no dropout (eval mode or p = 0): one base matmul, y = (m/‖V‖)·(W0·x + s·B·A·x) + b
            y = (F.linear(x, w0) + self.lowrank(x)) * scale
        else:  # the dropped-out x̃ goes into the magnitude correction and the low-rank path alike
            y = F.linear(x, w0) + F.linear(x_drop, w0) * (scale - 1.0) + self.lowrank(x_drop) * scale
        bias = _base_bias(base)
        return y + bias if bias is not None else y

    def merged_weight(self, w0: np.ndarray) -> np.ndarray:
        with tg.no_grad():
            v = Tensor(w0) + self.delta_weight()
            scale = self.magnitude / (v * v).sum(axis=1).sqrt()
            return (v * scale.reshape(-1, 1)).numpy().astype(w0.dtype)

    def unmerged_weight(self, w: np.ndarray) -> np.ndarray:  # pragma: no cover - LoRALinear restores a backup
        raise RuntimeError("DoRA: a merged weight cannot be unmerged without the saved W0")
