"""A GPT (Radford et al. 2018, 2019) laid out like nanoGPT, so a reader can hold it in their head.

    tokens -> token embedding + position embedding -> dropout
           -> n_layer x Block(x + attn(ln_1(x)); x + mlp(ln_2(x)))      (pre-LayerNorm, residual)
           -> final LayerNorm -> LM head (its weight *is* the token embedding: weight tying)
           -> logits over the vocabulary at every position

Hyperparameters, the init (std 0.02; residual projections 0.02/√(2·n_layer), GPT-2 paper §2.3)
and the weight-decay rule follow nanoGPT (Karpathy, 2022); the code is written from scratch.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from tinygrad_lite import Generator, Tensor

from .attention import CausalSelfAttention, KVCache, LayerKV
from .layers import MLP, Dropout, Embedding, LayerNorm, Linear
from .module import Module, ModuleDict, ModuleList


@dataclass
class GPTConfig:
    block_size: int = 64  # the longest context the model can see (number of position embeddings)
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in Linear layers and LayerNorms

    def __post_init__(self) -> None:
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"GPTConfig: {name} must be a positive int, got {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"GPTConfig: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)


class Block(Module):
    """One transformer block. Pre-LayerNorm (normalize before each sub-layer, GPT-2 style) keeps
    the residual path an identity, which makes deep stacks train without warm-up tricks."""

    def __init__(self, config: GPTConfig, dtype: Any = None, generator: Generator | None = None) -> None:
        c = config
        self.ln_1 = LayerNorm(c.n_embd, bias=c.bias, dtype=dtype)
        self.attn = CausalSelfAttention(c.n_embd, c.n_head, c.dropout, c.bias, dtype, generator)
        self.ln_2 = LayerNorm(c.n_embd, bias=c.bias, dtype=dtype)
        self.mlp = MLP(c.n_embd, 4 * c.n_embd, c.dropout, c.bias, dtype, generator)

    def forward(self, x: Tensor, cache: LayerKV | None = None, attn_mask: Any = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), cache, attn_mask)
        return x + self.mlp(self.ln_2(x))


class GPT(Module):
    def __init__(self, config: GPTConfig, dtype: Any = None, generator: Generator | None = None) -> None:
        self.config = config
        c = config
        self.transformer = ModuleDict({
            "wte": Embedding(c.vocab_size, c.n_embd, dtype, generator),
            "wpe": Embedding(c.block_size, c.n_embd, dtype, generator),
            "drop": Dropout(c.dropout),
            "h": ModuleList(Block(c, dtype, generator) for _ in range(c.n_layer)),
            "ln_f": LayerNorm(c.n_embd, bias=c.bias, dtype=dtype),
        })
        self.lm_head = Linear(c.n_embd, c.vocab_size, bias=False, dtype=dtype, generator=generator)
        # Weight tying (Press & Wolf 2017): the same matrix maps tokens to vectors and vectors
        # back to token scores. named_parameters() lists it once, as transformer.wte.weight.
        self.lm_head.weight = self.transformer.wte.weight
        self._init_weights(generator if generator is not None else tg.default_generator)

    def _init_weights(self, gen: Generator) -> None:
        """N(0, 0.02²) for every weight matrix and embedding, zero biases; the projections that
        write into the residual stream get std 0.02/√(2·n_layer), since each block adds two of
        them and the variance of the sum would otherwise grow with depth."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        with tg.no_grad():  # writes into parameters go through the engine (in place, version bumped)
            for name, p in self.named_parameters():
                if p.ndim == 2:
                    std = residual_std if name.endswith("c_proj.weight") else 0.02
                    p.copy_(gen.normal(p.shape, p.dtype, 0.0, std))
                elif name.endswith(".bias"):
                    p.zero_()

    def hidden_states(self, idx: Any, cache: KVCache | None = None, attn_mask: Any = None,
                      positions: Any = None) -> Tensor:
        """The trunk: (B, T) token ids -> (B, T, n_embd), the final LayerNorm's output (what the LM
        head, or a `ScalarHead`, reads).

        cache: a KVCache; idx then holds only the new tokens and the cached positions come first.
        attn_mask: optional bool, broadcastable to (B, n_head, T, T_keys) with T_keys = cached + T,
            True where a query may NOT look (on top of the causal mask); (B, 1, 1, T_keys) hides
            padding keys. Without it, training keeps the packed fused attention (the fast path).
        positions: optional (B, T) position ids, default cached, cached + 1, ...; a left-padded row
            gives its real tokens 0, 1, 2, ... so they see exactly what they would see alone.
        """
        idx = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
        if idx.ndim != 2:
            raise ValueError(f"GPT: idx must have shape (batch, time), got {idx.shape}")
        B, T = idx.shape
        past = cache.length if cache is not None else 0
        block_size = self.config.block_size
        if positions is None:
            if past + T > block_size:
                raise ValueError(f"GPT: {past} cached + {T} new positions exceed block_size={block_size}")
            pos = np.arange(past, past + T)
        else:
            pos = positions.data if isinstance(positions, Tensor) else np.asarray(positions)
            if pos.shape != (B, T) or pos.dtype.kind not in "iu":
                raise ValueError(f"GPT: positions must be integers of shape (batch, time) = ({B}, {T}), "
                                 f"got shape {pos.shape} and dtype {pos.dtype}")
            if pos.size and (int(pos.min()) < 0 or int(pos.max()) >= block_size):
                raise ValueError(f"GPT: positions must lie in [0, block_size={block_size}), "
                                 f"got values in [{int(pos.min())}, {int(pos.max())}]")
        if attn_mask is not None:
            mask_shape = np.shape(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)
            if len(mask_shape) != 4 or mask_shape[-1] != past + T:
                raise ValueError(f"GPT: attn_mask must broadcast to (batch, n_head, {T}, {past + T}) "
                                 f"({past} cached + {T} new keys), got shape {mask_shape}")
        t = self.transformer
        x = t.drop(t.wte(idx) + t.wpe(pos))  # (B, T, C) + (T, C) or (B, T, C)
        for i, block in enumerate(t.h):
            x = block(x, cache[i] if cache is not None else None, attn_mask)
        return t.ln_f(x)

    def forward(self, idx: Any, targets: Any = None, cache: KVCache | None = None, attn_mask: Any = None,
                positions: Any = None) -> tuple[Tensor, Tensor | None]:
        """idx: (B, T) token ids. Returns (logits of shape (B, T, vocab), mean cross-entropy
        against targets, or None without targets). With a KV cache, idx holds only the new
        tokens and the cached positions come first. attn_mask and positions: see `hidden_states`."""
        logits = self.lm_head(self.hidden_states(idx, cache, attn_mask, positions))
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss

    def configure_optimizers(self, weight_decay: float, learning_rate: float,
                             betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8) -> Any:
        """AdamW with weight decay on matrices and embeddings (ndim >= 2) only: decaying biases
        and LayerNorm gains toward zero would only fight the normalization."""
        from .optim import AdamW

        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        return AdamW(groups, lr=learning_rate, betas=betas, eps=eps)

    def generate(self, idx: Any, max_new_tokens: int, **kwargs: Any) -> Any:
        """Sample a continuation of each row of idx; see `nn.generate.generate` for the options."""
        from .generate import generate

        return generate(self, idx, max_new_tokens, **kwargs)

    def extra_repr(self) -> str:
        c = self.config
        return f"n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, block_size={c.block_size}"
