"""`tglite book build [--out DIR] [--quick]`: the course website (docs and executed notebooks)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "book",
        help="build the course website: docs and executed notebooks as one book (HTML)",
        description="The course as a website (Sphinx + myst-nb + sphinx-book-theme; see docs/book.md). "
        "Run from a clone of the repository. Needs the course and book extras: "
        "pip install -e \".[course,book]\".",
    )
    sub = parser.add_subparsers(title="actions", dest="action", metavar="ACTION", required=True)
    build = sub.add_parser(
        "build", help="build the book into --out/html",
        description="Copy book/, docs/ and the student handouts (notebooks/*.ipynb, never the solutions) into "
        "--out/src, execute every notebook and build the HTML site into --out/html (open index.html). A "
        "notebook cell that raises stops the build.",
    )
    build.add_argument("--out", type=Path, default=Path("_build/book"), metavar="DIR",
                       help="build folder (default: %(default)s)")
    build.add_argument("--quick", action="store_true",
                       help="run the notebooks with their CI settings (TGLITE_CI=1): minutes instead of a quarter hour")
    build.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="Sphinx worker processes (default: %(default)s)")
    build.set_defaults(handler=run_build)
    return parser


def run_build(args: argparse.Namespace) -> int:
    import sys

    from tinygrad_lite.extras import MissingExtraError

    from ..book import BookError, build_book, repo_root

    if args.jobs < 1:
        print(f"tglite book build: error: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"tglite book build: error: --out {str(args.out)!r} exists and is not a folder", file=sys.stderr)
        return 2
    try:
        root = repo_root()
        settings = "quick: CI settings" if args.quick else "full settings"
        print(f"building the book from {root} into {args.out} ({settings}); every notebook is executed", flush=True)
        result = build_book(root, args.out, quick=args.quick, jobs=args.jobs)
    except (BookError, MissingExtraError) as e:
        print(f"tglite book build: error: {e}", file=sys.stderr)
        return 2
    for line in result.warnings:
        print(f"  warning: {line}")
    print(f"built in {result.seconds:.0f} s: open {result.index}")
    return 0
