"""The Lee corpus document-similarity benchmark (Lee, Pincombe & Welsh 2005): 50 short news
documents, every pair rated for similarity by human judges. Both files ship in gensim's test
data: lee.cor (the 50 documents, one per line) and similarities0-1.txt (the 50 x 50 matrix of mean
ratings, scaled to [0, 1]); lee_background.cor (300 other news documents) is a training corpus
for word vectors. A method scores each of the 1,225 document pairs; we report Pearson and
Spearman correlation with the human ratings over those pairs (upper triangle).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np

from .corpus import tokenize
from .evaluate import gensim_test_data, pearson, spearman
from .search import normalize


def _read_lines(name: str) -> list[str]:
    return [ln for ln in gensim_test_data(name).read_text(encoding="latin-1").splitlines() if ln.strip()]


def lee_raw_documents() -> list[str]:
    """The 50 documents as text, one string each."""
    return _read_lines("lee.cor")


def lee_documents() -> list[list[str]]:
    docs = [tokenize(line) for line in _read_lines("lee.cor")]
    if len(docs) != 50:
        raise ValueError(f"lee.cor: expected 50 documents, found {len(docs)}")
    return docs


def lee_background() -> list[list[str]]:
    return [tokenize(line) for line in _read_lines("lee_background.cor")]


def lee_human_similarities() -> np.ndarray:
    """The 50 x 50 matrix of human similarity ratings (only the upper triangle is used)."""
    m = np.loadtxt(gensim_test_data("similarities0-1.txt"))
    if m.shape != (50, 50):
        raise ValueError(f"similarities0-1.txt: expected a 50 x 50 matrix, got {m.shape}")
    return m


def tfidf_vectors(docs: list[list[str]], background: list[list[str]] | None = None) -> np.ndarray:
    """tf-idf rows (raw counts x ln(N / df)), idf from `background` + docs when given."""
    ref = docs + (background or [])
    df = Counter(w for d in ref for w in set(d))
    vocab = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
    X = np.zeros((len(docs), len(vocab)))
    for r, d in enumerate(docs):
        for w, c in Counter(d).items():
            X[r, vocab[w]] = c * math.log(len(ref) / df[w])
    return X


def evaluate_document_similarity(doc_vectors: np.ndarray, human: np.ndarray | None = None) -> tuple[float, float]:
    """(Pearson, Spearman) between cosine similarities of the rows and the human ratings."""
    human = lee_human_similarities() if human is None else human
    u = normalize(doc_vectors)
    sims = u @ u.T
    iu = np.triu_indices(len(u), k=1)
    return pearson(sims[iu], human[iu]), spearman(sims[iu], human[iu])


def lee_benchmark(embed: Callable[[list[list[str]]], np.ndarray]) -> tuple[float, float]:
    """Correlation of `embed(documents) -> (50, D)` with the human ratings."""
    return evaluate_document_similarity(embed(lee_documents()))
