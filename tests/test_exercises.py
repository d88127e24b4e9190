"""Gradient-check exercises: building the student notebook, grading, and the grader's diagnoses.

Three notebook executions (instructor, student, planted mistakes), each in a fresh kernel, are
shared by the tests through module-scoped fixtures.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from course_exercises import run_in_process

import tinygrad_lite as tg
from tglite import exercises as exercises_module
from tglite.cli import main
from tglite.exercises import (
    FAILED,
    METADATA_KEY,
    NOT_ATTEMPTED,
    PASSED,
    Exercise,
    ExerciseBuildError,
    build_student_notebook,
    exercise_names,
    format_grade,
    grade_exercise,
    grade_notebook,
    hint,
    notebook_hints,
    replace_solution,
    strip_solutions,
)

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR = ROOT / "notebooks" / "solutions" / "03_gradient_check_exercises.ipynb"

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

# Mistakes that keep every shape right and are not a plain factor, sign or transpose of the answer:
# name -> (planted code, diagnosis, label, the inputs whose gradient is wrong). Graded in-process.
_ATTENTION_DK_UNTRANSPOSED = """dV = P.T @ g
dP = g @ V.T
dS = P * (dP - (dP * P).sum(axis=-1, keepdims=True))
dQ = dS @ K * scale
dK = dS @ Q * scale
dX = dQ @ Wq.T + dK @ Wk.T + dV @ Wv.T
return dX, X.T @ dQ, X.T @ dK, X.T @ dV"""
PLANTED_NAMED = {
    # dA = G·B: B is square, so the missing .T keeps the shape (gradcheck's generic hypothesis)
    "matmul": ("return g @ b, a.T @ g", "operand_transposed", "missing transpose", [0]),
    # dK = dS·Q instead of dSᵀ·Q: dS is T × T (the notebook's grader-only @mistake)
    "attention_head": (_ATTENTION_DK_UNTRANSPOSED, "dk_not_transposed", "missing transpose in dK", [0, 2]),
    # 1 - σ(pos) where σ(pos) - 1 belongs (the notebook's grader-only @mistake)
    "skipgram_ns": ("dpos = float(1.0 - sigmoid(self.pos))\ndneg = const(sigmoid(self.neg))\n"
                    "dv = u_o * dpos + dneg @ u_neg\n"
                    "return g * dv, g * v * dpos, g * dneg.unsqueeze(-1) * v.unsqueeze(0)",
                    "positive_sign", "sign flipped in the positive term", [0, 1]),
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
    code, out, _ = _cli(capsys, "exercises", "check", str(student_notebook), "--json", str(student_notebook) + ".json",
                        "--seed", "4321")
    assert code == 1
    graded = json.loads(Path(str(student_notebook) + ".json").read_text())
    assert graded["seed"] == 4321 and "seed 4321" in out  # recorded, so the run can be replayed
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
    assert "# HINT: elementwise op: the gradient is g times σ'(x)" in text  # ... its first hint stays ...
    assert "σ(x)·(1 - σ(x))" not in text  # ... and the formula (its last hint) waits for hint("sigmoid", 3)
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
    ("# BEGIN GRADER ONLY\nx = 1\n", "never closed by # END GRADER ONLY"),
    ("# BEGIN SOLUTION\nx = 1\n# END GRADER ONLY\n", "END GRADER ONLY without a # BEGIN GRADER ONLY"),
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


# ------------------------------------------------------------- randomized inputs, named mistakes
@pytest.fixture
def in_process():
    yield run_in_process
    exercises_module.clear_registry()


def test_every_exercise_draws_new_shapes_and_values_from_its_seed(in_process) -> None:
    exercises = in_process(nbformat.read(str(INSTRUCTOR), as_version=4), REQUIRED)
    for name, ex in exercises.items():
        assert ex.randomized, name
        shapes = {tuple(tuple(x.shape) for x in ex.draw(seed) if isinstance(x, tg.Tensor)) for seed in range(12)}
        assert len(shapes) > 1, name
        first, again, other = ex.draw(5), ex.draw(5), ex.draw(6)  # the same seed replays the same inputs
        np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
        assert first[0].shape != other[0].shape or not np.array_equal(first[0].numpy(), other[0].numpy()), name


def test_an_answer_hard_coded_for_one_input_fails_on_the_others(in_process) -> None:
    # The student prints σ'(x) for the input they see and pastes the numbers in.
    nb = nbformat.read(str(INSTRUCTOR), as_version=4)
    (x,) = in_process(nb, ["sigmoid"])["sigmoid"].draw(777)
    s = 1.0 / (1.0 + np.exp(-x.numpy()))
    replace_solution(nb, "sigmoid", f"return g * const({(s * (1.0 - s)).tolist()!r})")
    ex = in_process(nb, ["sigmoid"])["sigmoid"]
    assert grade_exercise(ex, seed=777, draws=1).status == PASSED  # right for the one input it was made for
    grade = grade_exercise(ex, seed=777)
    assert grade.status == FAILED and grade.failed_draws and 0 not in grade.failed_draws
    assert grade.seed == 777 and "seed 777" in format_grade(grade)


@pytest.mark.parametrize("name", PLANTED_NAMED)
def test_mistakes_that_keep_every_shape_get_a_named_diagnosis(name: str, in_process) -> None:
    code, key, label, wrong_inputs = PLANTED_NAMED[name]
    nb = nbformat.read(str(INSTRUCTOR), as_version=4)
    replace_solution(nb, name, code)
    grade = grade_exercise(in_process(nb, [name])[name], seed=2024)
    assert grade.status == FAILED
    assert grade.diagnosis == key, (grade.diagnosis, grade.message)
    line = format_grade(grade)
    assert line.startswith(f"{name:<16} FAILED ({label}): ")
    assert grade.failed_draws == [0, 1, 2]  # wrong on every random input, not only on one
    # every failing input is reported (the right ones are not), each with its worst elements
    assert sorted(f["input_index"] for f in grade.failures) == wrong_inputs
    for f in grade.failures:
        assert f["worst"] and f"input {f['input_index']} (shape {tuple(f['input_shape'])})" in line
    assert line.count("worst: input index") >= len(wrong_inputs)
    assert "failed on 3 of 3 random inputs (seed 2024; replay with --seed 2024)" in line


def test_missing_transpose_names_the_square_operand(in_process) -> None:
    nb = nbformat.read(str(INSTRUCTOR), as_version=4)
    replace_solution(nb, "matmul", PLANTED_NAMED["matmul"][0])
    grade = grade_exercise(in_process(nb, ["matmul"])["matmul"], seed=3)
    assert "transpose of input 1" in grade.message and "G·B where G·Bᵀ belongs" in grade.message


def test_a_right_answer_matches_no_known_mistake(in_process) -> None:
    exercises = in_process(nbformat.read(str(INSTRUCTOR), as_version=4), ["attention_head", "skipgram_ns"])
    assert set(exercises_module._MISTAKES) == {"attention_head", "skipgram_ns"}  # registered by the notebook
    for ex in exercises.values():
        assert grade_exercise(ex, seed=11).status == PASSED


def _answer_in_handout(nb, name: str, code: str) -> None:
    """What a student does: put `code` (a backward body) in place of the stub of exercise `name`."""
    body = "\n".join("        " + line for line in code.split("\n"))
    for cell in nb.cells:
        if f'@exercise("{name}"' in cell.source:
            cell.source = re.sub(r"^ +raise NotImplementedError\(.*\)$", lambda _: body, cell.source,
                                 flags=re.MULTILINE)


def test_check_in_a_students_kernel_names_the_mistakes_from_the_handout(
        student_notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    nb = nbformat.read(str(student_notebook), as_version=4)
    _answer_in_handout(nb, "attention_head", _ATTENTION_DK_UNTRANSPOSED)
    nbformat.write(nb, str(tmp_path / "mine.ipynb"))
    monkeypatch.chdir(tmp_path)  # a kernel runs in its notebook's folder
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(exercises_module, "_GRADER_CODE_SEARCHED", set())
    exercises_module.clear_registry()
    namespace: dict = {}
    try:
        for cell in nb.cells:
            if cell.cell_type == "code" and ("import tinygrad_lite" in cell.source
                                             or '@exercise("attention_head"' in cell.source):
                exec(cell.source, namespace)  # the cell ends with check("attention_head")
    finally:
        exercises_module.clear_registry()
    assert "attention_head   FAILED (missing transpose in dK)" in capsys.readouterr().out
    assert "attention_dk_not_transposed" not in namespace  # the grader-only code ran in a copy of it


def test_handout_hides_the_grader_only_code_but_the_grader_still_names_the_mistakes(student_notebook: Path) -> None:
    nb = nbformat.read(str(student_notebook), as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "GRADER ONLY" not in text and "@mistake(" not in text and "dS @ Q * scale" not in text
    stored = nb.metadata[METADATA_KEY]["grader_code"]
    assert len(stored) == 2 and any('"dk_not_transposed"' in code for code in stored)
    # the student makes the dK mistake in the handout
    _answer_in_handout(nb, "attention_head", _ATTENTION_DK_UNTRANSPOSED)
    report = grade_notebook(nb, seed=99)
    assert report.seed == 99 and report.grader_errors == []
    grades = {g.name: g for g in report.grades}
    assert grades["attention_head"].diagnosis == "dk_not_transposed"
    assert grades["attention_head"].seed == 99 and grades["sigmoid"].status == NOT_ATTEMPTED


# -------------------------------------------------------------------------- hint tiers
def test_strip_solutions_shows_only_the_first_hint_tier() -> None:
    source = "def f(x):\n    # BEGIN SOLUTION\n    # HINT 1: which shape?\n    # HINT 2: the chain rule\n" \
             "    # HINT 3: the formula: 2 * x\n    # HINT 3: (times g)\n    return 2 * x\n    # END SOLUTION"
    out, n = strip_solutions(source, "exercise 'f'", name="f")
    assert n == 1 and "which shape?" in out and "chain rule" not in out and "formula" not in out
    assert "exercise 'f': which shape? (2 more hints: hint('f', 2))" in out
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('@exercise("f", inputs=None)\n' + source)])
    assert notebook_hints(nb) == {"f": ["which shape?", "the chain rule", "the formula: 2 * x (times g)"]}


def test_every_exercise_has_tiered_hints_and_the_handout_keeps_them_in_its_metadata(student_notebook: Path) -> None:
    hints = notebook_hints(nbformat.read(str(INSTRUCTOR), as_version=4))
    assert set(hints) == set(exercise_names(nbformat.read(str(INSTRUCTOR), as_version=4)))
    assert all(len(tiers) >= 3 for tiers in hints.values()), {k: len(v) for k, v in hints.items()}
    handout = nbformat.read(str(student_notebook), as_version=4)
    assert handout.metadata[METADATA_KEY]["hints"] == hints
    text = "\n".join(c.source for c in handout.cells)
    for name, tiers in hints.items():
        assert tiers[-1] not in text, name  # the formula is not in plain view
        assert f"hint({name!r}, 2)" in text, name  # the stub says how to get the next tier


def test_hint_cli_and_hint_in_a_notebook(student_notebook: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _cli(capsys, "exercises", "hint", str(student_notebook), "matmul", "--level", "3")
    assert code == 0 and "matmul, hint 3 of 3: dA = G·Bᵀ, dB = Aᵀ·G" in out and "(the last hint)" in out
    code, out, _ = _cli(capsys, "exercises", "hint", str(INSTRUCTOR), "matmul")  # the instructor notebook too
    assert code == 0 and "hint 1 of 3" in out and "(next: --level 2)" in out
    code, _, err = _cli(capsys, "exercises", "hint", str(student_notebook), "matmul", "--level", "4")
    assert code == 2 and "1 to 3" in err
    code, _, err = _cli(capsys, "exercises", "hint", str(student_notebook), "nope")
    assert code == 2 and "no exercise 'nope'" in err
    # inside a kernel: the notebook is the one in the working folder that defines the exercise
    (tmp_path / "mine.ipynb").write_text(student_notebook.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    text = hint("softmax", 2)
    assert text.startswith("softmax, hint 2 of 3: ") and "(next: hint('softmax', 3))" in text
    assert hint("softmax", 2, notebook=student_notebook) == text
    with pytest.raises(LookupError, match="no notebook"):
        hint("not_an_exercise")
