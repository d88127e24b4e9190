"""word2vec on the engine: the negative-sampling losses as Tensor expressions (the teaching version).

Skip-gram with negative sampling (SGNS; Mikolov et al. 2013). Each word w has two vectors: an
input vector v_w (a row of W_in, the embedding we keep) and an output vector u_w (a row of W_out).
For a (center c, context o) pair and K negatives n_1..n_K drawn from the noise distribution,

    loss(c, o) = -log σ(u_o · v_c) - Σ_k log σ(-u_{n_k} · v_c)

CBOW replaces v_c by the mean h of the context words' input vectors and predicts the center word:

    loss = -log σ(u_c · h) - Σ_k log σ(-u_{n_k} · h),   h = mean_j v_{o_j}

A negative that happens to equal the positive word is skipped (masked out), as the reference tools
do. The losses are *summed* over pairs, so one SGD step W -= lr · dL/dW on a set of pairs that touch
distinct rows is exactly what the fast Numba trainer does pair by pair (tested to 1e-6).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Tensor

from .vocab import Vocab


def _ids(x: np.ndarray | list) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def sgns_loss(W_in: Tensor, W_out: Tensor, centers: np.ndarray, contexts: np.ndarray,
              negatives: np.ndarray) -> Tensor:
    """Skip-gram negative-sampling loss summed over B pairs. centers, contexts: (B,); negatives: (B, K)."""
    centers, contexts, negatives = _ids(centers), _ids(contexts), _ids(negatives)
    if negatives.ndim != 2 or negatives.shape[0] != centers.shape[0] or contexts.shape != centers.shape:
        raise ValueError(f"sgns_loss: expected centers (B,), contexts (B,), negatives (B, K); got "
                         f"{centers.shape}, {contexts.shape}, {negatives.shape}")
    v = tg.embedding(centers, W_in)                       # (B, D)
    u_pos = tg.embedding(contexts, W_out)                 # (B, D)
    u_neg = tg.embedding(negatives, W_out)                # (B, K, D)
    return _ns_loss(v, u_pos, u_neg, negatives != contexts[:, None])


def cbow_loss(W_in: Tensor, W_out: Tensor, contexts: np.ndarray, context_mask: np.ndarray,
              centers: np.ndarray, negatives: np.ndarray) -> Tensor:
    """CBOW negative-sampling loss summed over B examples. contexts: (B, C) padded with any valid id,
    context_mask: (B, C) 1 for a real context word, 0 for padding; centers (B,); negatives (B, K)."""
    contexts, centers, negatives = _ids(contexts), _ids(centers), _ids(negatives)
    mask = np.asarray(context_mask, dtype=W_in.dtype)
    count = mask.sum(axis=1, keepdims=True)
    if (count == 0).any():
        raise ValueError("cbow_loss: every example needs at least one context word")
    h = (tg.embedding(contexts, W_in) * Tensor(mask[:, :, None])).sum(axis=1) / Tensor(count)  # (B, D)
    return _ns_loss(h, tg.embedding(centers, W_out), tg.embedding(negatives, W_out), negatives != centers[:, None])


def _ns_loss(h: Tensor, u_pos: Tensor, u_neg: Tensor, neg_mask: np.ndarray) -> Tensor:
    pos = (h * u_pos).sum(axis=-1)                        # (B,)   u_o · h
    neg = (u_neg * h.unsqueeze(1)).sum(axis=-1)           # (B, K) u_n · h
    keep = Tensor(neg_mask.astype(h.dtype))
    return -(pos.log_sigmoid().sum() + ((-neg).log_sigmoid() * keep).sum())


def sgd_step(W_in: np.ndarray, W_out: np.ndarray, lr: float, model: str, **batch: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, float]:
    """One SGD step on the summed loss: returns (new W_in, new W_out, loss before the step).
    model "sg": batch = centers, contexts, negatives; "cbow": contexts, context_mask, centers, negatives."""
    A, B = Tensor(W_in, requires_grad=True), Tensor(W_out, requires_grad=True)
    loss = sgns_loss(A, B, **batch) if model == "sg" else cbow_loss(A, B, **batch)
    loss.backward()
    return W_in - lr * A.grad.numpy(), W_out - lr * B.grad.numpy(), float(loss.item())


# ---------------------------------------------------------------------------------------------
# A small trainer: examples are generated in NumPy, each minibatch is one engine SGD step.


def subsample(ids: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep each token with its word's keep probability (see vocab.keep_probability)."""
    return ids[rng.random(len(ids)) < keep[ids]]


def skipgram_pairs(sentence: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """(center, context) pairs; for every center the effective window b is uniform on [1, window]."""
    pairs = []
    n = len(sentence)
    for i in range(n):
        b = int(rng.integers(1, window + 1))
        for j in range(max(0, i - b), min(n, i + b + 1)):
            if j != i:
                pairs.append((sentence[i], sentence[j]))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


@dataclass
class EngineWord2Vec:
    """Minibatch SGD on the engine. Slow (Python builds the examples), but every gradient is the
    autodiff engine's: use it on small corpora to see the method; use word2vec_fast for real runs."""

    vocab: Vocab
    dim: int = 50
    window: int = 5
    negative: int = 5
    sample: float = 1e-3
    model: str = "sg"
    seed: int = 0
    W_in: np.ndarray = field(init=False)
    W_out: np.ndarray = field(init=False)
    losses: list[float] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.model not in ("sg", "cbow"):
            raise ValueError(f"EngineWord2Vec: model must be 'sg' or 'cbow', got {self.model!r}")
        gen = tg.Generator(self.seed)
        # Same initialisation as the reference tools: inputs uniform in ±0.5/dim, outputs zero.
        self.W_in = gen.uniform((len(self.vocab), self.dim), np.float64, -0.5 / self.dim, 0.5 / self.dim)
        self.W_out = np.zeros((len(self.vocab), self.dim))
        self.rng = gen.np

    def train(self, sentences: list[list[str]], epochs: int = 1, batch_size: int = 256,
              lr_start: float = 0.025, lr_end: float = 0.0001) -> list[float]:
        """Returns the mean loss per example of each minibatch."""
        noise = self.vocab.noise_distribution()
        keep = self.vocab.keep_probabilities(self.sample)
        encoded = [np.array([self.vocab.index[w] for w in s if w in self.vocab], dtype=np.int64) for s in sentences]
        for epoch in range(epochs):
            batches = self._examples(encoded, keep, batch_size)
            for b, batch in enumerate(batches):
                lr = lr_start - (lr_start - lr_end) * (epoch + b / max(1, len(batches))) / epochs
                n = len(batch["centers"])
                batch["negatives"] = self.rng.choice(len(self.vocab), size=(n, self.negative), p=noise)
                self.W_in, self.W_out, loss = sgd_step(self.W_in, self.W_out, lr, self.model, **batch)
                self.losses.append(loss / n)
        return self.losses

    def _examples(self, encoded: list[np.ndarray], keep: np.ndarray, batch_size: int) -> list[dict]:
        sents = [subsample(s, keep, self.rng) for s in encoded]
        out: list[dict] = []
        if self.model == "sg":
            pairs = np.concatenate([skipgram_pairs(s, self.window, self.rng) for s in sents] or [np.zeros((0, 2))])
            pairs = pairs[self.rng.permutation(len(pairs))].astype(np.int64)
            for i in range(0, len(pairs), batch_size):
                out.append({"centers": pairs[i:i + batch_size, 0], "contexts": pairs[i:i + batch_size, 1]})
            return out
        rows = []
        for s in sents:
            for i in range(len(s)):
                b = int(self.rng.integers(1, self.window + 1))
                ctx = [s[j] for j in range(max(0, i - b), min(len(s), i + b + 1)) if j != i]
                if ctx:
                    rows.append((s[i], ctx))
        order = self.rng.permutation(len(rows))
        rows = [rows[k] for k in order]
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            C = max(len(c) for _, c in chunk)
            ctx = np.zeros((len(chunk), C), dtype=np.int64)
            mask = np.zeros((len(chunk), C))
            for r, (_, c) in enumerate(chunk):
                ctx[r, :len(c)], mask[r, :len(c)] = c, 1.0
            out.append({"contexts": ctx, "context_mask": mask, "centers": np.array([c for c, _ in chunk])})
        return out
