"""Notebook 06's graded exercises (LoRA merge, NF4 of one block), run here without a kernel: the
instructor's solutions pass on many random draws, each typical mistake planted in place of a
solution gets its name, an answer made for one input fails on the others, and the handout's stubs
are "not attempted". (The notebook itself runs in tests/test_notebooks.py.)"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from course_exercises import run_in_process

from tglite import exercises as exercises_module
from tglite.exercises import FAILED, NOT_ATTEMPTED, PASSED, build_student_notebook, grade_exercise, replace_solution

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("IPython")  # the setup cell displays figures with IPython.display.Image

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "solutions" / "06_lora.ipynb"
NAMES = ["lora_merge", "nf4_block"]

# A typical mistake per line, written as a student would (not a copy of the notebook's @mistake
# function), and the name the grader must give it.
PLANTED = [
    ("lora_merge", "return w0 + alpha * b @ a", "scale_alpha"),
    ("lora_merge", "r = len(a)\nreturn w0 + (alpha / r) * (b @ a)", "rslora_ignored"),
    ("nf4_block", "c = w.max()\nreturn np.abs(w[:, None] / c - lora.NF4).argmin(axis=1), c", "scale_by_max"),
    ("nf4_block", "c = np.max(np.abs(w))\nreturn np.searchsorted(lora.NF4, w / c), c", "rounds_up"),
]


@pytest.fixture(autouse=True)
def clean_registry():
    exercises_module.clear_registry()
    yield
    exercises_module.clear_registry()


def _notebook():
    return nbformat.read(str(NOTEBOOK), as_version=4)


def test_the_notebook_has_both_exercises_each_checked_in_its_cell() -> None:
    nb = _notebook()
    assert exercises_module.exercise_names(nb) == NAMES
    for name in NAMES:
        (cell,) = [c for c in nb.cells if f'@exercise("{name}"' in c.source]
        assert cell.source.rstrip().endswith(f'check("{name}")')


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_passes_on_many_draws(name: str) -> None:
    ex = run_in_process(_notebook(), [name])[name]
    for seed in range(0, 40, 4):
        grade = grade_exercise(ex, seed=seed)
        assert grade.status == PASSED, (seed, grade.message)


def test_draws_change_shapes_and_cover_both_scale_rules_and_negative_extremes() -> None:
    exercises = run_in_process(_notebook(), NAMES)
    merge, block = exercises["lora_merge"], exercises["nf4_block"]
    assert merge.randomized and block.randomized
    assert len({tuple(x.shape for x in merge.draw(s)[:3]) for s in range(10)}) > 1
    assert len({block.draw(s)[0].shape for s in range(10)}) > 1
    for seed in range(10):
        # any three consecutive draws (one grading) hold a LoRA and an rsLoRA merge
        assert merge.draw(seed)[4] != merge.draw(seed + 1)[4]
        (w,) = block.draw(seed)
        assert w.dtype == np.float32
        assert (w[np.abs(w).argmax()] < 0) == (seed % 2 == 1)  # where max(w) is not the absmax
        np.testing.assert_array_equal(w, block.draw(seed)[0])  # a seed replays its inputs


@pytest.mark.parametrize("name, code, key", PLANTED, ids=[p[2] for p in PLANTED])
def test_a_planted_mistake_gets_its_name(name: str, code: str, key: str) -> None:
    nb = _notebook()
    replace_solution(nb, name, code)
    ex = run_in_process(nb, [name])[name]
    for seed in range(0, 30, 3):
        grade = grade_exercise(ex, seed=seed)
        assert grade.status == FAILED and grade.diagnosis == key, (seed, grade.diagnosis, grade.message)
        assert grade.label  # the mistake's title, shown after FAILED


def test_the_wrong_product_order_is_a_shape_error() -> None:
    nb = _notebook()
    replace_solution(nb, "lora_merge", "return w0 + alpha / a.shape[0] * (a.T @ b.T)")
    grade = grade_exercise(run_in_process(nb, ["lora_merge"])["lora_merge"], seed=1)
    assert grade.status == FAILED and grade.diagnosis in ("shape", "error"), grade.message


@pytest.mark.parametrize("name", NAMES)
def test_an_answer_made_for_one_input_fails_on_the_others(name: str) -> None:
    nb = _notebook()
    ex = run_in_process(nb, [name])[name]
    seed = 777
    expected = ex.reference(*ex.draw(seed))
    if isinstance(expected, tuple):  # nf4_block: (indices, absmax)
        fixed = f"return np.array({np.asarray(expected[0]).tolist()!r}), {float(expected[1])!r}"
    else:
        fixed = f"return np.array({np.asarray(expected).tolist()!r})"
    replace_solution(nb, name, fixed)
    ex = run_in_process(nb, [name])[name]
    assert grade_exercise(ex, seed=seed, draws=1).status == PASSED  # right for the input it was made for
    grade = grade_exercise(ex, seed=seed)
    assert grade.status == FAILED and grade.failed_draws == [1, 2]


def test_the_handout_stubs_are_not_attempted_and_keep_the_mistakes_for_the_grader(tmp_path: Path) -> None:
    report = build_student_notebook(NOTEBOOK, tmp_path / "06_lora.ipynb")
    assert report.exercises == NAMES
    handout = nbformat.read(str(tmp_path / "06_lora.ipynb"), as_version=4)
    text = "\n".join(c.source for c in handout.cells)
    assert "@mistake" not in text and "b @ a" not in text and "argmin" not in text  # no solution, no last hint
    grader_code = "\n".join(handout.metadata["tglite_exercises"]["grader_code"])
    for _, _, key in PLANTED:
        assert f'"{key}"' in grader_code
    exercises = run_in_process(handout, NAMES)
    for name in NAMES:
        grade = grade_exercise(exercises[name], seed=3)
        assert grade.status == NOT_ATTEMPTED, grade.message
