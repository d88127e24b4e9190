"""The vocabulary, frequent-word subsampling and the negative-sampling distribution.

Mikolov et al. (2013, "Distributed Representations of Words and Phrases and their
Compositionality") define three corpus statistics that word2vec training uses:

* min_count: words seen fewer times are dropped from the corpus before training.
* Subsampling of frequent words. With f = count / total the word's frequency (a fraction of the
  retained corpus) and s the `sample` threshold, each occurrence is kept with probability

      keep(f) = min(1, (sqrt(f / s) + 1) * s / f)

  This is the formula of the reference implementations (the C tool and gensim), NOT the paper's.
  The paper writes a *discard* probability 1 - sqrt(t / f), i.e. keep = sqrt(t / f). The two
  agree in spirit (frequent words are thinned, roughly as 1/sqrt(f)), but differ in detail: for
  f = 100 s the paper keeps 10% of the occurrences, the code keeps 11%; and the code keeps every
  word with f <= s (1 + sqrt(5)) / 2 ≈ 2.6 s, where the paper already starts discarding at f = s.
* Negative samples are drawn from the unigram distribution raised to the power 0.75,
  P(w) ∝ count(w)^0.75: rarer words are drawn more often than their frequency alone would give.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


def keep_probability(freq: np.ndarray, sample: float) -> np.ndarray:
    """min(1, (sqrt(f/s) + 1) * s/f) for word frequencies f (fractions); all ones when s <= 0."""
    freq = np.asarray(freq, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(freq)
    return np.minimum(1.0, (np.sqrt(freq / sample) + 1.0) * sample / freq)


def paper_keep_probability(freq: np.ndarray, sample: float) -> np.ndarray:
    """The paper's version, for comparison in the docs: keep = min(1, sqrt(t/f))."""
    freq = np.asarray(freq, dtype=np.float64)
    return np.minimum(1.0, np.sqrt(sample / freq))


@dataclass
class Vocab:
    """Words sorted by count (most frequent first; ties alphabetically, so the order is reproducible)."""

    words: list[str]
    counts: np.ndarray  # int64, same order as words

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, sentences: Iterable[list[str]], min_count: int = 5) -> Vocab:
        if min_count < 1:
            raise ValueError(f"Vocab.build: min_count must be >= 1, got {min_count}")
        counter: Counter[str] = Counter()
        for s in sentences:
            counter.update(s)
        kept = sorted(((w, c) for w, c in counter.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
        if not kept:
            raise ValueError(f"Vocab.build: no word occurs at least min_count={min_count} times")
        return cls([w for w, _ in kept], np.array([c for _, c in kept], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @property
    def total(self) -> int:
        """Number of in-vocabulary tokens in the corpus (the denominator of every frequency)."""
        return int(self.counts.sum())

    def frequencies(self) -> np.ndarray:
        return self.counts / self.total

    def keep_probabilities(self, sample: float = 1e-3) -> np.ndarray:
        return keep_probability(self.frequencies(), sample)

    def noise_distribution(self, power: float = 0.75) -> np.ndarray:
        """P(w) ∝ count(w)^power, the distribution negatives are drawn from."""
        p = self.counts.astype(np.float64) ** power
        return p / p.sum()

    def noise_table(self, size: int = 1 << 22, power: float = 0.75) -> np.ndarray:
        """A lookup table where word w fills about size·P(w) slots: a uniform random slot is a
        draw from the noise distribution in O(1) (what the fast trainer uses)."""
        cdf = np.cumsum(self.noise_distribution(power))
        slots = (np.arange(size) + 0.5) / size
        return np.minimum(np.searchsorted(cdf, slots), len(self) - 1).astype(np.int32)

    def alias_table(self, power: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
        """Walker's alias method (Vose's construction): (prob float64, alias int32), each of length V.
        A draw: i = floor(u·V) for u uniform in [0, 1), then i if frac(u·V) < prob[i] else alias[i].
        Exact for the noise distribution, O(1) per draw, and two small arrays that stay in cache
        (the C tool's 10^8-slot table does not)."""
        p = self.noise_distribution(power) * len(self)
        prob, alias = np.ones(len(self)), np.arange(len(self), dtype=np.int32)
        small = [i for i in range(len(self)) if p[i] < 1.0]
        large = [i for i in range(len(self)) if p[i] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            prob[s], alias[s] = p[s], g
            p[g] -= 1.0 - p[s]
            (small if p[g] < 1.0 else large).append(g)
        return prob, alias

    def encode(self, sentences: Iterable[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Flatten sentences to (ids int32, offsets int64): out-of-vocabulary words are removed
        (before windows are cut, as in the reference tools); sentence k is ids[offsets[k]:offsets[k+1]]."""
        ids: list[int] = []
        offsets = [0]
        get = self.index.get
        for s in sentences:
            ids.extend(i for i in (get(w) for w in s) if i is not None)
            if len(ids) > offsets[-1]:
                offsets.append(len(ids))
        return np.array(ids, dtype=np.int32), np.array(offsets, dtype=np.int64)
