"""The arithmetic-chain task: generator, balanced answers, checker, token encoding."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl.task import (
    LEVELS,
    PAD_ID,
    TOKENIZER,
    Problem,
    answer_histogram,
    answer_of,
    check,
    encode_examples,
    get_level,
    max_sequence_length,
    sample_problem,
    split_steps,
    training_problems,
)
from rl.task import test_set as fixed_test_set

problems = st.builds(lambda seed, level: sample_problem(np.random.default_rng(seed), level),
                     st.integers(0, 2**32 - 1), st.sampled_from(sorted(LEVELS)))


def test_worked_example():
    p = Problem(start=7, ops=(("+", 5), ("*", 3), ("-", 4)), level=2)
    assert p.prompt == "Q:7+5*3-4\n"
    assert p.solution == "7+5=12\n12*3=36\n36-4=32\nA:32$"
    assert p.answer == 32 and p.values == [7, 12, 36, 32]


@settings(max_examples=200, deadline=None)
@given(problems)
def test_problems_respect_their_level(p):
    lv = get_level(p.level)
    assert lv.min_steps <= p.n_steps <= lv.max_steps
    assert all(0 <= v <= lv.max_value for v in p.values)
    assert all(op in lv.ops for op, _ in p.ops)
    assert all(2 <= b <= 9 if op == "*" else 1 <= b <= lv.max_operand for op, b in p.ops)
    assert len(p.prompt) + len(p.solution) <= max_sequence_length(p.level)


@settings(max_examples=200, deadline=None)
@given(problems)
def test_canonical_solution_passes_every_step(p):
    v = check(p, p.solution)
    assert v.all_steps_correct and v.answer_correct and not v.lucky
    assert v.first_error is None
    assert len(v.steps) == p.n_steps + 1  # every step line and the answer line
    assert answer_of(p.solution) == p.answer


def _mutations(p: Problem, i: int, kind: int) -> str:
    """The canonical solution with line i broken in one of four ways."""
    lines = split_steps(p.solution)
    vals = p.values
    op, b = p.ops[i]
    a, c = vals[i], vals[i + 1]
    lines[i] = [f"{a}{op}{b}={c + 1}",  # wrong arithmetic
                f"{a + 1}{op}{b}={c + 1 if op != '*' else (a + 1) * b}",  # right arithmetic, does not chain
                f"{a}{op}{b + 1}={OPS_EVAL(a, op, b + 1)}",  # right arithmetic, wrong operand
                f"{a}{op}{b}{c}"][kind]  # malformed
    return "\n".join(lines)


def OPS_EVAL(a: int, op: str, b: int) -> int:
    return {"+": a + b, "-": a - b, "*": a * b}[op]


@settings(max_examples=300, deadline=None)
@given(problems, st.data(), st.integers(0, 3))
def test_a_mutated_step_is_caught_at_its_index(p, data, kind):
    i = data.draw(st.integers(0, p.n_steps - 1))
    v = check(p, _mutations(p, i, kind))
    assert v.first_error == i
    assert all(s.correct for s in v.steps[:i])
    step = v.steps[i]
    assert [not step.arithmetic_ok, not step.chains, not step.follows_problem, not step.well_formed][kind]


def test_lucky_solution_right_answer_through_a_wrong_step():
    p = Problem(start=10, ops=(("+", 5), ("-", 3)), level=1)
    # 10+5=16 is wrong, and 16-3=13 chains from it; the answer 13 is not 12: unlucky
    assert not check(p, "10+5=16\n16-3=13\nA:13$").answer_correct
    # two errors that cancel: 10+5=14 (one too few), 14-3=12 (one too many): the answer is right
    v = check(p, "10+5=14\n14-3=12\nA:12$")
    assert v.answer_correct and v.lucky and v.first_error == 0
    assert v.step_labels() == [False, False, True]
    assert [s.chains for s in v.steps] == [True, True, True]


def test_answer_line_must_follow_every_step():
    p = Problem(start=10, ops=(("+", 5), ("-", 3)), level=1)
    v = check(p, "10+5=15\nA:15$")  # stops early: the answer line is wrong as a step
    assert v.first_error == 1 and not v.answer_correct
    v = check(p, "10+5=15\n15-3=12\nA:15$")  # states an earlier value
    assert v.first_error == 2 and not v.answer_correct


def test_truncated_or_malformed_completions_have_no_answer():
    p = Problem(start=10, ops=(("+", 5), ("-", 3)), level=1)
    for text in ["", "10+5=15\n15-3=12\nA:12", "10+5=15\n15-3=1", "garbage$"]:
        v = check(p, text)
        assert v.answer is None and not v.answer_correct and answer_of(text) is None


def test_answers_are_near_uniform_per_level():
    rng = np.random.default_rng(0)
    for level in LEVELS:
        ps = [sample_problem(rng, level) for _ in range(4000)]
        counts, ratio = answer_histogram(ps, bins=10)
        assert counts.sum() == 4000
        # 400 expected per bin: a max/min ratio under 1.35 is within sampling noise of flat,
        # while a generator piling answers at the top of the range gives several times that.
        assert ratio < 1.35, (level, counts)


def test_test_sets_are_fixed_distinct_and_excluded_from_training():
    a, b = fixed_test_set(3), fixed_test_set(3)
    assert [p.prompt for p in a] == [p.prompt for p in b]
    assert len({p.prompt for p in a}) == len(a) == 200
    banned = {p.prompt for lv in LEVELS for p in fixed_test_set(lv)}
    train = training_problems(2000, seed=1, levels=[1], exclude=[p for lv in LEVELS for p in fixed_test_set(lv)])
    assert not banned & {p.prompt for p in train}


def test_encode_examples_masks_the_prompt_and_padding():
    ps = [Problem(7, (("+", 5),), 1), Problem(10, (("+", 5), ("-", 3)), 1)]
    x, y = encode_examples(ps)
    for row, p in enumerate(ps):
        n_prompt, n_all = len(p.prompt), len(p.prompt) + len(p.solution)
        assert TOKENIZER.decode(x[row, : n_all - 1]) == (p.prompt + p.solution)[:-1]
        assert (y[row, : n_prompt - 1] == -100).all() and (y[row, n_all - 1 :] == -100).all()
        assert TOKENIZER.decode(y[row, n_prompt - 1 : n_all - 1]) == p.solution
        assert (x[row, n_all - 1 :] == PAD_ID).all()
    with pytest.raises(ValueError, match="block_size"):
        encode_examples(ps, block_size=5)


def test_bad_levels_are_named():
    with pytest.raises(ValueError, match="unknown level 9"):
        get_level(9)
    with pytest.raises(ValueError, match="unknown level 0"):
        training_problems(3, seed=0, levels=[0])
