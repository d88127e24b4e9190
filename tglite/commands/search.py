"""`tglite search --query TEXT [--corpus shakespeare|FILE]`: BM25, dense and hybrid search."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import UsageError, encoding_name, positive_int, print_error, read_text_file


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "search",
        help="search a corpus with BM25, word vectors, or both fused (RRF)",
        description="Search the passages of a corpus (Shakespeare's speeches, or the blank-line separated "
        "blocks of a text file). bm25: Okapi BM25 (k1=1.5, b=0.75). dense: cosine between mean word "
        "vectors (needs --vectors, a word2vec text or .bin file, e.g. from `tglite word2vec train`). hybrid: "
        "reciprocal rank fusion (k=60) of the two.",
    )
    parser.add_argument("--query", required=True, help="the query text")
    parser.add_argument("--corpus", default="shakespeare", help="'shakespeare' or a text file")
    parser.add_argument("--encoding", type=encoding_name, default="utf-8",
                        help="the text file's encoding (e.g. latin-1 or cp1252 for older files)")
    parser.add_argument("--vectors", type=Path, default=None,
                        help="word2vec file for dense / hybrid search (text, or binary when it ends in .bin)")
    parser.add_argument("--mode", choices=["bm25", "dense", "hybrid"], default=None,
                        help="default: hybrid with --vectors, else bm25")
    parser.add_argument("-k", type=positive_int, default=5, help="number of results")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np

    from embeddings import BM25, WordVectors, knn, mean_vectors, normalize, rrf, tokenize

    mode = args.mode or ("hybrid" if args.vectors else "bm25")
    try:
        if mode != "bm25" and args.vectors is None:
            raise ValueError(f"--mode {mode} needs --vectors (train some with `tglite word2vec train`)")
        if args.corpus == "shakespeare":
            from nn.data import shakespeare_text

            text = shakespeare_text()
        else:
            text = read_text_file(Path(args.corpus), args.encoding)
        passages = [b.strip() for b in text.split("\n\n") if b.strip()]
        if not passages:
            raise UsageError(f"--corpus {args.corpus!r} holds no text to search (passages are blocks of text "
                             "separated by blank lines)")
        docs = [tokenize(p) for p in passages]
        if not any(docs):
            raise UsageError(f"--corpus {args.corpus!r} holds no words to search")
        query = tokenize(args.query)
        if not query:
            raise ValueError("the query has no words")
        kv = WordVectors.load_word2vec_format(args.vectors) if args.vectors else None
    except (OSError, ValueError, RuntimeError) as e:
        return print_error("search", e)
    rankings = []
    if mode in ("bm25", "hybrid"):
        s = BM25(docs).scores(query)
        order = np.argsort(-s, kind="stable")
        rankings.append([int(d) for d in order[: max(100, args.k)] if s[d] > 0])
    if mode in ("dense", "hybrid"):
        q = mean_vectors(kv, [query])
        if not q.any():
            print("note: no query word is in the vectors' vocabulary; dense ranking is arbitrary", file=sys.stderr)
        idx, _ = knn(q, normalize(mean_vectors(kv, docs)), k=max(100, args.k), normalized=True)
        rankings.append([int(d) for d in idx[0]])
    ranking = rrf(rankings) if mode == "hybrid" else rankings[0]
    print(f"{mode} search over {len(docs):,} passages for {args.query!r}:\n")
    for rank, d in enumerate(ranking[: args.k], 1):
        snippet = " ".join(passages[d].split())
        print(f"{rank}. [{d}] {snippet[:200]}{'...' if len(snippet) > 200 else ''}")
    if not ranking:
        print("(no passage contains a query word)")
    return 0
