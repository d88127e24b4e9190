"""Policies: GPTs fine-tuned on canonical solutions (supervised fine-tuning, SFT).

Two sizes, about 10x apart in parameters, play the "1B" and the "405B" of the test-time-compute
lecture. Training draws fresh problems every step (the task generator is endless), one level per
batch so that sequences in a batch have similar lengths and little compute goes to padding. The
loss is the cross-entropy of the completion tokens only: the prompt is given, not predicted.

Learning arithmetic chains is a sharp jump: accuracy stays near zero until the solution loss falls
low enough for every digit of every step to come out right, then climbs fast. `train_policy`
records that curve (loss and greedy accuracy per level at every evaluation) and keeps a snapshot
at every evaluation, so a checkpoint from the middle of the jump can be chosen knowingly.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import nn
import tinygrad_lite as tg
from nn import GPT, GPTConfig
from nn.files import atomic_write_text

from .progress import progress_bar
from .sampling import solve
from .task import LEVELS, TOKENIZER, Problem, encode_examples, max_sequence_length, sample_problem, test_set

Log = Callable[[str], None]


@dataclass
class PolicyConfig:
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 72
    block_size: int = max_sequence_length(5) + 4
    batch_size: int = 32
    max_iters: int = 3000
    learning_rate: float = 2e-3
    min_lr: float = 2e-4
    warmup_iters: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    levels: tuple[int, ...] = tuple(LEVELS)
    eval_interval: int = 250
    eval_problems: int = 40  # per level, the first ones of the fixed test set
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_iters", "eval_interval", "eval_problems"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"PolicyConfig: {name} must be a positive int, got {v!r}")
        if not 0 <= self.warmup_iters <= self.max_iters:
            raise ValueError(f"PolicyConfig: warmup_iters must be in [0, max_iters={self.max_iters}], "
                             f"got {self.warmup_iters!r}")
        for name in ("learning_rate", "min_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PolicyConfig: {name} must be > 0, got {getattr(self, name)!r}")
        bad = [lv for lv in self.levels if lv not in LEVELS]
        if bad or not self.levels:
            raise ValueError(f"PolicyConfig: levels must be a non-empty subset of {sorted(LEVELS)}, got {self.levels}")
        self.levels = tuple(int(lv) for lv in self.levels)

    def model_config(self) -> GPTConfig:
        return GPTConfig(block_size=self.block_size, vocab_size=TOKENIZER.vocab_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd)


# The two policies of the lectures (parameters: 0.20M and 1.81M, 9x apart).
PRESETS: dict[str, PolicyConfig] = {
    "small": PolicyConfig(n_layer=3, n_head=4, n_embd=72, max_iters=2500),
    "large": PolicyConfig(n_layer=4, n_head=6, n_embd=192, max_iters=2500, learning_rate=1e-3, min_lr=1e-4),
    "tiny": PolicyConfig(n_layer=1, n_head=2, n_embd=16, max_iters=20, warmup_iters=2, eval_interval=10,
                         eval_problems=4, batch_size=8),  # for tests
}


def training_batch(step: int, config: PolicyConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """The batch of step `step`: a function of (seed, step) alone, so resuming needs no data state.

    Test problems are never trained on: a drawn problem equal to one is replaced."""
    rng = np.random.default_rng([config.seed, 1, step])
    level = int(config.levels[int(rng.integers(len(config.levels)))])
    banned = _test_prompts()
    probs: list[Problem] = []
    while len(probs) < config.batch_size:
        p = sample_problem(rng, level)
        if p.prompt not in banned:
            probs.append(p)
    x, y = encode_examples(probs, block_size=config.block_size)
    return x, y, level


_TEST_PROMPTS: set[str] | None = None


def _test_prompts() -> set[str]:
    global _TEST_PROMPTS
    if _TEST_PROMPTS is None:
        _TEST_PROMPTS = {p.prompt for lv in LEVELS for p in test_set(lv)}
    return _TEST_PROMPTS


def validation_batches(config: PolicyConfig, n_per_level: int = 32) -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-out canonical solutions (from the test sets' tail, never trained on), one batch per level."""
    return [encode_examples(test_set(lv)[-n_per_level:], block_size=config.block_size) for lv in config.levels]


def greedy_accuracy(model: GPT, problems_by_level: dict[int, list[Problem]]) -> dict[int, float]:
    """Fraction of problems whose greedy completion has the right final answer, per level."""
    out = {}
    for lv, probs in problems_by_level.items():
        sols = solve(model, probs, greedy=True)
        out[lv] = float(np.mean([s.answer_correct for s in sols]))
    return out


@dataclass
class PolicyRun:
    """One supervised fine-tuning run: model, optimizer, schedule and the recorded curve."""

    config: PolicyConfig
    model: GPT = dataclasses.field(init=False)
    optimizer: Any = dataclasses.field(init=False)
    step: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # per step: loss, level, lr
    evals: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # val loss, accuracy per level
    schedules: list[dict[str, int]] = dataclasses.field(default_factory=list)  # where max_iters changed

    def __post_init__(self) -> None:
        c = self.config
        self.model = GPT(c.model_config(), generator=tg.Generator(c.seed))
        self.optimizer = self.model.configure_optimizers(c.weight_decay, c.learning_rate, (0.9, 0.99))
        self.schedule = nn.WarmupCosine(c.learning_rate, c.warmup_iters, c.max_iters, c.min_lr)
        self._val = validation_batches(c)
        self._eval_problems = {lv: test_set(lv)[: c.eval_problems] for lv in c.levels}
        self.schedules = [{"from_step": 0, "max_iters": c.max_iters}]

    def train_step(self) -> float:
        c = self.config
        lr = self.schedule(self.step)
        nn.set_lr(self.optimizer, lr)
        x, y, level = training_batch(self.step, c)
        loss = nn.train_step(self.model, self.optimizer, [(x, y)], grad_clip=c.grad_clip)
        self.step += 1
        self.history.append({"step": self.step, "loss": loss, "level": level, "lr": lr})
        return loss

    def evaluate(self) -> dict[str, Any]:
        val = nn.evaluate(self.model, self._val)
        acc = greedy_accuracy(self.model, self._eval_problems)
        row = {"step": self.step, "val_loss": val, "accuracy": {str(k): v for k, v in acc.items()},
               "mean_accuracy": float(np.mean(list(acc.values())))}
        self.evals.append(row)
        return row

    def save(self, path: str | Path, with_optimizer: bool = True) -> Path:
        config = {"policy": _config_dict(self.config), "model": self.model.config.to_dict()}
        extra = {"history": self.history, "evals": self.evals, "schedules": self.schedules}
        return nn.save_checkpoint(path, self.model, self.optimizer if with_optimizer else None, self.step, config,
                                  TOKENIZER, None, extra)

    def resume(self, path: str | Path, extend: bool = False) -> None:
        """Continue from a checkpoint of the same settings. extend=True also accepts a checkpoint
        whose max_iters differs (only that): training continues under this run's longer cosine
        schedule from the checkpoint's step, and `schedules` records where the schedule changed."""
        ckpt = nn.load_checkpoint(path)
        saved, mine = dict(ckpt.config.get("policy", {})), _config_dict(self.config)
        if extend:
            if saved.get("max_iters", 0) > self.config.max_iters or ckpt.step > self.config.max_iters:
                raise ValueError(f"resume: cannot extend to max_iters={self.config.max_iters}: the checkpoint is at "
                                 f"step {ckpt.step} of {saved.get('max_iters')}")
            saved["max_iters"] = mine["max_iters"]
        if saved != mine:
            diff = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
            raise ValueError(f"checkpoint {str(path)!r} was trained with a different policy config ({', '.join(diff)} "
                             f"differ); resume with the same settings")
        nn.restore(ckpt, self.model, self.optimizer)
        self.step = ckpt.step
        self.history = list(ckpt.extra.get("history", []))
        self.evals = list(ckpt.extra.get("evals", []))
        first = {"from_step": 0, "max_iters": ckpt.config["policy"]["max_iters"]}
        self.schedules = list(ckpt.extra.get("schedules", [first]))
        if self.schedules[-1]["max_iters"] != self.config.max_iters:
            self.schedules.append({"from_step": self.step, "max_iters": self.config.max_iters})

    def run(self, out_dir: str | Path, progress: bool = True, log: Log = lambda s: None) -> None:
        """Train to max_iters; evaluate, snapshot (`step_XXXXX.npz`, weights only) and write the
        resumable `ckpt.npz` at every evaluation."""
        c = self.config
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "policy_config.json", _json(_config_dict(c)))
        log(f"policy: {self.model.num_parameters():,} parameters, levels {list(c.levels)}, "
            f"{c.max_iters} steps of {c.batch_size} problems")
        bar = progress_bar(progress, c.max_iters, "sft", self.step)
        t0 = time.perf_counter()
        try:
            while self.step < c.max_iters:
                loss = self.train_step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}")
                if self.step % c.eval_interval == 0 or self.step == c.max_iters:
                    ev = self.evaluate()
                    accs = " ".join(f"L{k}={v:.2f}" for k, v in ev["accuracy"].items())
                    (bar.write if bar is not None else log)(
                        f"step {self.step}: val loss {ev['val_loss']:.4f}, greedy accuracy {accs} "
                        f"({time.perf_counter() - t0:.0f} s)")
                    self.save(out / f"step_{self.step:05d}.npz", with_optimizer=False)
                    self.save(out / "ckpt.npz")
        finally:
            if bar is not None:
                bar.close()


def _config_dict(c: PolicyConfig) -> dict[str, Any]:
    d = dataclasses.asdict(c)
    d["levels"] = list(c.levels)
    return d


def _json(d: Any) -> str:
    import json

    return json.dumps(d, indent=2)


def load_policy(path: str | Path) -> tuple[GPT, dict[str, Any]]:
    """A policy GPT (eval mode) and its checkpoint's config and extra (curve), from a file written
    by `PolicyRun` or by `GRPOTrainer` (its policy part; a LoRA run's adapters are merged in)."""
    ckpt = nn.load_checkpoint(path)
    if "model" not in ckpt.config:
        raise ValueError(f"{str(path)!r} is not a policy checkpoint (no model config)")
    model = GPT(GPTConfig.from_dict(ckpt.config["model"]))
    if "grpo_trainer" in ckpt.config:  # a GRPO checkpoint holds {policy, reference}: take the policy
        state = {k[len("policy."):]: v for k, v in ckpt.model.items() if k.startswith("policy.")}
        if ckpt.config["grpo_trainer"].get("use_lora"):
            import lora

            c = ckpt.config["grpo_trainer"]
            lora.apply_lora(model, c["lora_targets"], r=c["lora_r"], alpha=c["lora_alpha"])
            model.load_state_dict(state)
            model = lora.merge_and_unload(model)
        else:
            model.load_state_dict(state)
    else:
        nn.restore(ckpt, model)
    return model.eval(), {"config": ckpt.config, "step": ckpt.step, **ckpt.extra}
