"""The LoRA adapter (Hu et al. 2021) and the layer that carries it.

A frozen Linear computes y = W0·x + b. LoRA adds a trainable low-rank path,

    y = W0·x + b + s·B·A·dropout(x),     A: (r, in),  B: (out, r),  s = α/r  (α/√r with rsLoRA),

so the weight the model effectively uses is W0 + ΔW with ΔW = s·B·A of rank <= r. B starts at
zero, so the adapted model starts *exactly* equal to the base model, and A starts uniform in
±1/√in (as a Linear would), so the gradient of B is not zero at the start.

`LoRALinear` wraps the base layer and holds any number of named adapters (a ModuleDict), one of
which is active. The family members (DoRA, VeRA) are `LoRAAdapter` subclasses that override
`delta_weight`, `output` and friends, so everything else (merge, switching, saving) is shared.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from nn import Dropout, Linear, Module, ModuleDict, Parameter
from tinygrad_lite import Generator, Tensor

INITS = ("uniform", "gaussian", "random")
BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch


def forward_per_row(x: Any, names: Sequence[str], run: Callable[[str, Any], Tensor]) -> Tensor:
    """Row i of the result is row i of run(names[i], x): the batch is split into one group per name,
    each group runs once, and the rows are put back in their order (a differentiable gather)."""
    if x.shape[0] != len(names):
        raise ValueError(f"adapter_per_row: {len(names)} adapter names for a batch of {x.shape[0]} rows; give one "
                         "name per row of the batch")
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name, []).append(i)
    if len(groups) == 1:
        return run(names[0], x)
    outputs = [run(name, x[np.asarray(rows)]) for name, rows in groups.items()]
    order = np.concatenate([np.asarray(rows) for rows in groups.values()])
    return tg.cat(outputs, axis=0)[np.argsort(order)]


def lora_scale(r: int, alpha: float, use_rslora: bool = False) -> float:
    """s = α/r (Hu et al. 2021) or the rank-stabilized s = α/√r (Kalajdzievski 2023)."""
    return alpha / math.sqrt(r) if use_rslora else alpha / r


def merge_weight(w0: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float, use_rslora: bool = False) -> np.ndarray:
    """W' = W0 + s·B·A on plain arrays, with the rank r read from A (r, in) and s = lora_scale(r, α):
    the weight `merge()` writes into a LoRA layer's base, so the base alone computes the adapted
    output. W0 is (out, in), B is (out, r); the result has W0's dtype."""
    w0, a, b = np.asarray(w0), np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or w0.ndim != 2 or b.shape[1] != a.shape[0] or w0.shape != (b.shape[0], a.shape[1]):
        raise ValueError(f"merge_weight: expected W0 (out, in), A (r, in) and B (out, r), got W0 {w0.shape}, "
                         f"A {a.shape}, B {b.shape}")
    scale = lora_scale(a.shape[0], alpha, use_rslora)
    return (w0 + scale * (b @ a)).astype(w0.dtype)


class LoRAAdapter(Module):
    """One adapter: the trainable pair (A, B) and its scale. `method` names the family member."""

    method = "lora"

    def __init__(self, in_features: int, out_features: int, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 use_rslora: bool = False, init: str = "uniform", dtype: Any = None,
                 generator: Generator | None = None) -> None:
        if not isinstance(r, int) or r <= 0:
            raise ValueError(f"LoRA: rank r must be a positive int, got {r!r}")
        if init not in INITS:
            raise ValueError(f"LoRA: init must be one of {INITS}, got {init!r}")
        gen = generator if generator is not None else tg.default_generator
        dtype = tg.dtypes.DEFAULT_FLOAT if dtype is None else tg.dtypes.to_dtype(dtype)
        self.in_features, self.out_features, self.r, self.alpha = in_features, out_features, r, float(alpha)
        self.use_rslora, self.init = use_rslora, init
        self.scale = lora_scale(r, alpha, use_rslora)
        bound = 1.0 / math.sqrt(in_features)
        if init == "gaussian":  # A ~ N(0, 1/r²), B = 0 (the other common choice)
            a = gen.normal((r, in_features), dtype, 0.0, 1.0 / r)
        else:
            a = gen.uniform((r, in_features), dtype, -bound, bound)
        # "random": B random too. Only for gradient checks: with B = 0 the gradient of A is exactly 0.
        b = (gen.uniform((out_features, r), dtype, -bound, bound) if init == "random"
             else np.zeros((out_features, r), dtype))
        self.A = Parameter(a)
        self.B = Parameter(b)
        self.dropout = Dropout(dropout, generator)

    def config(self) -> dict[str, Any]:
        """What must agree for saved adapter weights to load (validated on load)."""
        return {"method": self.method, "r": self.r, "alpha": self.alpha, "use_rslora": self.use_rslora,
                "in_features": self.in_features, "out_features": self.out_features}

    def delta_weight(self) -> Tensor:
        """ΔW = s·B·A, shape (out, in)."""
        return (self.B @ self.A) * self.scale

    def lowrank(self, x: Tensor) -> Tensor:
        """s·B·A·x, computed as two thin matmuls (never forming the (out, in) matrix)."""
        return F.linear(F.linear(x, self.A), self.B) * self.scale

    def delta(self, x: Tensor) -> Tensor:
        """s·B·A·dropout(x): what the adapter adds to the base layer's output."""
        return self.lowrank(self.dropout(x))

    def output(self, base: Module, x: Tensor) -> Tensor:
        return base(x) + self.delta(x)

    # Merging works on the raw arrays of the base weight, in place.
    def merged_weight(self, w0: np.ndarray) -> np.ndarray:
        """The weight that makes the base layer alone compute this adapter's output."""
        with tg.no_grad():
            return w0 + self.delta_weight().numpy().astype(w0.dtype)

    def unmerged_weight(self, w: np.ndarray) -> np.ndarray:
        with tg.no_grad():
            return w - self.delta_weight().numpy().astype(w.dtype)


class LoRALinear(Module):
    """A frozen base layer (nn.Linear, or a quantized one) plus named adapters, one active.

    forward: the active adapter's output, or the base alone when merged, disabled or adapterless.
    """

    def __init__(self, base: Module, adapter: LoRAAdapter | None = None, name: str = "default") -> None:
        if not hasattr(base, "in_features") or not hasattr(base, "out_features"):
            raise TypeError(f"LoRALinear: expected a Linear-like base layer, got {type(base).__name__}")
        self.base = base
        base.requires_grad_(False)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.adapters = ModuleDict()
        self.active: str | None = None
        self.disabled = False
        self.merged: str | None = None  # the name of the adapter folded into the base weight
        self.row_adapters: list[str] | None = None  # one adapter name per batch row (lora.adapter_per_row)
        self._backup: np.ndarray | None = None  # the pre-merge weight, for adapters whose merge is not invertible
        if adapter is not None:
            self.add_adapter(name, adapter)

    def add_adapter(self, name: str, adapter: LoRAAdapter) -> None:
        if name in self.adapters:
            raise ValueError(f"LoRALinear: an adapter named {name!r} exists already")
        if (adapter.in_features, adapter.out_features) != (self.in_features, self.out_features):
            raise ValueError(f"LoRALinear: adapter of shape ({adapter.out_features}, {adapter.in_features}) "
                             f"for a base of shape ({self.out_features}, {self.in_features})")
        self.adapters[name] = adapter
        if self.active is None:
            self.active = name

    def delete_adapter(self, name: str) -> None:
        """Remove adapter `name`; if it was active, the layer has no active adapter afterwards."""
        if self.merged == name:
            raise RuntimeError(f"LoRALinear: adapter {name!r} is merged; unmerge() before deleting it")
        self.adapters = ModuleDict({k: a for k, a in self.adapters.items() if k != name})
        if self.active == name:
            self.active = None

    def forward(self, x: Tensor) -> Tensor:
        if self.merged is not None or self.disabled:
            return self.base(x)
        if self.row_adapters is not None:
            return forward_per_row(x, self.row_adapters, self._output_of)
        return self._output_of(self.active, x)

    def _output_of(self, name: str | None, x: Tensor) -> Tensor:
        """The output with adapter `name`; the base's for None, "__base__" or a name this layer lacks
        (as with set_adapter, a layer without the adapter acts as its base)."""
        if name is None or name not in self.adapters:
            return self.base(x)
        return self.adapters[name].output(self.base, x)

    # ---------------------------------------------------------------- merging
    def merge(self) -> None:
        """Fold the active adapter into the base weight: W <- W0 + ΔW (one matmul per call after)."""
        if self.merged is not None:
            raise RuntimeError(f"LoRALinear: adapter {self.merged!r} is merged already; unmerge() first")
        if self.active is None:
            raise RuntimeError("LoRALinear: no adapter to merge")
        if not isinstance(self.base, Linear):
            raise TypeError(f"LoRALinear.merge: the base is a {type(self.base).__name__}; merging needs a float "
                            "nn.Linear (dequantize first: merge_and_unload does)")
        w = self.base.weight
        adapter = self.adapters[self.active]
        if adapter.method == "dora":
            self._backup = w.data.copy()  # DoRA's row normalization cannot be undone from W' alone
        with tg.no_grad():  # through the engine: the version moves, so a graph that saved W refuses backward
            w.copy_(adapter.merged_weight(w.data))
        self.merged = self.active

    def unmerge(self) -> None:
        """Undo merge(): W <- W - ΔW (exact up to float rounding; DoRA restores the saved W0)."""
        if self.merged is None:
            raise RuntimeError("LoRALinear: nothing is merged")
        w = self.base.weight
        with tg.no_grad():
            if self._backup is not None:
                w.copy_(self._backup)
                self._backup = None
            else:
                w.copy_(self.adapters[self.merged].unmerged_weight(w.data))
        self.merged = None

    def extra_repr(self) -> str:
        state = "merged" if self.merged else ("disabled" if self.disabled else f"active={self.active!r}")
        return f"in={self.in_features}, out={self.out_features}, {state}"
