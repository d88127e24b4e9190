"""Gradient-check exercises: an instructor notebook in, a student notebook out, and a grader.

Inside a notebook, each exercise is a `Function` whose backward the student writes, registered
with the `@exercise` decorator:

    @exercise("sigmoid", inputs=lambda: (randn(3, 4, seed=1),))
    class Sigmoid(Function):
        def forward(self, x): ...
        def backward(self, g):
            # BEGIN SOLUTION
            # HINT: σ'(x) = σ(x)(1 - σ(x))
            ...
            # END SOLUTION

    check("sigmoid")        # one line: passed / not attempted / failed (with gradcheck's diagnosis)

`build_student_notebook` replaces every solution block by a stub that raises NotImplementedError
with the block's hint. `grade_notebook` executes a notebook in a fresh kernel (nbclient) and grades
every registered exercise with `tinygrad_lite.gradcheck.check_gradients` on float64 inputs.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
HINT = "# HINT:"
GRADES_MARKER = "<<tglite-grades>>"
METADATA_KEY = "tglite_exercises"
_DEFAULT_HINT = "write this part of the exercise"
_NAME_IN_CELL = re.compile(r"""@exercise\(\s*["']([\w\-]+)["']""")

PASSED, NOT_ATTEMPTED, FAILED = "passed", "not attempted", "failed"


# ------------------------------------------------------------------ registration
@dataclass
class Exercise:
    name: str
    function: Any  # the Function subclass (or any callable building the output)
    inputs: Callable[[], Sequence[Any]]  # fresh float64 inputs, the differentiable ones with requires_grad
    call: Callable[..., Any]  # inputs -> output Tensor(s)
    title: str = ""


_REGISTRY: dict[str, Exercise] = {}  # in registration order; re-running a cell replaces its entry


def exercise(name: str, inputs: Callable[[], Sequence[Any]], call: Callable[..., Any] | None = None,
             title: str = "") -> Callable[[Any], Any]:
    """Class decorator: register a Function as the exercise `name`. Grading runs
    `gradcheck(call or cls.apply, inputs())`; pass `call` for ops with extra arguments
    (e.g. `call=lambda x: SumAxis.apply(x, axis=1)`)."""

    def deco(cls: Any) -> Any:
        fn = call if call is not None else cls.apply
        _REGISTRY.pop(name, None)
        _REGISTRY[name] = Exercise(name, cls, inputs, fn, title or (cls.__doc__ or "").strip().split("\n")[0])
        return cls

    return deco


def registered() -> list[str]:
    return list(_REGISTRY)


def clear_registry() -> None:
    _REGISTRY.clear()


# ------------------------------------------------------------------------ grading
@dataclass
class Grade:
    name: str
    status: str  # "passed", "not attempted" or "failed"
    diagnosis: str | None = None  # gradcheck's key: factor, sign, transposed, broadcast, zero, partial, unknown;
    #                               "error" when the code raised, "missing" when the exercise never registered
    message: str = ""
    worst: list[dict[str, Any]] = field(default_factory=list)
    report: str = ""


_DIAGNOSIS_LABEL = {
    "factor": "factor off", "sign": "sign flipped", "transposed": "transposed",
    "broadcast": "missing broadcast reduction", "zero": "zero gradient", "partial": "partly wrong",
    "unknown": "wrong gradient", "error": "error", "missing": "not defined",
}


def grade_exercise(ex: Exercise) -> Grade:
    """Gradient-check one exercise. Never raises: every outcome is a Grade."""
    import warnings

    from tinygrad_lite.gradcheck import check_gradients

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a float32 warning would be the instructor's bug, shown below
            result = check_gradients(ex.call, tuple(ex.inputs()))
    except NotImplementedError as e:
        return Grade(ex.name, NOT_ATTEMPTED, message=str(e) or "the backward rule raises NotImplementedError")
    except Exception as e:  # noqa: BLE001 - a student's bug of any kind is a failed exercise
        return Grade(ex.name, FAILED, "error", f"{type(e).__name__}: {e}")
    if result.ok:
        return Grade(ex.name, PASSED)
    text = result.report.split("Diagnosis: ", 1)[-1].strip() if "Diagnosis: " in result.report else result.report
    return Grade(ex.name, FAILED, result.diagnosis, text, list(result.worst), result.report)


def grade_registered(names: Sequence[str] | None = None) -> list[Grade]:
    """Grade the registered exercises (or `names`, in that order; unknown names are 'not defined')."""
    names = list(names) if names is not None else list(_REGISTRY)
    for extra in _REGISTRY:
        if extra not in names:
            names.append(extra)
    grades = []
    for name in names:
        ex = _REGISTRY.get(name)
        if ex is None:
            grades.append(Grade(name, FAILED, "missing", "the exercise was never registered: did its cell "
                                                           "run without errors, with its @exercise decorator?"))
        else:
            grades.append(grade_exercise(ex))
    return grades


def format_grade(g: Grade, index: int | None = None, total: int | None = None, width: int = 16) -> str:
    """One line (plus the worst elements for a failure)."""
    tag = f"[{index:>2}/{total}] " if index is not None and total is not None else ""
    head = f"{tag}{g.name:<{width}} "
    if g.status == PASSED:
        return head + "passed"
    if g.status == NOT_ATTEMPTED:
        return head + "not attempted"
    line = head + f"FAILED ({_DIAGNOSIS_LABEL.get(g.diagnosis or '', g.diagnosis)}): {g.message}"
    for w in g.worst[:3]:
        line += (f"\n{'':{len(tag)}}    worst: input index {w['input_index']}, output {w['output_index']}: "
                 f"analytical {w['analytical']:.6g}, numerical {w['numerical']:.6g}")
    return line


def check(name: str) -> Grade:
    """Grade one exercise now and print its line (for the notebook itself; never raises)."""
    ex = _REGISTRY.get(name)
    g = grade_exercise(ex) if ex is not None else Grade(name, FAILED, "missing", "not registered")
    print(format_grade(g))
    return g


def summary(grades: Sequence[Grade] | None = None) -> str:
    grades = list(grades) if grades is not None else grade_registered()
    width = max([16] + [len(g.name) for g in grades])
    lines = [format_grade(g, i, len(grades), width) for i, g in enumerate(grades, 1)]
    counts = {s: sum(g.status == s for g in grades) for s in (PASSED, NOT_ATTEMPTED, FAILED)}
    lines.append(f"{counts[PASSED]} passed, {counts[NOT_ATTEMPTED]} not attempted, {counts[FAILED]} failed "
                 f"(of {len(grades)})")
    return "\n".join(lines)


def _grades_json(names: Sequence[str] | None = None) -> str:
    """What the grading cell prints: the grades as JSON, after a marker."""
    return GRADES_MARKER + json.dumps([asdict(g) for g in grade_registered(names)], default=str)


# -------------------------------------------------------------- notebook building
class ExerciseBuildError(ValueError):
    """The instructor notebook's solution markers are malformed."""


def _read_notebook(path: str | os.PathLike[str]) -> Any:
    import nbformat

    return nbformat.read(str(path), as_version=4)


def strip_solutions(source: str, label: str = "exercise", where: str = "") -> tuple[str, int]:
    """Replace each `# BEGIN SOLUTION` ... `# END SOLUTION` block by a stub raising
    NotImplementedError with the block's `# HINT:` lines (kept as comments too), indented like
    the BEGIN line. Returns (new source, number of blocks replaced)."""
    out: list[str] = []
    inside, indent, hints, start, count = False, "", [], 0, 0
    for number, line in enumerate(source.split("\n"), 1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ExerciseBuildError(f"{where}line {number}: {BEGIN} inside the block opened at line {start}")
            inside, indent, hints, start = True, line[: len(line) - len(line.lstrip())], [], number
            continue
        if stripped.startswith(END):
            if not inside:
                raise ExerciseBuildError(f"{where}line {number}: {END} without a {BEGIN}")
            message = f"{label}: {' '.join(hints) or _DEFAULT_HINT}"
            out += [f"{indent}{HINT} {hint}" for hint in hints]
            out.append(f"{indent}raise NotImplementedError({message!r})")
            inside, count = False, count + 1
            continue
        if inside:
            if stripped.startswith(HINT):  # several HINT lines make one longer hint
                hints.append(stripped[len(HINT):].strip())
            continue
        out.append(line)
    if inside:
        raise ExerciseBuildError(f"{where}line {start}: {BEGIN} is never closed by {END}")
    return "\n".join(out), count


def exercise_names(nb: Any) -> list[str]:
    """Names of the exercises a notebook defines, in cell order (from its @exercise decorators)."""
    names: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            names += [n for n in _NAME_IN_CELL.findall(cell.source) if n not in names]
    return names


@dataclass
class BuildReport:
    dest: Path
    exercises: list[str]
    blocks: int


def build_student_notebook(src: str | os.PathLike[str], dest: str | os.PathLike[str],
                           force: bool = False) -> BuildReport:
    """Write the student version of the instructor notebook `src` to `dest` (atomically): every
    solution block becomes a stub, outputs are cleared, everything else stays."""
    import nbformat

    from .files import atomic_write_text

    src, dest = Path(src), Path(dest)
    if src.resolve() == dest.resolve():
        raise ExerciseBuildError("DEST is SRC: building would overwrite the instructor notebook")
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} exists and may hold a student's work; pass --force (force=True) to replace it")
    nb = _read_notebook(src)
    blocks = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        names = _NAME_IN_CELL.findall(cell.source)
        label = f"exercise {names[0]!r}" if names else "exercise"
        cell.source, n = strip_solutions(cell.source, label, where=f"cell {i}: ")
        blocks += n
        cell.outputs = []
        cell.execution_count = None
    names = exercise_names(nb)
    if blocks == 0:
        raise ExerciseBuildError(f"{src} has no {BEGIN} / {END} blocks: nothing to turn into exercises")
    nb.metadata[METADATA_KEY] = {"exercises": names, "built_from": src.name}
    nbformat.validate(nb)
    atomic_write_text(dest, nbformat.writes(nb))
    return BuildReport(dest, names, blocks)


def replace_solution(nb: Any, name: str, code: str) -> None:
    """Put `code` in place of the solution block of exercise `name` (in the instructor notebook):
    how an instructor (or a test) plants a typical mistake to see the grader's diagnosis."""
    for cell in nb.cells:
        if cell.cell_type == "code" and name in _NAME_IN_CELL.findall(cell.source):
            lines = cell.source.split("\n")
            b = next(i for i, line in enumerate(lines) if line.strip().startswith(BEGIN))
            e = next(i for i, line in enumerate(lines) if line.strip().startswith(END))
            indent = lines[b][: len(lines[b]) - len(lines[b].lstrip())]
            body = [indent + line if line else line for line in code.strip("\n").split("\n")]
            cell.source = "\n".join(lines[:b] + body + lines[e + 1:])
            return
    raise KeyError(f"no exercise {name!r} in the notebook")


# ------------------------------------------------------------------------ grading
class GradingError(RuntimeError):
    """The notebook could not be executed far enough to grade it."""


@dataclass
class GradingReport:
    notebook: Path
    grades: list[Grade]
    cell_errors: list[str]  # cells that raised while the notebook ran (it keeps going)
    seconds: float

    @property
    def all_passed(self) -> bool:
        return bool(self.grades) and all(g.status == PASSED for g in self.grades)

    def text(self) -> str:
        return summary(self.grades)


def grade_notebook(notebook: str | os.PathLike[str] | Any, timeout: float = 120.0,
                   env: dict[str, str] | None = None) -> GradingReport:
    """Execute a notebook top to bottom in a fresh kernel (errors do not stop it), then grade every
    exercise it registered, plus every exercise its metadata or decorators say should exist."""
    import time

    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(notebook) if isinstance(notebook, (str, os.PathLike)) else Path("notebook.ipynb")
    if isinstance(notebook, (str, os.PathLike)):
        if not path.is_file():
            raise GradingError(f"{path}: no such notebook")
        try:
            nb = _read_notebook(path)
        except Exception as e:  # noqa: BLE001 - not JSON, not a notebook, ...
            raise GradingError(f"{path}: not a readable notebook ({type(e).__name__}: {e})") from e
    else:
        nb = nbformat.from_dict(notebook)
    expected = list(nb.metadata.get(METADATA_KEY, {}).get("exercises", [])) or exercise_names(nb)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(
        "from tglite.exercises import _grades_json\n"
        f"print(_grades_json({expected!r}))"
    ))
    old_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})  # the kernel inherits this process's environment
    t0 = time.perf_counter()
    sockets = tempfile.TemporaryDirectory(prefix="tglite-kernel-")
    try:
        # Talk to the kernel over local IPC sockets (in a private temporary folder), not TCP: nothing
        # leaves the machine, and the kernel has no reason to warn about unencrypted TCP traffic.
        km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets.name, "kernel"))
        client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=True,
                                resources={"metadata": {"path": str(path.parent.resolve())}})
        client.execute()
    except CellTimeoutError as e:
        raise GradingError(f"{path}: a cell ran longer than {timeout:g} s ({e})") from e
    except DeadKernelError as e:
        raise GradingError(f"{path}: the kernel died while running the notebook ({e})") from e
    finally:
        sockets.cleanup()
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - t0
    cell_errors = []
    for i, cell in enumerate(nb.cells[:n_cells]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                cell_errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []) if o.get("output_type") == "stream")
    if GRADES_MARKER not in text:
        errors = [o for o in nb.cells[-1].get("outputs", []) if o.get("output_type") == "error"]
        why = f"{errors[0].get('ename')}: {errors[0].get('evalue')}" if errors else "no output"
        raise GradingError(f"{path}: the grading cell did not report ({why})")
    raw = json.loads(text.split(GRADES_MARKER, 1)[1].strip().splitlines()[0])
    return GradingReport(path, [Grade(**g) for g in raw], cell_errors, seconds)


__all__ = [
    "exercise", "check", "summary", "registered", "Grade", "Exercise", "grade_exercise", "grade_registered",
    "build_student_notebook", "strip_solutions", "replace_solution", "exercise_names", "grade_notebook",
    "GradingReport", "GradingError", "ExerciseBuildError", "PASSED", "NOT_ATTEMPTED", "FAILED",
]
