"""Our Numba word2vec trainer vs gensim's, side by side on the same corpus and hyperparameters.

    python benchmarks/word2vec.py [--repeats 2] [--epochs 5] [--workers 2]

Corpus: the 38 Shakespeare plays (the GPT's corpus, nn/data.py), lowercase words, one sentence per
speech. Both trainers get the same token lists. Settings: skip-gram, negative sampling (5), dim 100,
window 5, sample 1e-3, min_count 5, linear learning-rate decay 0.025 -> 0.0001, 2 threads.
Runs alternate (gensim, ours, gensim, ours, ...) so that load from other processes on a shared
machine hits both alike. words/s = corpus words (all tokens) x epochs / seconds of training (the
vocabulary scan is not timed, for either). Analogy accuracy: our evaluator (embeddings.evaluate,
3CosAdd, query words excluded) over the questions-words.txt questions whose four words are in the
vocabulary, applied to both sets of vectors. gensim is the reference only: the trainer does not use it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from machine import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dim", type=int, default=100)
    args = ap.parse_args()
    print(machine_line(), flush=True)

    from gensim.models import Word2Vec

    from embeddings import FastWord2Vec, Vocab, WordVectors, shakespeare_sentences
    from embeddings.evaluate import evaluate_analogies, evaluate_similarity, read_analogies

    sentences = shakespeare_sentences()
    n_words = sum(map(len, sentences))
    vocab = Vocab.build(sentences, min_count=5)
    encoded = vocab.encode(sentences)
    questions = read_analogies()
    print(f"corpus: {len(sentences):,} sentences, {n_words:,} words, vocabulary {len(vocab):,} (min_count 5)")
    print(f"settings: skip-gram, dim {args.dim}, window 5, negative 5, sample 1e-3, {args.epochs} epochs, "
          f"{args.workers} threads\n")

    # compile (or load from cache) the Numba kernels before timing anything
    FastWord2Vec(vocab, dim=8, workers=1).train(encoded, epochs=1, chunks_per_epoch=1)

    results: dict[str, list[tuple[float, float, float, float, float]]] = {"gensim": [], "ours": []}
    for r in range(args.repeats):
        seed = r + 1
        g = Word2Vec(vector_size=args.dim, window=5, negative=5, hs=0, sg=1, sample=1e-3, min_count=5,
                     workers=args.workers, alpha=0.025, min_alpha=0.0001, seed=seed)
        g.build_vocab(sentences)
        t0 = time.perf_counter()
        g.train(sentences, total_examples=len(sentences), epochs=args.epochs)
        secs = time.perf_counter() - t0
        kv = WordVectors(list(g.wv.index_to_key), g.wv.vectors)
        results["gensim"].append(_score(kv, secs, n_words * args.epochs, questions, evaluate_analogies,
                                        evaluate_similarity))

        m = FastWord2Vec(vocab, dim=args.dim, window=5, negative=5, sample=1e-3, model="sg",
                         workers=args.workers, seed=seed)
        t0 = time.perf_counter()
        m.train(encoded, epochs=args.epochs, compute_loss=False)  # gensim default: no loss either
        secs = time.perf_counter() - t0
        results["ours"].append(_score(m.vectors(), secs, n_words * args.epochs, questions, evaluate_analogies,
                                      evaluate_similarity))
        for name in ("gensim", "ours"):
            s, wps, add, mul, ws = results[name][-1]
            print(f"run {r + 1} {name:6s}: {s:6.2f} s  {wps:10,.0f} words/s  analogy 3CosAdd {100 * add:5.2f}%  "
                  f"3CosMul {100 * mul:5.2f}%  WordSim-353 rho {ws:.3f}")

    print()
    med = {k: [statistics.median(col) for col in zip(*v)] for k, v in results.items()}
    for name in ("gensim", "ours"):
        s, wps, add, mul, ws = med[name]
        print(f"median {name:6s}: {wps:10,.0f} words/s  analogy 3CosAdd {100 * add:5.2f}%  3CosMul {100 * mul:5.2f}%"
              f"  WordSim-353 rho {ws:.3f}")
    n_q = evaluate_analogies(WordVectors(vocab.words, np.zeros((len(vocab), 1))), questions).total
    print(f"\nwords/s ratio ours/gensim: {med['ours'][1] / med['gensim'][1]:.2f}x")
    print(f"analogy accuracy difference (ours - gensim, 3CosAdd): {100 * (med['ours'][2] - med['gensim'][2]):+.2f} "
          f"points over {n_q} in-vocabulary questions")


def _score(kv, secs, words, questions, evaluate_analogies, evaluate_similarity):  # type: ignore[no-untyped-def]
    add = evaluate_analogies(kv, questions, "3cosadd").accuracy
    mul = evaluate_analogies(kv, questions, "3cosmul").accuracy
    ws = evaluate_similarity(kv, "wordsim353.tsv").spearman
    return secs, words / secs, add, mul, ws


if __name__ == "__main__":
    main()
