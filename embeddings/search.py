"""Semantic search pieces: exact cosine k-NN, BM25, reciprocal rank fusion, and ranking metrics.

* Exact k-NN: with unit-length rows, cosine similarity is a matrix product; the k best of each row
  come from `np.argpartition` (O(N) per query) and only those k are sorted.
* BM25 (Okapi; Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework: BM25 and Beyond"):

      score(d, q) = Σ_{t in q} idf(t) · tf(t, d) · (k1 + 1) / (tf(t, d) + k1 · (1 - b + b · |d| / avgdl))
      idf(t)      = ln((N - n_t + 0.5) / (n_t + 0.5))           k1 = 1.5, b = 0.75

  That idf is negative for terms in more than half the documents; `idf="okapi"` replaces a negative
  idf by epsilon × (mean idf) (epsilon = 0.25, the convention of the rank_bm25 package, which a test
  compares against); `idf="plus1"` uses ln(1 + (N - n_t + 0.5) / (n_t + 0.5)) (Lucene's), never negative.
  The two pieces are functions of their own, `bm25_idf` and `bm25_term_weight` (one term's summand).
* Reciprocal rank fusion (Cormack, Clarke & Büttcher 2009): score(d) = Σ_r 1 / (k + rank_r(d)),
  rank starting at 1, k = 60; it needs only ranks, so BM25 and cosine scores need no calibration.
* Metrics: recall@k, MRR (mean reciprocal rank of the first relevant document) and nDCG@k with
  graded relevance (gain = grade, discount 1 / log2(rank + 1); ideal DCG from the sorted grades).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n == 0, 1, n)


def knn(queries: np.ndarray, corpus: np.ndarray, k: int = 10, normalized: bool = False,
        batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine k-NN: (indices (Q, k), similarities (Q, k)), best first.
    `normalized=True` says both inputs already have unit rows."""
    queries = np.atleast_2d(queries)
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"knn: queries have dimension {queries.shape[1]}, corpus {corpus.shape[1]}")
    if not normalized:
        queries, corpus = normalize(queries), normalize(corpus)
    k = min(k, corpus.shape[0])
    idx = np.empty((len(queries), k), dtype=np.int64)
    sims = np.empty((len(queries), k), dtype=np.float32)
    for s in range(0, len(queries), batch):
        S = queries[s:s + batch] @ corpus.T                               # (b, N)
        part = np.argpartition(-S, k - 1, axis=1)[:, :k] if k < S.shape[1] else np.tile(np.arange(k), (len(S), 1))
        top = np.take_along_axis(S, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        idx[s:s + batch] = np.take_along_axis(part, order, axis=1)
        sims[s:s + batch] = np.take_along_axis(top, order, axis=1)
    return idx, sims


def bm25_idf(doc_freq: Sequence[int] | np.ndarray, n_docs: int, idf: str = "okapi",
             epsilon: float = 0.25) -> np.ndarray:
    """BM25's idf of each term from its document frequency n_t (the number of the N = `n_docs`
    documents that contain it), as float64:

    - "okapi": the Robertson–Spärck Jones idf ln((N - n_t + 0.5) / (n_t + 0.5)). It is negative for
      a term in more than half the documents; each negative value is replaced by epsilon × the mean
      idf of all the terms given (rank_bm25's convention), so pass the whole vocabulary at once.
    - "plus1": ln(1 + (N - n_t + 0.5) / (n_t + 0.5)) (Lucene's), never negative.
    """
    df = np.asarray(doc_freq, dtype=np.float64)
    if idf not in ("okapi", "plus1"):
        raise ValueError(f"bm25_idf: idf must be 'okapi' or 'plus1', got {idf!r}")
    if n_docs < 1:
        raise ValueError(f"bm25_idf: n_docs must be at least 1, got {n_docs}")
    if df.size and (df.min() < 0 or df.max() > n_docs):
        raise ValueError(f"bm25_idf: document frequencies must be in [0, n_docs = {n_docs}], "
                         f"got values from {df.min():g} to {df.max():g}")
    odds = (n_docs - df + 0.5) / (df + 0.5)
    if idf == "plus1":
        return np.log1p(odds)
    raw = np.log(odds)
    if not raw.size:
        return raw
    return np.where(raw < 0, epsilon * raw.mean(), raw)


def bm25_term_weight(tf: float | np.ndarray, doc_len: float | np.ndarray, avgdl: float, idf: float | np.ndarray,
                     k1: float = 1.5, b: float = 0.75) -> np.ndarray:
    """One query term's contribution to BM25 scores, for documents with `tf` occurrences of the term
    and `doc_len` words (arrays broadcast), as float64:

        idf · tf · (k1 + 1) / (tf + k1 · (1 - b + b · doc_len / avgdl))

    It saturates in tf (it tends to idf · (k1 + 1) however often the term occurs) and, through b,
    counts an occurrence in a long document for less. A term a document lacks (tf = 0) adds 0."""
    if avgdl <= 0:
        raise ValueError(f"bm25_term_weight: avgdl (the mean document length) must be positive, got {avgdl}")
    if k1 < 0 or not 0 <= b <= 1:
        raise ValueError(f"bm25_term_weight: need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
    tf = np.asarray(tf, dtype=np.float64)
    num = tf * (k1 + 1)
    den = tf + k1 * (1 - b + b * np.asarray(doc_len, dtype=np.float64) / avgdl)
    # tf = 0 with k1 = 0 would be 0/0: a missing term adds nothing
    ratio = np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)
    return np.asarray(idf, dtype=np.float64) * ratio


class BM25:
    """Okapi BM25 over tokenized documents. `BM25(docs).scores(query_tokens)` -> (N,) scores."""

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75, idf: str = "okapi",
                 epsilon: float = 0.25) -> None:
        if idf not in ("okapi", "plus1"):
            raise ValueError(f"BM25: idf must be 'okapi' or 'plus1', got {idf!r}")
        if not docs:
            raise ValueError("BM25: need at least one document")
        self.k1, self.b = k1, b
        self.n_docs = len(docs)
        self.doc_len = np.array([len(d) for d in docs], dtype=np.float64)
        self.avgdl = float(self.doc_len.mean()) or 1.0
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, d in enumerate(docs):
            for term, tf in Counter(d).items():
                postings[term].append((i, tf))
        self.postings = {t: (np.array([i for i, _ in p]), np.array([tf for _, tf in p], dtype=np.float64))
                         for t, p in postings.items()}
        terms = list(self.postings)
        doc_freq = np.array([len(self.postings[t][0]) for t in terms])
        self.idf = dict(zip(terms, bm25_idf(doc_freq, self.n_docs, idf, epsilon).tolist()))

    def scores(self, query: Sequence[str]) -> np.ndarray:
        out = np.zeros(self.n_docs)
        for term in query:  # a repeated query term counts again
            if term not in self.postings:
                continue
            ids, tf = self.postings[term]
            out[ids] += bm25_term_weight(tf, self.doc_len[ids], self.avgdl, self.idf[term], self.k1, self.b)
        return out

    def search(self, query: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        s = self.scores(query)
        k = min(k, len(s))
        top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        top = top[np.argsort(-s[top], kind="stable")]
        return top, s[top]


def rrf(rankings: Sequence[Sequence[int]], k: int = 60, top: int | None = None) -> list[int]:
    """Reciprocal rank fusion of several ranked lists of document ids (best first)."""
    score: dict[int, float] = defaultdict(float)
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            score[int(doc)] += 1.0 / (k + rank)
    fused = sorted(score, key=lambda d: (-score[d], d))
    return fused[:top] if top is not None else fused


def recall_at_k(ranking: Sequence[int], relevant: Mapping[int, float] | set[int], k: int) -> float:
    rel = {d for d in relevant if (relevant[d] > 0 if isinstance(relevant, Mapping) else True)}
    return len(rel & {int(d) for d in list(ranking)[:k]}) / len(rel) if rel else 0.0


def reciprocal_rank(ranking: Sequence[int], relevant: Mapping[int, float] | set[int]) -> float:
    for rank, d in enumerate(ranking, start=1):
        if int(d) in relevant and (relevant[int(d)] > 0 if isinstance(relevant, Mapping) else True):
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranking: Sequence[int], relevant: Mapping[int, float], k: int) -> float:
    gains = [relevant.get(int(d), 0.0) for d in list(ranking)[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0
