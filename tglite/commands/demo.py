"""`tglite demo NAME`: run one lecture demo with its full default settings.

    tglite demo backprop [--out DIR] [--quick] [--fd-budget SECONDS] [--seed N]
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run one lecture demo (backprop) and save its figures",
        description="Run one lecture demo on its full default settings (the tour runs smaller ones).",
    )
    demos = parser.add_subparsers(title="demos", dest="demo", metavar="DEMO", required=True)
    bp = demos.add_parser(
        "backprop",
        help="backprop vs numerical differentiation: cost, accuracy, forward vs reverse mode, worked example",
        description="Measure one full gradient of MLPs with P = 10 .. 10^5 parameters by backprop and by "
        "central finite differences (as far as a time budget allows), fit and extrapolate both; plot "
        "finite-difference error against the step h in float64 and float32; time full Jacobians in "
        "forward and reverse mode; and work e = (a+b)(b+1) by hand and by the engine. Prints tables, "
        "saves backprop_*.png (the worked example's graph too, drawn without Graphviz), the graph as DOT text "
        "and backprop_report.txt under --out. Needs the course "
        "extra (matplotlib, tqdm).",
    )
    bp.add_argument("--out", type=Path, default=Path("tglite_out"), metavar="DIR",
                    help="folder for figures and the report (created if missing; default: %(default)s)")
    bp.add_argument("--quick", action="store_true", help="the small CI settings: a few seconds")
    bp.add_argument("--fd-budget", type=float, metavar="SECONDS",
                    help="time budget for the finite-difference gradients (default: 60, or 2 with --quick)")
    bp.add_argument("--seed", type=int, default=None, help="seed for models and data (default: 0)")
    bp.add_argument("--no-progress", action="store_true", help="no progress bars")
    bp.set_defaults(handler=run_backprop)
    return parser



def run_backprop(args: argparse.Namespace) -> int:
    import sys
    from dataclasses import replace

    from tinygrad_lite.extras import MissingExtraError, require

    try:
        require("matplotlib", "course", "tglite demo backprop (figures)")
        require("tqdm", "course", "tglite demo backprop (progress bars)")
    except MissingExtraError as e:
        print(f"tglite demo backprop: error: {e}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"tglite demo backprop: error: --out {str(args.out)!r} exists and is not a folder", file=sys.stderr)
        return 2
    if args.fd_budget is not None and args.fd_budget < 0:
        print("tglite demo backprop: error: --fd-budget must be >= 0", file=sys.stderr)
        return 2
    from ..demos.backprop import BackpropDemoSettings, run_backprop_demo

    settings = BackpropDemoSettings.quick() if args.quick else BackpropDemoSettings()
    if args.fd_budget is not None:
        settings = replace(settings, fd_budget_s=args.fd_budget)
    if args.seed is not None:
        settings = replace(settings, seed=args.seed)
    if args.no_progress:
        settings = replace(settings, progress=False)
    result = run_backprop_demo(settings, args.out)
    print(f"report: {result.report}")
    return 0
