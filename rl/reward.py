"""Outcome and process reward models, and where their training labels come from.

Both are a GPT with a scalar head (`nn.ScalarHead`) that reads the final hidden state at chosen
tokens and outputs a logit; σ(logit) is the predicted probability of "good".

    ORM  (outcome)  one score per solution, at its last token: "is the final answer right?"
                    (Cobbe et al. 2021, verifiers for GSM8K)
    PRM  (process)  one score per step, at the token that ends the step: "is this step right?"
                    (Lightman et al. 2023; Uesato et al. 2022)

PRM labels, three ways (compared in `label_noise`):
    true        the checker's verdict per step, stopping at the first error as PRM800K does: the
                steps after a mistake are not labelled (Lightman et al. 2023, §2.4 of PRM800K).
    mc-hard     Math-Shepherd (Wang et al. 2024): from the end of step i, roll the policy out N
                times; step i is good if any rollout reaches the right answer.
    mc-soft     the same rollouts, label = the fraction that reach it.

The step-end token of a line is its "\\n" (the answer line's is its "$"); a truncated last line's
is its last token. Training is per-step binary cross-entropy over the labelled steps.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import nn
import tinygrad_lite as tg
import tinygrad_lite.functional as F
from nn import GPT, ScalarHead
from tinygrad_lite import Tensor

from .progress import progress_bar
from .sampling import Solution, solve
from .task import PAD_ID, TOKENIZER, Problem, split_steps


def step_end_positions(prompt: str, completion: str) -> list[int]:
    """Indices (in prompt + completion) of the token that ends each line of the completion."""
    ends, pos = [], len(prompt)
    for line in split_steps(completion):
        pos += len(line)
        ends.append(pos - 1 if line.endswith("$") or pos == len(prompt) + len(completion) else pos)
        pos += 1  # the "\n"
    return ends


def encode_for_scoring(prompts: Sequence[str], completions: Sequence[str],
                       outcome: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded token ids (B, T) and the positions to score (B, K), -1 where a row has fewer.

    outcome=True scores only each sequence's last token."""
    ids = [TOKENIZER.encode(p + c) for p, c in zip(prompts, completions)]
    sel = [[len(x) - 1] if outcome else step_end_positions(p, c) for x, p, c in zip(ids, prompts, completions)]
    T, K = max(map(len, ids)), max(1, max(map(len, sel)))
    x = np.full((len(ids), T), PAD_ID, dtype=np.int64)
    s = np.full((len(ids), K), -1, dtype=np.int64)
    for i, (row, pos) in enumerate(zip(ids, sel)):
        x[i, : len(row)] = row
        s[i, : len(pos)] = pos
    return x, s


@dataclass
class LabelledSolution:
    """A solution with one label per line in [0, 1], or NaN where the line is not labelled."""

    prompt: str
    completion: str
    labels: np.ndarray


def true_labels(sol: Solution) -> np.ndarray:
    """The checker's step labels up to and including the first error; NaN after it (PRM800K)."""
    ok = np.array(sol.verdict.step_labels(), dtype=np.float64)
    if len(ok) < len(split_steps(sol.completion)):  # a trailing fragment the checker did not reach
        ok = np.concatenate([ok, np.zeros(len(split_steps(sol.completion)) - len(ok))])
    first = np.flatnonzero(ok == 0)
    if first.size:
        ok[first[0] + 1 :] = np.nan
    return ok


def monte_carlo_labels(policy: GPT, solutions: Sequence[Solution], rollouts: int = 8,
                       generator: tg.Generator | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Math-Shepherd's (hard, soft) labels per line of each solution from `rollouts` completions
    sampled from the end of that line. The answer line is labelled by the answer's correctness
    (a finished solution has nothing left to roll out)."""
    gen = generator if generator is not None else tg.Generator(0)
    problems, prefixes, where = [], [], []
    for i, sol in enumerate(solutions):
        lines = split_steps(sol.completion)
        for j in range(len(lines)):
            if j == len(lines) - 1 and sol.completion.endswith("$"):
                continue
            problems.append(sol.problem)
            prefixes.append("\n".join(lines[: j + 1]) + "\n")
            where.append((i, j))
    outs = solve(policy, problems, n=rollouts, generator=gen, prefixes=prefixes) if problems else []
    soft = [np.zeros(len(split_steps(s.completion))) for s in solutions]
    for k, (i, j) in enumerate(where):
        soft[i][j] = np.mean([o.answer_correct for o in outs[k * rollouts : (k + 1) * rollouts]])
    for i, sol in enumerate(solutions):
        if sol.completion.endswith("$"):
            soft[i][-1] = float(sol.answer_correct)
    return [(s > 0).astype(np.float64) for s in soft], soft


def outcome_labels(sol: Solution) -> np.ndarray:
    return np.array([float(sol.answer_correct)])


class RewardModel(nn.Module):
    """A scalar-head GPT scoring either every step (kind="prm") or the final token (kind="orm")."""

    def __init__(self, backbone: GPT, kind: str) -> None:
        if kind not in ("orm", "prm"):
            raise ValueError(f"RewardModel: kind must be 'orm' or 'prm', got {kind!r}")
        self.kind = kind
        self.head = ScalarHead(backbone)
        self.tokens_scored = 0

    @property
    def config(self) -> nn.GPTConfig:
        return self.head.gpt.config

    def forward(self, idx: np.ndarray, select: np.ndarray) -> Tensor:
        return self.head(idx, select)

    def loss(self, prompts: Sequence[str], completions: Sequence[str], labels: Sequence[np.ndarray]) -> Tensor:
        """Mean binary cross-entropy over the labelled positions."""
        x, sel = encode_for_scoring(prompts, completions, outcome=self.kind == "orm")
        target = np.zeros(sel.shape)
        mask = np.zeros(sel.shape)
        for i, lab in enumerate(labels):
            lab = np.asarray(lab, dtype=np.float64)[: sel.shape[1]]
            ok = ~np.isnan(lab) & (sel[i, : len(lab)] >= 0)
            target[i, : len(lab)] = np.where(ok, lab, 0.0)
            mask[i, : len(lab)] = ok
        logits = self(x, sel)
        per = F.binary_cross_entropy_with_logits(logits, target.astype(logits.dtype), reduction="none")
        return (per * Tensor(mask.astype(logits.dtype))).sum() * (1.0 / max(mask.sum(), 1.0))

    def score(self, prompt: str, completions: Sequence[str]) -> list[list[float]]:
        """σ(logit) per line (PRM) or per completion (ORM, a one-element list), for completions
        of one prompt: the `StepScorer` protocol of rl.search."""
        return self.score_many([prompt] * len(completions), completions)

    def score_many(self, prompts: Sequence[str], completions: Sequence[str],
                   batch_size: int = 256) -> list[list[float]]:
        out: list[list[float]] = []
        was = self.training
        self.eval()
        with tg.no_grad():
            for s in range(0, len(prompts), batch_size):
                p, c = prompts[s : s + batch_size], completions[s : s + batch_size]
                x, sel = encode_for_scoring(p, c, outcome=self.kind == "orm")
                self.tokens_scored += int(sum(len(a) + len(b) for a, b in zip(p, c)))
                probs = 1.0 / (1.0 + np.exp(-self(x, sel).numpy().astype(np.float64)))
                out.extend([probs[i, sel[i] >= 0].tolist() for i in range(len(p))])
        self.train(was)
        return out


def train_reward_model(model: RewardModel, data: Sequence[LabelledSolution], steps: int, batch_size: int = 32,
                       learning_rate: float = 1e-3, seed: int = 0, progress: bool = False) -> list[float]:
    """AdamW on mean per-step BCE; batches drawn with a seeded generator. Returns the losses."""
    if steps < 0 or batch_size < 1:
        raise ValueError(f"train_reward_model: need steps >= 0 and batch_size >= 1, got {steps}, {batch_size}")
    if not data:
        raise ValueError("train_reward_model: no training data")
    rng = np.random.default_rng(seed)
    opt = nn.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = nn.WarmupCosine(learning_rate, min(20, steps), max(steps, 1), learning_rate * 0.1)
    losses = []
    bar = progress_bar(progress, steps, f"train {model.kind}")
    for step in range(steps):
        nn.set_lr(opt, schedule(step))
        batch = [data[i] for i in rng.integers(0, len(data), batch_size)]

        def loss_fn(m: nn.Module, b: list[LabelledSolution]) -> Tensor:
            return m.loss([e.prompt for e in b], [e.completion for e in b], [e.labels for e in b])

        losses.append(nn.train_step(model, opt, [batch], loss_fn=loss_fn, grad_clip=1.0))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    return losses


# ----------------------------------------------------------------------------- measurements
def label_noise(labels: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> dict[str, float]:
    """Agreement of (binarized at 0.5) labels with the true labels, on the steps truth labels."""
    a, t = [], []
    for lab, tru in zip(labels, truth):
        ok = ~np.isnan(tru)
        a.append(np.asarray(lab)[: len(tru)][ok] >= 0.5)
        t.append(tru[ok] >= 0.5)
    av, tv = np.concatenate(a), np.concatenate(t)
    return {"agreement": float((av == tv).mean()),
            "false_positive_rate": float((av & ~tv).sum() / max((~tv).sum(), 1)),  # bad steps called good
            "false_negative_rate": float((~av & tv).sum() / max(tv.sum(), 1)),  # good steps called bad
            "steps": int(tv.size)}


def first_error_f1(step_scores: Sequence[Sequence[float]], solutions: Sequence[Solution],
                   threshold: float = 0.5) -> dict[str, float]:
    """ProcessBench's metric (Zheng et al. 2024): the predicted first error is the first step
    scored below the threshold. Accuracy on erroneous solutions (exact index) and on correct
    ones (no error predicted), and their harmonic mean."""
    err_hits, err_n, ok_hits, ok_n = 0, 0, 0, 0
    for scores, sol in zip(step_scores, solutions):
        below = [i for i, s in enumerate(scores) if s < threshold]
        pred = below[0] if below else None
        true = sol.verdict.first_error
        if true is None and not sol.verdict.all_steps_correct:  # every line right, but no answer line
            true = len(scores) - 1
        if true is None:
            ok_n += 1
            ok_hits += pred is None
        else:
            err_n += 1
            err_hits += pred == true
    acc_err = err_hits / max(err_n, 1)
    acc_ok = ok_hits / max(ok_n, 1)
    f1 = 0.0 if acc_err + acc_ok == 0 else 2 * acc_err * acc_ok / (acc_err + acc_ok)
    return {"accuracy_erroneous": acc_err, "accuracy_correct": acc_ok, "f1": f1, "erroneous": err_n, "correct": ok_n}


def step_accuracy(step_scores: Sequence[Sequence[float]], solutions: Sequence[Solution]) -> float:
    """Fraction of truly-labelled steps (up to the first error) the model classifies right."""
    hits, n = 0, 0
    for scores, sol in zip(step_scores, solutions):
        tru = true_labels(sol)
        for s, t in zip(scores, tru):
            if not np.isnan(t):
                hits += (s >= 0.5) == (t >= 0.5)
                n += 1
    return hits / max(n, 1)


def sample_training_solutions(policy: GPT, problems: Sequence[Problem], n: int, seed: int) -> list[Solution]:
    """n sampled solutions per problem at temperature 1: the reward models' training data."""
    return solve(policy, problems, n=n, generator=tg.Generator(seed))


def save_reward_model(path: str | Path, model: RewardModel, extra: dict | None = None) -> Path:
    """Write a reward model (weights, GPT config, kind) atomically."""
    config = {"model": model.config.to_dict(), "reward_kind": model.kind}
    return nn.save_checkpoint(path, model, None, 0, config, TOKENIZER, None, extra or {})


def load_reward_model(path: str | Path) -> RewardModel:
    """A reward model (eval mode) from `save_reward_model`'s file."""
    ckpt = nn.load_checkpoint(path)
    kind = ckpt.config.get("reward_kind")
    if kind not in ("orm", "prm") or "model" not in ckpt.config:
        raise ValueError(f"{str(path)!r} is not a reward-model checkpoint (no reward_kind / model config)")
    rm = RewardModel(GPT(nn.GPTConfig.from_dict(ckpt.config["model"])), kind)
    nn.restore(ckpt, rm)
    return rm.eval()
