"""LoRA+ (Hayou et al. 2024): give B a larger learning rate than A.

In the infinite-width analysis of the paper, A and B play different roles (B starts at zero and
multiplies a wide input), and one learning rate for both is suboptimal; they recommend
lr_B = λ·lr_A with λ around 2⁴ = 16. This is only a choice of optimizer parameter groups.

Which parameters count as "B" follows PEFT's `create_loraplus_optimizer`, so that the same ratio
means the same optimizer in both: the B matrices *and every trainable 1-D parameter* get lr·λ.
The 1-D rule is by shape, so it covers DoRA's magnitude m and both of VeRA's vectors (λ_b and λ_d:
a VeRA-only model therefore trains everything at lr·λ), as well as any bias or norm scale left
trainable. Everything else trainable (the A matrices) gets lr.

The fast group carries "lr_scale": λ, so `nn.set_lr` (every schedule) keeps the ratio.
"""
from __future__ import annotations

from typing import Any

from nn import Module

from .adapter import LoRALinear


def loraplus_param_groups(model: Module, lr: float, ratio: float = 16.0,
                          weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Parameter groups for nn.AdamW & co.: B matrices and 1-D trainable parameters (DoRA's
    magnitude, VeRA's vectors) at lr·ratio with lr_scale = ratio, everything else trainable at lr."""
    b_ids = {id(layer.adapters[k].B) for _, layer in model.named_modules() if isinstance(layer, LoRALinear)
             for k in layer.adapters.keys() if hasattr(layer.adapters[k], "B")}
    trainable = [p for p in model.parameters() if p.requires_grad]
    fast = [p for p in trainable if id(p) in b_ids or p.ndim == 1]
    fast_ids = {id(p) for p in fast}
    groups = [{"params": [p for p in trainable if id(p) not in fast_ids], "lr": lr, "lr_scale": 1.0,
               "weight_decay": weight_decay},
              {"params": fast, "lr": lr * ratio, "lr_scale": ratio, "weight_decay": weight_decay}]
    return [g for g in groups if g["params"]]
