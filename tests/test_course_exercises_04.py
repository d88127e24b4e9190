"""Notebook 04's graded exercises (the causal mask, the sampling distribution, attention's backward):
the solutions pass on many random draws, the inputs are randomized, every declared mistake is named
when a student makes it, and an answer pasted in for one input fails on the others. In-process, no
kernel (tests/test_notebooks.py runs the whole notebook and its handout)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
from course_exercises import pasted_backward, pasted_value, replace_block, run_in_process

from tglite import exercises as exercises_module
from tglite.exercises import FAILED, METADATA_KEY, PASSED, build_student_notebook, format_grade, grade_exercise

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "solutions" / "04_transformer_from_scratch.ipynb"
EXERCISES = ["causal_mask", "sampling_probs", "attention_backward"]

# Wrong answers as a student would write them (not the notebook's @mistake code), the diagnosis each must
# get, and for the gradient exercise the inputs whose gradient is wrong (0: Q, 1: K, 2: V).
_DK_UNTRANSPOSED = """dV = P.T @ g
dP = g @ v.T
dS = P * (dP - (dP * P).sum(axis=-1, keepdims=True))
return dS @ k * scale, dS @ q * scale, dV"""
_SOFTMAX_ROW_SUM_DROPPED = """dV = P.T @ g
dS = P * (g @ v.T)
return dS @ k * scale, dS.T @ q * scale, dV"""
_NOT_RENORMALIZED = """z = logits / temperature
p = np.exp(z - z.max(axis=-1, keepdims=True))
p = p / p.sum(axis=-1, keepdims=True)
top = np.argsort(-z, axis=-1)[:, :top_k]
out = np.zeros_like(p)
np.put_along_axis(out, top, np.take_along_axis(p, top, axis=-1), axis=-1)
return out"""
_TIMES_TEMPERATURE = """z = logits * temperature
top = np.argsort(-z, axis=-1)[:, :top_k]
keep = np.zeros(z.shape, dtype=bool)
np.put_along_axis(keep, top, True, axis=-1)
p = np.where(keep, np.exp(z - z.max(axis=-1, keepdims=True)), 0.0)
return p / p.sum(axis=-1, keepdims=True)"""
PLANTED = [
    ("causal_mask", "return np.arange(n_total)[None, :] > np.arange(n_new)[:, None]", "cache_offset_ignored",
     "the cached positions are ignored", None),
    ("causal_mask", "return np.arange(n_total)[None, :] >= (n_total - n_new + np.arange(n_new))[:, None]",
     "diagonal_hidden", "each query hides its own key", None),
    ("causal_mask", "return np.arange(n_total)[None, :] <= (n_total - n_new + np.arange(n_new))[:, None]",
     "inverted", "the mask is inverted", None),
    ("sampling_probs", _NOT_RENORMALIZED, "not_renormalized", "filtered after the softmax", None),
    ("sampling_probs", _TIMES_TEMPERATURE, "temperature_multiplies", "the temperature multiplies the logits", None),
    ("attention_backward", _DK_UNTRANSPOSED, "dk_not_transposed", "missing transpose in dK", [1]),
    ("attention_backward", _SOFTMAX_ROW_SUM_DROPPED, "softmax_row_sum_dropped",
     "the softmax backward misses its row sum", [0, 1]),
]


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run the setup cell and the cells of the given exercises here; their registrations."""
    monkeypatch.chdir(tmp_path)  # check() looks for notebooks in the working folder
    yield lambda nb, names: run_in_process(nb, names)
    exercises_module.clear_registry()


def _notebook():
    return nbformat.read(str(NOTEBOOK), as_version=4)


def test_the_exercises_go_from_easy_to_hard_and_end_with_the_summary() -> None:
    nb = _notebook()
    assert exercises_module.exercise_names(nb) == EXERCISES
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code[-1].strip() == "print(summary())"


def test_the_solutions_pass_on_many_random_draws(load) -> None:
    exercises = load(_notebook(), EXERCISES)
    for name, ex in exercises.items():
        for seed in range(0, 40, 4):
            grade = grade_exercise(ex, seed=seed, draws=4)
            assert grade.status == PASSED, (name, seed, format_grade(grade))


def test_every_exercise_draws_new_shapes_and_values(load) -> None:
    for name, ex in load(_notebook(), EXERCISES).items():
        assert ex.randomized, name
        draws = [ex.draw(seed) for seed in range(12)]
        # the shapes of the arrays drawn (for the mask: the sizes themselves), and their values
        shapes = {tuple(np.shape(x.data) if hasattr(x, "data") else np.shape(x) or x for x in d) for d in draws}
        values = {repr([np.asarray(getattr(x, "data", x)).tolist() for x in d]) for d in draws}
        assert len(shapes) > 1 and len(values) > 1, name
        again = ex.draw(5)  # the same seed replays the same inputs
        assert repr([np.asarray(getattr(x, "data", x)).tolist() for x in again]) == \
            repr([np.asarray(getattr(x, "data", x)).tolist() for x in draws[5]])


def test_the_causal_mask_reference_is_not_changed_by_grading(load) -> None:
    import nn

    before = nn.causal_mask(2, 5).copy()  # lru_cached: the grader must only read the shared array
    grade_exercise(load(_notebook(), ["causal_mask"])["causal_mask"], seed=0, draws=12)
    np.testing.assert_array_equal(nn.causal_mask(2, 5), before)


@pytest.mark.parametrize("name, code, key, label, wrong_inputs", PLANTED, ids=[p[2] for p in PLANTED])
def test_a_typical_mistake_gets_its_named_diagnosis(name: str, code: str, key: str, label: str,
                                                    wrong_inputs: list[int] | None, load) -> None:
    nb = _notebook()
    replace_block(nb, name, 0, code)
    grade = grade_exercise(load(nb, [name])[name], seed=2024)
    assert grade.status == FAILED
    assert (grade.diagnosis, grade.label) == (key, label), format_grade(grade)
    assert grade.failed_draws == [0, 1, 2]  # every draw exposes it
    assert f"FAILED ({label}): " in format_grade(grade)
    if wrong_inputs is not None:  # every wrong gradient is listed, and only those
        assert sorted(f["input_index"] for f in grade.failures) == wrong_inputs


@pytest.mark.parametrize("name", EXERCISES)
def test_an_answer_pasted_in_for_one_input_fails_on_the_others(name: str, load) -> None:
    nb = _notebook()
    ex = load(nb, [name])[name]
    seed = 31
    replace_block(nb, name, 0, pasted_value(ex, seed) if ex.reference is not None else pasted_backward(ex, seed))
    pasted = load(nb, [name])[name]
    assert grade_exercise(pasted, seed=seed, draws=1).status == PASSED  # right for the input it was made for
    grade = grade_exercise(pasted, seed=seed)
    assert grade.status == FAILED and grade.failed_draws and 0 not in grade.failed_draws


def test_the_handout_keeps_the_mistakes_out_of_sight(tmp_path: Path) -> None:
    build_student_notebook(NOTEBOOK, tmp_path / "04.ipynb")
    handout = nbformat.read(str(tmp_path / "04.ipynb"), as_version=4)
    text = "\n".join(c.source for c in handout.cells)
    assert "@mistake(" not in text and "GRADER ONLY" not in text and "dS @ q * scale" not in text
    stored = "\n".join(handout.metadata[METADATA_KEY]["grader_code"])
    for key in {p[2] for p in PLANTED}:
        assert f'"{key}"' in stored, key
