"""Semantic search: exact k-NN, BM25 (checked against rank_bm25 when installed), RRF and metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embeddings.search import (
    BM25,
    bm25_idf,
    bm25_term_weight,
    knn,
    ndcg_at_k,
    normalize,
    recall_at_k,
    reciprocal_rank,
    rrf,
)

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


def test_bm25_idf_by_hand():
    # N = 10 documents; a term in 1, 5 and 9 of them
    raw = [math.log(9.5 / 1.5), math.log(5.5 / 5.5), math.log(1.5 / 9.5)]
    floor = 0.25 * np.mean(raw)  # the third is negative: replaced by epsilon x the mean idf
    np.testing.assert_allclose(bm25_idf([1, 5, 9], 10), [raw[0], raw[1], floor], rtol=1e-15)
    np.testing.assert_allclose(bm25_idf([1, 5, 9], 10, epsilon=0.0), [raw[0], 0.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(bm25_idf([1, 5, 9], 10, idf="plus1"), [math.log1p(9.5 / 1.5), math.log(2.0),
                                                                       math.log1p(1.5 / 9.5)], rtol=1e-15)
    assert bm25_idf([], 3).shape == (0,)
    with pytest.raises(ValueError, match=r"\[0, n_docs = 4\]"):
        bm25_idf([1, 5], 4)
    with pytest.raises(ValueError, match="'okapi' or 'plus1'"):
        bm25_idf([1], 4, idf="classic")


def test_bm25_term_weight_saturates_and_normalizes_length():
    w = bm25_term_weight(np.array([0, 1, 2, 100]), 10, avgdl=10, idf=2.0, k1=1.5, b=0.75)
    np.testing.assert_allclose(w, [0.0, 2.0 * 2.5 / 2.5, 2.0 * 2 * 2.5 / 3.5, 2.0 * 100 * 2.5 / 101.5])
    assert w[-1] < 2.0 * 2.5  # saturation: never above idf (k1 + 1)
    long_doc, short_doc = bm25_term_weight(1, [20, 5], avgdl=10, idf=1.0)
    assert long_doc < short_doc  # the same count means less in a longer document
    np.testing.assert_allclose(bm25_term_weight(1, [20, 5], avgdl=10, idf=1.0, b=0.0), [1.0, 1.0])  # b = 0: no length
    assert bm25_term_weight(0, 7, avgdl=5, idf=1.0, k1=0.0) == 0.0  # k1 = 0, tf = 0: no 0/0
    with pytest.raises(ValueError, match="avgdl"):
        bm25_term_weight(1, 5, avgdl=0, idf=1.0)
    with pytest.raises(ValueError, match="0 <= b <= 1"):
        bm25_term_weight(1, 5, avgdl=5, idf=1.0, b=1.5)


def test_bm25_scores_are_sums_of_term_weights():
    bm = BM25(DOCS)
    terms = list(bm.postings)
    idf = dict(zip(terms, bm25_idf([len(bm.postings[t][0]) for t in terms], len(DOCS))))
    assert bm.idf == pytest.approx(idf, rel=1e-15)
    query = "the lazy dog dog".split()
    tf = np.array([[d.count(t) for t in query] for d in DOCS])
    doc_len = np.array([len(d) for d in DOCS])
    expect = sum(bm25_term_weight(tf[:, j], doc_len, doc_len.mean(), idf[t]) for j, t in enumerate(query))
    np.testing.assert_allclose(bm.scores(query), expect, rtol=1e-12)


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
