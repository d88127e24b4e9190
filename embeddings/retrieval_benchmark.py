"""A small retrieval benchmark with known relevance, built here, where each retriever's blind spot shows.

The world: topics, each with concepts; every concept has several synonyms (surface forms) and two
"signature" context words. A word2vec corpus of short sentences puts each synonym next to its
concept's signature words and other concepts of its topic, so synonyms end up with similar vectors
(the distributional hypothesis at work). Documents: one topic, three of its concepts (each written
with one synonym), a few function words, and an identifier like "kx-4821" that occurs nowhere else
(and is therefore not in the word2vec vocabulary).

Query kinds, each with its relevant document(s):
    identifier   the document's identifier plus a generic word: only exact matching can find it
    paraphrase   the document's three concepts, each written with a *different* synonym: no word in
                 common with the document, so BM25 scores zero; the mean word vector still matches
    mixed        a product name shared by a few documents (rare, lexical) + one of the document's
                 concepts written with another synonym: the product narrows the field lexically, the
                 concept semantically; neither alone singles out the document, together they do
    negated      "A but not B": relevant are the documents with concept A and without B. Both
                 retrievers treat "not B" as "B" (bag of words / mean vector) and rank A-and-B
                 documents first: a failure that fusion cannot repair.

Both retrievers drop the function words (a stop list) from queries and documents. Dense retriever:
mean of the remaining unit word vectors, cosine k-NN (a query with no known word, like a bare
identifier, gets the zero vector: its ranking is arbitrary). Sparse: BM25. Hybrid: reciprocal rank
fusion of the two rankings (documents BM25 scores 0 are left out of its list).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .search import BM25, knn, ndcg_at_k, normalize, recall_at_k, reciprocal_rank, rrf
from .vectors import WordVectors


def _rng(seed: int) -> np.random.Generator:
    """The engine's seeded generator (PCG64), as a NumPy Generator: the project's one source of randomness."""
    from tinygrad_lite import Generator

    return Generator(seed).np

FUNCTION_WORDS = ["the", "a", "of", "with", "and", "for", "in", "on"]


@dataclass
class RetrievalBenchmark:
    docs: list[list[str]]
    queries: list[list[str]]
    kinds: list[str]
    relevant: list[dict[int, float]]
    train_sentences: list[list[str]]
    concept_of: dict[str, str] = field(default_factory=dict)


def _letters(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("bcdfghjklmnprstvz"), n)) + rng.choice(list("aeiou"))


def build_benchmark(n_topics: int = 6, concepts_per_topic: int = 8, synonyms: int = 3, docs_per_topic: int = 25,
                    queries_per_kind: int = 40, train_sentences: int = 30000, seed: int = 0) -> RetrievalBenchmark:
    rng = _rng(seed)
    used: set[str] = set(FUNCTION_WORDS)

    def fresh(n: int) -> str:
        while True:
            w = _letters(rng, n)
            if w not in used:
                used.add(w)
                return w

    topics = [[f"c{t}_{c}" for c in range(concepts_per_topic)] for t in range(n_topics)]
    forms = {c: [fresh(5) for _ in range(synonyms)] for t in topics for c in t}
    signature = {c: [fresh(4), fresh(4)] for t in topics for c in t}
    concept_of = {w: c for c, ws in forms.items() for w in ws}

    # word2vec corpus: a concept's synonym among its signature words and its topic's other concepts
    n = train_sentences
    t = rng.integers(n_topics, size=n)
    c1 = rng.integers(concepts_per_topic, size=n)
    c2 = (c1 + rng.integers(1, concepts_per_topic, size=n)) % concepts_per_topic  # a different concept
    syn = rng.integers(synonyms, size=(n, 2))
    sig = rng.integers(2, size=n)
    fw = rng.integers(len(FUNCTION_WORDS), size=(n, 2))
    order = np.argsort(rng.random((n, 7)), axis=1)
    sents = []
    for i in range(n):
        a, b = topics[t[i]][c1[i]], topics[t[i]][c2[i]]
        words = [forms[a][syn[i, 0]], *signature[a], forms[b][syn[i, 1]], signature[b][sig[i]],
                 FUNCTION_WORDS[fw[i, 0]], FUNCTION_WORDS[fw[i, 1]]]
        sents.append([words[j] for j in order[i]])

    products = [fresh(6) for _ in range(n_topics * docs_per_topic // 3)]
    docs, doc_concepts, doc_ids, doc_product = [], [], [], []
    for t in range(n_topics):
        for _ in range(docs_per_topic):
            cs = list(rng.choice(topics[t], 3, replace=False))
            ident = f"{fresh(2)}-{rng.integers(1000, 10000)}"
            product = products[rng.integers(len(products))]
            words = [rng.choice(forms[c]) for c in cs] + [ident, product] + list(rng.choice(FUNCTION_WORDS, 4))
            docs.append([str(w) for w in rng.permutation(words)])
            doc_concepts.append(cs)
            doc_ids.append(ident)
            doc_product.append(product)

    queries, kinds, relevant = [], [], []

    def paraphrase(d: int) -> list[str]:
        return [str(rng.choice([f for f in forms[c] if f not in docs[d]])) for c in doc_concepts[d]]

    picks = rng.choice(len(docs), queries_per_kind, replace=False)
    for d in picks:
        queries.append([doc_ids[d], "the", str(rng.choice(FUNCTION_WORDS))])
        kinds.append("identifier")
        relevant.append({int(d): 1.0})
    for d in rng.choice(len(docs), queries_per_kind, replace=False):
        queries.append(paraphrase(int(d)))
        kinds.append("paraphrase")
        relevant.append({int(d): 1.0})
    shared = [d for d in range(len(docs)) if sum(p == doc_product[d] for p in doc_product) >= 2]
    for d in rng.choice(shared, min(queries_per_kind, len(shared)), replace=False):
        queries.append([doc_product[d], *paraphrase(int(d))[:1]])
        kinds.append("mixed")
        relevant.append({int(d): 1.0})
    for _ in range(queries_per_kind):
        t = int(rng.integers(n_topics))
        a, b = rng.choice(topics[t], 2, replace=False)
        rel = {d: 1.0 for d, cs in enumerate(doc_concepts) if a in cs and b not in cs}
        if not rel:
            continue
        queries.append([str(rng.choice(forms[a])), "but", "not", str(rng.choice(forms[b]))])
        kinds.append("negated")
        relevant.append(rel)
    return RetrievalBenchmark(docs, queries, kinds, relevant, sents, concept_of)


def content_words(text: list[str]) -> list[str]:
    stop = set(FUNCTION_WORDS)
    return [w for w in text if w not in stop]


def mean_vectors(kv: WordVectors, texts: list[list[str]]) -> np.ndarray:
    """Mean of the unit word vectors of each text's known content words (zeros when none is known)."""
    unit = kv.unit()
    out = np.zeros((len(texts), kv.dim), dtype=np.float32)
    for i, t in enumerate(texts):
        rows = [kv.index[w] for w in content_words(t) if w in kv.index]
        if rows:
            out[i] = unit[rows].mean(axis=0)
    return out


def run_benchmark(bench: RetrievalBenchmark, kv: WordVectors, k: int = 10) -> dict[str, dict[str, dict[str, float]]]:
    """{kind (and "all"): {"bm25"|"dense"|"hybrid": {"recall@k", "mrr", "ndcg@k"}}}."""
    bm = BM25([content_words(d) for d in bench.docs])
    dense_idx, _ = knn(mean_vectors(kv, bench.queries), normalize(mean_vectors(kv, bench.docs)),
                       k=len(bench.docs), normalized=True)
    per: dict[str, dict[str, list[list[float]]]] = {}
    for qi, q in enumerate(bench.queries):
        s = bm.scores(content_words(q))
        order = np.argsort(-s, kind="stable")
        sparse = [int(d) for d in order if s[d] > 0]
        dense = [int(d) for d in dense_idx[qi]]
        hybrid = rrf([sparse, dense])
        for name, ranking in (("bm25", sparse), ("dense", dense), ("hybrid", hybrid)):
            rel = bench.relevant[qi]
            m = [recall_at_k(ranking, rel, k), reciprocal_rank(ranking, rel), ndcg_at_k(ranking, rel, k)]
            for kind in (bench.kinds[qi], "all"):
                per.setdefault(kind, {}).setdefault(name, []).append(m)
    return {kind: {name: dict(zip((f"recall@{k}", "mrr", f"ndcg@{k}"), np.mean(v, axis=0).tolist()))
                   for name, v in by.items()} for kind, by in per.items()}


def format_results(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = []
    for kind, by in results.items():
        for name, m in by.items():
            lines.append(f"{kind:11s} {name:7s} " + "  ".join(f"{key} {v:.3f}" for key, v in m.items()))
    return "\n".join(lines)


def train_benchmark_vectors(bench: RetrievalBenchmark, dim: int = 32, epochs: int = 3, workers: int = 2,
                            seed: int = 1) -> WordVectors:
    """word2vec (our fast trainer, skip-gram) on the benchmark's own training sentences."""
    from .vocab import Vocab
    from .word2vec_fast import FastWord2Vec

    vocab = Vocab.build(bench.train_sentences, min_count=5)
    model = FastWord2Vec(vocab, dim=dim, window=5, negative=5, sample=0, model="sg", workers=workers, seed=seed)
    model.train(bench.train_sentences, epochs=epochs, compute_loss=False)
    return model.vectors()
