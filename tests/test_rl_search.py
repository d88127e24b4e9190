"""Tests for rl.search and rl.metrics: selection rules, aggregation, pass@k, subsampled evaluation,
FLOPs, beam search / DVTS on a fake policy and PRM, and the compute-optimal table."""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rl.metrics import coverage_curve, mean_and_stderr, pass_at_k, predicted_coverage
from rl.search import (
    FlopModel,
    Measurement,
    aggregate,
    aggregate_many,
    baseline_curve,
    beam_search,
    best_of_n,
    compute_optimal,
    dvts,
    evaluate_selection,
    extract_answer,
    majority_vote,
    select_answer,
    weighted_best_of_n,
)
from tinygrad_lite import Generator

# --------------------------------------------------------------------------------------------------
# A fake policy and a fake PRM
# --------------------------------------------------------------------------------------------------


class TreeSampler:
    """A deterministic policy over a hand-written tree of steps.

    `tree[text]` lists the possible next steps after completion `text`. The k-th time any row
    samples at node `text`, it gets child k mod len(children): rows at the same node fan out over
    the children in row order. One character = one token. A row is finished when it ends with "$"
    or has `max_lines` lines.
    """

    def __init__(self, tree: dict[str, list[str]], max_lines: int = 10) -> None:
        self.tree, self.max_lines = tree, max_lines
        self.tokens_generated = 0
        self.keep_calls: list[list[int]] = []
        self.sample_calls = 0

    def begin(self, prompt: str, n_rows: int) -> None:
        self.prompt, self.rows, self.visits = prompt, [""] * n_rows, {}

    def _done(self, text: str) -> bool:
        return text.endswith("$") or len(text.splitlines()) >= self.max_lines

    def sample_steps(self) -> list[str]:
        self.sample_calls += 1
        new = []
        for i, text in enumerate(self.rows):
            if self._done(text):
                new.append("")
                continue
            children = self.tree[text]
            k = self.visits.get(text, 0)
            self.visits[text] = k + 1
            step = children[k % len(children)]
            self.rows[i] = text + step
            self.tokens_generated += len(step)
            new.append(step)
        return new

    def keep(self, rows: Sequence[int]) -> None:
        self.keep_calls.append(list(rows))
        self.rows = [self.rows[r] for r in rows]

    def completions(self) -> list[str]:
        return list(self.rows)

    def finished(self) -> list[bool]:
        return [self._done(t) for t in self.rows]


class TableScorer:
    """A fake PRM: the score of step t is table[completion up to and including step t] (default 0.5).
    It re-reads prompt + completion on every call, like a PRM without a cache."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.tokens_scored = 0
        self.calls: list[list[str]] = []

    def score(self, prompt: str, completions: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(completions))
        out = []
        for c in completions:
            self.tokens_scored += len(prompt) + len(c)
            steps = c.splitlines(keepends=True)  # each line keeps its \n, so prefixes join back
            out.append([self.table.get("".join(steps[: t + 1]), 0.5) for t in range(len(steps))])
        return out


PROMPT = "Q:1+2*3\n"

# After the first step, "a" looks best, but only "b" (beam search) or "d" (DVTS) lead to the 0.95 answer.
TREE = {
    "": ["a\n", "b\n", "c\n", "d\n"],
    "a\n": ["A:1$", "A:2$"],
    "b\n": ["A:9$", "A:8$"],
    "c\n": ["A:6$", "A:5$"],
    "d\n": ["A:9$", "A:4$"],
}
SCORES = {
    "a\n": 0.9, "b\n": 0.6, "c\n": 0.1, "d\n": 0.5,
    "a\nA:1$": 0.2, "a\nA:2$": 0.3,
    "b\nA:9$": 0.95, "b\nA:8$": 0.4,
    "c\nA:6$": 0.1, "c\nA:5$": 0.1,
    "d\nA:9$": 0.95, "d\nA:4$": 0.35,
}

# --------------------------------------------------------------------------------------------------
# Answers, steps, aggregation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("7+5=12\n12*3=36\n36-4=32\nA:32$", 32),
    ("3-5=-2\nA:-2$", -2),
    ("A:7$", 7),
    ("7+5=12\nA:32", None),          # no "$": not finished
    ("A:3x$", None),
    ("A:$", None),
    ("", None),
    ("A:5$\n12", None),              # only the last line counts
    ("7+5=12\n", None),
])
def test_extract_answer(text: str, expected: int | None) -> None:
    assert extract_answer(text) == expected


def test_extract_answer_rejects_non_string() -> None:
    with pytest.raises(TypeError, match="extract_answer"):
        extract_answer(32)  # type: ignore[arg-type]


def test_aggregate_by_hand() -> None:
    s = [0.9, 0.5, 0.8]
    assert aggregate(s, "min") == 0.5
    assert aggregate(s, "prod") == pytest.approx(0.36)
    assert aggregate(s, "last") == 0.8
    assert aggregate(s, "mean") == pytest.approx(2.2 / 3)
    np.testing.assert_allclose(aggregate_many([s, [0.4]], "prod"), [0.36, 0.4])


@given(st.lists(st.floats(0.01, 0.99), min_size=1, max_size=8), st.floats(0.01, 0.99))
def test_prod_is_biased_against_longer_solutions(scores: list[float], extra: float) -> None:
    # Appending any step with score < 1 lowers the product, however good the step is;
    # "last" and "mean" can go either way, "min" never rises.
    assert aggregate([*scores, extra], "prod") < aggregate(scores, "prod")
    assert aggregate([*scores, extra], "min") <= aggregate(scores, "min")


@pytest.mark.parametrize("scores, how, match", [
    ([], "last", "non-empty"),
    ([0.5, float("nan")], "min", "finite"),
    ([0.5], "max", "how must be one of"),
])
def test_aggregate_errors(scores: list[float], how: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        aggregate(scores, how)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Selection rules
# --------------------------------------------------------------------------------------------------


def test_three_rules_pick_three_different_answers() -> None:
    answers = [3, 3, 5, 5, 5, 7]
    scores = [0.9, 0.9, 0.3, 0.3, 0.3, 0.99]
    assert majority_vote(answers) == 5              # 3 votes
    assert best_of_n(answers, scores) == 7          # one sample at 0.99
    assert weighted_best_of_n(answers, scores) == 3  # 1.8 > 0.99 > 0.9
    assert select_answer(answers, None, "majority") == 5
    assert select_answer(answers, scores, "best_of_n") == 7
    assert select_answer(answers, scores, "weighted_best_of_n") == 3


def test_none_never_wins_unless_all_are_none() -> None:
    answers = [None, None, None, 4]
    scores = [0.99, 0.99, 0.99, 0.1]
    assert majority_vote(answers) == 4
    assert best_of_n(answers, scores) == 4
    assert weighted_best_of_n(answers, scores) == 4
    assert majority_vote([None, None]) is None
    assert best_of_n([None, None], [0.1, 0.2]) is None
    assert weighted_best_of_n([None], [0.3]) is None


def test_ties_go_to_first_occurrence() -> None:
    assert majority_vote([2, 1, 1, 2]) == 2
    assert majority_vote([1, 2, 2, 1]) == 1
    assert best_of_n([1, 2], [0.5, 0.5]) == 1
    assert best_of_n([2, 1], [0.5, 0.5]) == 2
    assert weighted_best_of_n([1, 2, 2, 1], [0.5, 0.25, 0.25, 0.0]) == 1
    assert weighted_best_of_n([2, 1, 1, 2], [0.5, 0.25, 0.25, 0.0]) == 2


def test_selection_errors() -> None:
    with pytest.raises(ValueError, match="one score per answer"):
        best_of_n([1, 2], [0.5])
    with pytest.raises(ValueError, match="finite"):
        weighted_best_of_n([1, 2], [0.5, float("inf")])
    with pytest.raises(ValueError, match="method must be one of"):
        select_answer([1], [0.5], "vote")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs scores"):
        select_answer([1], None, "best_of_n")


# --------------------------------------------------------------------------------------------------
# pass@k and coverage
# --------------------------------------------------------------------------------------------------


def _brute_force_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Fraction of all k-subsets of n samples (the first c correct) that contain a correct sample."""
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


@given(st.integers(1, 9).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_enumeration(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    assert pass_at_k(n, c, k) == pytest.approx(float(_brute_force_pass_at_k(n, c, k)), abs=1e-12)


def test_pass_at_k_vectorized_and_stable_for_large_n() -> None:
    n = np.array([10, 10, 7, 2000])
    c = np.array([0, 3, 7, 500])
    got = pass_at_k(n, c, 2)
    want = [pass_at_k(int(a), int(b), 2) for a, b in zip(n, c)]
    np.testing.assert_allclose(got, want)
    # C(2000, 100) has ~190 digits: the product form still matches exact integer arithmetic
    exact = 1 - Fraction(math.comb(1500, 100), math.comb(2000, 100))
    assert pass_at_k(2000, 500, 100) == pytest.approx(float(exact), rel=1e-12)
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)


@pytest.mark.parametrize("n, c, k, match", [(5, 6, 1, "0 <= c <= n"), (5, -1, 1, "0 <= c <= n"),
                                            (5, 2, 6, "1 <= k <= n"), (5, 2, 0, "1 <= k <= n")])
def test_pass_at_k_errors(n: int, c: int, k: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pass_at_k(n, c, k)


def test_coverage_curve_and_prediction_by_hand() -> None:
    correct = np.array([[True, False], [False, False]])
    np.testing.assert_allclose(coverage_curve(correct, [1, 2]), [0.25, 0.5])
    np.testing.assert_allclose(predicted_coverage(correct, [1, 2]), [0.25, 0.375])  # (1 - 0.5²) / 2
    assert coverage_curve(correct, [1, 2], per_problem=True).shape == (2, 2)
    with pytest.raises(ValueError, match="every k"):
        coverage_curve(correct, [3])
    with pytest.raises(TypeError, match="bool"):
        coverage_curve(correct.astype(int), [1])


@given(st.integers(1, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_without_replacement_beats_independent_prediction(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    correct = np.zeros((1, n), dtype=bool)
    correct[0, :c] = True
    measured, predicted = coverage_curve(correct, [k])[0], predicted_coverage(correct, [k])[0]
    assert measured >= predicted - 1e-12
    if k == 1:
        assert measured == pytest.approx(predicted)


def test_mean_and_stderr() -> None:
    mean, std, stderr = mean_and_stderr([[1.0, 0.0], [3.0, 0.0]])
    np.testing.assert_allclose(mean, [2.0, 0.0])
    np.testing.assert_allclose(std, [math.sqrt(2), 0.0])
    np.testing.assert_allclose(stderr, [1.0, 0.0])
    _, std1, err1 = mean_and_stderr([0.7])
    assert std1 == 0 and err1 == 0


# --------------------------------------------------------------------------------------------------
# Subsampled evaluation
# --------------------------------------------------------------------------------------------------


def _table(seed: int = 0, P: int = 6, n_max: int = 8) -> tuple[list[list[int | None]], np.ndarray, list[int]]:
    """Answers parsed from completion strings, random verifier scores, correct answer 1 everywhere."""
    rng = np.random.default_rng(seed)
    completions = [[rng.choice(["x\nA:1$", "x\nA:2$", "x\nA:3$", "x\nA:"]) for _ in range(n_max)] for _ in range(P)]
    answers = [[extract_answer(c) for c in row] for row in completions]
    return answers, rng.random((P, n_max)), [1] * P


@pytest.mark.parametrize("method", ["majority", "best_of_n", "weighted_best_of_n", "coverage"])
def test_subsampling_at_nmax_reproduces_the_full_list(method: str) -> None:
    answers, scores, truth = _table()
    curve = evaluate_selection(answers, scores, truth, ns=[1, 2, 4, 8], method=method, seeds=4, generator=7)
    if method == "coverage":
        full = [any(a == 1 for a in row) for row in answers]
    else:
        full = [select_answer(row, s, method) == 1 for row, s in zip(answers, scores)]  # type: ignore[arg-type]
    np.testing.assert_array_equal(curve.accuracy[:, -1], np.mean(full))
    assert curve.std[-1] == 0 and curve.stderr[-1] == 0
    np.testing.assert_array_equal(curve.per_problem[-1], np.array(full, dtype=float))
    assert curve.accuracy.shape == (4, 4) and curve.per_problem.shape == (4, 6) and curve.flops is None


def test_subsampling_is_seed_reproducible() -> None:
    answers, scores, truth = _table(P=20)
    a = evaluate_selection(answers, scores, truth, ns=[1, 2, 4], method="best_of_n", seeds=3, generator=5)
    b = evaluate_selection(answers, scores, truth, ns=[1, 2, 4], method="best_of_n", seeds=3, generator=Generator(5))
    c = evaluate_selection(answers, scores, truth, ns=[1, 2, 4], method="best_of_n", seeds=3, generator=6)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    assert not np.array_equal(a.accuracy, c.accuracy)


def test_prefix_subsampling_takes_the_first_n() -> None:
    answers, scores, truth = _table()
    curve = evaluate_selection(answers, scores, truth, ns=[3], method="weighted_best_of_n", seeds=1,
                               subsample="prefix")
    want = np.mean([weighted_best_of_n(row[:3], s[:3]) == 1 for row, s in zip(answers, scores)])
    assert curve.mean[0] == want
    with pytest.raises(ValueError, match="seeds=1"):
        evaluate_selection(answers, scores, truth, ns=[3], method="majority", seeds=2, subsample="prefix")


def test_random_subsets_average_to_pass_at_k() -> None:
    # E over uniformly random n-subsets of "any correct" is exactly pass@n; many seeds get close.
    answers, _, truth = _table(P=5)
    correct = np.array([[a == 1 for a in row] for row in answers])
    curve = evaluate_selection(answers, None, truth, ns=[1, 3], method="coverage", seeds=300, generator=1)
    np.testing.assert_allclose(curve.mean, coverage_curve(correct, [1, 3]), atol=0.05)


def test_evaluate_selection_flops_by_hand() -> None:
    answers, scores, truth = _table(P=3, n_max=4)
    fm = FlopModel(policy_params=100, verifier_params=50)
    comp = np.full((3, 4), 10.0)
    kw = dict(ns=[1, 2], seeds=2, flop_model=fm, prompt_tokens=5, completion_tokens=comp)
    maj = evaluate_selection(answers, scores, truth, method="majority", **kw)
    bon = evaluate_selection(answers, scores, truth, method="best_of_n", **kw)
    free = evaluate_selection(answers, scores, truth, method="best_of_n", count_verifier=False, **kw)
    np.testing.assert_allclose(maj.flops, [2 * 100 * 15, 2 * 100 * 2 * 15])
    np.testing.assert_allclose(bon.flops, [2 * 150 * 15, 2 * 150 * 2 * 15])
    np.testing.assert_allclose(free.flops, maj.flops)
    np.testing.assert_allclose(bon.flops, [fm.best_of_n(5, 10, 1), fm.best_of_n(5, 10, 2)])
    np.testing.assert_allclose(maj.flops, [fm.sampling(5, 10, 1), fm.sampling(5, 10, 2)])


def test_evaluate_selection_errors() -> None:
    answers, scores, truth = _table(P=3, n_max=4)
    with pytest.raises(ValueError, match="needs scores"):
        evaluate_selection(answers, None, truth, ns=[1], method="best_of_n")
    with pytest.raises(ValueError, match=r"every n must be an int in \[1, 4\]"):
        evaluate_selection(answers, scores, truth, ns=[5], method="best_of_n")
    with pytest.raises(ValueError, match="rectangular"):
        evaluate_selection([[1, 2], [1]], None, [1, 1], ns=[1], method="majority")
    with pytest.raises(ValueError, match="one correct answer per problem"):
        evaluate_selection(answers, scores, truth[:2], ns=[1], method="majority")
    with pytest.raises(ValueError, match="prompt_tokens"):
        evaluate_selection(answers, scores, truth, ns=[1], method="majority", flop_model=FlopModel(1, 1))


# --------------------------------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------------------------------


def test_flop_model_by_hand() -> None:
    fm = FlopModel(policy_params=1e6, verifier_params=1e7)
    assert fm.greedy(10, 30) == 2e6 * 40
    assert fm.sampling(10, 30, 8) == 2e6 * 8 * 40
    assert fm.best_of_n(10, 30, 8) == 2e6 * 8 * 40 + 2e7 * 8 * 40
    assert fm.best_of_n(10, 30, 8, count_verifier=False) == fm.sampling(10, 30, 8)
    with pytest.raises(ValueError, match="policy_params"):
        FlopModel(0, 1)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        fm.sampling(10, 30, 0)


# --------------------------------------------------------------------------------------------------
# Beam search and DVTS on the fake tree
# --------------------------------------------------------------------------------------------------


def test_beam_search_keeps_the_best_rows_and_finds_what_greedy_misses() -> None:
    sampler, scorer = TreeSampler(TREE), TableScorer(SCORES)
    res = beam_search(sampler, scorer, PROMPT, n_beams=4, beam_width=2)
    # step 1: rows a, b, c, d score 0.9, 0.6, 0.1, 0.5 -> keep rows 0 and 1, two copies each
    assert sampler.keep_calls == [[0, 0, 1, 1]] == res.keep_calls
    assert res.iterations == 2 and sampler.sample_calls == 2
    assert [c.completion for c in res.candidates] == ["a\nA:1$", "a\nA:2$", "b\nA:9$", "b\nA:8$"]
    assert [c.score for c in res.candidates] == [0.2, 0.3, 0.95, 0.4]
    assert res.answer == 9 and res.answers == [1, 2, 9, 8]
    assert all(c.finished for c in res.candidates)
    assert res.tokens_generated == 4 * 2 + 4 * 4
    assert res.tokens_scored == 4 * (len(PROMPT) + 2) + 4 * (len(PROMPT) + 6)
    # Keeping only the single best first step (N / M = 1), as a greedy search on PRM scores would,
    # commits to "a" and never sees the 0.95 answer; greedy decoding (first child) gives A:1.
    greedy = beam_search(TreeSampler(TREE), TableScorer(SCORES), PROMPT, n_beams=4, beam_width=4)
    assert greedy.answer == 2 and 9 not in greedy.answers


def test_dvts_keeps_one_row_per_subtree() -> None:
    sampler, scorer = TreeSampler(TREE), TableScorer(SCORES)
    res = dvts(sampler, scorer, PROMPT, n_beams=4, beam_width=2)
    # subtree 0 = rows 0, 1 (a 0.9, b 0.6) keeps row 0; subtree 1 = rows 2, 3 (c 0.1, d 0.5) keeps row 3
    assert sampler.keep_calls == [[0, 0, 3, 3]] == res.keep_calls
    assert [c.completion for c in res.candidates] == ["a\nA:1$", "a\nA:2$", "d\nA:9$", "d\nA:4$"]
    assert [c.subtree for c in res.candidates] == [0, 0, 1, 1]
    assert res.answer == 9 and res.iterations == 2
    assert res.tokens_generated == 4 * 2 + 4 * 4


def test_dvts_diversity_finds_what_beam_search_misses() -> None:
    # Same tree, but "b" now leads nowhere good: beam search keeps a and b (the two global best),
    # DVTS keeps a and d (the best of each subtree) and reaches the 0.95 answer through d.
    scores = {**SCORES, "b\nA:9$": 0.1}
    beam = beam_search(TreeSampler(TREE), TableScorer(scores), PROMPT, n_beams=4, beam_width=2)
    tree_search = dvts(TreeSampler(TREE), TableScorer(scores), PROMPT, n_beams=4, beam_width=2)
    assert beam.answer == 8 and tree_search.answer == 9


def test_beam_search_pool_when_rows_finish_early() -> None:
    tree = {"": ["A:5$", "A:6$", "A:7$", "a\n"], "a\n": ["A:1$", "A:2$"]}
    scores = {"A:5$": 0.1, "A:6$": 0.2, "A:7$": 0.3, "a\n": 0.5, "a\nA:1$": 0.9, "a\nA:2$": 0.8}
    sampler = TreeSampler(tree)
    res = beam_search(sampler, TableScorer(scores), PROMPT, n_beams=4, beam_width=2)
    # only row 3 is still active, so it fills all 4 rows
    assert sampler.keep_calls == [[3, 3, 3, 3]]
    # 7 completed; search-and-learn keeps the first N in order of completion ...
    assert res.answers == [5, 6, 7, 1] and res.answer == 1
    # ... or the N best with sort_completed
    res = beam_search(TreeSampler(tree), TableScorer(scores), PROMPT, n_beams=4, beam_width=2, sort_completed=True)
    assert res.answers == [1, 1, 2, 2] and res.answer == 1
    res = beam_search(TreeSampler(tree), TableScorer(scores), PROMPT, n_beams=4, beam_width=2,
                      selection="majority")
    assert res.answer == 5  # 4 distinct answers: a tie, the first completed wins


def test_last_iteration_runs_rows_to_the_end() -> None:
    tree = {"": ["a\n"], "a\n": ["b\n"], "a\nb\n": ["A:3$"]}
    for search in (beam_search, dvts):
        sampler = TreeSampler(tree)
        res = search(sampler, TableScorer({}), PROMPT, n_beams=2, beam_width=2, max_steps=1)
        assert res.iterations == 1 and sampler.keep_calls == [] and sampler.sample_calls == 3
        assert res.answers == [3, 3] and all(c.finished for c in res.candidates)
        assert res.tokens_generated == 2 * len("a\nb\nA:3$")


def test_length_limit_finishes_rows_without_answer() -> None:
    tree = {"": ["a\n"], "a\n": ["a\n"], "a\na\n": ["a\n"]}
    res = beam_search(TreeSampler(tree, max_lines=3), TableScorer({}), PROMPT, n_beams=2, beam_width=1)
    assert res.iterations == 3 and res.answers == [None, None] and res.answer is None


def test_dvts_subtree_done_with_unfinished_sibling() -> None:
    tree = {"": ["A:5$", "x\n", "a\n", "b\n"], "a\n": ["A:7$", "A:8$"], "x\n": ["A:0$"]}
    scores = {"A:5$": 0.8, "x\n": 0.3, "a\n": 0.6, "b\n": 0.2, "a\nA:7$": 0.7, "a\nA:8$": 0.9}
    sampler = TreeSampler(tree)
    res = dvts(sampler, TableScorer(scores), PROMPT, n_beams=4, beam_width=2)
    # subtree 0 is done at step 1 (its best row answered); only subtree 1 goes on, from row 2
    assert sampler.keep_calls == [[2, 2]]
    assert [(c.completion, c.finished, c.subtree) for c in res.candidates] == [
        ("A:5$", True, 0), ("x\n", False, 0), ("a\nA:7$", True, 1), ("a\nA:8$", True, 1)]
    assert res.answers == [5, None, 7, 8] and res.answer == 8
    assert dvts(TreeSampler(tree), TableScorer(scores), PROMPT, n_beams=4, beam_width=2,
                selection="weighted_best_of_n").answer == 8


def test_search_flops_from_counted_tokens() -> None:
    res = beam_search(TreeSampler(TREE), TableScorer(SCORES), PROMPT, n_beams=4, beam_width=2)
    fm = FlopModel(policy_params=10, verifier_params=100)
    policy = 2 * 10 * (4 * len(PROMPT) + res.tokens_generated)
    assert fm.search(res, len(PROMPT)) == policy + 2 * 100 * res.tokens_scored
    assert fm.search(res, len(PROMPT), count_verifier=False) == policy


def test_search_argument_and_protocol_errors() -> None:
    with pytest.raises(ValueError, match="multiple of beam_width"):
        beam_search(TreeSampler(TREE), TableScorer(SCORES), PROMPT, n_beams=6, beam_width=4)
    with pytest.raises(ValueError, match="aggregation must be one of"):
        dvts(TreeSampler(TREE), TableScorer(SCORES), PROMPT, n_beams=4, aggregation="max")  # type: ignore[arg-type]

    class Stuck(TreeSampler):
        def sample_steps(self) -> list[str]:
            return [""] * len(self.rows)

    with pytest.raises(RuntimeError, match="row 0 is unfinished"):
        beam_search(Stuck(TREE), TableScorer(SCORES), PROMPT, n_beams=2, beam_width=1)

    class Mute(TableScorer):
        def score(self, prompt: str, completions: Sequence[str]) -> list[list[float]]:
            return [[] for _ in completions]

    with pytest.raises(RuntimeError, match="no step score for row 0"):
        dvts(TreeSampler(TREE), Mute({}), PROMPT, n_beams=2, beam_width=2)


# --------------------------------------------------------------------------------------------------
# Compute-optimal
# --------------------------------------------------------------------------------------------------


def _optimal_table(hard_beam_accuracy: float) -> list[Measurement]:
    """Best-of-N costs n FLOPs on both levels; one beam-search setting helps on the hard level only."""
    easy = {1: 0.8, 2: 0.9, 4: 0.9, 8: 0.9}
    hard = {1: 0.1, 2: 0.2, 4: 0.3, 8: 0.4}
    table = [Measurement("easy", "best_of_n", n, a, float(n)) for n, a in easy.items()]
    table += [Measurement("hard", "best_of_n", n, a, float(n)) for n, a in hard.items()]
    return [*table, Measurement("hard", "beam_search", 2, hard_beam_accuracy, 2.0)]


def test_baseline_curve_averages_levels() -> None:
    points = baseline_curve(_optimal_table(0.4), "best_of_n")
    np.testing.assert_allclose([p[:2] for p in points], [(1, 0.45), (2, 0.55), (4, 0.6), (8, 0.65)])


def test_compute_optimal_known_answer() -> None:
    r1, r4, r16, r_small = compute_optimal(_optimal_table(0.4), budgets=[1, 4, 16, 0.5])
    # budget 4: easy -> best-of-2 (0.9, as good as best-of-4 and cheaper), hard -> beam search (0.4)
    assert {lv: (m.method, m.n) for lv, m in r4.choices.items()} == {"easy": ("best_of_n", 2),
                                                                     "hard": ("beam_search", 2)}
    assert r4.accuracy == pytest.approx(0.65) and r4.flops == pytest.approx(2.0)
    assert r4.baseline_accuracy == pytest.approx(0.6)
    # the baseline reaches 0.65 only with best-of-8: 8 FLOPs against 2
    assert r4.baseline_flops_needed == pytest.approx(8.0) and r4.efficiency == pytest.approx(4.0)
    assert r1.accuracy == pytest.approx(0.45) and r1.efficiency == pytest.approx(1.0)
    assert r16.baseline_accuracy is None and r16.efficiency == pytest.approx(4.0)  # beyond measured FLOPs
    assert r_small.choices is None and r_small.accuracy is None and r_small.efficiency is None


def test_compute_optimal_interpolates_on_log_flops() -> None:
    (r,) = compute_optimal(_optimal_table(0.35), budgets=[4])
    # 0.625 lies halfway between best-of-4 (0.6) and best-of-8 (0.65): log-midpoint 4·√2 FLOPs
    assert r.accuracy == pytest.approx(0.625)
    assert r.baseline_flops_needed == pytest.approx(4 * math.sqrt(2))
    assert r.efficiency == pytest.approx(2 * math.sqrt(2))


def test_compute_optimal_baseline_never_reaches() -> None:
    (r,) = compute_optimal(_optimal_table(0.5), budgets=[4])
    assert r.accuracy == pytest.approx(0.7) and r.baseline_flops_needed == math.inf and r.efficiency == math.inf


def test_compute_optimal_single_baseline_point_and_weights() -> None:
    table = [Measurement("easy", "best_of_n", 1, 0.8, 1.0), Measurement("hard", "best_of_n", 1, 0.2, 1.0),
             Measurement("hard", "beam_search", 4, 0.6, 3.0)]
    r1, r3 = compute_optimal(table, budgets=[1, 3], level_weights={"easy": 3.0, "hard": 1.0})
    assert r1.baseline_accuracy == pytest.approx(0.65)            # (3·0.8 + 0.2) / 4
    assert r1.efficiency == pytest.approx(1.0)
    assert r3.accuracy == pytest.approx(0.75) and r3.flops == pytest.approx(1.5)  # (3·0.8 + 0.6) / 4
    assert r3.baseline_accuracy is None and r3.efficiency == math.inf


def test_compute_optimal_errors() -> None:
    with pytest.raises(ValueError, match="no weight for levels"):
        compute_optimal(_optimal_table(0.4), [4], level_weights={"easy": 1.0})
    with pytest.raises(ValueError, match="no n of baseline method 'majority'"):
        compute_optimal(_optimal_table(0.4), [4], baseline_method="majority")
    with pytest.raises(ValueError, match="accuracy in"):
        compute_optimal([Measurement("a", "best_of_n", 1, 1.5, 1.0)], [1])
