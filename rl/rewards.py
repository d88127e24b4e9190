"""Reward functions for GRPO: plain Python callables that score completions.

Every reward function has the same signature, so students can write their own next to these:

    reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]

problems[i] is the problem that completions[i] tries to solve (GRPO samples G completions per
problem, so each problem appears G times in a row); the result holds one float per completion.
This is the shape of HF TRL's reward functions, which take the prompts and the completions and
return one float each. Give the trainer several functions (their rewards are summed) or mix them
with weights by `combine`:

    reward = combine(correctness_reward, (0.5, format_reward), overlong_penalty(40, 10))

Outcome rewards (`correctness_reward`) are exact here because the task has a checker; DeepSeek-R1
(Guo et al. 2025) trains on rule-based accuracy and format rewards of this kind, not on a learned
reward model, which a policy can learn to fool. `process_reward` shows the learned alternative.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from .search import AGGREGATIONS
from .search import aggregate as aggregate_scores
from .task import ANSWER_RE, STEP_RE, TOKENIZER, Problem, answer_of, check, split_steps

RewardFn = Callable[[Sequence[Problem], Sequence[str]], list[float]]
# A step reward function scores every line of every completion: one list of floats per completion,
# its k-th entry the reward of line k (the answer line last). The GRPO trainer turns these into
# per-token advantages (process supervision, rl.grpo.process_advantages).
StepRewardFn = Callable[[Sequence[Problem], Sequence[str]], list[list[float]]]
WeightedRewardFn = RewardFn | tuple[float, RewardFn]  # a bare function has weight 1


class StepScorer(Protocol):
    """Anything with a PRM's `score`: one list of per-step scores per completion of one prompt
    (rl.reward.RewardModel, or a fake in a test)."""

    def score(self, prompt: str, completions: Sequence[str]) -> list[list[float]]: ...


def _check_inputs(who: str, problems: Sequence[Problem], completions: Sequence[str]) -> None:
    if len(problems) != len(completions):
        raise ValueError(f"{who}: got {len(problems)} problems for {len(completions)} completions "
                         f"(pass one problem per completion, repeated for the samples of a group)")
    bad = [i for i, c in enumerate(completions) if not isinstance(c, str)]
    if bad:
        raise TypeError(f"{who}: completions must be str; completion {bad[0]} is a "
                        f"{type(completions[bad[0]]).__name__}")


def correctness_reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
    """The outcome reward: r = 1 if the completion's answer line `A:<n>$` states the problem's
    answer, else 0. The steps are not read, so a right answer reached by a wrong step still earns
    1 (a "lucky" solution; `process_reward` is the remedy)."""
    _check_inputs("correctness_reward", problems, completions)
    return [1.0 if answer_of(c) == p.answer else 0.0 for p, c in zip(problems, completions)]


def is_well_formed(completion: str) -> bool:
    """At least one step line `a op b=c`, every line but the last a step line, and the last line
    an answer line `A:<n>$` that ends the completion. The arithmetic is not checked: that is the
    correctness reward's job."""
    lines = split_steps(completion)  # (it drops a trailing empty line, so test the end separately)
    return (completion.endswith("$") and len(lines) >= 2 and all(STEP_RE.match(line) for line in lines[:-1])
            and ANSWER_RE.match(lines[-1]) is not None)


def format_reward(problems: Sequence[Problem], completions: Sequence[str], *, value: float = 0.1) -> list[float]:
    """r = value (default 0.1) for a well-formed completion (`is_well_formed`), else 0.

    A small bonus for the shape of a solution, like DeepSeek-R1's format reward for putting its
    reasoning between think tags (Guo et al. 2025). Keep it small next to the correctness reward,
    or the policy learns to write tidy wrong answers. Another value: functools.partial(format_reward, value=0.2)."""
    _check_inputs("format_reward", problems, completions)
    if not np.isfinite(value):
        raise ValueError(f"format_reward: value must be finite, got {value!r}")
    return [float(value) if is_well_formed(c) else 0.0 for c in completions]


def overlong_penalty(max_len: int, cache_len: int) -> RewardFn:
    """DAPO's soft overlong punishment (Yu et al. 2025, "DAPO", arXiv:2503.14476, §3.4, eq. 13), with
    |y| the completion's length in tokens, L_max = max_len and L_cache = cache_len:

        r(y) = 0                                  if |y| <= L_max - L_cache
        r(y) = ((L_max - L_cache) - |y|) / L_cache  if L_max - L_cache < |y| <= L_max
        r(y) = -1                                 if |y| > L_max

    The penalty ramps up over the last L_cache tokens instead of jumping, so a completion that is
    merely long is not punished as hard as one that runs off the end (whose reward would otherwise
    be noise: it was cut, not wrong). cache_len = 0 gives the hard cut (0, then -1 beyond max_len).
    """
    for name, v in (("max_len", max_len), ("cache_len", cache_len)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"overlong_penalty: {name} must be an int, got {v!r}")
    if max_len < 1:
        raise ValueError(f"overlong_penalty: max_len must be >= 1, got {max_len}")
    if not 0 <= cache_len <= max_len:
        raise ValueError(f"overlong_penalty: cache_len must lie in [0, max_len={max_len}], got {cache_len}")
    safe = max_len - cache_len  # the longest length with no penalty

    def penalty(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
        _check_inputs("overlong_penalty", problems, completions)
        out = []
        for c in completions:
            n = len(TOKENIZER.encode(c))
            if n <= safe:
                out.append(0.0)
            elif n <= max_len:  # only reachable when cache_len > 0
                out.append((safe - n) / cache_len)
            else:
                out.append(-1.0)
        return out

    penalty.__name__ = "overlong_penalty"
    penalty.__doc__ = f"DAPO overlong penalty, max_len={max_len}, cache_len={cache_len}."
    return penalty


def _step_scores(who: str, prm: StepScorer, problems: Sequence[Problem],
                 completions: Sequence[str]) -> list[list[float]]:
    """The PRM's step scores of every completion, scoring all completions of one prompt together."""
    by_prompt: dict[str, list[int]] = {}
    for i, p in enumerate(problems):
        by_prompt.setdefault(p.prompt, []).append(i)
    out: list[list[float]] = [[] for _ in completions]
    for prompt, rows in by_prompt.items():
        scores = prm.score(prompt, [completions[i] for i in rows])
        if len(scores) != len(rows):
            raise ValueError(f"{who}: the PRM returned {len(scores)} score lists for "
                             f"{len(rows)} completions of prompt {prompt!r}")
        for i, sc in zip(rows, scores):
            out[i] = list(sc)
    return out


def process_reward(prm: StepScorer, aggregate: str = "min") -> RewardFn:
    """A process reward: the PRM's step scores of each completion, aggregated into one number
    (rl.search.aggregate: "min", "prod", "last" or "mean"; "min" by default, as a chain is as
    strong as its weakest step, Lightman et al. 2023). A completion with no step scores gets 0.

    `prm` is anything with `.score(prompt, completions) -> list[list[float]]` (rl.reward.RewardModel).
    Completions are scored one prompt at a time, all completions of that prompt together."""
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"process_reward: aggregate must be one of {AGGREGATIONS}, got {aggregate!r}")
    if not callable(getattr(prm, "score", None)):
        raise TypeError(f"process_reward: prm must have a .score(prompt, completions) method, "
                        f"got a {type(prm).__name__}")

    def reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
        _check_inputs("process_reward", problems, completions)
        return [aggregate_scores(s, aggregate) if len(s) else 0.0  # type: ignore[arg-type]
                for s in _step_scores("process_reward", prm, problems, completions)]

    reward.__name__ = f"process_reward_{aggregate}"
    return reward


def step_correctness_reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[list[float]]:
    """A rule-based process reward: for each line of a completion, 1.0 if that line and every line
    before it are correct (rl.task.check: well formed, right arithmetic, chained from the previous
    result, the problem's operation, and for the answer line the final value at the right place),
    else 0.0. A line after the first error earns 0 even when its own arithmetic is right: it
    continues a chain that has already failed. A completion with no line gets [0.0].

    This is the exact version of what a PRM estimates: the checker's step labels, with everything
    from the first error on labelled wrong (PRM800K stops labelling at the first error, Lightman
    et al. 2023). It is still a *rule*, like DeepSeek-R1's rewards, not a learned model."""
    _check_inputs("step_correctness_reward", problems, completions)
    out = []
    for p, c in zip(problems, completions):
        labels = check(p, c).step_labels()
        n = max(1, len(split_steps(c)))
        ok = np.zeros(n)
        first_error = next((k for k, good in enumerate(labels) if not good), len(labels))
        ok[: min(first_error, n)] = 1.0
        out.append(ok.tolist())
    return out


def prm_step_reward(prm: StepScorer) -> StepRewardFn:
    """A learned process reward: the PRM's score (a probability) of each line of each completion.
    Completions are scored one prompt at a time. A completion with no scored line gets [0.0]."""
    if not callable(getattr(prm, "score", None)):
        raise TypeError(f"prm_step_reward: prm must have a .score(prompt, completions) method, "
                        f"got a {type(prm).__name__}")

    def step_reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[list[float]]:
        _check_inputs("prm_step_reward", problems, completions)
        return [[float(v) for v in s] if len(s) else [0.0]
                for s in _step_scores("prm_step_reward", prm, problems, completions)]

    step_reward.__name__ = "prm_step_reward"
    return step_reward


def _is_pair(x: object) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and not callable(x[0]) and callable(x[1])


def weighted_terms(fns: WeightedRewardFn | Sequence[WeightedRewardFn]) -> list[tuple[float, str, RewardFn]]:
    """(weight, name, function) for each reward function; bare functions weigh 1, names are made
    unique (a second `penalty` becomes `penalty_2`) so that each can be logged on its own."""
    items = [fns] if callable(fns) or _is_pair(fns) else list(fns)  # type: ignore[arg-type]
    if not items:
        raise ValueError("reward functions: need at least one")
    out: list[tuple[float, str, RewardFn]] = []
    seen: dict[str, int] = {}
    for item in items:
        weight, fn = item if _is_pair(item) else (1.0, item)  # type: ignore[misc]
        if not callable(fn):
            raise TypeError(f"reward functions: {fn!r} is not callable; give functions or (weight, function) pairs")
        if not isinstance(weight, (int, float, np.floating, np.integer)) or not np.isfinite(weight):
            raise ValueError(f"reward functions: the weight of {getattr(fn, '__name__', fn)!r} must be a finite "
                             f"number, got {weight!r}")
        name = getattr(fn, "__name__", type(fn).__name__)
        seen[name] = seen.get(name, 0) + 1
        out.append((float(weight), name if seen[name] == 1 else f"{name}_{seen[name]}", fn))
    return out


def compute_rewards(fns: WeightedRewardFn | Sequence[WeightedRewardFn], problems: Sequence[Problem],
                    completions: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """r_i = Σ_k w_k · f_k(problems, completions)_i. Returns (r of shape (N,), {name: w_k · f_k})
    and checks every function returned N finite numbers (the error names the function)."""
    n = len(completions)
    total = np.zeros(n, dtype=np.float64)
    parts: dict[str, np.ndarray] = {}
    for weight, name, fn in weighted_terms(fns):
        values = np.asarray(fn(problems, completions), dtype=np.float64)
        if values.shape != (n,):
            raise ValueError(f"reward function {name!r} returned shape {values.shape} for {n} completions "
                             f"(it must return one float per completion)")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"reward function {name!r} returned non-finite rewards {values[~np.isfinite(values)][:5]}")
        parts[name] = weight * values
        total += parts[name]
    return total, parts


def combine(*fns: WeightedRewardFn) -> RewardFn:
    """One reward function that returns Σ_k w_k · f_k: each argument is a function (w = 1) or a
    (weight, function) pair. combine((1.0, correctness_reward), (0.5, format_reward))."""
    terms = weighted_terms(list(fns))

    def combined(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
        return compute_rewards([(w, f) for w, _, f in terms], problems, completions)[0].tolist()

    combined.__name__ = "+".join(name if w == 1.0 else f"{w:g}*{name}" for w, name, _ in terms)
    return combined
