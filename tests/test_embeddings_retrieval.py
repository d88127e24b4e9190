"""The retrieval benchmark (BM25 vs dense vs hybrid) and the Lee document-similarity benchmark."""
from __future__ import annotations

import numpy as np
import pytest

from embeddings.retrieval_benchmark import build_benchmark, run_benchmark, train_benchmark_vectors

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def results():
    bench = build_benchmark(n_topics=4, docs_per_topic=20, queries_per_kind=20, train_sentences=12000, seed=0)
    assert set(bench.kinds) == {"identifier", "paraphrase", "mixed", "negated"}
    for d, q, k in zip(bench.relevant, bench.queries, bench.kinds):
        if k == "paraphrase":  # a paraphrase shares no word with its document
            (doc,) = d
            assert not set(q) & set(bench.docs[doc])
    return run_benchmark(bench, train_benchmark_vectors(bench, dim=24, epochs=3))


def test_each_retriever_wins_its_own_kind(results):
    assert results["identifier"]["bm25"]["mrr"] == 1.0 and results["identifier"]["dense"]["mrr"] < 0.3
    assert results["paraphrase"]["bm25"]["mrr"] == 0.0 and results["paraphrase"]["dense"]["mrr"] > 0.6


def test_hybrid_beats_each_alone_overall(results):
    for metric in ("recall@10", "mrr", "ndcg@10"):
        assert results["all"]["hybrid"][metric] > max(results["all"]["bm25"][metric], results["all"]["dense"][metric])
    assert results["identifier"]["hybrid"]["mrr"] == 1.0


def test_negation_is_a_blind_spot(results):
    # "A but not B": neither bag-of-words nor mean vectors understand "not"
    assert all(results["negated"][r]["ndcg@10"] < 0.7 for r in ("bm25", "dense", "hybrid"))


def test_lee_benchmark_tfidf():
    pytest.importorskip("gensim")
    from embeddings.lee import evaluate_document_similarity, lee_background, lee_documents, tfidf_vectors

    docs = lee_documents()
    pearson, spearman = evaluate_document_similarity(tfidf_vectors(docs, lee_background()))
    assert 0.4 < pearson < 0.8 and 0.1 < spearman < 0.6  # measured: 0.583, 0.276
    human = np.eye(50) + np.triu(np.full((50, 50), 0.5), 1)
    assert evaluate_document_similarity(np.eye(50), human)[0] == 0.0
