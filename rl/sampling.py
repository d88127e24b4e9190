"""Sampling solutions from a policy, many problems and many samples per problem in one batch."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import tinygrad_lite as tg
from nn import GPT

from .task import EOS_ID, TOKENIZER, Problem, Verdict, check, max_sequence_length

SLACK = 8  # extra tokens a sample may use beyond the canonical solution's longest length


@dataclass
class Solution:
    problem: Problem
    completion: str  # the generated text after the prompt, up to and including "$" if it came
    logprobs: np.ndarray  # log-probability of each generated token (of the distribution sampled from)
    verdict: Verdict

    @property
    def answer_correct(self) -> bool:
        return self.verdict.answer_correct


def max_new_tokens(problem: Problem, prefix: str, block_size: int) -> int:
    """How many tokens a completion may add after prompt + prefix."""
    used = len(problem.prompt) + len(prefix)
    budget = max_sequence_length(problem.level or 5) + SLACK - used
    return max(1, min(budget, block_size - used))


def solve(model: GPT, problems: Sequence[Problem], greedy: bool = False, n: int = 1, temperature: float = 1.0,
          generator: tg.Generator | None = None, prefixes: Sequence[str] | None = None,
          batch_size: int = 256) -> list[Solution]:
    """n completions of every problem (greedy: n must be 1), in problem order then sample order.

    With `prefixes`, problem i's completions continue prefixes[i] (the start of a solution; it is
    included in the returned completion, and its tokens get log-probability 0). Rows of similar
    length share a batch (`nn.generate` with ragged prompts: left padding and an attention mask)."""
    if greedy and n != 1:
        raise ValueError(f"solve: greedy decoding gives one completion per problem; got n={n}")
    if n < 1:
        raise ValueError(f"solve: n must be >= 1, got {n}")
    prefixes = [""] * len(problems) if prefixes is None else list(prefixes)
    if len(prefixes) != len(problems):
        raise ValueError(f"solve: {len(prefixes)} prefixes for {len(problems)} problems")
    gen = generator if generator is not None else tg.Generator(0)
    block = model.config.block_size
    rows = [(i, j) for i in range(len(problems)) for j in range(n)]
    contexts = [TOKENIZER.encode(p.prompt + pre) for p, pre in zip(problems, prefixes)]
    budgets = [max_new_tokens(p, pre, block) for p, pre in zip(problems, prefixes)]
    order = sorted(range(len(rows)), key=lambda r: (len(contexts[rows[r][0]]), budgets[rows[r][0]]))
    out: list[Solution | None] = [None] * len(rows)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        owners = [rows[r][0] for r in chunk]
        result = model.generate([contexts[i] for i in owners], max(budgets[i] for i in owners), greedy=greedy,
                                temperature=temperature, stop_tokens=[EOS_ID], generator=gen)
        for k, (r, i) in enumerate(zip(chunk, owners)):
            ids = result.completions[k][: budgets[i]]
            text = prefixes[i] + TOKENIZER.decode(ids)
            lps = np.concatenate([np.zeros(len(prefixes[i])), result.logprobs[k, : len(ids)]])
            out[r] = Solution(problems[i], text, lps, check(problems[i], text))
    return out  # type: ignore[return-value]
