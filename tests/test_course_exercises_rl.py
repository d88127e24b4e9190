"""Notebooks 07 and 08's graded exercises are graded on randomized inputs: new shapes and values from
the seeded generator on every draw, within each exercise's constraints, so that a backward rule pasted
in for one input fails on the others. In-process, no kernel (tests/test_notebooks.py runs the notebooks
and their handouts)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
from course_exercises import pasted_backward, replace_block, run_in_process

import rl
from tglite import exercises as exercises_module
from tglite.exercises import FAILED, PASSED, format_grade, grade_exercise

SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"
NOTEBOOKS = {"07_process_rewards_and_test_time_compute.ipynb": ["prm_min", "prm_prod", "weighted_best_of_n"],
             "08_grpo.ipynb": ["group_advantages", "clipped_surrogate"]}
CASES = [(notebook, name) for notebook, names in NOTEBOOKS.items() for name in names]


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run a notebook's setup cell and the cells of the given exercises here; their registrations."""
    monkeypatch.chdir(tmp_path)  # the setup cells make tglite_out/ in the working folder
    yield lambda nb, names: run_in_process(nb, names)
    exercises_module.clear_registry()


def _notebook(name: str):
    return nbformat.read(str(SOLUTIONS / name), as_version=4)


def _shapes(inputs) -> tuple:
    """The shapes of a draw's arrays, and its plain numbers (a group size) themselves."""
    return tuple(np.shape(x.data) if hasattr(x, "data") else np.shape(x) or x for x in inputs)


def _values(inputs) -> str:
    return repr([np.asarray(getattr(x, "data", x)).tolist() for x in inputs])


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_exercise_draws_new_shapes_and_values_from_its_seed(notebook: str, load) -> None:
    for name, ex in load(_notebook(notebook), NOTEBOOKS[notebook]).items():
        assert ex.randomized, name
        draws = [ex.draw(seed) for seed in range(12)]
        assert len({_shapes(d) for d in draws}) > 1, name
        assert len({_values(d) for d in draws}) == len(draws), name
        assert _values(ex.draw(5)) == _values(draws[5]), name  # the same seed replays the same inputs


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_solutions_pass_on_many_random_draws(notebook: str, load) -> None:
    for name, ex in load(_notebook(notebook), NOTEBOOKS[notebook]).items():
        for seed in (0, 100, 200, 300):
            grade = grade_exercise(ex, seed=seed, draws=3)
            assert grade.status == PASSED, (name, seed, format_grade(grade))


def test_the_random_inputs_keep_each_exercises_constraints(load) -> None:
    exercises = load(_notebook("07_process_rewards_and_test_time_compute.ipynb"), ["prm_min", "weighted_best_of_n"])
    exercises.update(load(_notebook("08_grpo.ipynb"), ["clipped_surrogate"]))
    for seed in range(20):
        (s,) = exercises["prm_min"].draw(seed)
        scores = s.numpy()
        assert ((0.05 < scores) & (scores < 0.95)).all() and np.diff(np.sort(scores, axis=1)).min() > 1e-3
        scores, answers = exercises["weighted_best_of_n"].draw(seed)
        votes = [[None if a < 0 else int(a) for a in row] for row in answers]
        weighted = [rl.weighted_best_of_n(v, s) for v, s in zip(votes, scores.numpy())]
        assert weighted != [rl.majority_vote(v) for v in votes]  # neither majority voting ...
        assert weighted != [rl.best_of_n(v, s) for v, s in zip(votes, scores.numpy())]  # ... nor best-of-N passes
        logp, old, adv = (x.numpy() for x in exercises["clipped_surrogate"].draw(seed))
        ratio, a = np.exp(logp - old), adv
        for high, positive in [(True, True), (True, False), (False, True), (False, False)]:
            beyond = ratio > 1.2 if high else ratio < 0.8
            assert (beyond & ((a > 0) if positive else (a < 0))).any(), (seed, high, positive)
        assert np.abs(np.log(ratio)[..., None] - np.log([0.8, 1.2])).min() >= 0.01 - 1e-12  # away from the kinks


@pytest.mark.parametrize("notebook, name", CASES, ids=[c[1] for c in CASES])
def test_a_backward_pasted_in_for_one_input_fails_on_the_others(notebook: str, name: str, load) -> None:
    # The student computes the gradient for the input they see and pastes the numbers in, keeping a right
    # forward. Draw 1 of this seed has draw 0's shapes, so only the values can tell.
    nb = _notebook(notebook)
    ex = load(nb, NOTEBOOKS[notebook])[name]
    seed = next(s for s in range(1000) if _shapes(ex.draw(s)) == _shapes(ex.draw(s + 1)))
    replace_block(nb, name, 1, pasted_backward(ex, seed))  # block 0 is the forward, block 1 the backward
    pasted = load(nb, NOTEBOOKS[notebook])[name]
    assert grade_exercise(pasted, seed=seed, draws=1).status == PASSED  # right for the input it was made for
    same_shapes = grade_exercise(pasted, seed=seed, draws=2)
    assert same_shapes.status == FAILED and same_shapes.failed_draws == [1]
    assert same_shapes.diagnosis != "error", format_grade(same_shapes)  # a wrong gradient, not a crash
    grade = grade_exercise(pasted, seed=seed)  # the usual three draws
    assert grade.status == FAILED and grade.failed_draws and 0 not in grade.failed_draws
