"""Gradient-check exercises: building the student notebook, grading, and the grader's diagnoses.

Three notebook executions (instructor, student, planted mistakes), each in a fresh kernel, are
shared by the tests through module-scoped fixtures.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

import tinygrad_lite as tg
from tglite.cli import main
from tglite.exercises import (
    FAILED,
    NOT_ATTEMPTED,
    PASSED,
    Exercise,
    ExerciseBuildError,
    build_student_notebook,
    exercise_names,
    grade_exercise,
    grade_notebook,
    replace_solution,
    strip_solutions,
)

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR = ROOT / "notebooks" / "03_gradient_check_exercises.ipynb"

# The list, easy to hard: every topic must be an exercise.
REQUIRED = ["sigmoid", "tanh", "gelu", "broadcast_add", "broadcast_mul", "matmul", "sum_axis", "mean_axis",
            "softmax", "log_softmax", "logsumexp", "layer_norm", "cross_entropy", "attention_head",
            "skipgram_ns", "lora_linear"]

# Typical mistakes, planted in place of the solution, and the diagnosis each must get.
PLANTED = {
    "sigmoid": ("s = self.output\nreturn -g * s * (1.0 - s)", "sign"),  # sign flipped
    "tanh": ("return g * 0.0", "zero"),  # zero gradient
    "mean_axis": ("shape = list(self.in_shape)\nshape[self.axis] = 1\n"
                  "return g.reshape(shape).expand(self.in_shape)", "factor"),  # forgot 1/n
    "broadcast_add": ("return g, g", "broadcast"),  # forgot to sum over the broadcast axis
    "matmul": ("return g @ b.T, g.T @ a", "transposed"),  # dB = Gᵀ A instead of Aᵀ G
    "broadcast_mul": ("return g * s * 2.0, (g * x).sum(axis=1, keepdims=True)", "factor"),  # a stray ×2
}


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def instructor_grades():
    return grade_notebook(INSTRUCTOR)


@pytest.fixture(scope="module")
def student_notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("student") / "student.ipynb"
    build_student_notebook(INSTRUCTOR, dest)
    return dest


@pytest.fixture(scope="module")
def planted_grades():
    nb = nbformat.read(str(INSTRUCTOR), as_version=4)
    for name, (code, _) in PLANTED.items():
        replace_solution(nb, name, code)
    return {g.name: g for g in grade_notebook(nb).grades}


# ------------------------------------------------------------------ the notebook itself
def test_instructor_notebook_has_the_required_exercises_in_order() -> None:
    names = exercise_names(nbformat.read(str(INSTRUCTOR), as_version=4))
    assert len(names) >= 12
    assert set(REQUIRED) <= set(names)
    # easy to hard: the elementwise rules first, the attention head last
    assert names[:2] == ["sigmoid", "tanh"] and names[-1] == "attention_head"


def test_instructor_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(str(INSTRUCTOR), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_instructor_version_passes_every_exercise(instructor_grades) -> None:
    assert instructor_grades.cell_errors == []
    failing = [(g.name, g.status, g.message) for g in instructor_grades.grades if g.status != PASSED]
    assert failing == []
    assert len(instructor_grades.grades) >= 12 and instructor_grades.all_passed


# ----------------------------------------------------------------------- building
def test_student_version_fails_every_exercise_as_not_attempted(student_notebook: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "exercises", "check", str(student_notebook), "--json", str(student_notebook) + ".json")
    assert code == 1
    graded = json.loads(Path(str(student_notebook) + ".json").read_text())
    statuses = {g["name"]: g["status"] for g in graded["grades"]}
    assert len(statuses) >= 12 and set(statuses.values()) == {NOT_ATTEMPTED}
    assert graded["all_passed"] is False
    for name in REQUIRED:
        assert re.search(rf"\] {name} +not attempted$", out, re.MULTILINE), name
    assert f"0 passed, {len(statuses)} not attempted, 0 failed" in out


def test_student_version_keeps_everything_but_the_solutions(student_notebook: Path) -> None:
    src = nbformat.read(str(INSTRUCTOR), as_version=4)
    dst = nbformat.read(str(student_notebook), as_version=4)
    assert len(src.cells) == len(dst.cells)
    text = "\n".join(c.source for c in dst.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "g * s * (1.0 - s)" not in text  # the sigmoid solution is gone ...
    assert "# HINT: σ'(x) = σ(x)·(1 - σ(x))" in text  # ... its hint stays
    assert text.count("raise NotImplementedError(") == len(exercise_names(src))
    for a, b in zip(src.cells, dst.cells):
        if a.cell_type == "markdown" or "BEGIN SOLUTION" not in a.source:
            assert a.source == b.source
        if b.cell_type == "code":
            assert b.outputs == [] and b.execution_count is None
    assert dst.metadata["tglite_exercises"]["exercises"] == exercise_names(src)


def test_strip_solutions_indents_the_stub_and_uses_the_hint() -> None:
    source = "def f(x):\n    y = 1\n    # BEGIN SOLUTION\n    # HINT: add one\n    # HINT: then return\n" \
             "    return x + y\n    # END SOLUTION\n\nprint(f)"
    out, n = strip_solutions(source, "exercise 'f'")
    assert n == 1
    assert out.split("\n") == ["def f(x):", "    y = 1", "    # HINT: add one", "    # HINT: then return",
                               "    raise NotImplementedError(\"exercise 'f': add one then return\")", "", "print(f)"]
    ns: dict = {}
    exec(out, ns)  # the stub compiles and raises the hint
    with pytest.raises(NotImplementedError, match="add one then return"):
        ns["f"](1)


@pytest.mark.parametrize("source, message", [
    ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n# END SOLUTION\n", "without a"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside the block"),
])
def test_strip_solutions_rejects_unbalanced_markers(source: str, message: str) -> None:
    with pytest.raises(ExerciseBuildError, match=message):
        strip_solutions(source)


def test_build_cli_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "s.ipynb"
    code, out, _ = _cli(capsys, "exercises", "build", str(INSTRUCTOR), str(dest))
    assert code == 0 and "16 solution blocks replaced" in out
    code, _, err = _cli(capsys, "exercises", "build", str(INSTRUCTOR), str(dest))
    assert code == 2 and "--force" in err
    assert _cli(capsys, "exercises", "build", str(INSTRUCTOR), str(dest), "--force")[0] == 0
    code, _, err = _cli(capsys, "exercises", "build", str(INSTRUCTOR), str(INSTRUCTOR), "--force")
    assert code == 2 and "SRC" in err
    code, _, err = _cli(capsys, "exercises", "build", str(tmp_path / "missing.ipynb"), str(tmp_path / "x.ipynb"))
    assert code == 2 and "no such notebook" in err


def test_check_cli_cannot_grade_a_missing_or_broken_notebook(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "exercises", "check", str(tmp_path / "nope.ipynb"))
    assert code == 2 and "no such notebook" in err
    bad = tmp_path / "bad.ipynb"
    bad.write_text("not json")
    code, _, err = _cli(capsys, "exercises", "check", str(bad))
    assert code == 2 and "not a readable notebook" in err


# ------------------------------------------------------------------------ grading
def test_planted_mistakes_get_the_right_diagnosis(planted_grades) -> None:
    for name, (_, diagnosis) in PLANTED.items():
        g = planted_grades[name]
        assert g.status == FAILED, name
        assert g.diagnosis == diagnosis, (name, g.diagnosis, g.message)
        if diagnosis != "broadcast":  # a wrong shape has no elements to compare
            assert g.worst, name
    others = [g for name, g in planted_grades.items() if name not in PLANTED]
    assert others and all(g.status == PASSED for g in others)


def test_failure_line_names_the_diagnosis_and_the_worst_elements(planted_grades) -> None:
    from tglite.exercises import format_grade

    line = format_grade(planted_grades["sigmoid"])
    assert "FAILED (sign flipped)" in line and "worst: input index" in line and "analytical" in line
    assert "missing broadcast reduction" in format_grade(planted_grades["broadcast_add"])
    assert "transposed" in format_grade(planted_grades["matmul"])


def _float64(*shape: int, seed: int = 0) -> tg.Tensor:
    return tg.randn(*shape, dtype=tg.float64, requires_grad=True, generator=tg.Generator(seed))


def test_grade_exercise_in_process_outcomes() -> None:
    class Square(tg.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x.data**2

        def backward(self, g):
            return g * self.saved_tensors[0]  # forgets the factor 2

    class Crashes(Square):
        def backward(self, g):
            raise ValueError("shapes do not align")

    wrong = grade_exercise(Exercise("square", Square, lambda: (_float64(3),), Square.apply))
    assert wrong.status == FAILED and wrong.diagnosis == "factor" and "0.5" in wrong.message
    crash = grade_exercise(Exercise("crash", Crashes, lambda: (_float64(3),), Crashes.apply))
    assert crash.status == FAILED and crash.diagnosis == "error" and "shapes do not align" in crash.message


def test_a_deleted_exercise_is_reported_not_defined(tmp_path: Path) -> None:
    dest = tmp_path / "student.ipynb"
    build_student_notebook(INSTRUCTOR, dest)
    nb = nbformat.read(str(dest), as_version=4)
    nb.cells = [c for c in nb.cells if '@exercise("tanh"' not in c.source and 'check("tanh")' not in c.source]
    # the student also solves sigmoid
    for cell in nb.cells:
        if '@exercise("sigmoid"' in cell.source:
            lines = cell.source.split("\n")
            i = next(k for k, line in enumerate(lines) if "raise NotImplementedError" in line)
            lines[i] = "        return g * self.output * (1.0 - self.output)"
            cell.source = "\n".join(lines)
    grades = {g.name: g for g in grade_notebook(nbformat.from_dict(nb)).grades}
    assert grades["tanh"].status == FAILED and grades["tanh"].diagnosis == "missing"
    assert grades["sigmoid"].status == PASSED
    assert grades["matmul"].status == NOT_ATTEMPTED


def test_grading_talks_to_the_kernel_without_the_tcp_warning(capfd: pytest.CaptureFixture[str]) -> None:
    # The kernel inherits our stderr; over TCP it warns "running over TCP without encryption" on every run.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1")])
    report = grade_notebook(nb)
    assert report.cell_errors == []
    assert "without encryption" not in capfd.readouterr().err
