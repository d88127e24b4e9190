"""`tglite tour`: run every lecture demo that exists so far and save its figures."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "tour",
        help="run every lecture demo so far and save its figures (PNG)",
        description="Run, on built-in defaults, every lecture demo that exists so far: each prints "
        "what it shows and saves its figures (PNG) and text files under the output folder. Ends "
        "with a summary line per demo. Needs the course extra: pip install -e \".[course]\".",
    )
    parser.add_argument("--out", type=Path, default=Path("tglite_out"), metavar="DIR",
                        help="folder for figures and reports (created if missing; default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller settings (fewer training steps): a fast smoke run")
    parser.add_argument("--only", action="append", metavar="STEP",
                        help="run only this step (repeat for several); see --list")
    parser.add_argument("--list", action="store_true", help="list the steps and exit")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import sys

    from tinygrad_lite.extras import MissingExtraError, require

    from ..tour import run_tour, tour_steps

    if args.list:
        for step in tour_steps():
            print(f"{step.name:<24} ({step.module})")
        return 0
    if args.out.exists() and not args.out.is_dir():
        print(f"tglite tour: error: --out {str(args.out)!r} exists and is not a folder", file=sys.stderr)
        return 2
    try:
        # Fail before the first demo, not in the middle of the tour.
        require("matplotlib", "course", "tglite tour (figures)")
        require("tqdm", "course", "tglite tour (progress bars)")
        return run_tour(args.out, quick=args.quick, only=args.only)
    except (ValueError, MissingExtraError) as e:
        print(f"tglite tour: error: {e}", file=sys.stderr)
        return 2
