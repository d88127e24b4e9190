"""Gradient-check exercises: an instructor notebook in, a student notebook out, and a grader.

Inside a notebook, each exercise is a `Function` whose backward the student writes, registered
with the `@exercise` decorator. Its inputs come from a function of a seeded generator, so the
grader can draw fresh shapes and values on every run:

    @exercise("sigmoid", inputs=lambda gen: (randn(gen, dim(gen), dim(gen)),))
    class Sigmoid(Function):
        def forward(self, x): ...
        def backward(self, g):
            # BEGIN SOLUTION
            # HINT 1: a nudge (which rule applies, which shape the gradient has)
            # HINT 2: the formula, only in the last tier
            ...
            # END SOLUTION

    check("sigmoid")        # one line: passed / not attempted / failed (with gradcheck's diagnosis)
    hint("sigmoid", 2)      # the next hint tier

`build_student_notebook` replaces every solution block by a stub that raises NotImplementedError
with the first hint tier; the later tiers and any `# BEGIN GRADER ONLY` blocks (the instructor's
`@mistake` variants, which would give the answer away) move into the notebook's metadata.
`grade_notebook` executes a notebook in a fresh kernel (nbclient) and grades every registered
exercise with `tinygrad_lite.gradcheck.check_gradients` on several random float64 draws.
"""
from __future__ import annotations

import inspect
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
HINT = "# HINT:"
GRADER_BEGIN = "# BEGIN GRADER ONLY"
GRADER_END = "# END GRADER ONLY"
GRADES_MARKER = "<<tglite-grades>>"
METADATA_KEY = "tglite_exercises"
DRAWS = 3  # random input draws graded per exercise
_DEFAULT_HINT = "write this part of the exercise"
_NAME_IN_CELL = re.compile(r"""@exercise\(\s*["']([\w\-]+)["']""")
_HINT_LINE = re.compile(r"^# HINT(?:\s+(\d+))?:\s*(.*)$")  # "# HINT:" or "# HINT 2:"

PASSED, NOT_ATTEMPTED, FAILED = "passed", "not attempted", "failed"


# ------------------------------------------------------------------ registration
@dataclass
class Mistake:
    """A typical wrong answer, written by the instructor as a wrong backward rule: when a student's
    gradient equals this rule's on the same inputs, the grader names the mistake."""

    key: str  # the diagnosis key, e.g. "dk_not_transposed"
    title: str  # the short label shown after FAILED
    explanation: str  # what went wrong and where to look (not the answer)
    backward: Callable[..., Any]  # a backward(self, g) with the mistake planted


@dataclass
class Exercise:
    name: str
    function: Any  # the Function subclass (or any callable building the output)
    # fresh float64 inputs, the differentiable ones with requires_grad: inputs(gen) with a seeded
    # tinygrad_lite.Generator (randomized shapes and values), or inputs() (always the same inputs)
    inputs: Callable[..., Sequence[Any]]
    call: Callable[..., Any]  # inputs -> output Tensor(s)
    title: str = ""
    # A value exercise (a function, not a backward rule): the project's own implementation that
    # the student's output is compared with, and the tolerance of that comparison.
    reference: Callable[..., Any] | None = None
    rtol: float = 1e-6
    atol: float = 1e-9

    @property
    def randomized(self) -> bool:
        """True when `inputs` takes a generator (a required positional argument), so draws differ."""
        try:
            params = inspect.signature(self.inputs).parameters.values()
        except (TypeError, ValueError):
            return False
        return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty for p in params)

    def draw(self, seed: int | None) -> tuple[Any, ...]:
        """The inputs of one draw: from `tinygrad_lite.Generator(seed)` when randomized."""
        if not self.randomized:
            return tuple(self.inputs())
        import tinygrad_lite as tg

        return tuple(self.inputs(tg.Generator(seed)))


_REGISTRY: dict[str, Exercise] = {}  # in registration order; re-running a cell replaces its entry
_MISTAKES: dict[str, dict[str, Mistake]] = {}  # exercise name -> mistake key -> Mistake


def exercise(name: str, inputs: Callable[..., Sequence[Any]], call: Callable[..., Any] | None = None,
             title: str = "", reference: Callable[..., Any] | None = None, rtol: float = 1e-6,
             atol: float = 1e-9) -> Callable[[Any], Any]:
    """Register the exercise `name`. Two kinds:

    - a gradient exercise (no `reference`): decorate a Function; grading runs
      `gradcheck(call or cls.apply, inputs(gen))` for several seeded generators `gen`. Pass `call`
      for ops with extra arguments (e.g. `call=lambda x: SumAxis.apply(x, axis=1)`).
    - a value exercise (`reference` given): decorate a plain function; grading compares
      `fn(*inputs(gen))` with `reference(*inputs(gen))`, the project's own implementation, within
      `rtol`/`atol` (exactly, for outputs that are not numbers).

    An `inputs` that takes no argument gives the same inputs every time (not randomized)."""

    def deco(obj: Any) -> Any:
        if reference is not None:
            fn = call if call is not None else obj
        else:
            fn = call if call is not None else obj.apply
        _REGISTRY.pop(name, None)
        _REGISTRY[name] = Exercise(name, obj, inputs, fn, title or (obj.__doc__ or "").strip().split("\n")[0],
                                   reference, rtol, atol)
        return obj

    return deco


def mistake(exercise_name: str, key: str, title: str, explanation: str) -> Callable[[Any], Any]:
    """Decorator on a wrong `backward(self, g)` (a gradient exercise) or a wrong function with the
    exercise's signature (a value exercise): register it as a known mistake of an exercise.
    Put it in a `# BEGIN GRADER ONLY` block, so the handout does not show it."""

    def deco(backward: Callable[..., Any]) -> Callable[..., Any]:
        _MISTAKES.setdefault(exercise_name, {})[key] = Mistake(key, title, explanation, backward)
        return backward

    return deco


def registered() -> list[str]:
    return list(_REGISTRY)


def clear_registry() -> None:
    _REGISTRY.clear()
    _MISTAKES.clear()


def new_seed() -> int:
    """A fresh seed for one grading run (recorded in every Grade, so a run can be replayed)."""
    return secrets.randbelow(1_000_000)


# ------------------------------------------------------------------------ grading
@dataclass
class Grade:
    name: str
    status: str  # "passed", "not attempted" or "failed"
    diagnosis: str | None = None  # gradcheck's key (factor, sign, transposed, operand_transposed, broadcast,
    #                               zero, partial, unknown), a known mistake's key, "error" when the code
    #                               raised, "missing" when the exercise never registered
    message: str = ""
    worst: list[dict[str, Any]] = field(default_factory=list)
    report: str = ""
    label: str = ""  # the diagnosis in words (a known mistake's title); empty: from the key
    seed: int | None = None  # the run's seed; draw k used tinygrad_lite.Generator(seed + k)
    draws: int = 0  # random draws graded (0: the exercise's inputs are not randomized)
    failed_draws: list[int] = field(default_factory=list)  # which draws failed
    # every failing input: {"draw", "input_index", "input_shape", "diagnosis", "message", "worst"}
    # (an input that fails on several draws is listed for the first of them)
    failures: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "gradient"  # "gradient" (a backward rule, gradchecked) or "value" (compared with a reference)


_DIAGNOSIS_LABEL = {
    "factor": "factor off", "sign": "sign flipped", "transposed": "transposed",
    "operand_transposed": "missing transpose", "broadcast": "missing broadcast reduction",
    "zero": "zero gradient", "partial": "partly wrong", "unknown": "wrong gradient", "error": "error",
    "missing": "not defined", "shape": "wrong shape", "nan": "NaN",
}
_VALUE_LABEL = {**_DIAGNOSIS_LABEL, "zero": "all zero", "unknown": "wrong value", "partial": "partly wrong"}


def _message(report: str) -> str:
    return report.split("Diagnosis: ", 1)[-1].strip() if "Diagnosis: " in report else report


def _known_mistake(ex: Exercise, inputs: tuple[Any, ...], atol: float = 1e-5, rtol: float = 1e-3) -> Mistake | None:
    """The instructor's mistake whose backward gives exactly the student's Jacobian on these inputs."""
    import numpy as np

    from tinygrad_lite.gradcheck import analytical_jacobian

    mistakes = _MISTAKES.get(ex.name, {})
    if mistakes and ex.reference is not None:
        return _known_value_mistake(ex, mistakes, inputs, atol, rtol)
    if not mistakes or not isinstance(ex.function, type):
        return None
    try:
        student = analytical_jacobian(ex.call, inputs)
    except Exception:  # noqa: BLE001 - no Jacobian to compare
        return None
    for m in mistakes.values():
        # Run the op once with the mistake in place of the student's backward rule.
        had_own = "backward" in ex.function.__dict__
        own = ex.function.__dict__.get("backward")
        ex.function.backward = m.backward
        try:
            planted = analytical_jacobian(ex.call, inputs)
        except Exception:  # noqa: BLE001 - a mistake that cannot run here cannot be it
            continue
        finally:
            if had_own:
                ex.function.backward = own
            else:
                del ex.function.backward
        same = [p.shape == s.shape and np.all(np.abs(s - p) <= atol + rtol * np.abs(p))
                for p, s in zip(planted, student)]
        if len(planted) == len(student) and all(same):
            return m
    return None


# --------------------------------------------------------------- value exercises
def _outputs_as_arrays(out: Any) -> list[Any]:
    """A function's result as a list of NumPy arrays: a tuple is several outputs, anything else
    (a number, a list, an ndarray, a Tensor) is one."""
    import numpy as np

    items = out if isinstance(out, tuple) else (out,)
    return [np.asarray(o.numpy() if hasattr(o, "numpy") else o) for o in items]


def _numeric(a: Any) -> bool:
    import numpy as np

    return np.issubdtype(a.dtype, np.number) or a.dtype == bool


def _value_diagnosis(got: Any, want: Any, atol: float, rtol: float) -> tuple[str, str]:
    """Name the usual mistakes of a computed value against the reference (same shape, numbers)."""
    import numpy as np

    got, want = got.astype(np.float64), want.astype(np.float64)
    if np.isnan(got).any() and not np.isnan(want).any():
        where = tuple(int(i) for i in np.argwhere(np.isnan(got))[0])
        return "nan", f"your output has NaN (first at index {where}); the reference has none: a 0/0 or a log of 0?"
    ok = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if np.abs(got).max(initial=0.0) <= atol < np.abs(want).max(initial=0.0):
        return "zero", "your output is all zero while the reference's is not"
    big = np.abs(want) > 1e-3 * max(np.abs(want).max(initial=0.0), atol)
    if big.any():
        c = float(np.median(got[big] / want[big]))
        scaled = np.allclose(got, c * want, rtol=rtol * 10, atol=atol * max(1, abs(c)))
        if abs(c - 1.0) > 0.01 and abs(c) > 1e-8 and scaled:
            if abs(c + 1.0) <= 0.01:
                return "sign", "the sign is flipped: yours = -reference everywhere"
            return "factor", f"off by a constant factor: yours ≈ {c:.4g} × reference (a dropped or extra constant?)"
    if got.ndim >= 2 and got.shape[-1] == got.shape[-2] > 1 and np.allclose(np.swapaxes(got, -1, -2), want,
                                                                            rtol=rtol, atol=atol):
        return "transposed", "your output is the transpose of the reference's (the order of a matmul's operands?)"
    if ok.any():
        bad = np.argwhere(~ok)
        where = [tuple(int(i) for i in b) for b in bad[:6]]
        more = "" if len(bad) <= 6 else f" and {len(bad) - 6} more"
        return "partial", f"{int(ok.sum())} of {ok.size} elements match; wrong at {where}{more}"
    return "unknown", "no common mistake recognized; compare your values and the reference's below"


def _compare_values(got_out: Any, want_out: Any, atol: float, rtol: float) -> list[dict[str, Any]]:
    """Every output that differs from the reference: {"output", "diagnosis", "message", "worst"}."""
    import numpy as np

    got, want = _outputs_as_arrays(got_out), _outputs_as_arrays(want_out)
    if len(got) != len(want):
        return [{"output": None, "diagnosis": "shape", "worst": [],
                 "message": f"returned {len(got)} value(s) where {len(want)} are expected"}]
    failures = []
    for m, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape:
            turned = " (the transpose?)" if g.shape == w.shape[::-1] and g.ndim >= 2 else ""
            failures.append({"output": m, "diagnosis": "shape", "worst": [],
                             "message": f"shape {g.shape} where {w.shape} is expected{turned}"})
            continue
        if not (_numeric(g) and _numeric(w)):
            same = g == w
            if not np.all(same):
                where = [tuple(int(i) for i in b) for b in np.argwhere(~np.atleast_1d(same))[:3]]
                failures.append({"output": m, "diagnosis": "unknown", "worst": [],
                                 "message": f"{int(np.size(same) - np.sum(same))} of {np.size(same)} values differ "
                                            f"(first at {where}: yours {np.atleast_1d(g)[where[0]]!r}, "
                                            f"expected {np.atleast_1d(w)[where[0]]!r})"})
            continue
        if np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
            continue
        key, text = _value_diagnosis(g, w, atol, rtol)
        err = np.abs(np.atleast_1d(g).astype(np.float64) - np.atleast_1d(w).astype(np.float64))
        flat = np.nan_to_num(err, nan=np.inf).ravel()
        order = [k for k in np.argsort(flat)[::-1][:3] if flat[k] > 0]  # the worst wrong elements only
        worst = [{"output": m, "output_index": tuple(int(i) for i in np.unravel_index(k, err.shape)),
                  "yours": float(np.atleast_1d(g).ravel()[k]), "expected": float(np.atleast_1d(w).ravel()[k])}
                 for k in order]
        failures.append({"output": m, "diagnosis": key, "message": text, "worst": worst})
    return failures


def _known_value_mistake(ex: Exercise, mistakes: dict[str, Mistake], inputs: tuple[Any, ...], atol: float,
                         rtol: float) -> Mistake | None:
    """The instructor's wrong function whose output equals the student's on these inputs."""
    try:
        student = ex.call(*inputs)
    except Exception:  # noqa: BLE001 - nothing to compare
        return None
    for m in mistakes.values():
        try:
            planted = m.backward(*inputs)
        except Exception:  # noqa: BLE001 - a mistake that cannot run here cannot be it
            continue
        if not _compare_values(student, planted, atol, rtol):
            return m
    return None


def _grade_value(ex: Exercise, seed: int, draws: int) -> Grade:
    """Compare a value exercise's output with its reference on `draws` random inputs."""
    n = draws if ex.randomized else 1
    grade = Grade(ex.name, PASSED, seed=seed, draws=n if ex.randomized else 0, kind="value")
    first_inputs: tuple[Any, ...] | None = None
    seen: set[Any] = set()
    for k in range(n):
        where = f" (draw {k}, seed {seed + k})" if ex.randomized else ""
        try:
            inputs = ex.draw(seed + k)
            expected = ex.reference(*inputs)
        except Exception as e:  # noqa: BLE001 - the instructor's inputs or reference is broken
            return Grade(ex.name, FAILED, "error", f"the exercise's inputs or reference raised {type(e).__name__}: "
                                                   f"{e}{where}", seed=seed, draws=grade.draws, kind="value")
        try:
            got = ex.call(*ex.draw(seed + k))  # fresh inputs: the student's code may change them in place
        except NotImplementedError as e:
            return Grade(ex.name, NOT_ATTEMPTED, message=str(e) or "the function raises NotImplementedError",
                         seed=seed, draws=grade.draws, kind="value")
        except Exception as e:  # noqa: BLE001 - a student's bug of any kind is a failed exercise
            return Grade(ex.name, FAILED, "error", f"{type(e).__name__}: {e}{where}", seed=seed, draws=grade.draws,
                         failed_draws=grade.failed_draws + [k], failures=grade.failures, kind="value")
        failures = _compare_values(got, expected, ex.atol, ex.rtol)
        if not failures:
            continue
        if grade.status == PASSED:
            first_inputs = inputs
            grade.status, grade.diagnosis, grade.message = FAILED, failures[0]["diagnosis"], failures[0]["message"]
            grade.worst = list(failures[0]["worst"])
        grade.failed_draws.append(k)
        for f in failures:
            if (f["output"], f["diagnosis"]) not in seen:
                seen.add((f["output"], f["diagnosis"]))
                grade.failures.append({"draw": k, "input_index": None, "input_shape": None, **f})
    if first_inputs is not None:
        found = _known_mistake(ex, first_inputs, atol=max(ex.atol, 1e-12), rtol=ex.rtol)
        if found is not None:
            grade.diagnosis, grade.label, grade.message = found.key, found.title, found.explanation
    return grade


def grade_exercise(ex: Exercise, seed: int | None = None, draws: int = DRAWS) -> Grade:
    """Gradient-check one exercise on `draws` random inputs (draw k from `Generator(seed + k)`;
    a fresh seed when None). Every failing input of every draw is recorded. Never raises for
    anything the notebook does (a bad `draws` is the caller's ValueError)."""
    import warnings

    from tinygrad_lite.gradcheck import check_gradients

    if draws < 1:
        raise ValueError(f"grade_exercise: draws must be at least 1, got {draws}")
    seed = new_seed() if seed is None else int(seed)
    if ex.reference is not None:
        return _grade_value(ex, seed, draws)
    n = draws if ex.randomized else 1
    grade = Grade(ex.name, PASSED, seed=seed, draws=n if ex.randomized else 0)
    first_inputs: tuple[Any, ...] | None = None
    seen: set[int] = set()
    for k in range(n):
        try:
            inputs = ex.draw(seed + k)
        except Exception as e:  # noqa: BLE001 - the instructor's inputs function is broken
            return Grade(ex.name, FAILED, "error", f"the exercise's inputs raised {type(e).__name__}: {e}", seed=seed,
                         draws=grade.draws)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a float32 warning would be the instructor's bug, shown below
                result = check_gradients(ex.call, inputs, all_inputs=True)
        except NotImplementedError as e:
            return Grade(ex.name, NOT_ATTEMPTED, message=str(e) or "the backward rule raises NotImplementedError",
                         seed=seed, draws=grade.draws)
        except Exception as e:  # noqa: BLE001 - a student's bug of any kind is a failed exercise
            where = f" (draw {k}, seed {seed + k})" if ex.randomized else ""
            return Grade(ex.name, FAILED, "error", f"{type(e).__name__}: {e}{where}", seed=seed, draws=grade.draws,
                         failed_draws=grade.failed_draws + [k], failures=grade.failures)
        if result.ok:
            continue
        if grade.status == PASSED:
            first_inputs = inputs
            grade.status, grade.diagnosis = FAILED, result.diagnosis
            grade.message, grade.worst, grade.report = _message(result.report), list(result.worst), result.report
        grade.failed_draws.append(k)
        for f in result.failures:
            if f.input_index is None or f.input_index not in seen:  # None: an intermediate tensor's gradient
                seen.add(f.input_index)
                shape = tuple(inputs[f.input_index].shape) if f.input_index is not None else None
                grade.failures.append({"draw": k, "input_index": f.input_index, "input_shape": shape,
                                       "diagnosis": f.diagnosis, "message": _message(f.report),
                                       "worst": list(f.worst)})
    if first_inputs is not None:
        found = _known_mistake(ex, first_inputs)
        if found is not None:
            grade.diagnosis, grade.label, grade.message = found.key, found.title, found.explanation
    return grade


def grade_registered(names: Sequence[str] | None = None, seed: int | None = None, draws: int = DRAWS) -> list[Grade]:
    """Grade the registered exercises (or `names`, in that order; unknown names are 'not defined'),
    all with the same run seed (a fresh one when None)."""
    seed = new_seed() if seed is None else int(seed)
    names = list(names) if names is not None else list(_REGISTRY)
    for extra in _REGISTRY:
        if extra not in names:
            names.append(extra)
    grades = []
    for name in names:
        ex = _REGISTRY.get(name)
        if ex is None:
            grades.append(Grade(name, FAILED, "missing", "the exercise was never registered: did its cell "
                                                           "run without errors, with its @exercise decorator?",
                                seed=seed))
        else:
            grades.append(grade_exercise(ex, seed, draws))
    return grades


def _label(key: str | None, label: str = "", kind: str = "gradient") -> str:
    labels = _VALUE_LABEL if kind == "value" else _DIAGNOSIS_LABEL
    return label or labels.get(key or "", key or "")


def _worst_lines(worst: Sequence[dict[str, Any]], indent: str, count: int) -> str:
    lines = []
    for w in worst[:count]:
        if "yours" in w:  # a value exercise: the student's value against the reference's
            lines.append(f"\n{indent}worst: index {tuple(w['output_index'])}: yours {w['yours']:.6g}, "
                         f"expected {w['expected']:.6g}")
        else:
            lines.append(f"\n{indent}worst: input index {tuple(w['input_index'])}, output "
                         f"{tuple(w['output_index'])}: analytical {w['analytical']:.6g}, "
                         f"numerical {w['numerical']:.6g}")
    return "".join(lines)


def format_grade(g: Grade, index: int | None = None, total: int | None = None, width: int = 16,
                 replay: str = "--seed {seed}") -> str:
    """One line, plus for a failure every failing input with its worst elements, and the seed that
    replays the run (`replay` says how, e.g. "check('matmul', seed={seed})")."""
    tag = f"[{index:>2}/{total}] " if index is not None and total is not None else ""
    head = f"{tag}{g.name:<{width}} "
    if g.status == PASSED:
        return head + "passed"
    if g.status == NOT_ATTEMPTED:
        return head + "not attempted"
    pad = f"{'':{len(tag)}}    "
    line = head + f"FAILED ({_label(g.diagnosis, g.label, g.kind)}): {g.message}"
    # Every failing input, with its worst elements. Its own diagnosis is repeated only when it is not
    # the headline already (several inputs fail, or the headline names a known mistake).
    repeat = len(g.failures) > 1 or bool(g.label)
    for f in g.failures:
        shape = f" (shape {tuple(f['input_shape'])})" if f.get("input_shape") is not None else ""
        if "output" in f:  # a value exercise: which returned value differs
            where = "the output" if f["output"] in (None, 0) else f"output {f['output']}"
        else:
            where = f"input {f['input_index']}" if f["input_index"] is not None else "an intermediate tensor"
        if not repeat:
            detail = ":" if f["worst"] else ""
        elif g.label and f["diagnosis"] == "unknown":  # "no common mistake recognized" would contradict the headline
            detail = f": {_label(f['diagnosis'], kind=g.kind)}"
        else:
            detail = f": {_label(f['diagnosis'], kind=g.kind)}: {f['message']}"
        line += f"\n{pad}{where}{shape}{detail}"
        line += _worst_lines(f["worst"], pad + "  ", 2 if repeat else 3)
    if not g.failures:
        line += _worst_lines(g.worst, pad, 3)
    if g.draws and g.failed_draws and g.seed is not None:
        line += (f"\n{pad}failed on {len(g.failed_draws)} of {g.draws} random inputs "
                 f"(seed {g.seed}; replay with {replay.format(seed=g.seed, name=g.name)})")
    return line


_GRADER_CODE_SEARCHED: set[tuple[str, str]] = set()  # (Jupyter session, folder) pairs already looked at


def _load_handout_grader_code(name: str, namespace: dict[str, Any]) -> None:
    """In a student's kernel, run the handout's grader-only code (its known mistakes) once, from the
    notebook file's metadata, in a copy of the notebook's namespace. Quietly does nothing when
    the notebook cannot be found: the mistakes are then named by `tglite exercises check` only."""
    where = (os.environ.get("JPY_SESSION_NAME", ""), str(Path.cwd()))
    if where in _GRADER_CODE_SEARCHED:
        return
    _GRADER_CODE_SEARCHED.add(where)
    try:
        path = _find_notebook(name)
        sources = _read_notebook(path).metadata.get(METADATA_KEY, {}).get("grader_code", [])
    except Exception:  # noqa: BLE001 - no notebook found, unreadable, ...
        return
    _run_grader_code(sources, dict(namespace))


def check(name: str, seed: int | None = None, draws: int = DRAWS) -> None:
    """Grade one exercise now, on fresh random inputs (or those of `seed`), and print its line
    (for the notebook itself; never raises). Returns nothing, so that a notebook cell ending in
    `check(...)` shows the line only; `grade_exercise` returns the Grade."""
    if name not in _MISTAKES:
        caller = inspect.currentframe().f_back  # the notebook's namespace: the mistakes use its helpers
        _load_handout_grader_code(name, caller.f_globals if caller is not None else {})
    ex = _REGISTRY.get(name)
    g = grade_exercise(ex, seed, draws) if ex is not None else Grade(name, FAILED, "missing", "not registered")
    print(format_grade(g, width=max(16, len(name)), replay=f"check({name!r}, seed={{seed}})"))


def summary(grades: Sequence[Grade] | None = None, seed: int | None = None, replay: str = "--seed {seed}") -> str:
    grades = list(grades) if grades is not None else grade_registered(seed=seed)
    width = max([16] + [len(g.name) for g in grades])
    lines = [format_grade(g, i, len(grades), width, replay) for i, g in enumerate(grades, 1)]
    counts = {s: sum(g.status == s for g in grades) for s in (PASSED, NOT_ATTEMPTED, FAILED)}
    seeds = {g.seed for g in grades if g.draws}
    run = f"; random inputs from seed {seeds.pop()}" if len(seeds) == 1 else ""
    lines.append(f"{counts[PASSED]} passed, {counts[NOT_ATTEMPTED]} not attempted, {counts[FAILED]} failed "
                 f"(of {len(grades)}){run}")
    return "\n".join(lines)


def _run_grader_code(sources: Sequence[str], namespace: dict[str, Any]) -> list[str]:
    """Run a handout's grader-only blocks (the known mistakes) in the notebook's namespace.
    A block that fails (the student renamed a helper it uses) is skipped: it only names mistakes."""
    errors = []
    for source in sources:
        try:
            exec(compile(source, "<grader-only block>", "exec"), namespace)  # noqa: S102 - the instructor's code
        except Exception as e:  # noqa: BLE001
            errors.append(f"{type(e).__name__}: {e}")
    return errors


def _grades_json(names: Sequence[str] | None = None, seed: int | None = None, draws: int = DRAWS,
                 grader_errors: Sequence[str] = ()) -> str:
    """What the grading cell prints: the grades (and any grader-only block that failed) as JSON,
    after a marker."""
    grades = [asdict(g) for g in grade_registered(names, seed, draws)]
    return GRADES_MARKER + json.dumps({"grades": grades, "grader_errors": list(grader_errors)}, default=str)


# -------------------------------------------------------------- notebook building
class ExerciseBuildError(ValueError):
    """The instructor notebook's solution markers are malformed."""


def _read_notebook(path: str | os.PathLike[str]) -> Any:
    import nbformat

    return nbformat.read(str(path), as_version=4)


def _hint_tiers(lines: Sequence[str]) -> list[list[str]]:
    """The tiers of a block's hint lines, each a list of lines: "# HINT 2: ..." starts (or
    continues) tier 2, a plain "# HINT: ..." continues the current tier (tier 1 at first)."""
    tiers: dict[int, list[str]] = {}
    level = 1
    for line in lines:
        m = _HINT_LINE.match(line)
        if m:
            level = int(m.group(1)) if m.group(1) else level
            tiers.setdefault(level, []).append(m.group(2).strip())
    return [tiers[k] for k in sorted(tiers)]


@dataclass
class _Stripped:
    source: str
    blocks: int
    hints: list[list[str]]  # per solution block, its hint tiers
    grader_code: list[str]  # the grader-only blocks, dedented


def _strip(source: str, label: str, where: str, name: str | None) -> _Stripped:
    out: list[str] = []
    inside, indent, hint_lines, start, count = "", "", [], 0, 0
    hints: list[list[str]] = []
    grader: list[str] = []
    grader_lines: list[str] = []
    after_grader = False  # the blank lines after a removed grader-only block go with it
    for number, line in enumerate(source.split("\n"), 1):
        stripped = line.strip()
        if after_grader and not stripped:
            continue
        after_grader = False
        opening = BEGIN if stripped.startswith(BEGIN) else GRADER_BEGIN if stripped.startswith(GRADER_BEGIN) else ""
        closing = END if stripped.startswith(END) else GRADER_END if stripped.startswith(GRADER_END) else ""
        if opening:
            if inside:
                raise ExerciseBuildError(f"{where}line {number}: {opening} inside the block opened at line {start}")
            inside, indent, hint_lines, grader_lines, start = opening, line[: len(line) - len(line.lstrip())], [], [], \
                number
            continue
        if closing:
            expected = END if inside == BEGIN else GRADER_END if inside == GRADER_BEGIN else None
            if closing != expected:
                opener = BEGIN if closing == END else GRADER_BEGIN
                raise ExerciseBuildError(f"{where}line {number}: {closing} without a {opener}")
            if inside == BEGIN:
                tiers = _hint_tiers(hint_lines)
                first = " ".join(tiers[0]) if tiers else _DEFAULT_HINT
                more = (f" ({len(tiers) - 1} more hint{'s' * (len(tiers) > 2)}: hint({name!r}, 2))"
                        if name and len(tiers) > 1 else "")
                # Only the first tier (a nudge) is shown; the later ones wait for hint(name, level).
                out += [f"{indent}{HINT} {line}" for line in (tiers[0] if tiers else [])]
                out.append(f"{indent}raise NotImplementedError({f'{label}: {first}{more}'!r})")
                hints.append([" ".join(tier) for tier in tiers])
                count += 1
            else:  # grader-only code leaves the cell; the grader runs it from the metadata
                grader.append("\n".join(g[len(indent):] if g.startswith(indent) else g.lstrip()
                                         for g in grader_lines))
                after_grader = True
            inside = ""
            continue
        if inside == BEGIN:
            if _HINT_LINE.match(stripped):
                hint_lines.append(stripped)
            continue
        if inside == GRADER_BEGIN:
            grader_lines.append(line)
            continue
        out.append(line)
    if inside:
        closer = END if inside == BEGIN else GRADER_END
        raise ExerciseBuildError(f"{where}line {start}: {inside} is never closed by {closer}")
    return _Stripped("\n".join(out), count, hints, grader)


def strip_solutions(source: str, label: str = "exercise", where: str = "", name: str | None = None) -> tuple[str, int]:
    """Replace each `# BEGIN SOLUTION` ... `# END SOLUTION` block by a stub raising
    NotImplementedError with the block's first hint tier (kept as a comment too), indented like
    the BEGIN line, and drop every `# BEGIN GRADER ONLY` ... `# END GRADER ONLY` block. Later hint
    tiers (`# HINT 2:`, ...) are left out: `hint(name, level)` shows them. Returns (new source,
    number of solution blocks replaced)."""
    stripped = _strip(source, label, where, name)
    return stripped.source, stripped.blocks


def notebook_hints(nb: Any) -> dict[str, list[str]]:
    """Every exercise's hint tiers: from a handout's metadata, or from an instructor notebook's
    solution blocks. Tier k of an exercise joins tier k of each of its blocks."""
    stored = nb.metadata.get(METADATA_KEY, {}).get("hints")
    if stored is not None:
        return {k: list(v) for k, v in stored.items()}
    result: dict[str, list[str]] = {}
    for i, cell in enumerate(nb.cells):
        names = _NAME_IN_CELL.findall(cell.source) if cell.cell_type == "code" else []
        if names:
            blocks = _strip(cell.source, "", f"cell {i}: ", names[0]).hints
            width = max([0] + [len(b) for b in blocks])
            result[names[0]] = [" ".join(b[k] for b in blocks if k < len(b)) for k in range(width)]
    return result


def _find_notebook(name: str) -> Path:
    """The notebook that defines exercise `name`, for `hint` inside a kernel: the one Jupyter names
    (JPY_SESSION_NAME), else the only notebook in the working folder that defines it."""
    import nbformat

    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and Path(session).is_file():
        return Path(session)
    found = []
    for path in sorted(Path.cwd().glob("*.ipynb")):
        try:
            nb = nbformat.read(str(path), as_version=4)
        except Exception:  # noqa: BLE001 - not a notebook we can read
            continue
        if name in (nb.metadata.get(METADATA_KEY, {}).get("exercises") or exercise_names(nb)):
            found.append(path)
    if len(found) != 1:
        what = "no notebook" if not found else f"{len(found)} notebooks ({', '.join(p.name for p in found)})"
        raise LookupError(f"hint: {what} in {Path.cwd()} define{'s' * (not found)} exercise {name!r}; "
                          f"pass notebook='path/to/the.ipynb'")
    return found[0]


def hint_text(nb: Any, name: str, level: int = 1, next_hint: str = "hint {level}") -> str:
    """Hint tier `level` (1 = the first, a nudge; the last gives the formula) of exercise `name`;
    `next_hint` says how to ask for the next tier."""
    hints = notebook_hints(nb)
    if name not in hints:
        raise KeyError(f"no exercise {name!r} in the notebook (exercises: {', '.join(hints) or 'none'})")
    tiers = hints[name]
    if not tiers:
        return f"{name}: this exercise has no hints"
    if not 1 <= level <= len(tiers):
        raise ValueError(f"hint level must be 1 to {len(tiers)} for exercise {name!r}, got {level}")
    more = f" (next: {next_hint.format(level=level + 1, name=name)})" if level < len(tiers) else " (the last hint)"
    return f"{name}, hint {level} of {len(tiers)}: {tiers[level - 1]}{more}"


def hint(name: str, level: int = 1, notebook: str | os.PathLike[str] | None = None) -> str:
    """Print hint tier `level` of exercise `name` (in a notebook: `hint("matmul", 2)`). The hints
    come from the notebook file (`notebook`, or the one found in the working folder)."""
    path = Path(notebook) if notebook is not None else _find_notebook(name)
    text = hint_text(_read_notebook(path), name, level, next_hint=f"hint({name!r}, {{level}})")
    print(text)
    return text


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
    solution block becomes a stub with its first hint, grader-only blocks leave the cells,
    outputs are cleared, everything else stays. The hint tiers and the grader-only code go into
    the notebook's metadata."""
    import nbformat

    from nn.files import atomic_write_text

    src, dest = Path(src), Path(dest)
    if src.resolve() == dest.resolve():
        raise ExerciseBuildError("DEST is SRC: building would overwrite the instructor notebook")
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} exists and may hold a student's work; pass --force (force=True) to replace it")
    nb = _read_notebook(src)
    hints = notebook_hints(nb)
    blocks, grader_code = 0, []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        names = _NAME_IN_CELL.findall(cell.source)
        label = f"exercise {names[0]!r}" if names else "exercise"
        stripped = _strip(cell.source, label, f"cell {i}: ", names[0] if names else None)
        cell.source = stripped.source
        blocks += stripped.blocks
        grader_code += stripped.grader_code
        cell.outputs = []
        cell.execution_count = None
    names = exercise_names(nb)
    if blocks == 0:
        raise ExerciseBuildError(f"{src} has no {BEGIN} / {END} blocks: nothing to turn into exercises")
    # Hidden from the student's view (Jupyter does not show metadata), there for `hint` and the grader.
    nb.metadata[METADATA_KEY] = {"exercises": names, "built_from": src.name, "hints": hints,
                                 "grader_code": grader_code}
    nbformat.validate(nb)
    atomic_write_text(dest, nbformat.writes(nb))
    return BuildReport(dest, names, blocks)


def handout_is_current(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> bool:
    """True when the handout `dest` is exactly what building the instructor notebook `src` gives."""
    with tempfile.TemporaryDirectory(prefix="tglite-handout-") as tmp:
        fresh = Path(tmp) / Path(dest).name
        build_student_notebook(src, fresh)
        return fresh.read_bytes() == Path(dest).read_bytes()


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
    seed: int | None = None  # the run's seed: grading again with it replays the same inputs
    grader_errors: list[str] = field(default_factory=list)  # grader-only blocks that failed (mistakes unnamed)

    @property
    def all_passed(self) -> bool:
        return bool(self.grades) and all(g.status == PASSED for g in self.grades)

    def text(self) -> str:
        return summary(self.grades)


def grade_notebook(notebook: str | os.PathLike[str] | Any, timeout: float = 120.0,
                   env: dict[str, str] | None = None, seed: int | None = None, draws: int = DRAWS) -> GradingReport:
    """Execute a notebook top to bottom in a fresh kernel (errors do not stop it), then grade every
    exercise it registered, plus every exercise its metadata or decorators say should exist, on
    `draws` random inputs each from the run's `seed` (a fresh one when None). A handout's
    grader-only blocks (from its metadata) run just before grading."""
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
    meta = nb.metadata.get(METADATA_KEY, {})
    expected = list(meta.get("exercises", [])) or exercise_names(nb)
    grader_code = list(meta.get("grader_code", []))
    seed = new_seed() if seed is None else int(seed)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(
        "from tglite.exercises import _grades_json, _run_grader_code\n"
        f"_tglite_grader_errors = _run_grader_code({grader_code!r}, globals())\n"
        f"print(_grades_json({expected!r}, {seed}, {int(draws)}, _tglite_grader_errors))"
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
    return GradingReport(path, [Grade(**g) for g in raw["grades"]], cell_errors, seconds, seed, raw["grader_errors"])


__all__ = [
    "exercise", "mistake", "Mistake", "check", "hint", "hint_text", "notebook_hints", "summary", "new_seed", "DRAWS",
    "registered", "Grade", "Exercise", "grade_exercise", "grade_registered",
    "build_student_notebook", "handout_is_current", "strip_solutions", "replace_solution", "exercise_names",
    "grade_notebook",
    "GradingReport", "GradingError", "ExerciseBuildError", "PASSED", "NOT_ATTEMPTED", "FAILED",
]
