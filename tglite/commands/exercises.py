"""`tglite exercises build SRC DEST` and `tglite exercises check NOTEBOOK`.

Exit codes of `check`, for autograders: 0 every exercise passed; 1 some exercise failed or was not
attempted; 2 the notebook could not be graded (missing, unreadable, a cell timed out, the kernel died).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "exercises",
        help="build a student notebook from an instructor notebook, or grade a notebook",
        description="Gradient-check exercises (see docs/exercises.md).",
    )
    sub = parser.add_subparsers(title="actions", dest="action", metavar="ACTION", required=True)
    build = sub.add_parser(
        "build", help="write the student version of an instructor notebook",
        description="Copy the instructor notebook SRC to DEST, replacing every block between "
        "'# BEGIN SOLUTION' and '# END SOLUTION' by a stub that raises NotImplementedError with the "
        "block's '# HINT:' text, and clearing all outputs. Everything else stays.",
    )
    build.add_argument("src", type=Path, metavar="SRC", help="instructor notebook (.ipynb)")
    build.add_argument("dest", type=Path, metavar="DEST", help="student notebook to write")
    build.add_argument("--force", action="store_true", help="replace DEST if it exists")
    build.set_defaults(handler=run_build)
    check = sub.add_parser(
        "check", help="execute a notebook and grade every exercise with gradcheck",
        description="Execute NOTEBOOK top to bottom in a fresh Python kernel (a failing cell does not "
        "stop it), then gradient-check every exercise in float64. One line per exercise: passed, "
        "not attempted, or FAILED with gradcheck's diagnosis and the worst elements. Exit code 0 "
        "when all passed, 1 when some did not, 2 when the notebook could not be graded.",
    )
    check.add_argument("notebook", type=Path, metavar="NOTEBOOK", help="notebook to grade (.ipynb)")
    check.add_argument("--json", type=Path, metavar="FILE", help="also write the grades as JSON to FILE")
    check.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                       help="limit per cell (default: %(default)s)")
    check.add_argument("--verbose", action="store_true", help="print gradcheck's full report for failures")
    check.set_defaults(handler=run_check)
    return parser



def _require_notebook_tools(what: str) -> str | None:
    from ..extras import MissingExtraError, require

    try:
        require("nbformat", "course", what)
        require("nbclient", "course", what)
    except MissingExtraError as e:
        return str(e)
    return None


def run_build(args: argparse.Namespace) -> int:
    import sys

    from ..exercises import ExerciseBuildError, build_student_notebook

    problem = _require_notebook_tools("tglite exercises build")
    if problem:
        print(f"tglite exercises build: error: {problem}", file=sys.stderr)
        return 2
    if not args.src.is_file():
        print(f"tglite exercises build: error: {args.src}: no such notebook", file=sys.stderr)
        return 2
    try:
        report = build_student_notebook(args.src, args.dest, force=args.force)
    except (ExerciseBuildError, FileExistsError) as e:
        print(f"tglite exercises build: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - an unreadable notebook: say so, no traceback
        print(f"tglite exercises build: error: {args.src}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(f"wrote {report.dest}: {len(report.exercises)} exercises, {report.blocks} solution blocks "
          f"replaced by stubs")
    return 0


def run_check(args: argparse.Namespace) -> int:
    import json
    import sys
    from dataclasses import asdict

    from ..exercises import GradingError, grade_notebook
    from ..files import atomic_write_text

    problem = _require_notebook_tools("tglite exercises check")
    if problem:
        print(f"tglite exercises check: error: {problem}", file=sys.stderr)
        return 2
    try:
        report = grade_notebook(args.notebook, timeout=args.timeout)
    except GradingError as e:
        print(f"tglite exercises check: error: {e}", file=sys.stderr)
        return 2
    print(f"grading {args.notebook} ({report.seconds:.1f} s to run)")
    for err in report.cell_errors:
        print(f"  note: {err}")
    print(report.text())
    if args.verbose:
        for g in report.grades:
            if g.report:
                print(f"\n--- {g.name} ---\n{g.report}")
    if args.json:
        atomic_write_text(args.json, json.dumps({"notebook": str(args.notebook), "all_passed": report.all_passed,
                                                 "grades": [asdict(g) for g in report.grades]}, indent=2) + "\n")
    return 0 if report.all_passed else 1
