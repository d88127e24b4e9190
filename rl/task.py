"""A reasoning task whose every step can be checked: arithmetic chains.

A problem is a start value and a list of operations, applied left to right (no precedence):

    prompt      Q:7+5*3-4            ("start 7, add 5, times 3, minus 4")
    solution    7+5=12               one step per line, each chaining from the previous result
                12*3=36
                36-4=32
                A:32$                the answer line; "$" ends the solution

Because every line is `a op b = c`, a checker can say for each step whether it is arithmetically
right, whether it continues from the previous result, and whether it applies the problem's
operation. That is what process reward models need (Lightman et al. 2023, "Let's verify step by
step", label each step; here the labels come free and exact).

Balanced answers. Drawing start values and operands forward piles the answers up near the top of
the value range (a first generator produced 99 4.6x more often than uniform), and a model could
then guess the answer from its prior alone. So the chain is built *backwards*: draw the answer
uniformly, then repeatedly pick an operation and operand that lead to it from a valid previous
value. Every answer in [0, max_value] is then exactly equally likely.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nn import CharTokenizer

# One id per character. "_" pads; "$" ends a solution; "\n" ends a step.
VOCAB = "_$\n0123456789+-*=:AQ"
TOKENIZER = CharTokenizer(VOCAB)
PAD_ID = TOKENIZER.stoi["_"]
EOS_ID = TOKENIZER.stoi["$"]
NEWLINE_ID = TOKENIZER.stoi["\n"]
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class Level:
    """Difficulty knobs: how many steps, how large values get, which operations appear."""

    level: int
    min_steps: int
    max_steps: int
    max_value: int  # every intermediate value and the answer lie in [0, max_value]
    ops: str  # "*" multiplies by a single digit 2..9
    max_operand: int  # operands of + and - lie in [1, max_operand]


LEVELS: dict[int, Level] = {
    1: Level(1, 2, 2, 99, "+-", 99),
    2: Level(2, 3, 3, 99, "+-*", 99),
    3: Level(3, 4, 5, 99, "+-*", 99),
    4: Level(4, 5, 6, 999, "+-*", 999),
    5: Level(5, 7, 8, 999, "+-*", 999),
}


def get_level(level: int) -> Level:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; levels are {sorted(LEVELS)}")
    return LEVELS[level]


@dataclass(frozen=True)
class Problem:
    start: int
    ops: tuple[tuple[str, int], ...]  # (operation, operand) pairs, applied left to right
    level: int = 0

    @property
    def values(self) -> list[int]:
        """The running value after each step, starting with the start value."""
        vals = [self.start]
        for op, b in self.ops:
            vals.append(OPS[op](vals[-1], b))
        return vals

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def n_steps(self) -> int:
        return len(self.ops)

    @property
    def prompt(self) -> str:
        return "Q:" + str(self.start) + "".join(f"{op}{b}" for op, b in self.ops) + "\n"

    @property
    def solution(self) -> str:
        """The canonical step-by-step completion (what supervised fine-tuning imitates)."""
        vals = self.values
        lines = [f"{vals[i]}{op}{b}={vals[i + 1]}" for i, (op, b) in enumerate(self.ops)]
        return "\n".join(lines) + f"\nA:{self.answer}$"


def _previous_value(rng: np.random.Generator, c: int, lv: Level) -> tuple[str, int, int]:
    """One backward step: an (op, operand, previous value) with previous op operand == c."""
    choices: list[tuple[str, list[int] | range]] = []
    if "+" in lv.ops and c >= 1:  # prev + b = c, prev >= 0
        choices.append(("+", range(1, min(c, lv.max_operand) + 1)))
    if "-" in lv.ops and c < lv.max_value:  # prev - b = c, prev <= max_value
        choices.append(("-", range(1, min(lv.max_value - c, lv.max_operand) + 1)))
    if "*" in lv.ops and c >= 2:  # prev * b = c, prev >= 1
        divisors = [b for b in range(2, 10) if c % b == 0]
        if divisors:
            choices.append(("*", divisors))
    op, operands = choices[int(rng.integers(len(choices)))]
    b = int(operands[int(rng.integers(len(operands)))])
    prev = {"+": c - b, "-": c + b, "*": c // b}[op]
    return op, b, prev


def sample_problem(rng: np.random.Generator, level: int) -> Problem:
    """A problem of the given level whose answer is uniform on [0, max_value] (built backwards)."""
    lv = get_level(level)
    n = int(rng.integers(lv.min_steps, lv.max_steps + 1))
    c = int(rng.integers(0, lv.max_value + 1))
    ops: list[tuple[str, int]] = []
    for _ in range(n):
        op, b, c = _previous_value(rng, c, lv)
        ops.append((op, b))
    return Problem(start=c, ops=tuple(reversed(ops)), level=level)


TEST_SEED = 20_241_201  # the fixed test sets; training data uses other seeds and excludes them


def test_set(level: int, n: int = 200, seed: int = TEST_SEED) -> list[Problem]:
    """A fixed, seeded set of n distinct problems of one level."""
    rng = np.random.default_rng([seed, level])
    out: dict[str, Problem] = {}
    while len(out) < n:
        p = sample_problem(rng, level)
        out.setdefault(p.prompt, p)
    return list(out.values())


test_set.__test__ = False  # type: ignore[attr-defined]  # a data function, not a pytest test


def training_problems(n: int, seed: int, levels: Sequence[int] = tuple(LEVELS),
                      exclude: Iterable[Problem] = ()) -> list[Problem]:
    """n problems, levels drawn uniformly, none equal to an excluded (test) problem."""
    if n < 0:
        raise ValueError(f"training_problems: n must be >= 0, got {n}")
    for lv in levels:
        get_level(lv)
    banned = {p.prompt for p in exclude}
    rng = np.random.default_rng([seed, 7])
    out: list[Problem] = []
    while len(out) < n:
        p = sample_problem(rng, int(levels[int(rng.integers(len(levels)))]))
        if p.prompt not in banned:
            out.append(p)
    return out


def answer_histogram(problems: Sequence[Problem], bins: int = 10) -> tuple[np.ndarray, float]:
    """Counts of answers in `bins` equal bins of [0, max_value], and max/min bin ratio (1 = flat)."""
    if not problems:
        raise ValueError("answer_histogram: no problems")
    top = max(get_level(p.level).max_value for p in problems) + 1
    counts, _ = np.histogram([p.answer for p in problems], bins=bins, range=(0, top))
    return counts, float(counts.max() / max(counts.min(), 1))


# ----------------------------------------------------------------------------- checking
STEP_RE = re.compile(r"^(\d+)([+\-*])(\d+)=(\d+)$")
ANSWER_RE = re.compile(r"^A:(-?\d+)\$$")  # a model may write a negative answer


@dataclass
class StepVerdict:
    """One line of a completion. `correct` = well formed, arithmetically right, continues from
    the previous result and applies the problem's operation at this position."""

    text: str
    well_formed: bool
    arithmetic_ok: bool
    chains: bool
    follows_problem: bool

    @property
    def correct(self) -> bool:
        return self.well_formed and self.arithmetic_ok and self.chains and self.follows_problem


@dataclass
class Verdict:
    steps: list[StepVerdict] = field(default_factory=list)  # every line, the answer line last
    answer: int | None = None  # None: no well-formed answer line (truncated or malformed)
    answer_correct: bool = False

    @property
    def first_error(self) -> int | None:
        """Index of the first incorrect line (None when every line is correct)."""
        return next((i for i, s in enumerate(self.steps) if not s.correct), None)

    @property
    def all_steps_correct(self) -> bool:
        return self.answer is not None and self.first_error is None

    @property
    def lucky(self) -> bool:
        """Right answer reached through a wrong step: an outcome reward accepts it, a process
        reward should not."""
        return self.answer_correct and self.first_error is not None

    def step_labels(self) -> list[bool]:
        return [s.correct for s in self.steps]


def split_steps(completion: str) -> list[str]:
    """The lines of a completion; the answer line keeps its "$"."""
    lines = completion.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def check(problem: Problem, completion: str) -> Verdict:
    """Check every line of a completion against the problem."""
    v = Verdict()
    prev: int | None = problem.start
    lines = split_steps(completion)
    for i, line in enumerate(lines):
        is_last = i == len(lines) - 1
        ans = ANSWER_RE.match(line) if is_last else None
        if ans is not None:  # the answer line: right if it states the result of the last step
            a = int(ans.group(1))
            v.answer = a
            v.answer_correct = a == problem.answer
            done = i == problem.n_steps
            v.steps.append(StepVerdict(line, True, True, a == prev, done))
            break
        m = STEP_RE.match(line)
        if m is None:
            v.steps.append(StepVerdict(line, False, False, False, False))
            prev = None
            continue
        a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        follows = i < problem.n_steps and problem.ops[i] == (op, b)
        v.steps.append(StepVerdict(line, True, OPS[op](a, b) == c, a == prev, follows))
        prev = c
    return v


def answer_of(completion: str) -> int | None:
    """The stated answer, or None without a well-formed final answer line."""
    lines = split_steps(completion)
    m = ANSWER_RE.match(lines[-1]) if lines else None
    return int(m.group(1)) if m else None


# ----------------------------------------------------------------------------- tokens
def encode_examples(problems: Sequence[Problem], completions: Sequence[str] | None = None,
                    block_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded (inputs, targets) for supervised fine-tuning on prompt + completion.

    The loss is on the completion only: prompt and padding targets are -100 (ignored)."""
    comps = [p.solution for p in problems] if completions is None else list(completions)
    seqs = [(TOKENIZER.encode(p.prompt), TOKENIZER.encode(c)) for p, c in zip(problems, comps)]
    T = max(len(a) + len(b) for a, b in seqs) - 1
    if block_size is not None and T > block_size:
        raise ValueError(f"encode_examples: a sequence of {T + 1} tokens exceeds block_size={block_size}")
    x = np.full((len(seqs), T), PAD_ID, dtype=np.int64)
    y = np.full((len(seqs), T), -100, dtype=np.int64)
    for i, (a, b) in enumerate(seqs):
        ids = a + b
        x[i, : len(ids) - 1] = ids[:-1]
        y[i, len(a) - 1 : len(ids) - 1] = b
    return x, y


def max_sequence_length(level: int) -> int:
    """An upper bound on prompt + canonical solution tokens at a level."""
    lv = get_level(level)
    digits = len(str(max(lv.max_value, lv.max_operand)))
    prompt = 3 + digits + lv.max_steps * (1 + digits)
    step = 2 + 3 * digits + 1
    return prompt + lv.max_steps * step + 3 + digits
