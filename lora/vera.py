"""VeRA: vector-based random matrix adaptation (Kopiczko et al. 2024).

One pair of random matrices A (r, in_max) and B (out_max, r) is drawn once from a seed, frozen,
and shared by every adapted layer (each layer uses the top-left slice it needs). Each layer
trains only two vectors, d (r,) and b (out,):

    ΔW = diag(b) · B · diag(d) · A

so a layer costs r + out trainable numbers instead of LoRA's r·(in + out). b starts at zero
(the adapted model starts equal to the base), d at a small constant (the paper's d_init).
Because the shared matrices come from a seed, a saved adapter needs only the vectors and the seed.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from nn import Dropout, Parameter
from tinygrad_lite import Generator, Tensor

from .adapter import LoRAAdapter


class SharedProjections:
    """The frozen random pair every VeRA layer of a model shares (plain Tensors, not Parameters:
    they are neither trained nor saved; the seed regenerates them)."""

    def __init__(self, r: int, in_max: int, out_max: int, seed: int = 0, dtype: Any = None) -> None:
        dtype = tg.dtypes.DEFAULT_FLOAT if dtype is None else tg.dtypes.to_dtype(dtype)
        gen = Generator(seed)
        # Kaiming-uniform bounds (fan-in of each matrix), as in the paper.
        self.r, self.in_max, self.out_max, self.seed = r, in_max, out_max, seed
        self.A = Tensor(gen.uniform((r, in_max), dtype, -math.sqrt(6 / in_max), math.sqrt(6 / in_max)))
        self.B = Tensor(gen.uniform((out_max, r), dtype, -math.sqrt(6 / r), math.sqrt(6 / r)))

    def slices(self, in_features: int, out_features: int) -> tuple[Tensor, Tensor]:
        return self.A[:, :in_features], self.B[:out_features, :]


class VeRAAdapter(LoRAAdapter):
    method = "vera"

    def __init__(self, in_features: int, out_features: int, shared: SharedProjections, dropout: float = 0.0,
                 d_init: float = 0.1, init: str = "uniform", dtype: Any = None,
                 generator: Generator | None = None) -> None:
        # No LoRAAdapter.__init__: VeRA has no trainable A, B. It reuses the merge/switch machinery.
        if in_features > shared.in_max or out_features > shared.out_max:
            raise ValueError(f"VeRA: layer ({out_features}, {in_features}) is larger than the shared matrices "
                             f"({shared.out_max}, {shared.in_max})")
        dtype = tg.dtypes.DEFAULT_FLOAT if dtype is None else tg.dtypes.to_dtype(dtype)
        gen = generator if generator is not None else tg.default_generator
        self.in_features, self.out_features, self.r = in_features, out_features, shared.r
        self.alpha, self.use_rslora, self.init, self.scale = 1.0, False, init, 1.0
        self.shared = shared
        self.lambda_d = Parameter(np.full((shared.r,), d_init, dtype=dtype))
        b = gen.uniform((out_features,), dtype, -1.0, 1.0) if init == "random" else np.zeros(out_features, dtype)
        self.lambda_b = Parameter(b)  # "random": for gradient checks (b = 0 zeroes the gradient of d)
        self.dropout = Dropout(dropout, generator)

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "r": self.r, "seed": self.shared.seed, "in_features": self.in_features,
                "out_features": self.out_features}

    def delta_weight(self) -> Tensor:
        a, b = self.shared.slices(self.in_features, self.out_features)
        return (b * self.lambda_d) @ a * self.lambda_b.reshape(-1, 1)

    def lowrank(self, x: Tensor) -> Tensor:
        """ΔW·x = b ⊙ B·(d ⊙ A·x), without forming ΔW (`delta` applies the dropout first)."""
        a, b = self.shared.slices(self.in_features, self.out_features)
        return F.linear(F.linear(x, a) * self.lambda_d, b) * self.lambda_b
