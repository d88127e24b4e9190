"""`tglite exercises build [SRC DEST]`, `tglite exercises check NOTEBOOK` and
`tglite exercises hint NOTEBOOK NAME`.

Without SRC and DEST, `build` makes the handout of every instructor notebook in
notebooks/solutions/ (the course's layout) into notebooks/.

Exit codes of `check`, for autograders: 0 every exercise passed; 1 some exercise failed or was not
attempted; 2 the notebook could not be graded (missing, unreadable, a cell timed out, the kernel died).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..exercises import DRAWS  # a light import: the notebook tools load only when a command runs

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
        "block's first hint tier ('# HINT:' or '# HINT 1:'), removing '# BEGIN GRADER ONLY' blocks, and "
        "clearing all outputs. The later hint tiers and the grader-only code go into the notebook's metadata. "
        "Everything else stays. Without SRC and DEST: build every instructor notebook in --solutions into "
        "--out (a handout that is already up to date is left alone).",
    )
    build.add_argument("src", type=Path, nargs="?", metavar="SRC", help="instructor notebook (.ipynb)")
    build.add_argument("dest", type=Path, nargs="?", metavar="DEST", help="student notebook to write")
    build.add_argument("--force", action="store_true", help="replace DEST (or a changed handout) if it exists")
    build.add_argument("--solutions", type=Path, default=Path("notebooks/solutions"), metavar="DIR",
                       help="without SRC: the instructor notebooks (default: %(default)s)")
    build.add_argument("--out", type=Path, default=Path("notebooks"), metavar="DIR",
                       help="without DEST: where the handouts go (default: %(default)s)")
    build.set_defaults(handler=run_build)
    check = sub.add_parser(
        "check", help="execute a notebook and grade every exercise with gradcheck",
        description="Execute NOTEBOOK top to bottom in a fresh Python kernel (a failing cell does not "
        "stop it), then gradient-check every exercise in float64 on several random inputs (shapes and "
        "values drawn from a fresh seed, printed so that --seed replays the run). One line per exercise: "
        "passed, not attempted, or FAILED with the diagnosis, then every failing input with its worst "
        "elements. Exit code 0 when all passed, 1 when some did not, 2 when the notebook could not be graded.",
    )
    check.add_argument("notebook", type=Path, metavar="NOTEBOOK", help="notebook to grade (.ipynb)")
    check.add_argument("--json", type=Path, metavar="FILE", help="also write the grades as JSON to FILE")
    check.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                       help="limit per cell (default: %(default)s)")
    check.add_argument("--seed", type=_non_negative_int, metavar="N",
                       help="the seed of the random inputs, to replay a run (default: a fresh one)")
    check.add_argument("--draws", type=_positive_int, default=DRAWS, metavar="N",
                       help="random inputs graded per exercise (default: %(default)s)")
    check.add_argument("--verbose", action="store_true", help="print gradcheck's full report for failures")
    check.set_defaults(handler=run_check)
    hint = sub.add_parser(
        "hint", help="print one hint tier of an exercise",
        description="Print hint LEVEL of exercise NAME from NOTEBOOK (a student handout or the instructor "
        "notebook). Hint 1 is a nudge; the last one gives the formula.",
    )
    hint.add_argument("notebook", type=Path, metavar="NOTEBOOK", help="notebook (.ipynb)")
    hint.add_argument("name", metavar="NAME", help="exercise name, e.g. matmul")
    hint.add_argument("--level", type=_positive_int, default=1, metavar="N", help="hint tier (default: 1)")
    hint.set_defaults(handler=run_hint)
    return parser


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value



def _cannot_start(command: str, notebook: Path | None = None) -> bool:
    """Print `tglite exercises COMMAND: error: ...` and return True when the notebook tools are
    missing or `notebook` (when given) is not a file; False when the command can go on."""
    import sys

    from tinygrad_lite.extras import MissingExtraError, require

    what = f"tglite exercises {command}"
    try:
        require("nbformat", "course", what)
        require("nbclient", "course", what)
    except MissingExtraError as e:
        print(f"{what}: error: {e}", file=sys.stderr)
        return True
    if notebook is not None and not notebook.is_file():
        print(f"{what}: error: {notebook}: no such notebook", file=sys.stderr)
        return True
    return False


def run_build(args: argparse.Namespace) -> int:
    import sys

    from ..exercises import ExerciseBuildError, build_student_notebook

    if args.src is None:
        return _build_all(args)
    if args.dest is None:
        print("tglite exercises build: error: give both SRC and DEST, or neither (to build every handout)",
              file=sys.stderr)
        return 2
    if _cannot_start("build", args.src):
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


def _build_all(args: argparse.Namespace) -> int:
    """Build every instructor notebook in args.solutions into args.out; a handout that differs from
    its fresh build (a student may have worked in it) is replaced only with --force."""
    import sys

    from ..exercises import ExerciseBuildError, build_student_notebook, handout_is_current

    if _cannot_start("build"):
        return 2
    sources = sorted(args.solutions.glob("*.ipynb"))
    if not sources:
        print(f"tglite exercises build: error: no instructor notebooks (*.ipynb) in {args.solutions}; give SRC "
              f"and DEST, or --solutions DIR", file=sys.stderr)
        return 2
    changed = []
    for src in sources:
        dest = args.out / src.name
        try:
            if dest.exists() and handout_is_current(src, dest):
                print(f"{dest}: up to date")
                continue
            if dest.exists() and not args.force:
                changed.append(dest)
                continue
            report = build_student_notebook(src, dest, force=True)
        except ExerciseBuildError as e:
            print(f"tglite exercises build: error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {report.dest}: {len(report.exercises)} exercises, {report.blocks} solution blocks "
              f"replaced by stubs")
    if changed:
        print("tglite exercises build: error: these handouts differ from their instructor notebooks and may hold "
              f"a student's work: {', '.join(map(str, changed))}; pass --force to replace them", file=sys.stderr)
        return 2
    return 0


def run_check(args: argparse.Namespace) -> int:
    import json
    import sys
    from dataclasses import asdict

    from nn.files import atomic_write_text

    from ..exercises import GradingError, grade_notebook

    if _cannot_start("check"):  # grade_notebook says itself when the notebook is missing
        return 2
    try:
        report = grade_notebook(args.notebook, timeout=args.timeout, seed=args.seed, draws=args.draws)
    except GradingError as e:
        print(f"tglite exercises check: error: {e}", file=sys.stderr)
        return 2
    print(f"grading {args.notebook} ({report.seconds:.1f} s to run; seed {report.seed}, {args.draws} random "
          f"inputs per exercise)")
    for err in report.cell_errors:
        print(f"  note: {err}")
    for err in report.grader_errors:
        print(f"  note: a grader-only block failed, so its mistakes are not named: {err}")
    print(report.text())
    if args.verbose:
        for g in report.grades:
            if g.report:
                print(f"\n--- {g.name} ---\n{g.report}")
    if args.json:
        atomic_write_text(args.json, json.dumps({"notebook": str(args.notebook), "all_passed": report.all_passed,
                                                 "seed": report.seed, "draws": args.draws,
                                                 "grades": [asdict(g) for g in report.grades]}, indent=2) + "\n")
    return 0 if report.all_passed else 1


def run_hint(args: argparse.Namespace) -> int:
    import sys

    from ..exercises import hint_text

    if _cannot_start("hint", args.notebook):
        return 2
    import nbformat

    try:
        nb = nbformat.read(str(args.notebook), as_version=4)
        text = hint_text(nb, args.name, args.level, next_hint="--level {level}")
    except (KeyError, ValueError) as e:
        print(f"tglite exercises hint: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - an unreadable notebook: say so, no traceback
        print(f"tglite exercises hint: error: {args.notebook}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0
