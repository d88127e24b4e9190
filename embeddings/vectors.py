"""Word vectors: lookup, cosine nearest neighbours, and the word2vec text format.

The text format (the C tool's, readable by gensim's KeyedVectors.load_word2vec_format):

    <number of words> <dimension>
    word v_1 v_2 ... v_dim
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VectorsFormatError(ValueError):
    """A word2vec text file is malformed."""


class WordVectors:
    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"WordVectors: {len(words)} words but vectors of shape {vectors.shape}")
        self.words = list(words)
        self.vectors = vectors
        self.index = {w: i for i, w in enumerate(self.words)}
        self._unit: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.index[word]]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def unit(self) -> np.ndarray:
        """Rows scaled to unit length (float32; zero rows stay zero)."""
        if self._unit is None:
            v = self.vectors.astype(np.float32)
            n = np.linalg.norm(v, axis=1, keepdims=True)
            self._unit = v / np.where(n == 0, 1, n)
        return self._unit

    def similarity(self, a: str, b: str) -> float:
        u = self.unit()
        return float(u[self.index[a]] @ u[self.index[b]])

    def most_similar(self, word: str | np.ndarray, topn: int = 10,
                     exclude: tuple[str, ...] = ()) -> list[tuple[str, float]]:
        """The topn words by cosine similarity to `word` (a word, excluded from the answer, or a vector)."""
        u = self.unit()
        if isinstance(word, str):
            q, exclude = u[self.index[word]], (*exclude, word)
        else:
            q = np.asarray(word, dtype=np.float32)
            q = q / (np.linalg.norm(q) or 1.0)
        sims = u @ q
        for w in exclude:
            if w in self.index:
                sims[self.index[w]] = -np.inf
        top = np.argpartition(-sims, min(topn, len(sims) - 1))[:topn]
        top = top[np.argsort(-sims[top])]
        return [(self.words[i], float(sims[i])) for i in top]

    def save_word2vec_format(self, path: str | os.PathLike[str]) -> Path:
        """Write the text format atomically (temporary file, then rename)."""
        from nn.files import atomic_write_text

        lines = [f"{len(self)} {self.dim}"]
        lines += [w + " " + " ".join(f"{x:.6g}" for x in row) for w, row in zip(self.words, self.vectors)]
        return atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def load_word2vec_format(cls, path: str | os.PathLike[str]) -> WordVectors:
        with open(path, encoding="utf-8") as f:
            header = f.readline().split()
            if len(header) != 2 or not all(h.isdigit() for h in header):
                raise VectorsFormatError(f"{path}: first line must be '<count> <dim>', got {' '.join(header)!r}")
            n, dim = int(header[0]), int(header[1])
            words, rows = [], []
            for lineno, line in enumerate(f, 2):
                parts = line.rstrip("\n").split(" ")
                if len(parts) != dim + 1:
                    raise VectorsFormatError(
                        f"{path}:{lineno}: expected a word and {dim} numbers, got {len(parts)} fields")
                words.append(parts[0])
                rows.append(np.array(parts[1:], dtype=np.float32))
        if len(words) != n:
            raise VectorsFormatError(f"{path}: header says {n} words, file has {len(words)} (truncated?)")
        return cls(words, np.stack(rows) if rows else np.zeros((0, dim), np.float32))
