"""Value exercises: a student's function graded against the project's own implementation (a reference)
on randomized inputs, with the usual mistakes named. (Gradient exercises: tests/test_exercises.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_lite as tg
from tglite import exercises as ex_module
from tglite.exercises import FAILED, NOT_ATTEMPTED, PASSED, exercise, format_grade, grade_exercise, mistake


@pytest.fixture(autouse=True)
def clean_registry():
    ex_module.clear_registry()
    yield
    ex_module.clear_registry()


def _matrix(gen: tg.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(gen.integers(2, 6, ()))
    a = tg.randn(n, n, generator=gen, dtype=tg.float64).numpy()
    b = tg.randn(n, n, generator=gen, dtype=tg.float64).numpy()
    return a, b


def _reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 2.0 * a @ b


def _register(body):
    exercise("scaled_matmul", inputs=_matrix, reference=_reference)(body)
    return ex_module._REGISTRY["scaled_matmul"]


def test_a_right_answer_passes_on_every_draw() -> None:
    g = grade_exercise(_register(lambda a, b: 2.0 * (a @ b)), seed=3)
    assert g.status == PASSED and g.kind == "value" and g.draws == 3


def test_not_attempted_when_the_stub_raises() -> None:
    def stub(a, b):
        raise NotImplementedError("exercise 'scaled_matmul': write it")

    g = grade_exercise(_register(stub), seed=0)
    assert g.status == NOT_ATTEMPTED and "write it" in g.message


@pytest.mark.parametrize("body, diagnosis", [
    (lambda a, b: a @ b, "factor"),
    (lambda a, b: -2.0 * a @ b, "sign"),
    (lambda a, b: 2.0 * (a @ b).T, "transposed"),
    (lambda a, b: 0.0 * a, "zero"),
    (lambda a, b: (2.0 * a @ b)[:, :1], "shape"),
    (lambda a, b: np.where(np.arange(a.shape[1]) == 0, 0.5, 2.0 * a @ b), "partial"),
    (lambda a, b: np.log(a - a) * 0 + 2.0 * a @ b, "nan"),
    (lambda a, b: np.sin(a) @ b, "unknown"),
])
def test_planted_mistakes_get_their_diagnosis(body, diagnosis: str) -> None:
    with np.errstate(all="ignore"):
        g = grade_exercise(_register(body), seed=1)
    assert g.status == FAILED and g.diagnosis == diagnosis, (g.diagnosis, g.message)
    text = format_grade(g)
    assert "FAILED" in text and "the output" in text
    if diagnosis in ("factor", "unknown"):
        assert "yours" in text and "expected" in text  # the worst elements, both values


def test_an_answer_hard_coded_for_one_input_fails_on_the_others() -> None:
    remembered = _reference(*_matrix(tg.Generator(5)))
    g = grade_exercise(_register(lambda a, b: remembered), seed=5)
    assert g.status == FAILED and g.failed_draws == [1, 2]  # draw 0 is the one it remembers


def test_a_known_mistake_is_named() -> None:
    _register(lambda a, b: 2.0 * b @ a)

    @mistake("scaled_matmul", "operands_swapped", "operands swapped", "a matmul does not commute: check the order")
    def swapped(a, b):
        return 2.0 * b @ a

    g = grade_exercise(ex_module._REGISTRY["scaled_matmul"], seed=2)
    assert g.status == FAILED and g.diagnosis == "operands_swapped" and g.label == "operands swapped"
    assert "FAILED (operands swapped)" in format_grade(g)


def test_outputs_that_are_not_numbers_are_compared_exactly() -> None:
    words = ["queen", "king", "man"]
    exercise("closest", inputs=lambda gen: (int(gen.integers(0, 3, ())),), reference=lambda i: words[i])(
        lambda i: words[(i + 1) % 3])
    g = grade_exercise(ex_module._REGISTRY["closest"], seed=0)
    assert g.status == FAILED and "expected" in g.message


def test_a_tuple_is_several_outputs_and_a_missing_one_is_named() -> None:
    exercise("pair", inputs=_matrix, reference=lambda a, b: (a + b, a - b))(lambda a, b: (a + b,))
    g = grade_exercise(ex_module._REGISTRY["pair"], seed=0)
    assert g.status == FAILED and g.diagnosis == "shape" and "2 are expected" in g.message


def test_a_broken_reference_is_the_instructors_error_not_the_students() -> None:
    exercise("broken", inputs=_matrix, reference=lambda a, b: 1 / 0)(lambda a, b: a)
    g = grade_exercise(ex_module._REGISTRY["broken"], seed=0)
    assert g.status == FAILED and g.diagnosis == "error" and "reference raised ZeroDivisionError" in g.message
