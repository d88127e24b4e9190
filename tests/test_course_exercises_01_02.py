"""The graded exercises of notebooks 01 (backward rules of new ops) and 02 (a central-difference
gradient, the best step h): each is randomized, the instructor's answer passes, and the typical wrong
answers, planted in place of the solution, get their named diagnosis. Graded in-process (no kernel):
the notebook's setup cell and the exercise's own cell run here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from course_exercises import run_in_process

import tinygrad_lite as tg
from tglite import exercises as exercises_module
from tglite.exercises import FAILED, PASSED, format_grade, grade_exercise, replace_solution

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("matplotlib")  # notebook 02's setup cell imports pyplot

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"
NB01 = SOLUTIONS / "01_autodiff_from_scratch.ipynb"
NB02 = SOLUTIONS / "02_backprop_vs_numerical.ipynb"

# notebook, exercise -> (planted code, the diagnosis it must get)
PLANTED = {
    (NB01, "exp"): [("return self.output", "no_upstream"),  # the chain rule's g forgotten
                    ("return -g * self.output", "sign")],
    (NB01, "pow"): [("return g * y * z / x, g * y * z / x", "power_rule_on_exponent"),
                    ("return g * y * z / x, g * z", "missing_log")],
    (NB01, "div_broadcast"): [("return g / y, -(g / (y * y)).sum(axis=0)", "missing_numerator"),
                              ("return g / y, -(g * x / (y * y))", "broadcast"),  # no sum over the rows
                              ("return g / y, (g * x / (y * y)).sum(axis=0)", "sign")],
    (NB02, "central_difference"): [
        ("grad = np.zeros(x.shape)\nbase = fn(x).item()\nfor k in np.ndindex(x.shape):\n    orig = x.data[k]\n"
         "    x.data[k] = orig + eps\n    grad[k] = (fn(x).item() - base) / eps\n    x.data[k] = orig\nreturn grad",
         "one_sided"),
        ("grad = np.zeros(x.shape)\nfor k in np.ndindex(x.shape):\n    orig = x.data[k]\n    x.data[k] = orig + eps\n"
         "    plus = fn(x).item()\n    x.data[k] = orig - eps\n    minus = fn(x).item()\n    x.data[k] = orig\n"
         "    grad[k] = (plus - minus) / eps\nreturn grad", "factor"),  # divided by eps, not 2 eps
    ],
    (NB02, "best_step"): [("return np.sqrt(3.0 * eps * np.abs(f) / np.abs(f3))", "square_root"),
                          ("return np.cbrt(eps * np.abs(f) / np.abs(f3))", "missing_three")],
}
EXERCISES = {NB01: ["exp", "pow", "div_broadcast"], NB02: ["central_difference", "best_step"]}


@pytest.fixture(autouse=True)
def clean_registry():
    yield
    exercises_module.clear_registry()


def _read(path: Path):
    return nbformat.read(str(path), as_version=4)


@pytest.mark.parametrize("path", sorted(EXERCISES), ids=lambda p: p.name[:2])
def test_the_notebooks_exercises_are_the_ones_listed_here(path: Path) -> None:
    assert exercises_module.exercise_names(_read(path)) == EXERCISES[path]


@pytest.mark.parametrize("path,name", [(p, n) for p, names in EXERCISES.items() for n in names])
def test_the_instructors_answer_passes_on_random_shapes_and_values(path: Path, name: str) -> None:
    ex = run_in_process(_read(path), [name])[name]
    assert ex.randomized
    shapes = set()
    for seed in range(12):
        draw = ex.draw(seed)
        shapes.add(tuple(tuple(np.shape(x.numpy() if isinstance(x, tg.Tensor) else x)) for x in draw
                         if isinstance(x, (tg.Tensor, np.ndarray))))
    assert len(shapes) > 1, f"{name}: every draw has the same shapes"
    grade = grade_exercise(ex, seed=2024)
    assert grade.status == PASSED, format_grade(grade)


@pytest.mark.parametrize("path,name,code,key",
                         [(p, n, c, k) for (p, n), plants in PLANTED.items() for c, k in plants],
                         ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "")
def test_planted_mistakes_get_their_diagnosis(path: Path, name: str, code: str, key: str) -> None:
    nb = _read(path)
    replace_solution(nb, name, code)
    grade = grade_exercise(run_in_process(nb, [name])[name], seed=7)
    assert grade.status == FAILED
    assert grade.diagnosis == key, (grade.diagnosis, grade.message)
    assert grade.failed_draws == [0, 1, 2]  # wrong on every random input


def test_an_answer_hard_coded_for_one_input_fails_on_the_others() -> None:
    # The student works out h* for the inputs they see and returns those numbers.
    nb = _read(NB02)
    f, f3, eps = run_in_process(nb, ["best_step"])["best_step"].draw(31)
    answer = np.cbrt(3 * eps * np.abs(f) / np.abs(f3))
    replace_solution(nb, "best_step", f"return np.array({answer.tolist()!r})")
    ex = run_in_process(nb, ["best_step"])["best_step"]
    assert grade_exercise(ex, seed=31, draws=1).status == PASSED  # right for the one input it was made for
    grade = grade_exercise(ex, seed=31)
    assert grade.status == FAILED and 0 not in grade.failed_draws and grade.failed_draws


def test_a_hard_coded_backward_rule_fails_too() -> None:
    nb = _read(NB01)
    (x,) = run_in_process(nb, ["exp"])["exp"].draw(5)
    replace_solution(nb, "exp", f"return g * tg.tensor(np.array({np.exp(x.numpy()).tolist()!r}))")
    ex = run_in_process(nb, ["exp"])["exp"]
    assert grade_exercise(ex, seed=5, draws=1).status == PASSED
    assert grade_exercise(ex, seed=5).status == FAILED


def test_the_best_step_reference_is_the_demo_modules_function() -> None:
    from tglite.demos.backprop import optimal_step

    assert run_in_process(_read(NB02), ["best_step"])["best_step"].reference is optimal_step
    assert run_in_process(_read(NB02), ["central_difference"])["central_difference"].reference is tg.numerical_grad
