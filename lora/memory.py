"""Memory accounting for fine-tuning: bytes of weights, gradients, optimizer state and activations.

Per parameter, in bytes:

                                 weights        gradients   Adam state (m, v)
  full fine-tuning, mixed prec.  2 (fp16) + 4 (fp32 master)   2 (fp16)    8 (fp32)   = 16
  full fine-tuning, fp32         4                            4           8          = 16
  LoRA, frozen base              2 (fp16) or 4 (fp32)         0           0
  QLoRA, frozen base (Linears)   (4 + 0.127)/8 ≈ 0.516 (NF4 + double-quantized scales)
  adapter parameters             as full fine-tuning (they are trained)

The 16 bytes per parameter of mixed-precision Adam are the accounting of ZeRO (Rajbhandari et al.
2020). Activations use the estimate of Korthikanti et al. 2022 for one transformer layer without
recomputation, s·b·h·(34 + 5·a·s/h) bytes in 16-bit precision (s sequence length, b batch, h
hidden size, a heads), plus the logits (b·s·vocab, 16-bit, and a 32-bit copy for the softmax).
It was derived for a GPT block with a 4h MLP; for a LLaMA block (SwiGLU, 2.7h) it is an
approximation. Frozen layers still store activations, since the gradient must flow through them
to the adapters below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nn import Module

GB = 1e9


@dataclass(frozen=True)
class ModelShape:
    """The sizes that determine a transformer's memory. kind: "gpt" (our nn.GPT: biases,
    LayerNorm, GELU MLP, LM head tied to the embedding) or "llama" (no biases, RMSNorm,
    SwiGLU MLP with three matrices, untied head)."""

    n_layer: int
    d_model: int
    n_head: int
    vocab_size: int
    d_ff: int | None = None
    block_size: int = 2048
    kind: str = "gpt"

    @property
    def ff(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    def linears(self) -> list[tuple[str, int, int]]:
        """(name, in, out) of each Linear of one layer."""
        d, f = self.d_model, self.ff
        if self.kind == "gpt":
            return [("attn.c_attn", d, 3 * d), ("attn.c_proj", d, d), ("mlp.c_fc", d, f), ("mlp.c_proj", f, d)]
        return [("q_proj", d, d), ("k_proj", d, d), ("v_proj", d, d), ("o_proj", d, d),
                ("gate_proj", d, f), ("up_proj", d, f), ("down_proj", f, d)]

    def linear_params(self) -> int:
        bias = self.kind == "gpt"
        return self.n_layer * sum(i * o + (o if bias else 0) for _, i, o in self.linears())

    def linear_weight_params(self) -> int:
        """The Linear weight matrices alone: what QLoRA stores in NF4 (biases stay in 16/32 bits)."""
        return self.n_layer * sum(i * o for _, i, o in self.linears())

    def other_params(self) -> int:
        """Embeddings, norms and (untied) head."""
        d = self.d_model
        if self.kind == "gpt":  # wte (tied head) + wpe + 2 LayerNorms per layer + final LayerNorm
            return self.vocab_size * d + self.block_size * d + self.n_layer * 4 * d + 2 * d
        return 2 * self.vocab_size * d + self.n_layer * 2 * d + d

    def n_params(self) -> int:
        return self.linear_params() + self.other_params()

    def lora_params(self, r: int, targets: str = "all-linear") -> int:
        """Adapter parameters r·(in + out) per targeted Linear ("all-linear" or "attn")."""
        layers = self.linears()
        if targets == "attn":
            layers = [x for x in layers if "attn" in x[0] or x[0] in ("q_proj", "k_proj", "v_proj", "o_proj")]
        return self.n_layer * sum(r * (i + o) for _, i, o in layers)

    def activation_bytes(self, batch: int, seq: int) -> int:
        s, b, h, a = seq, batch, self.d_model, self.n_head
        per_layer = s * b * h * (34 + 5 * a * s / h)
        logits = b * s * self.vocab_size * (2 + 4)
        return int(self.n_layer * per_layer + logits)


MODEL_PRESETS: dict[str, ModelShape] = {
    # LLaMA-7B (Touvron et al. 2023): 32 layers, d=4096, 32 heads, SwiGLU d_ff=11008, vocab 32000.
    "7b": ModelShape(n_layer=32, d_model=4096, n_head=32, vocab_size=32000, d_ff=11008, block_size=4096,
                     kind="llama"),
    # our GPT configs (nn.train): the CPU recipe and the small one
    "gpt-cpu": ModelShape(n_layer=4, d_model=128, n_head=4, vocab_size=65, block_size=64),
    "gpt-small": ModelShape(n_layer=2, d_model=64, n_head=2, vocab_size=65, block_size=32),
}


def memory_report(config: ModelShape | str, method: str = "full", r: int = 8, targets: str = "all-linear",
                  batch: int = 1, seq: int = 512, precision: str = "mixed") -> dict[str, Any]:
    """Bytes for weights, gradients, optimizer state (Adam) and activations.

    method: "full" (every parameter trained), "lora" (frozen base in the working precision),
    "qlora" (frozen Linears in NF4 with double quantization, the rest 16-bit).
    precision: "mixed" (16-bit weights and grads + fp32 master weights and Adam state) or
    "fp32" (what our engine trains in; no separate master copy)."""
    if isinstance(config, str) and config not in MODEL_PRESETS:
        raise ValueError(f"memory_report: unknown preset {config!r}; the presets are {', '.join(MODEL_PRESETS)}")
    shape = MODEL_PRESETS[config] if isinstance(config, str) else config
    for name, value in (("r", r), ("batch", batch), ("seq", seq)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"memory_report: {name}={value!r}, expected an integer >= 1")
    if method not in ("full", "lora", "qlora"):
        raise ValueError(f"memory_report: method must be full, lora or qlora, got {method!r}")
    if precision not in ("mixed", "fp32"):
        raise ValueError(f"memory_report: precision must be mixed or fp32, got {precision!r}")
    low = 2 if precision == "mixed" else 4  # bytes of a working-precision number
    master = 4 if precision == "mixed" else 0  # fp32 master copy of trained weights
    n = shape.n_params()
    trained = n if method == "full" else shape.lora_params(r, targets)
    if method == "full":
        frozen_bytes = 0.0
    elif method == "lora":
        frozen_bytes = n * low
    else:
        quantized = shape.linear_weight_params()
        frozen_bytes = quantized * (4 + 8 / 64 + 32 / (64 * 256)) / 8 + (n - quantized) * low
    weights = frozen_bytes + trained * (low + master)
    gradients = trained * low
    optimizer = trained * 8
    activations = shape.activation_bytes(batch, seq) * (low / 2)
    total = weights + gradients + optimizer + activations
    return {"method": method, "precision": precision, "params": n, "trainable": trained,
            "weights": weights, "gradients": gradients, "optimizer": optimizer, "activations": activations,
            "total": total}


def memory_table(config: ModelShape | str = "7b", r: int = 8, batch: int = 1, seq: int = 512,
                 precision: str = "mixed") -> str:
    """A text table of memory_report for full fine-tuning, LoRA and QLoRA, in GB (MB for small models)."""
    rows = [memory_report(config, m, r=r, batch=batch, seq=seq, precision=precision) for m in ("full", "lora", "qlora")]
    unit, name = (GB, "GB") if rows[0]["total"] >= GB else (1e6, "MB")
    head = f"{'method':<7}{'trainable':>14}{'weights':>10}{'grads':>9}{'Adam':>9}{'activ.':>9}{'total ' + name:>10}"
    lines = [head, "-" * len(head)]
    for x in rows:
        lines.append(f"{x['method']:<7}{x['trainable']:>14,}{x['weights'] / unit:>10.2f}{x['gradients'] / unit:>9.2f}"
                     f"{x['optimizer'] / unit:>9.2f}{x['activations'] / unit:>9.2f}{x['total'] / unit:>10.2f}")
    return "\n".join(lines)


def measured_training_bytes(model: Module, optimizer: Any = None) -> dict[str, int]:
    """What our engine actually holds: parameter arrays (+ NF4 storage), gradients, optimizer buffers."""
    from .quant import NF4Linear

    weights = sum(p.data.nbytes for p in model.parameters())
    weights += sum(m.qweight.nbytes() for m in model.modules() if isinstance(m, NF4Linear))
    grads = sum(p.grad.data.nbytes for p in model.parameters() if p.grad is not None)
    opt = 0
    if optimizer is not None:
        opt = sum(v.nbytes for s in optimizer.state.values() for v in s.values() if isinstance(v, np.ndarray))
    return {"weights": weights, "gradients": grads, "optimizer": opt}
