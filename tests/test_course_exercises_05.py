"""Notebook 05's graded value exercises (3CosAdd, CSLS, BM25's idf and term weight), graded in-process:
the solutions pass on random inputs, an answer hard-coded for one input fails on the others, each typical
mistake planted in place of a solution gets its named diagnosis, and the handout hides the solutions and
the mistakes. (The notebook itself runs in tests/test_notebooks.py.)"""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
from course_exercises import run_in_process

from tglite import exercises as exercises_module
from tglite.exercises import (
    FAILED,
    METADATA_KEY,
    PASSED,
    build_student_notebook,
    exercise_names,
    format_grade,
    grade_exercise,
    notebook_hints,
    replace_solution,
)

pytest.importorskip("matplotlib")  # the notebook's setup cell imports pyplot

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "solutions" / "05_word2vec_and_semantic_search.ipynb"
NAMES = ["three_cos_add", "csls", "bm25_idf", "bm25_term_weight"]


def _notebook() -> nbformat.NotebookNode:
    return nbformat.read(str(NOTEBOOK), as_version=4)


@pytest.fixture
def in_process():
    yield run_in_process
    exercises_module.clear_registry()


def _first_array(inputs: tuple) -> np.ndarray:
    """The input whose shape the grader randomizes: the word vectors, the query rows, doc_freq or tf."""
    x = inputs[0]
    return x.vectors if hasattr(x, "vectors") else np.asarray(x)


def test_the_notebook_has_the_four_exercises_easy_to_hard_with_tiered_hints() -> None:
    nb = _notebook()
    assert exercise_names(nb) == NAMES
    hints = notebook_hints(nb)
    assert all(len(hints[name]) >= 3 for name in NAMES), {k: len(v) for k, v in hints.items()}


def test_the_solutions_pass_on_new_shapes_and_values_every_draw(in_process) -> None:
    for name, ex in in_process(_notebook(), NAMES).items():
        assert ex.randomized and ex.reference is not None, name
        shapes = {_first_array(ex.draw(seed)).shape for seed in range(12)}
        assert len(shapes) > 1, name
        for seed in (0, 1, 2024):
            grade = grade_exercise(ex, seed=seed)
            assert grade.status == PASSED and grade.kind == "value", (name, seed, format_grade(grade))


def _literal(value) -> str:
    """Python source that rebuilds a reference output (what a student pastes after printing it)."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    if isinstance(value, str):
        return repr(value)
    return f"np.array({np.asarray(value).tolist()!r})"


@pytest.mark.parametrize("name", NAMES)
def test_an_answer_hard_coded_for_one_input_fails_on_the_others(name: str, in_process) -> None:
    nb = _notebook()
    ex = in_process(nb, [name])[name]
    remembered = ex.reference(*ex.draw(777))
    replace_solution(nb, name, f"return {_literal(remembered)}")
    ex = in_process(nb, [name])[name]
    assert grade_exercise(ex, seed=777, draws=1).status == PASSED  # right for the one input it was made for
    grade = grade_exercise(ex, seed=777)
    assert grade.status == FAILED and grade.failed_draws == [1, 2], format_grade(grade)


# Typical mistakes, written as a student would (not copies of the notebook's @mistake functions), and the
# diagnosis key and label each must get.
PLANTED = {
    "3cosadd offset reversed": ("three_cos_add", """U = kv.unit()
target = U[kv.index[a]] - U[kv.index[a_star]] + U[kv.index[b]]
s = U @ target
best = [i for i in np.argsort(-s) if kv.words[i] not in (a, a_star, b)][0]
return s, kv.words[best]""", "offset_reversed", "offset reversed"),
    "3cosadd query not excluded": ("three_cos_add", """U = kv.unit()
s = U @ (U[kv.index[a_star]] - U[kv.index[a]] + U[kv.index[b]])
return s, kv.words[int(s.argmax())]""", "query_not_excluded", "query words not excluded"),
    "3cosadd dot products": ("three_cos_add", """V = kv.vectors
s = V @ (V[kv.index[a_star]] - V[kv.index[a]] + V[kv.index[b]])
best = [i for i in np.argsort(-s) if kv.words[i] not in (a, a_star, b)][0]
return s, kv.words[best]""", "not_normalized", "dot products, not cosines"),
    "csls single cosine": ("csls", """q = queries / np.linalg.norm(queries, axis=1)[:, None]
t = targets / np.linalg.norm(targets, axis=1)[:, None]
S = q @ t.T
return S - np.sort(S, axis=1)[:, -k:].mean(axis=1)[:, None] - np.sort(S.T, axis=1)[:, -k:].mean(axis=1)[None, :]""",
                           "single_cosine", "cosine counted once"),
    "csls target penalty among targets": ("csls", """q = queries / np.linalg.norm(queries, axis=1)[:, None]
t = targets / np.linalg.norm(targets, axis=1)[:, None]
S = q @ t.T
r_t = np.sort(t @ t.T, axis=1)[:, -k:].mean(axis=1)
return 2 * S - np.sort(S, axis=1)[:, -k:].mean(axis=1)[:, None] - r_t[None, :]""",
                                          "target_penalty_among_targets",
                                          "target's hubness measured among the targets"),
    "csls dot products": ("csls", """S = queries @ targets.T
return 2 * S - np.sort(S, axis=1)[:, -k:].mean(axis=1)[:, None] - np.sort(S, axis=0)[-k:].mean(axis=0)[None, :]""",
                          "not_normalized", "dot products, not cosines"),
    "idf negative kept": ("bm25_idf", "return np.log((n_docs - doc_freq + 0.5) / (doc_freq + 0.5))",
                          "negative_idf_kept", "negative idf kept"),
    "idf clipped at zero": ("bm25_idf", "return np.clip(np.log((n_docs - doc_freq + 0.5) / (doc_freq + 0.5)), 0, None)",
                            "idf_clipped_at_zero", "negative idf clipped to 0"),
    "idf of tf-idf": ("bm25_idf", "return np.log(n_docs / doc_freq)", "tfidf_idf", "tf-idf's idf"),
    "term weight length ratio inverted": ("bm25_term_weight",
                                          "return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * avgdl / doc_len))",
                                          "length_ratio_inverted", "length ratio inverted"),
    "term weight b swapped": ("bm25_term_weight",
                              "return idf * tf * (k1 + 1) / (tf + k1 * (b + (1 - b) * doc_len / avgdl))",
                              "b_swapped", "b and 1 - b swapped"),
}


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_mistake_gets_its_named_diagnosis(case: str, in_process) -> None:
    name, code, key, label = PLANTED[case]
    nb = _notebook()
    replace_solution(nb, name, code)
    grade = grade_exercise(in_process(nb, [name])[name], seed=31)
    assert grade.status == FAILED and grade.diagnosis == key, (grade.diagnosis, grade.message)
    assert format_grade(grade).startswith(f"{name:<16} FAILED ({label}): ")
    assert grade.failed_draws and grade.failures  # every failing draw is reported, with the seed to replay it
    assert "seed 31" in format_grade(grade)


# Mistakes the grader's general diagnoses name without an instructor's @mistake.
GENERIC = {
    "term weight without (k1 + 1)": ("bm25_term_weight", "return idf * tf / (tf + k1 * (1 - b + b * doc_len / avgdl))",
                                     "factor"),
    "csls sign flipped": ("csls", """q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
t = targets / np.linalg.norm(targets, axis=1, keepdims=True)
S = q @ t.T
return np.sort(S, axis=1)[:, -k:].mean(axis=1)[:, None] + np.sort(S, axis=0)[-k:].mean(axis=0) - 2 * S""", "sign"),
    "idf all zero": ("bm25_idf", "return np.zeros(len(doc_freq))", "zero"),
}


@pytest.mark.parametrize("case", GENERIC)
def test_general_diagnoses(case: str, in_process) -> None:
    name, code, key = GENERIC[case]
    nb = _notebook()
    replace_solution(nb, name, code)
    grade = grade_exercise(in_process(nb, [name])[name], seed=5)
    assert grade.status == FAILED and grade.diagnosis == key, (grade.diagnosis, grade.message)


def test_the_handout_hides_the_solutions_and_the_mistakes_but_keeps_them_for_the_grader(tmp_path: Path) -> None:
    report = build_student_notebook(NOTEBOOK, tmp_path / NOTEBOOK.name)
    assert report.exercises == NAMES and report.blocks == len(NAMES)
    handout = nbformat.read(str(tmp_path / NOTEBOOK.name), as_version=4)
    text = "\n".join(c.source for c in handout.cells)
    assert "GRADER ONLY" not in text and "@mistake(" not in text
    meta = handout.metadata[METADATA_KEY]
    assert len(meta["grader_code"]) == len(NAMES)
    for name, tiers in meta["hints"].items():
        assert tiers[-1] not in text, name  # the formula (the last tier) is not in plain view
        assert f"hint({name!r}, 2)" in text, name
    for formula in ("unit @ unit[ias] - unit @ unit[ia]", "np.sort(cos, axis=0)[-k:, :]",
                    "0.25 * log_odds.mean()", "k1 * (1 - b + b * doc_len / avgdl)"):
        assert formula not in text, formula
