"""LoRA+ (Hayou et al. 2024): give B a larger learning rate than A.

In the infinite-width analysis of the paper, A and B play different roles (B starts at zero and
multiplies a wide input), and one learning rate for both is suboptimal; they recommend
lr_B = λ·lr_A with λ around 2⁴ = 16. This is only a choice of optimizer parameter groups.
"""
from __future__ import annotations

from typing import Any

from nn import Module

from .adapter import LoRALinear


def loraplus_param_groups(model: Module, lr: float, ratio: float = 16.0,
                          weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Parameter groups for nn.AdamW & co.: B matrices at lr·ratio, everything else trainable at lr."""
    b_ids = {id(layer.adapters[k].B) for _, layer in model.named_modules() if isinstance(layer, LoRALinear)
             for k in layer.adapters.keys() if hasattr(layer.adapters[k], "B")}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in b_ids], "lr": lr, "weight_decay": weight_decay},
              {"params": [p for p in trainable if id(p) in b_ids], "lr": lr * ratio, "weight_decay": weight_decay}]
    return [g for g in groups if g["params"]]
