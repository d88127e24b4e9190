"""The fast word2vec trainer: Numba-compiled, Hogwild-parallel SGD (skip-gram or CBOW with
negative sampling), the learning rate decaying linearly from 0.025 to 0.0001 over all epochs.

    vocab = Vocab.build(sentences, min_count=5)
    model = FastWord2Vec(vocab, dim=100, window=5, negative=5, sample=1e-3, workers=2)
    model.train(sentences, epochs=5)
    model.vectors()            # WordVectors over model.W_in

The math is the one written as a Tensor expression in word2vec_engine; tests check that one SGD
step gives the same vectors in both to 1e-6. numba is imported lazily, by the engine's loader: without
it, constructing a FastWord2Vec raises an ImportError naming the extra to install.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite.backend import load_numba

from .vectors import WordVectors
from .vocab import Vocab


def kernels() -> ModuleType:
    """The Numba CPU kernels module (compiling or loading them from the cache on first use)."""
    load_numba("the fast word2vec trainer")  # the engine's loader: compile cache, missing-extra error
    from . import _kernels

    return _kernels


def cuda_kernels() -> ModuleType:
    """The Numba CUDA kernel of skip-gram negative sampling (`sgns_update`): CuPy arrays on a GPU,
    NumPy arrays under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    load_numba("the word2vec CUDA kernel", "gpu")
    from . import _cuda_kernels

    return _cuda_kernels


@dataclass
class TrainStats:
    words: int = 0            # raw in-vocabulary corpus words processed (all epochs)
    examples: int = 0         # (input, target) training examples
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)  # mean loss per example, per progress chunk

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds else 0.0


@dataclass
class FastWord2Vec:
    vocab: Vocab
    dim: int = 100
    window: int = 5
    negative: int = 5
    sample: float = 1e-3
    model: str = "sg"
    workers: int = 2
    alpha: float = 0.025
    min_alpha: float = 0.0001
    seed: int = 1
    dtype: type = np.float32

    def __post_init__(self) -> None:
        if self.model not in ("sg", "cbow"):
            raise ValueError(f"FastWord2Vec: model must be 'sg' or 'cbow', got {self.model!r}")
        if self.window < 1 or self.negative < 0 or self.dim < 1:
            raise ValueError(f"FastWord2Vec: need window >= 1, negative >= 0, dim >= 1; got "
                             f"window={self.window}, negative={self.negative}, dim={self.dim}")
        self.k = kernels()
        gen = tg.Generator(self.seed)
        # Inputs uniform in ±0.5/dim, outputs zero (the reference tools' initialisation).
        self.W_in = gen.uniform((len(self.vocab), self.dim), self.dtype, -0.5 / self.dim, 0.5 / self.dim)
        self.W_out = np.zeros((len(self.vocab), self.dim), dtype=self.dtype)
        self.keep = self.vocab.keep_probabilities(self.sample).astype(np.float64)
        self.noise_prob, self.noise_alias = self.vocab.alias_table()
        self.rng_seed = gen.integers(1, 2**62, (max(64, self.workers),)).astype(np.uint64)  # one stream a thread

    def train(self, sentences: list[list[str]] | tuple[np.ndarray, np.ndarray], epochs: int = 5,
              chunks_per_epoch: int = 20, compute_loss: bool = True,
              callback: Callable[[TrainStats, float], None] | None = None) -> TrainStats:
        """Train for `epochs` passes. `sentences`: token lists, or (ids, offsets) from vocab.encode.
        `callback(stats, fraction_done)` is called after every chunk (progress bars use it).
        compute_loss=False skips the loss (a log per example, ~10% of the time); stats.losses is then NaN."""
        ids, offsets = sentences if isinstance(sentences, tuple) else self.vocab.encode(sentences)
        if len(offsets) < 2 or offsets[-1] == 0:
            raise ValueError("FastWord2Vec.train: the corpus has no in-vocabulary words")
        if epochs < 1:
            raise ValueError(f"FastWord2Vec.train: epochs must be >= 1, got {epochs}")
        n_threads = self.k.set_threads(self.workers)
        n_sent = len(offsets) - 1
        words_epoch = int(offsets[-1])
        total = words_epoch * epochs
        progress = np.zeros(n_threads, dtype=np.int64)
        rng = self.rng_seed[:n_threads].copy()
        stats = TrainStats()
        # Chunk boundaries in sentences, so that each chunk holds about the same number of words.
        chunk_ends = np.searchsorted(offsets, np.linspace(0, words_epoch, chunks_per_epoch + 1)[1:], side="left")
        chunk_ends = np.unique(np.clip(chunk_ends, 1, n_sent))
        t0 = time.perf_counter()
        words_before = 0
        for _ in range(epochs):
            lo = 0
            for hi in chunk_ends:
                # split [lo, hi) among threads by words
                targets = np.linspace(offsets[lo], offsets[hi], n_threads + 1)
                bounds = np.searchsorted(offsets, targets).astype(np.int64)
                bounds[0], bounds[-1] = lo, hi
                bounds = np.maximum.accumulate(np.clip(bounds, lo, hi))
                loss, examples = np.zeros(n_threads), np.zeros(n_threads, dtype=np.int64)
                progress[:] = 0
                self.k.train_chunk(self.W_in, self.W_out, ids, offsets, bounds, self.keep, self.noise_prob,
                                   self.noise_alias, self.window, self.negative, self.model == "cbow",
                                   self.alpha, self.min_alpha,
                                   words_before, total, progress, rng, loss, examples, compute_loss)
                chunk_words = int(offsets[hi] - offsets[lo])
                words_before += chunk_words
                stats.words += chunk_words
                stats.examples += int(examples.sum())
                mean_loss = float(loss.sum() / max(1, examples.sum())) if compute_loss else float("nan")
                stats.losses.append(mean_loss)
                stats.seconds = time.perf_counter() - t0
                if callback is not None:
                    callback(stats, words_before / total)
                lo = hi
        return stats

    def vectors(self) -> WordVectors:
        return WordVectors(list(self.vocab.words), self.W_in.copy())

    # Explicit single steps (the same inner update the trainer uses), for tests and teaching.
    def sgd_step_sg(self, centers: np.ndarray, contexts: np.ndarray, negatives: np.ndarray, lr: float) -> float:
        return float(self.k.sg_pairs_step(self.W_in, self.W_out, np.asarray(centers, np.int64),
                                          np.asarray(contexts, np.int64), np.asarray(negatives, np.int64), lr))

    def sgd_step_cbow(self, contexts: np.ndarray, context_mask: np.ndarray, centers: np.ndarray,
                      negatives: np.ndarray, lr: float) -> float:
        return float(self.k.cbow_step(self.W_in, self.W_out, np.asarray(contexts, np.int64),
                                      np.asarray(context_mask, np.int64), np.asarray(centers, np.int64),
                                      np.asarray(negatives, np.int64), lr))
