"""Semantic search: exact k-NN, BM25 (checked against rank_bm25 when installed), RRF and metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embeddings.search import BM25, knn, ndcg_at_k, normalize, recall_at_k, reciprocal_rank, rrf

DOCS = [
    "the quick brown fox jumps over the lazy dog".split(),
    "error code e4021 raised by the payment service".split(),
    "a lazy afternoon with the dog in the sun".split(),
    "the fox and the hound".split(),
    "payment failed with error e4022 the service retried".split(),
    "the the the the".split(),
]


def test_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    corpus, queries = rng.normal(size=(300, 16)), rng.normal(size=(37, 16))
    idx, sims = knn(queries, corpus, k=7, batch=10)
    full = normalize(queries) @ normalize(corpus).T
    ref = np.argsort(-full, axis=1)[:, :7]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(sims, np.take_along_axis(full, ref, axis=1), rtol=1e-5)
    idx_all, _ = knn(queries[:2], corpus[:5], k=50)  # k larger than the corpus
    assert idx_all.shape == (2, 5)
    with pytest.raises(ValueError, match="dimension"):
        knn(queries[:, :3], corpus)


def test_bm25_formula_by_hand():
    bm = BM25(DOCS, idf="plus1")
    N, avgdl = len(DOCS), np.mean([len(d) for d in DOCS])
    df = 1  # "e4021" occurs in one document
    idf = math.log(1 + (N - df + 0.5) / (df + 0.5))
    dl = len(DOCS[1])
    expect = idf * 1 * 2.5 / (1 + 1.5 * (1 - 0.75 + 0.75 * dl / avgdl))
    s = bm.scores(["e4021"])
    assert s[1] == pytest.approx(expect) and (np.delete(s, 1) == 0).all()
    top, _ = bm.search("payment error e4022".split(), k=2)
    assert top[0] == 4


def test_bm25_okapi_idf_floor():
    bm = BM25(DOCS)
    assert bm.idf["the"] > 0  # in 5 of 6 documents: raw idf negative, floored at 0.25 x mean idf
    raw = {t: math.log((6 - len(p[0]) + 0.5) / (len(p[0]) + 0.5)) for t, p in bm.postings.items()}
    assert bm.idf["the"] == pytest.approx(0.25 * np.mean(list(raw.values())))


def test_bm25_matches_rank_bm25():
    rank_bm25 = pytest.importorskip("rank_bm25")
    ours, ref = BM25(DOCS), rank_bm25.BM25Okapi(DOCS, k1=1.5, b=0.75, epsilon=0.25)
    for q in ["the lazy dog", "error e4021 payment", "fox fox hound", "unknown words only"]:
        np.testing.assert_allclose(ours.scores(q.split()), ref.get_scores(q.split()), rtol=1e-12, atol=1e-12)


def test_rrf():
    # doc 7 is second in both lists: fused it beats docs that are first in only one list
    assert rrf([[1, 7, 3], [2, 7, 4]]) == [7, 1, 2, 3, 4]  # ties: lower id first
    assert rrf([[5, 6]], k=60, top=1) == [5]


def test_metrics():
    rel = {3: 2.0, 5: 1.0}
    assert recall_at_k([3, 1, 2], rel, 2) == 0.5 and recall_at_k([3, 5], {3, 5}, 2) == 1.0
    assert reciprocal_rank([9, 8, 5, 3], rel) == pytest.approx(1 / 3)
    assert reciprocal_rank([1, 2], rel) == 0.0
    assert ndcg_at_k([3, 5, 1], rel, 3) == pytest.approx(1.0)
    dcg = 1.0 / math.log2(2) + 2.0 / math.log2(3)
    assert ndcg_at_k([5, 3], rel, 2) == pytest.approx(dcg / (2.0 + 1.0 / math.log2(3)))
