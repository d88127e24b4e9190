"""The test-time-compute lecture, measured: a small policy that searches against a large one that
does not, every method costed in FLOPs.

    pool = sample_pool(small, problems, n_max)                 # generate once at the largest N
    pool.score(orm=..., prm=...)                                # every sample read once per verifier
    curves = selection_curves(pool, ns, seeds, flops)           # subsample for smaller N (3 seeds)
    greedy = greedy_baseline(large, problems, flops_large)      # the "405B" decoding greedily
    search = step_search(small, prm, problems, ...)             # beam search and DVTS

Everything is per difficulty level, because which strategy pays depends on difficulty (Snell et
al. 2024). FLOPs: 2·parameters per token read or generated (Kaplan et al. 2020), the verifier's
reading counted unless a result says otherwise (search-and-learn's 1B-beats-8B plots leave it out).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tinygrad_lite as tg
from nn import GPT

from .metrics import coverage_curve, predicted_coverage
from .reward import RewardModel
from .sampling import Solution, solve
from .search import FlopModel, Measurement, SelectionCurve, aggregate, beam_search, dvts, evaluate_selection
from .step_sampler import PolicyStepSampler
from .task import Problem


@dataclass
class Pool:
    """n_max sampled solutions for each problem of one level, and what verifiers said of them."""

    problems: list[Problem]
    solutions: list[list[Solution]]  # (P, n_max)
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # verifier name -> (P, n_max) aggregated

    @property
    def answers(self) -> list[list[int | None]]:
        return [[s.verdict.answer for s in row] for row in self.solutions]

    @property
    def correct(self) -> np.ndarray:
        return np.array([[s.answer_correct for s in row] for row in self.solutions])

    @property
    def prompt_tokens(self) -> np.ndarray:
        return np.array([len(p.prompt) for p in self.problems], dtype=np.float64)

    @property
    def completion_tokens(self) -> np.ndarray:
        return np.array([[len(s.completion) for s in row] for row in self.solutions], dtype=np.float64)

    def score(self, name: str, model: RewardModel, aggregations: Sequence[str] = ("min", "prod", "last")) -> None:
        """Score every sample once; a PRM's step scores are stored under name:aggregation."""
        prompts = [p.prompt for p, row in zip(self.problems, self.solutions) for _ in row]
        comps = [s.completion for row in self.solutions for s in row]
        raw = model.score_many(prompts, comps)
        shape = (len(self.problems), len(self.solutions[0]))
        if model.kind == "orm":
            self.scores[name] = np.array([r[0] for r in raw]).reshape(shape)
        else:
            for how in aggregations:
                self.scores[f"{name}:{how}"] = np.array([aggregate(r, how) if r else 0.0 for r in raw]).reshape(shape)


def sample_pool(policy: GPT, problems: Sequence[Problem], n_max: int, seed: int = 0,
                temperature: float = 1.0) -> Pool:
    sols = solve(policy, problems, n=n_max, temperature=temperature, generator=tg.Generator(seed))
    return Pool(list(problems), [sols[i * n_max : (i + 1) * n_max] for i in range(len(problems))])


def coverage(pool: Pool, ks: Sequence[int]) -> dict[str, Any]:
    """Claim 1: pass@k (unbiased estimator) against the per-problem prediction 1 − (1 − p̂)^k."""
    c = pool.correct
    return {"k": list(ks), "pass_at_k": coverage_curve(c, ks).tolist(),
            "predicted": predicted_coverage(c, ks).tolist(), "p_hat_mean": float(c.mean())}


SELECTORS = {  # label -> (selection rule, verifier score key or None)
    "majority vote": ("majority", None),
    "best-of-N, ORM": ("best_of_n", "orm"),
    "best-of-N, PRM (min)": ("best_of_n", "prm:min"),
    "best-of-N, PRM (prod)": ("best_of_n", "prm:prod"),
    "best-of-N, PRM (last)": ("best_of_n", "prm:last"),
    "weighted best-of-N, PRM (min)": ("weighted_best_of_n", "prm:min"),
    "weighted best-of-N, ORM": ("weighted_best_of_n", "orm"),
}


def selection_curves(pool: Pool, ns: Sequence[int], seeds: int, flops: FlopModel,
                     count_verifier: bool = True) -> dict[str, SelectionCurve]:
    """Accuracy and FLOPs against N for every rule in SELECTORS whose scores the pool has."""
    answers = pool.answers
    truth = [p.answer for p in pool.problems]
    out = {}
    for label, (rule, key) in SELECTORS.items():
        if key is not None and key not in pool.scores:
            continue
        out[label] = evaluate_selection(answers, pool.scores.get(key) if key else None, truth, ns, rule, seeds=seeds,
                                        generator=0, flop_model=flops, prompt_tokens=pool.prompt_tokens,
                                        completion_tokens=pool.completion_tokens, count_verifier=count_verifier)
    return out


def greedy_baseline(policy: GPT, problems: Sequence[Problem], flops: FlopModel) -> dict[str, float]:
    """Greedy accuracy and mean FLOPs per problem."""
    sols = solve(policy, problems, greedy=True)
    f = [flops.greedy(len(p.prompt), len(s.completion)) for p, s in zip(problems, sols)]
    return {"accuracy": float(np.mean([s.answer_correct for s in sols])), "flops": float(np.mean(f)),
            "n": len(problems)}


def step_search(policy: GPT, prm: RewardModel, problems: Sequence[Problem], method: str, n_beams: int,
                beam_width: int, flops: FlopModel, seed: int = 0, temperature: float = 1.0) -> dict[str, float]:
    """Beam search or DVTS with the PRM on each problem: accuracy and mean FLOPs per problem."""
    run = {"beam": beam_search, "dvts": dvts}[method]
    hits, cost = [], []
    for i, p in enumerate(problems):
        sampler = PolicyStepSampler(policy, temperature=temperature, generator=tg.Generator(seed * 100_003 + i))
        prm.tokens_scored = 0
        result = run(sampler, prm, p.prompt, n_beams=n_beams, beam_width=beam_width, max_steps=12)
        hits.append(result.answer is not None and result.answer == p.answer)
        cost.append(flops.search(result, len(p.prompt)))
    return {"accuracy": float(np.mean(hits)), "flops": float(np.mean(cost)), "n": len(problems)}


def measurements(level: int, curves: dict[str, SelectionCurve],
                 search: dict[str, dict[str, float]]) -> list[Measurement]:
    """The per-level table compute_optimal chooses from."""
    rows = []
    for label, curve in curves.items():
        assert curve.flops is not None
        rows += [Measurement(level, label, n, float(a), float(f)) for n, a, f in zip(curve.ns, curve.mean, curve.flops)]
    for label, r in search.items():
        method, n = label.rsplit(" N=", 1)
        rows.append(Measurement(level, method, int(n), r["accuracy"], r["flops"]))
    return rows



def policy_report(policy: GPT, levels: Sequence[int], problems_per_level: int, samples: int = 0,
                  seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per level: greedy accuracy (pass@1, greedy) on the first problems of the fixed test set and,
    with samples = N > 0, pass@k for k = 1, 2, 4, ... N from N samples at temperature 1."""
    from .task import test_set

    out: dict[str, dict[str, Any]] = {}
    for lv in levels:
        problems = test_set(lv)[:problems_per_level]
        sols = solve(policy, problems, greedy=True)
        row: dict[str, Any] = {"problems": len(problems), "greedy": float(np.mean([s.answer_correct for s in sols]))}
        if samples > 0:
            ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= samples]
            pool = sample_pool(policy, problems, samples, seed=seed + lv)
            row["pass_at_k"] = dict(zip(map(str, ks), coverage_curve(pool.correct, ks).tolist()))
        out[str(lv)] = row
    return out
