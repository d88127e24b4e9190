"""The process-reward lecture, measured: where PRM labels come from, and what the models learn.

    data    = build_reward_data(policy, config)       # sampled solutions + every kind of label
    models  = train_reward_models(policy, data, config)
    report  = evaluate_reward_models(models, data)     # label noise, step accuracy, first-error F1,
                                                       # lucky solutions, aggregation bias

Every reward model starts from the policy's weights (as PRMs usually start from the policy or its
base model) with a fresh scalar head, and trains on solutions the policy itself sampled: the
distribution the reward model will judge at test time.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tinygrad_lite as tg
from nn import GPT

from .reward import (
    LabelledSolution,
    RewardModel,
    first_error_f1,
    label_noise,
    monte_carlo_labels,
    outcome_labels,
    step_accuracy,
    train_reward_model,
    true_labels,
)
from .sampling import Solution, solve
from .search import aggregate
from .task import LEVELS, test_set, training_problems

Log = Callable[[str], None]
LABEL_SOURCES = ("true", "mc-hard", "mc-soft")


@dataclass
class RewardStudyConfig:
    train_problems: int = 600  # training problems (levels uniform); samples_per_problem each
    samples_per_problem: int = 4
    rollouts: int = 4  # Math-Shepherd rollouts per step (the paper uses N=8; 4 halves the sampling time)
    heldout_per_level: int = 40  # held-out test problems per level, for evaluation
    steps: int = 800  # reward-model training steps
    batch_size: int = 32
    learning_rate: float = 1e-3
    levels: tuple[int, ...] = tuple(LEVELS)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("train_problems", "samples_per_problem", "rollouts", "heldout_per_level", "steps",
                     "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"RewardStudyConfig: {name} must be an int >= 1, got {v!r}")


@dataclass
class RewardData:
    train: list[Solution]
    heldout: list[Solution]
    labels: dict[str, list[np.ndarray]] = field(default_factory=dict)  # source -> per train solution

    def labelled(self, source: str) -> list[LabelledSolution]:
        """Training examples for one label source ("outcome", "true", "mc-hard", "mc-soft")."""
        return [LabelledSolution(s.problem.prompt, s.completion, lab)
                for s, lab in zip(self.train, self.labels[source])]


def build_reward_data(policy: GPT, config: RewardStudyConfig, log: Log = lambda s: None) -> RewardData:
    """Sample training and held-out solutions from the policy and label the training ones."""
    c = config
    excluded = [p for lv in LEVELS for p in test_set(lv)]
    problems = training_problems(c.train_problems, seed=c.seed + 100, levels=c.levels, exclude=excluded)
    train = solve(policy, problems, n=c.samples_per_problem, generator=tg.Generator(c.seed + 1))
    heldout_problems = [p for lv in c.levels for p in test_set(lv)[-c.heldout_per_level:]]
    heldout = solve(policy, heldout_problems, n=c.samples_per_problem, generator=tg.Generator(c.seed + 2))
    log(f"sampled {len(train)} training and {len(heldout)} held-out solutions; "
        f"{np.mean([s.answer_correct for s in train]):.1%} of the training ones are right")
    hard, soft = monte_carlo_labels(policy, train, rollouts=c.rollouts, generator=tg.Generator(c.seed + 3))
    labels = {"outcome": [outcome_labels(s) for s in train], "true": [true_labels(s) for s in train],
              "mc-hard": hard, "mc-soft": soft}
    return RewardData(train, heldout, labels)


def train_reward_models(policy: GPT, data: RewardData, config: RewardStudyConfig,
                        progress: bool = False) -> dict[str, RewardModel]:
    """The ORM and one PRM per label source, each from a copy of the policy's weights."""
    models = {}
    for name, kind, source in [("orm", "orm", "outcome")] + [(f"prm-{s}", "prm", s) for s in LABEL_SOURCES]:
        rm = RewardModel(copy.deepcopy(policy).train(), kind)
        train_reward_model(rm, data.labelled(source), config.steps, config.batch_size, config.learning_rate,
                           seed=config.seed, progress=progress)
        models[name] = rm.eval()
    return models


def evaluate_reward_models(models: dict[str, RewardModel], data: RewardData) -> dict[str, Any]:
    """Everything the lecture claims about reward models, measured on held-out solutions."""
    held = data.heldout
    prompts, comps = [s.problem.prompt for s in held], [s.completion for s in held]
    report: dict[str, Any] = {"label_noise": {}, "models": {}}
    truth = data.labels["true"]
    for source in ("mc-hard", "mc-soft"):
        report["label_noise"][source] = label_noise(data.labels[source], truth)
    lucky = [i for i, s in enumerate(held) if s.verdict.lucky]
    report["lucky"] = {"count": len(lucky), "of": len(held),
                       "fraction_of_right_answers": len(lucky) / max(sum(s.answer_correct for s in held), 1)}
    for name, rm in models.items():
        scores = rm.score_many(prompts, comps)
        row: dict[str, Any] = {}
        if rm.kind == "prm":
            row["step_accuracy"] = step_accuracy(scores, held)
            row.update({f"first_error_{k}": v for k, v in first_error_f1(scores, held).items()})
            final = [aggregate(s, "min") if s else 0.0 for s in scores]
        else:
            final = [s[0] for s in scores]
        # Lucky solutions: right answer, wrong step. Accepting one (score >= 0.5) rewards a wrong path.
        row["lucky_accepted"] = float(np.mean([final[i] >= 0.5 for i in lucky])) if lucky else None
        right = [i for i, s in enumerate(held) if s.verdict.all_steps_correct]
        row["clean_accepted"] = float(np.mean([final[i] >= 0.5 for i in right])) if right else None
        report["models"][name] = row
    report["aggregation_bias"] = aggregation_bias(models["prm-true"], held)
    return report


def aggregation_bias(prm: RewardModel, solutions: list[Solution]) -> list[dict[str, float]]:
    """Mean aggregated score of fully correct solutions, by number of steps, for min / prod / last.

    A product of per-step probabilities shrinks with every extra step even when every step is
    right, so it ranks long correct solutions below short ones; min and last do not compound."""
    good = [s for s in solutions if s.verdict.all_steps_correct]
    if not good:
        return []
    scores = prm.score_many([s.problem.prompt for s in good], [s.completion for s in good])
    rows = []
    for n in sorted({len(sc) for sc in scores}):
        group = [sc for sc in scores if len(sc) == n]
        rows.append({"lines": n, "solutions": len(group),
                     **{how: float(np.mean([aggregate(sc, how) for sc in group])) for how in ("min", "prod", "last")}})
    return rows
