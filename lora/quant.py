"""4-bit NormalFloat (NF4) quantization with double quantization, as in QLoRA (Dettmers et al. 2023).

NF4 code values. Pretrained weights are roughly normally distributed, so the 16 levels are put at
quantiles of N(0, 1), which gives each level an equal share of the weights: 8 levels on the
positive side from quantiles of linspace(δ, 1/2, 9) (dropping 1/2), 7 on the negative side from
linspace(δ, 1/2, 8) (dropping 1/2), and an exact 0 (so zero-padding and zero weights stay exact);
then all divided by the largest, so the codes span [-1, 1]. δ = (1 - 1/30 + 1 - 1/32)/2 ≈ 0.96771
is the paper's offset: halfway between the outermost quantiles of a symmetric 15- and 16-level
code, so that ±1 are not at infinity.

Blockwise absmax. Weights are cut into blocks of 64; each block is divided by its absolute
maximum c (one float32 per block: 32/64 = 0.5 extra bits per weight) and each value is stored as
the index of its nearest code, two 4-bit indices per byte.

Double quantization. The constants c are themselves quantized: their mean is subtracted and
blocks of 256 of them are stored as 8-bit integers with one float32 absmax per block, so the
overhead is 8/64 + 32/(64·256) ≈ 0.127 bits per weight. (The paper stores them as 8-bit floats;
we use linear 8-bit integers, which is simpler and as accurate for these positive, narrow-range
values.)

Dequantization happens on the fly in `NF4Linear.forward`: the 4-bit weights are expanded to a
float matrix for the matmul and dropped afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from nn import Linear, Module, Parameter
from tinygrad_lite import Tensor

NF4_OFFSET = 0.5 * ((1 - 1 / 30) + (1 - 1 / 32))  # ≈ 0.9677083, Dettmers et al. 2023
BLOCK_SIZE = 64
DQ_BLOCK_SIZE = 256


def nf4_code() -> np.ndarray:
    """The 16 NF4 values, ascending, from -1 to 1 with an exact 0."""
    ppf = NormalDist().inv_cdf
    positive = [ppf(p) for p in np.linspace(NF4_OFFSET, 0.5, 9)[:-1]]
    negative = [-ppf(p) for p in np.linspace(NF4_OFFSET, 0.5, 8)[:-1]]
    values = np.array(sorted(positive + negative + [0.0]))
    return values / np.abs(values).max()


NF4 = nf4_code()


def _blocks(w: np.ndarray, block: int) -> np.ndarray:
    flat = np.asarray(w, dtype=np.float32).reshape(-1)
    pad = (-flat.size) % block
    return np.concatenate([flat, np.zeros(pad, np.float32)]).reshape(-1, block)


def _absmax(blocks: np.ndarray) -> np.ndarray:
    """max |w| over the last axis (each block), float32."""
    c = np.abs(blocks).max(axis=-1)
    return np.where(c == 0, 1.0, c).astype(np.float32)  # an all-zero block: any scale works


@dataclass
class QuantizedConstants:
    """The per-block absmax constants after double quantization."""

    codes: np.ndarray  # int8, one per block of 64 weights
    scales: np.ndarray  # float32, one per DQ block of 256 constants
    mean: float

    def dequantize(self) -> np.ndarray:
        n = self.codes.size
        q = _blocks(self.codes.astype(np.float32), DQ_BLOCK_SIZE)
        return ((q / 127.0) * self.scales[:, None]).reshape(-1)[:n] + self.mean


def quantize_constants(c: np.ndarray) -> QuantizedConstants:
    mean = float(c.mean())
    blocks = _blocks(c - mean, DQ_BLOCK_SIZE)
    scales = _absmax(blocks)
    codes = np.round(blocks / scales[:, None] * 127.0).astype(np.int8).reshape(-1)[: c.size]
    return QuantizedConstants(codes, scales, mean)


@dataclass
class NF4Tensor:
    """A weight matrix in NF4: packed 4-bit indices plus (possibly double-quantized) block scales."""

    packed: np.ndarray  # uint8, two 4-bit indices per byte (first index in the high nibble)
    absmax: np.ndarray | QuantizedConstants
    shape: tuple[int, ...]
    dtype: Any

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))

    def nbytes(self) -> int:
        """Storage in bytes: the packed indices plus the scale constants."""
        if isinstance(self.absmax, QuantizedConstants):
            scales = self.absmax.codes.nbytes + self.absmax.scales.nbytes + 4
        else:
            scales = self.absmax.nbytes
        return self.packed.nbytes + scales

    def bits_per_parameter(self) -> float:
        return 8.0 * self.nbytes() / self.numel

    def dequantize(self) -> np.ndarray:
        idx = np.empty(self.packed.size * 2, np.uint8)
        idx[0::2], idx[1::2] = self.packed >> 4, self.packed & 0x0F
        c = self.absmax.dequantize() if isinstance(self.absmax, QuantizedConstants) else self.absmax
        values = NF4.astype(np.float32)[idx].reshape(-1, BLOCK_SIZE) * c[:, None].astype(np.float32)
        return values.reshape(-1)[: self.numel].reshape(self.shape).astype(self.dtype)


_MIDPOINTS = (NF4[1:] + NF4[:-1]) / 2  # the boundaries between neighbouring codes


def nf4_encode(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NF4 of one block (a 1-D array) or of many (each row of a 2-D array): the block's absmax
    c = max |w| (an all-zero block gets c = 1), and for each value the index (0..15, uint8) of
    the NF4 code nearest to w / c. Dequantized: NF4[index] · c. Computed in float32."""
    blocks = np.asarray(blocks, dtype=np.float32)
    if blocks.ndim not in (1, 2) or blocks.shape[-1] == 0:
        raise ValueError(f"nf4_encode: expected one block (n,) or blocks (k, n) with n > 0, got shape {blocks.shape}")
    c = _absmax(blocks)
    # a value between two codes goes to the nearer one: count the boundaries below it
    idx = np.searchsorted(_MIDPOINTS, blocks / c[..., None]).astype(np.uint8)
    return idx, c


def quantize_nf4(w: np.ndarray, double_quant: bool = True) -> NF4Tensor:
    """Blockwise NF4 of `w` (any shape): nearest code to w/absmax in each block of 64 (nf4_encode)."""
    w = np.asarray(w)
    idx, c = nf4_encode(_blocks(w, BLOCK_SIZE))
    idx = idx.reshape(-1)
    packed = (idx[0::2] << 4) | idx[1::2]
    return NF4Tensor(packed, quantize_constants(c) if double_quant else c, tuple(w.shape), w.dtype)


def quantize_int4(w: np.ndarray) -> np.ndarray:
    """The uniform baseline: symmetric int4 absmax per block of 64 (levels -7..7 times c/7),
    returned already dequantized (for error measurements)."""
    w = np.asarray(w)
    blocks = _blocks(w, BLOCK_SIZE)
    c = _absmax(blocks)
    q = np.clip(np.round(blocks / c[:, None] * 7), -7, 7)
    return (q * c[:, None] / 7).reshape(-1)[: w.size].reshape(w.shape).astype(w.dtype)


def quantization_error(w: np.ndarray, scheme: str = "nf4") -> dict[str, float]:
    """Mean squared and mean absolute error of quantizing w (schemes: nf4, nf4-dq, int4)."""
    w = np.asarray(w, dtype=np.float32)
    if scheme == "int4":
        wq = quantize_int4(w)
    elif scheme in ("nf4", "nf4-dq"):
        wq = quantize_nf4(w, double_quant=scheme == "nf4-dq").dequantize()
    else:
        raise ValueError(f"quantization_error: unknown scheme {scheme!r}; use nf4, nf4-dq or int4")
    err = (wq - w).astype(np.float64)
    return {"mse": float((err**2).mean()), "mae": float(np.abs(err).mean()),
            "rel_mse": float((err**2).sum() / max((w.astype(np.float64) ** 2).sum(), 1e-300))}


class NF4Linear(Module):
    """A frozen Linear whose weight is stored in NF4 and dequantized in every forward pass.
    `weight` is that dequantized matrix as a constant Tensor (not a Parameter: nothing to train)."""

    def __init__(self, linear: Linear, double_quant: bool = True) -> None:
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.qweight = quantize_nf4(linear.weight.numpy(), double_quant)
        self.bias = Parameter(linear.bias.numpy().copy(), requires_grad=False) if linear.bias is not None else None

    @property
    def weight(self) -> Tensor:
        return Tensor(self.qweight.dequantize())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.astype(x.dtype) if x.dtype != self.qweight.dtype else self.weight, self.bias)

    def to_linear(self) -> Linear:
        """A float nn.Linear holding the dequantized weight (for merge_and_unload)."""
        lin = Linear(self.in_features, self.out_features, bias=self.bias is not None, dtype=self.qweight.dtype)
        with tg.no_grad():
            lin.weight.copy_(self.qweight.dequantize())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"{self.qweight.bits_per_parameter():.3f} bits/weight")
