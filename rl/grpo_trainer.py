"""GRPO training of a policy on the arithmetic task: sample groups, score them, update the policy.

One step of `GRPOTrainer.train_step` (Shao et al. 2024, DeepSeekMath §4.1; option names from HF TRL's
GRPOTrainer):

    1. draw P = prompts_per_step training problems, a function of (seed, step) alone;
    2. sample G = num_generations completions of each with `rl.sampling.solve` at `temperature`;
    3. score them (the sum of the reward functions, rl/rewards.py) and turn the rewards into
       group-relative advantages Â_i = (r_i - mean_group) / (std_group + eps)  (rl.grpo.group_advantages);
       with process supervision (`process_rewards`), a step reward function scores every line
       instead and each token gets the group-normalized reward-to-go of its line
       (rl.grpo.process_advantages, DeepSeekMath §4.1.3);
       with DAPO's dynamic sampling, groups whose rewards are all equal (Â = 0: no signal) are
       dropped and more problems drawn, a bounded number of times;
    4. right-pad prompt + completion into one token batch with a mask on the completion tokens, and
       compute the reference policy's log-probs once, without gradients (when β > 0 or the KL is logged);
    5. take μ = num_iterations optimizer steps on that batch through `nn.train_step`, each one a
       forward of the policy, `token_logprobs` at the sampling temperature and `grpo_loss`.

π_old, the policy that sampled the batch, is the policy at the first of the μ steps, so the
first step's forward *is* π_old's: its log-probs are kept (detached) as old_logp for steps 2..μ,
and the first step passes old_logp=None, i.e. ratio = exp(logp - logp.detach()) = 1 exactly, the
way TRL treats μ = 1. No extra forward pass is needed for the old log-probs. (TRL runs one when one
generation batch is split over several optimizer steps; here every step sees the whole batch.)

The log-probs `solve` reports come from the KV-cache decoder; the trainer recomputes them with one
full forward so that they carry gradients. The two agree to rounding (tests check 1e-9 in float64).

With `use_lora=True` only LoRA adapters train (rl may use lora: `lora.apply_lora` on the policy, as
TRL users do with PEFT), and the reference is the same model with its adapters switched off
(`lora.disable_adapter`), so no second copy of the weights is held. `memory_report` measures it.

Every random draw comes from a generator seeded by (seed, step), so `resume` needs no generator
state and continues a run bit for bit.

Data parallel (`comm=nn.distributed.get_communicator()` under mpiexec -n N): every rank takes the
same prompts and samples num_generations / N completions of each (its generator seeded by (seed,
step, rank)); the rewards are gathered, so group normalization, dynamic sampling and the logged
statistics see whole groups; each rank trains on its own completions through DistributedDataParallel,
with the "dapo" loss normalized by the token count of the whole global batch. Only rank 0 writes files.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import nn
import tinygrad_lite as tg
import tinygrad_lite.functional as F
from nn import GPT, Module
from nn.distributed import Communicator, DistributedDataParallel, LocalCommunicator
from nn.files import atomic_write_bytes, atomic_write_text
from tinygrad_lite import Tensor

from .distributed import gather_groups, samples_per_rank
from .grpo import GRPOConfig, group_advantages, grpo_loss, process_advantages, token_logprobs
from .plots import log_series
from .policy import greedy_accuracy
from .progress import progress_bar
from .rewards import (
    StepRewardFn,
    WeightedRewardFn,
    compute_rewards,
    correctness_reward,
    prm_step_reward,
    step_correctness_reward,
    weighted_terms,
)
from .sampling import Solution, solve
from .task import (
    LEVELS,
    PAD_ID,
    TOKENIZER,
    Problem,
    check,
    encode_examples,
    max_sequence_length,
    test_set,
    training_problems,
)

# Independent random streams, each seeded by (seed, stream, step, ...): see `_seed_for`.
_PROBLEMS, _SAMPLING, _LORA_INIT = 1, 2, 3

# What every training row of `GRPOTrainer.logs` holds (rows of evaluation steps add accuracy_*).
LOG_KEYS: dict[str, str] = {
    "step": "GRPO steps done (each: one batch of samples, then num_iterations optimizer updates)",
    "loss": "the GRPO loss, mean over the num_iterations updates",
    "reward": "mean reward of every completion sampled this step",
    "reward_std": "standard deviation of those rewards",
    "reward_L{level}": "mean reward at one difficulty level (None when no problem of it was drawn)",
    "reward/{name}": "mean of one reward function's (weighted) term",
    "frac_reward_zero_std": "fraction of sampled groups whose G rewards are all equal (no learning signal)",
    "step_reward": "mean step reward over every line of the trained completions (process supervision; else None)",
    "num_groups": "groups trained on (fewer than prompts_per_step when dynamic sampling ran short)",
    "num_draws": "batches of prompts drawn (1 without dynamic sampling)",
    "completion_length": "mean completion length in tokens",
    "completion_length_correct": "mean length of the completions with the right answer (None when there are none)",
    "completion_length_wrong": "mean length of the completions with a wrong or missing answer (None when none)",
    "truncated_frac": "fraction of completions that never emitted the end token $",
    "entropy": "mean per-token entropy (nats) of the policy's sampling distribution on the completions",
    "kl": "mean per-token estimate (kl_estimator, k3 by default) of KL(policy || reference); None without one",
    "clip_frac_low": "fraction of tokens whose ratio was clipped below (1 - epsilon, advantage < 0)",
    "clip_frac_high": "fraction of tokens whose ratio was clipped above (1 + epsilon_high, advantage > 0)",
    "clip_frac_region": "clip_frac_low + clip_frac_high",
    "ratio_mean": "mean importance ratio pi_theta / pi_old over completion tokens",
    "lr": "learning rate of this step's updates (GRPOTrainerConfig.lr_at)",
    "seconds": "wall-clock seconds of the step (sampling + updates + evaluation)",
}
EVAL_KEYS: dict[str, str] = {
    "accuracy_L{level}": "held-out greedy accuracy at one level (first eval_problems of the fixed test set)",
    "accuracy_mean": "mean of the per-level accuracies",
}


PROCESS_REWARDS = ("none", "checker", "prm", "custom")  # GRPOTrainerConfig.process_rewards
LR_SCHEDULERS = ("constant", "linear")  # GRPOTrainerConfig.lr_scheduler


def _seed_for(*keys: int) -> int:
    """A 32-bit seed from a tuple of ints (NumPy's SeedSequence hashes them together), so that the
    problems and samples of step k are a function of (seed, k) alone."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


# ----------------------------------------------------------------------------- configuration
@dataclass
class GRPOTrainerConfig:
    """Everything a GRPO run needs besides the policy and the reward functions.

    grpo holds the objective's options (rl.grpo.GRPOConfig: TRL's names and defaults). The rest:
    learning_rate / weight_decay / betas / grad_clip: AdamW and gradient clipping (TRL's defaults for
        weight_decay 0, betas (0.9, 0.999) and max_grad_norm 1.0). The learning rate is ours: TRL's
        1e-6 is for billion-parameter models and barely moves a 0.2M one; of 1e-4 and 2e-4 (which
        cut greedy accuracy), 5e-5 and 3e-5, 3e-5 did best from policy-small-mid (docs/rl.md);
    warmup_steps / lr_scheduler: the learning rate rises linearly over the first warmup_steps steps,
        then stays ("constant") or falls linearly towards 0 at `steps` ("linear", the default schedule
        of HF transformers' Trainer, which TRL's GRPOTrainer inherits); see `lr_at`;
    prompts_per_step P (G·P completions per step), levels (drawn uniformly per problem), steps, seed;
    micro_batch_size: completions per forward/backward (None: all at once); gradients accumulate
        and the loss is normalized over the whole batch whatever the split;
    dynamic_sampling / max_extra_draws: DAPO (Yu et al. 2025, §3.2): drop the groups whose rewards
        are all equal and draw up to max_extra_draws more batches of P problems to refill;
    log_kl: compute reference log-probs even when beta = 0, to log the KL (on by default: the KL
        to the start says how far the policy moved; it costs one reference forward per step);
    process_rewards: where the advantages come from. "none": the outcome rewards (GRPO); otherwise
        process supervision from a step reward function: "checker" (rl.rewards.step_correctness_reward,
        a rule), "prm" (the shipped PRM's step scores, rl.rewards.prm_step_reward) or "custom" (the
        step_reward_fn given to GRPOTrainer). The reward functions are still computed and logged;
        dynamic sampling still judges a group by them;
    use_lora / lora_r / lora_alpha / lora_targets: train LoRA adapters only (lora.apply_lora);
    eval_interval (0: never) / eval_problems: greedy accuracy on the first eval_problems of each
        level's fixed test set; save_interval (0: only at the end): checkpoints in `run`.
    """

    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    learning_rate: float = 3e-5
    warmup_steps: int = 0
    lr_scheduler: str = "constant"
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    prompts_per_step: int = 32
    levels: tuple[int, ...] = (1, 2, 3)  # the levels policy-small-mid solves sometimes (4-5: never)
    steps: int = 300  # about 12 minutes on 2 cores
    seed: int = 0
    micro_batch_size: int | None = None
    dynamic_sampling: bool = False
    max_extra_draws: int = 3
    log_kl: bool = True
    process_rewards: str = "none"
    use_lora: bool = False
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_targets: str | tuple[str, ...] = "all-linear"
    eval_interval: int = 50
    eval_problems: int = 40
    save_interval: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.grpo, dict):
            self.grpo = GRPOConfig(**self.grpo)
        if not isinstance(self.grpo, GRPOConfig):
            raise TypeError(f"GRPOTrainerConfig.grpo: expected an rl.grpo.GRPOConfig, got {type(self.grpo).__name__}")

        def whole(name: str, low: int) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
                raise ValueError(f"GRPOTrainerConfig.{name}: {v!r} is not an int >= {low}")

        for name, low in (("prompts_per_step", 1), ("steps", 1), ("seed", 0), ("max_extra_draws", 0),
                          ("warmup_steps", 0), ("lora_r", 1), ("eval_interval", 0), ("eval_problems", 1),
                          ("save_interval", 0)):
            whole(name, low)
        if self.micro_batch_size is not None:
            whole("micro_batch_size", 1)
        for name in ("learning_rate", "lora_alpha"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
                raise ValueError(f"GRPOTrainerConfig.{name}: {v!r} is not a number > 0")
        for name in ("weight_decay", "grad_clip"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0):
                raise ValueError(f"GRPOTrainerConfig.{name}: {v!r} is not a number >= 0")
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ValueError(f"GRPOTrainerConfig.betas: {self.betas!r} is not a pair of numbers in [0, 1)")
        self.betas = (float(betas[0]), float(betas[1]))
        levels = tuple(self.levels)
        if not levels or any(lv not in LEVELS for lv in levels):
            raise ValueError(f"GRPOTrainerConfig.levels: {self.levels!r} is not a non-empty subset of {sorted(LEVELS)}")
        self.levels = tuple(int(lv) for lv in levels)
        if self.eval_problems > 200:
            raise ValueError(f"GRPOTrainerConfig.eval_problems: {self.eval_problems} is more than the 200 "
                             f"problems of each fixed test set")
        for name in ("dynamic_sampling", "log_kl", "use_lora"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GRPOTrainerConfig.{name}: {getattr(self, name)!r} is not a bool")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise ValueError(f"GRPOTrainerConfig.lr_scheduler: {self.lr_scheduler!r} is not one of "
                             f"{', '.join(LR_SCHEDULERS)}")
        if self.process_rewards not in PROCESS_REWARDS:
            raise ValueError(f"GRPOTrainerConfig.process_rewards: {self.process_rewards!r} is not one of "
                             f"{', '.join(PROCESS_REWARDS)}")
        if not isinstance(self.lora_targets, str):
            self.lora_targets = tuple(self.lora_targets)

    def lr_at(self, step: int) -> float:
        """The learning rate of the updates of step `step` (0-based: the number of steps done before it).
        Warmup: learning_rate · (step + 1) / warmup_steps, so no step is wasted at 0. After it,
        "constant": learning_rate; "linear": learning_rate · (steps - step) / (steps - warmup_steps),
        which reaches learning_rate / (steps - warmup_steps) at the last step. (Raising `steps` when
        resuming stretches the remaining linear decay.)"""
        if step < self.warmup_steps:
            return self.learning_rate * (step + 1) / self.warmup_steps
        if self.lr_scheduler == "linear":
            return self.learning_rate * max(self.steps - step, 0) / max(self.steps - self.warmup_steps, 1)
        return self.learning_rate

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["levels"], d["betas"] = list(self.levels), list(self.betas)
        if not isinstance(self.lora_targets, str):
            d["lora_targets"] = list(self.lora_targets)
        return d


# ----------------------------------------------------------------------------- one step's data
@dataclass
class Rollouts:
    """The batch of one GRPO step: N = groups · G completions, laid out group after group.

    inputs / targets (N, T): prompt + completion right-padded with PAD_ID, shifted by one (the
    model reads inputs[:, t] and is scored on targets[:, t]); mask (N, T): True where targets[:, t]
    is a completion token; truncated (N,): the completion never emitted "$". rewards (N,);
    advantages (N,), or (N, T) per token with process supervision; reward_parts: each reward
    function's (weighted) term; ref_logp (N, T): the reference's log-probs of the targets (None without a reference).
    stats: reward statistics over *every* completion sampled this step (with dynamic sampling
    also the dropped groups), which is what says how the policy is doing."""

    step: int
    problems: list[Problem]
    solutions: list[Solution]
    rewards: np.ndarray
    reward_parts: dict[str, np.ndarray]
    advantages: np.ndarray
    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    truncated: np.ndarray
    ref_logp: np.ndarray | None
    stats: dict[str, Any]
    num_groups: int = 0


@dataclass
class _MicroBatch:
    rows: np.ndarray
    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray  # the loss mask
    advantages: np.ndarray
    ref_logp: np.ndarray | None
    weight: float  # scales this micro-batch's loss so the mean over micro-batches is the batch loss
    old_logp: np.ndarray | None = None  # π_old's log-probs, kept from the first update's forward


class _Bundle(Module):
    """Policy and (when it is a separate model) reference, so one checkpoint file holds both:
    the reference is the *starting* policy, which a resumed run could not rebuild otherwise."""

    def __init__(self, policy: GPT, reference: GPT | None) -> None:
        self.policy = policy
        if reference is not None:
            self.reference = reference


def _step_reward_fn(process_rewards: str, given: StepRewardFn | None) -> StepRewardFn | None:
    """The step reward function that GRPOTrainerConfig.process_rewards names (None: outcome rewards)."""
    if (given is not None) != (process_rewards == "custom"):
        raise ValueError(f"GRPOTrainer: pass step_reward_fn exactly when process_rewards='custom' "
                         f"(got process_rewards={process_rewards!r} and step_reward_fn={given!r})")
    if process_rewards == "checker":
        return step_correctness_reward
    if process_rewards == "prm":
        from .shipped import load_shipped_reward_model

        return prm_step_reward(load_shipped_reward_model("prm"))
    return given


def _frozen_copy(model: GPT) -> GPT:
    # Its own generator for the throw-away init, so the global default generator is not advanced.
    copy = GPT(model.config, dtype=model.transformer.wte.weight.dtype, generator=tg.Generator(0))
    copy.load_state_dict({k: v.numpy().copy() for k, v in model.state_dict().items()})
    copy.requires_grad_(False)
    return copy.eval()


# ----------------------------------------------------------------------------- the trainer
class GRPOTrainer:
    """GRPO on the arithmetic task; see the module docstring for one step.

        trainer = GRPOTrainer(policy, GRPOTrainerConfig(steps=100), [correctness_reward, format_reward])
        logs = trainer.run("runs/grpo", progress=True)     # CSV, PNG and a resumable checkpoint there

    policy: a GPT (trained in place; with use_lora the adapters are added to it in place).
    reward_fns: one function, or a list of functions or (weight, function) pairs; rewards are summed.
    reference: the KL reference; None gives a frozen copy of the starting policy when one is
        needed (beta > 0 or log_kl), or the adapter-free policy with use_lora.
    step_reward_fn: with config.process_rewards="custom", the step reward function
        (rl.rewards.StepRewardFn: one reward per line of each completion).
    comm: an nn.distributed communicator to train data-parallel (see the module docstring); None:
        one process. Process supervision is not supported across ranks yet.
    """

    def __init__(self, policy: GPT, config: GRPOTrainerConfig | None = None,
                 reward_fns: WeightedRewardFn | Sequence[WeightedRewardFn] = correctness_reward,
                 reference: GPT | None = None, step_reward_fn: StepRewardFn | None = None,
                 comm: Communicator | None = None) -> None:
        import lora  # rl may use lora; imported here so plain GRPO runs never load it

        self.config = c = config if config is not None else GRPOTrainerConfig()
        if not isinstance(c, GRPOTrainerConfig):
            raise TypeError(f"GRPOTrainer: config must be a GRPOTrainerConfig, got {type(c).__name__}")
        if not isinstance(policy, GPT):
            raise TypeError(f"GRPOTrainer: policy must be an nn.GPT, got {type(policy).__name__}")
        if policy.config.dropout != 0.0:
            # The ratio π_θ/π_old compares two forward passes of the same weights; dropout would
            # make them differ (TRL disables dropout for the same reason).
            raise ValueError(f"GRPOTrainer: the policy has dropout={policy.config.dropout}; GRPO needs "
                             f"dropout=0 so that sampling and training see the same distribution")
        if policy.config.vocab_size != TOKENIZER.vocab_size:
            raise ValueError(f"GRPOTrainer: the policy's vocab_size is {policy.config.vocab_size}, the task's "
                             f"tokenizer has {TOKENIZER.vocab_size}")
        need = max(max_sequence_length(lv) for lv in c.levels)
        if policy.config.block_size < need:
            raise ValueError(f"GRPOTrainer: block_size={policy.config.block_size} is too short for levels "
                             f"{list(c.levels)}: a prompt and its solution take up to {need} tokens")
        self.comm = comm if comm is not None else LocalCommunicator()
        self.samples_per_rank = samples_per_rank(c.grpo.num_generations, self.comm)
        if self.comm.world_size > 1 and c.process_rewards != "none":
            raise ValueError(f"GRPOTrainer: process_rewards={c.process_rewards!r} is not supported across "
                             f"{self.comm.world_size} ranks yet; use outcome rewards (process_rewards='none')")
        self.reward_terms = weighted_terms(reward_fns)  # (weight, unique name, function)
        self.step_reward_fn = _step_reward_fn(c.process_rewards, step_reward_fn)
        self._reward_pairs = [(w, f) for w, _, f in self.reward_terms]
        self.policy = policy
        if c.use_lora:
            if reference is not None:
                raise ValueError("GRPOTrainer: with use_lora the reference is the policy with its adapters "
                                 "disabled; do not pass a reference model")
            if lora.lora_layers(policy):
                raise ValueError("GRPOTrainer: the policy already has LoRA adapters; pass the plain GPT")
            lora.apply_lora(policy, c.lora_targets, r=c.lora_r, alpha=c.lora_alpha,
                            generator=tg.Generator(_seed_for(c.seed, _LORA_INIT)))
        self.uses_reference = reference is not None or c.grpo.beta > 0 or c.log_kl
        if reference is not None:
            if not isinstance(reference, GPT) or reference.config.vocab_size != policy.config.vocab_size:
                raise TypeError("GRPOTrainer: reference must be an nn.GPT with the policy's vocabulary")
            reference.requires_grad_(False)
        elif self.uses_reference and not c.use_lora:
            reference = _frozen_copy(policy)
        self.reference = reference  # None with LoRA: the reference is the policy, adapters off
        self.optimizer = policy.configure_optimizers(c.weight_decay, c.learning_rate, c.betas)
        # The updates go through DDP across ranks (rank 0's weights, averaged gradients).
        self.train_model: Module = policy if self.comm.world_size == 1 else DistributedDataParallel(policy, self.comm)
        self.step = 0
        self.logs: list[dict[str, Any]] = []
        # What the last train_step used, for inspection and tests: its batch, π_old's log-probs
        # (N, T) and the loss metrics of each of its num_iterations updates.
        self.last_rollouts: Rollouts | None = None
        self.last_old_logp: np.ndarray | None = None
        self.last_iterations: list[dict[str, float]] = []
        self._exclude = [p for lv in LEVELS for p in test_set(lv)]  # never train on a test problem
        self._eval_sets = {lv: test_set(lv)[: c.eval_problems] for lv in c.levels}

    # ------------------------------------------------------------------ sampling
    def _token_advantages(self, problems: list[Problem], completions: list[str],
                          mask: np.ndarray) -> tuple[np.ndarray, float]:
        """(N, T) process-supervision advantages on the completion tokens (0 elsewhere) and the mean
        step reward. A token's step is its line: the number of newlines before it (a line's "\n"
        belongs to it). Tokens past the last scored line count as that line."""
        fn = self.step_reward_fn
        assert fn is not None
        name = getattr(fn, "__name__", type(fn).__name__)
        step_rewards = fn(problems, completions)
        if len(step_rewards) != len(completions):
            raise ValueError(f"step reward function {name!r} returned {len(step_rewards)} lists for "
                             f"{len(completions)} completions (it must return one list per completion)")
        rewards = [np.asarray(r, dtype=np.float64).ravel() for r in step_rewards]
        for i, r in enumerate(rewards):
            if r.size == 0 or not np.all(np.isfinite(r)):
                raise ValueError(f"step reward function {name!r} returned {r.tolist()} for completion {i}; "
                                 f"every completion needs at least one finite step reward")
        steps = []
        for c, r in zip(completions, rewards):
            newline = np.array([ch == "\n" for ch in c], dtype=np.int64)
            before = np.cumsum(newline) - newline  # newlines strictly before each character
            steps.append(np.minimum(before, r.size - 1))
        per_token = process_advantages(rewards, steps, self.config.grpo.num_generations)
        adv = np.zeros(mask.shape, dtype=np.float64)
        for i, a in enumerate(per_token):
            if a.size != int(mask[i].sum()):
                raise AssertionError(f"completion {i}: {a.size} characters but {int(mask[i].sum())} tokens")
            adv[i, mask[i]] = a
        return adv, float(np.mean(np.concatenate(rewards)))

    def _truncate(self, sol: Solution) -> Solution:
        """Cut a completion to max_completion_length tokens (it then counts as truncated)."""
        L = self.config.grpo.max_completion_length
        ids = TOKENIZER.encode(sol.completion)
        if len(ids) <= L:
            return sol
        text = TOKENIZER.decode(ids[:L])
        return Solution(sol.problem, text, sol.logprobs[:L], check(sol.problem, text))

    def rollout(self, step: int) -> Rollouts:
        """Sample, score and encode the batch of step `step` (a function of (seed, step) and the
        current weights), with reference log-probs when a reference is used."""
        c, g = self.config, self.config.grpo
        G, k, comm = g.num_generations, self.samples_per_rank, self.comm
        # per kept prompt: its problem, this rank's k solutions, rewards and reward parts, and the
        # whole group's G rewards (gathered from every rank; all of them when there is one rank)
        kept: list[tuple[Problem, list[Solution], np.ndarray, dict[str, np.ndarray], np.ndarray]] = []
        sampled_rewards, sampled_levels, lengths, truncated_all, flat_groups = [], [], [], [], []
        right: list[bool] = []
        sampled_parts: dict[str, list[np.ndarray]] = {name: [] for _, name, _ in self.reward_terms}
        draws = 0

        def whole(values: Any) -> np.ndarray:  # this rank's k values per prompt -> every rank's G, group by group
            return gather_groups(values, G, comm).ravel()

        for draw in range(1 + (c.max_extra_draws if c.dynamic_sampling else 0)):
            draws += 1
            problems = training_problems(c.prompts_per_step, _seed_for(c.seed, _PROBLEMS, step, draw),
                                         c.levels, exclude=self._exclude)
            keys = (c.seed, _SAMPLING, step, draw) + ((comm.rank,) if comm.world_size > 1 else ())
            sols = solve(self.policy, problems, n=k, temperature=g.temperature,
                         generator=tg.Generator(_seed_for(*keys)))
            sols = [self._truncate(s) for s in sols]
            reps = [p for p in problems for _ in range(k)]
            local_rewards, local_parts = compute_rewards(self._reward_pairs, reps, [s.completion for s in sols])
            rewards = whole(local_rewards)
            sampled_rewards.append(rewards)
            sampled_levels.extend(p.level for p in problems for _ in range(G))
            lengths.extend(whole([len(s.logprobs) for s in sols]).astype(int).tolist())
            right.extend(whole([s.verdict.answer_correct for s in sols]).astype(bool).tolist())
            truncated_all.extend(whole([not s.completion.endswith("$") for s in sols]).astype(bool).tolist())
            for name, v in local_parts.items():
                sampled_parts[name].append(whole(v))
            grouped = rewards.reshape(-1, G)
            flat = np.all(grouped == grouped[:, :1], axis=1)
            flat_groups.extend(flat.tolist())
            for i, p in enumerate(problems):
                if c.dynamic_sampling and flat[i]:
                    continue  # DAPO: a group with equal rewards has zero advantages, so no gradient
                rows = slice(i * k, (i + 1) * k)
                kept.append((p, sols[rows], local_rewards[rows], {n: v[rows] for n, v in local_parts.items()},
                             grouped[i]))
            if not c.dynamic_sampling or len(kept) >= c.prompts_per_step:
                break
        kept = kept[: c.prompts_per_step]

        all_r = np.concatenate(sampled_rewards)
        levels = np.array(sampled_levels)
        stats: dict[str, Any] = {
            "reward": float(all_r.mean()),
            "reward_std": float(all_r.std(ddof=1)) if all_r.size > 1 else 0.0,
            **{f"reward_L{lv}": (float(all_r[levels == lv].mean()) if (levels == lv).any() else None)
               for lv in c.levels},
            **{f"reward/{n}": float(np.concatenate(v).mean()) for n, v in sampled_parts.items()},
            "frac_reward_zero_std": float(np.mean(flat_groups)),
            "num_groups": len(kept),
            "num_draws": draws,
            "completion_length": float(np.mean(lengths)),
            **{f"completion_length_{name}": (float(np.mean(np.array(lengths)[sel])) if sel.any() else None)
               for name, sel in (("correct", np.array(right)), ("wrong", ~np.array(right)))},
            "truncated_frac": float(np.mean(truncated_all)),
            "step_reward": None,
        }
        problems = [p for p, sols, _, _, _ in kept for _ in sols]
        solutions = [s for _, sols, _, _, _ in kept for s in sols]
        if not kept:  # dynamic sampling found no group with a signal
            empty = np.zeros((0, 1))
            batch = Rollouts(step, [], [], np.zeros(0), {}, np.zeros(0), empty.astype(np.int64),
                             empty.astype(np.int64), empty.astype(bool), np.zeros(0, bool), None, stats)
            return batch
        rewards = np.concatenate([r for _, _, r, _, _ in kept])
        parts = {n: np.concatenate([d[n] for _, _, _, d, _ in kept]) for n in sampled_parts}
        x, y = encode_examples(problems, [s.completion for s in solutions], block_size=self.policy.config.block_size)
        mask = y != -100  # encode_examples marks prompt and padding targets -100
        targets = np.where(mask, y, PAD_ID)  # any valid id: masked positions are never read
        truncated = np.array([not s.completion.endswith("$") for s in solutions])
        if self.step_reward_fn is None:  # outcome supervision: one advantage per completion
            # normalized over whole groups; this rank keeps the advantages of its own k samples
            everyone, _ = group_advantages(np.concatenate([w for *_, w in kept]), G, g.scale_rewards)
            advantages = everyone.reshape(-1, comm.world_size, k)[:, comm.rank, :].ravel()
        else:  # process supervision: one per token
            advantages, stats["step_reward"] = self._token_advantages(problems, [s.completion for s in solutions], mask)
        batch = Rollouts(step, problems, solutions, rewards, parts, advantages, x, targets, mask, truncated, None,
                         stats, num_groups=len(kept))
        if self.uses_reference:
            batch.ref_logp = self.reference_logprobs(batch)
        return batch

    def _micro_batches(self, batch: Rollouts) -> list[_MicroBatch]:
        """Split the batch; each part's loss is weighted so that nn.train_step's mean over parts is
        the loss of the whole batch as `loss_type` defines it (see the comments below)."""
        g = self.config.grpo
        N = len(batch.problems)
        mask = batch.mask & ~batch.truncated[:, None] if g.mask_truncated_completions else batch.mask
        size = N if self.config.micro_batch_size is None else self.config.micro_batch_size
        parts = np.array_split(np.arange(N), math.ceil(N / size))
        n = len(parts)
        tokens = int(mask.sum())
        out = []
        for rows in parts:
            width = int(np.flatnonzero(batch.mask[rows].any(axis=0)).max(initial=0)) + 1  # drop all-padding columns
            m = mask[rows, :width]
            if g.loss_type == "dapo":  # Σℓ / num_items, num_items = tokens / n: the mean over parts is Σℓ / tokens
                weight = 1.0
            elif g.loss_type == "bnpo":  # a part's token mean, re-weighted by its share of the tokens
                weight = n * int(m.sum()) / tokens if tokens else 1.0
            else:  # grpo, dr_grpo: a mean over the part's sequences, re-weighted by its share of them
                weight = n * len(rows) / N
            ref = None if batch.ref_logp is None else batch.ref_logp[rows, :width]
            adv = batch.advantages[rows] if batch.advantages.ndim == 1 else batch.advantages[rows, :width]
            out.append(_MicroBatch(rows, batch.inputs[rows, :width], batch.targets[rows, :width], m, adv, ref, weight))
        return out

    def _forward_logprobs(self, model: Module, inputs: np.ndarray, targets: np.ndarray) -> tuple[Tensor, Tensor]:
        logits, _ = model(inputs)
        return logits, token_logprobs(logits, targets, self.config.grpo.temperature)

    def completion_logprobs(self, model: Module, batch: Rollouts, disable_adapters: bool = False) -> np.ndarray:
        """(N, T) log-probs of the batch's target tokens under `model` at the sampling temperature,
        without gradients, in the same micro-batches as training (0 outside the completion mask).
        disable_adapters: run a LoRA model as its base (lora.disable_adapter)."""
        import contextlib

        import lora

        out = np.zeros(batch.mask.shape, dtype=np.float64)
        was = model.training
        model.eval()
        ctx = lora.disable_adapter(model) if disable_adapters else contextlib.nullcontext()
        try:
            with ctx, tg.no_grad():
                for mb in self._micro_batches(batch):
                    _, logp = self._forward_logprobs(model, mb.inputs, mb.targets)
                    out[mb.rows, : mb.inputs.shape[1]] = logp.numpy()
        finally:
            model.train(was)
        return np.where(batch.mask, out, 0.0)

    def reference_logprobs(self, batch: Rollouts) -> np.ndarray:
        if self.reference is not None:
            return self.completion_logprobs(self.reference, batch)
        return self.completion_logprobs(self.policy, batch, disable_adapters=True)

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, Any]:
        """One GRPO step (sampling, num_iterations updates, evaluation when due); returns its log row."""
        c, g = self.config, self.config.grpo
        t0 = time.perf_counter()
        batch = self.rollout(self.step)
        lr = c.lr_at(self.step)
        nn.set_lr(self.optimizer, lr)
        losses: list[float] = []
        self.last_iterations, self.last_old_logp = [], None
        if batch.problems:
            micro = self._micro_batches(batch)
            tokens = sum(int(mb.mask.sum()) for mb in micro)
            if self.comm.world_size > 1:  # "dapo" divides by the tokens of the whole global batch
                tokens = int(self.comm.all_reduce(np.array([tokens], dtype=np.int64))[0])
            # nn.train_step averages the micro-batches and DDP the ranks: num_items = tokens / (n · N)
            num_items = max(tokens, 1) / (len(micro) * self.comm.world_size)
            for it in range(g.num_iterations):
                collected: list[dict[str, float]] = []
                loss_fn = self._loss_fn(first=it == 0, num_items=num_items, collected=collected)
                losses.append(nn.train_step(self.train_model, self.optimizer, micro, loss_fn=loss_fn,
                                            grad_clip=c.grad_clip))
                self.last_iterations.append(_token_weighted(collected))
            old = np.zeros(batch.mask.shape)
            for mb in micro:
                old[mb.rows, : mb.inputs.shape[1]] = mb.old_logp
            self.last_old_logp = np.where(batch.mask, old, 0.0)
        self.last_rollouts = batch
        self.step += 1
        loss = float(np.mean(losses)) if losses else None
        if loss is not None and self.comm.world_size > 1:  # every rank's part of the batch loss
            loss = float(self.comm.all_reduce(np.array([loss]))[0]) / self.comm.world_size
        row: dict[str, Any] = {"step": self.step, "loss": loss, **batch.stats}
        averaged = _mean_of(self.last_iterations)
        for key in ("entropy", "kl", "clip_frac_low", "clip_frac_high", "clip_frac_region", "ratio_mean"):
            row[key] = averaged.get(key)
        row["lr"] = lr
        if c.eval_interval and self.step % c.eval_interval == 0:
            row.update(self.evaluate())
        row["seconds"] = time.perf_counter() - t0
        self.logs.append(row)
        return row

    def _loss_fn(self, first: bool, num_items: float,
                 collected: list[dict[str, float]]) -> Callable[[Module, _MicroBatch], Tensor]:
        """The loss of one micro-batch for nn.train_step; appends grpo_loss's metrics to `collected`."""
        g = self.config.grpo

        def loss_fn(model: Module, mb: _MicroBatch) -> Tensor:
            logits, logp = self._forward_logprobs(model, mb.inputs, mb.targets)
            # The first update's forward *is* π_old's: old_logp=None makes the ratio exp(logp - logp.detach()) = 1
            # exactly, and its log-probs are kept as the constant old_logp of the later updates.
            loss, metrics = grpo_loss(logp, None if first else mb.old_logp, mb.advantages, mb.mask,
                                      ref_logp=mb.ref_logp, num_items_in_batch=num_items, **g.loss_kwargs())
            if first:
                mb.old_logp = logp.numpy().astype(np.float64)
            metrics["entropy"] = _masked_entropy(logits.numpy(), mb.mask, g.temperature)
            collected.append(metrics)
            return loss * mb.weight

        return loss_fn

    def evaluate(self) -> dict[str, float]:
        """Greedy accuracy on the first eval_problems problems of each level's fixed test set."""
        acc = greedy_accuracy(self.policy, self._eval_sets)
        out = {f"accuracy_L{lv}": float(a) for lv, a in acc.items()}
        out["accuracy_mean"] = float(np.mean(list(acc.values())))
        return out

    # ------------------------------------------------------------------ the loop, files
    def run(self, out_dir: str | Path | None = None, progress: bool = False) -> list[dict[str, Any]]:
        """Train until config.steps; returns the logs. With out_dir: grpo_log.csv after every step,
        and grpo.png plus the resumable ckpt.npz every save_interval steps and at the end.
        A fresh run first evaluates the starting policy (a row with step 0)."""
        c = self.config
        out = Path(out_dir) if out_dir is not None and self.comm.rank == 0 else None  # rank 0 writes
        progress = progress and self.comm.rank == 0
        if out is not None:
            atomic_write_text(out / "grpo_config.json", json.dumps(c.to_dict(), indent=2))
        if self.step == 0 and not self.logs and c.eval_interval:
            self.logs.append({"step": 0, **self.evaluate()})
        bar = progress_bar(progress, c.steps, "grpo", self.step)
        try:
            while self.step < c.steps:
                row = self.train_step()
                if bar is not None:
                    bar.update(1)
                    post = {"reward": f"{row['reward']:.3f}"}
                    if row.get("kl") is not None:
                        post["kl"] = f"{row['kl']:.4f}"
                    if "accuracy_mean" in row:
                        post["acc"] = f"{row['accuracy_mean']:.2f}"
                    bar.set_postfix(post)
                if out is not None:
                    write_logs_csv(self.logs, out / "grpo_log.csv")
                    if (c.save_interval and self.step % c.save_interval == 0) or self.step == c.steps:
                        self.save(out / "ckpt.npz")
                        plot_logs(self.logs, out / "grpo.png")
        finally:
            if bar is not None:
                bar.close()
        return self.logs

    def _checkpoint_config(self) -> dict[str, Any]:
        return {"grpo_trainer": self.config.to_dict(), "model": self.policy.config.to_dict(),
                "reward_fns": [[w, name] for w, name, _ in self.reward_terms],
                "separate_reference": self.reference is not None}

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint atomically: policy (and separate reference) weights, AdamW state, step,
        config and logs. No generator state: every draw is seeded by (seed, step). Across ranks, only
        rank 0 writes (the ranks hold the same weights)."""
        if self.comm.rank != 0:
            return Path(path)
        return nn.save_checkpoint(path, _Bundle(self.policy, self.reference), self.optimizer, self.step,
                                  self._checkpoint_config(), TOKENIZER, None, {"logs": self.logs})

    def resume(self, path: str | Path) -> None:
        """Continue a run from `save`'s checkpoint; the trainer must have been built with the same
        config (only `steps` may differ, to train longer) and the same reward functions."""
        ckpt = nn.load_checkpoint(path)
        saved, ours = dict(ckpt.config), self._checkpoint_config()
        try:  # through the dataclass, so a setting added since the run was saved takes its default
            saved_cfg = GRPOTrainerConfig(**saved.get("grpo_trainer", {})).to_dict()
        except (TypeError, ValueError) as e:
            raise ValueError(f"resume: checkpoint {str(path)!r} holds settings this version cannot read "
                             f"({e})") from None
        our_cfg = dict(ours["grpo_trainer"])
        saved_cfg.pop("steps", None)
        our_cfg.pop("steps", None)
        differ = sorted(k for k in set(saved_cfg) | set(our_cfg) if saved_cfg.get(k) != our_cfg.get(k))
        differ += [k for k in ("model", "reward_fns", "separate_reference") if saved.get(k) != ours[k]]
        if differ:
            raise ValueError(f"resume: checkpoint {str(path)!r} was written with different settings "
                             f"({', '.join(differ)}); build the trainer with the same ones")
        nn.restore(ckpt, _Bundle(self.policy, self.reference), self.optimizer)
        self.step = ckpt.step
        self.logs = [dict(r) for r in ckpt.extra.get("logs", [])]

    def memory_report(self) -> dict[str, Any]:
        """Bytes held for training, measured on this trainer's arrays: parameters, gradients, AdamW
        moments (allocated at the first update, so measure after one step) and a separate reference
        copy. "full" is what full fine-tuning of the same policy holds: parameters P, gradients P,
        AdamW's two moments 2P and, when a reference is used, a frozen copy P (measured when this
        run is full fine-tuning, counted when it uses LoRA). saved = full total - this total."""
        from lora import measured_training_bytes

        m = measured_training_bytes(self.policy, self.optimizer)
        ref = sum(p.data.nbytes for p in self.reference.parameters()) if self.reference is not None else 0
        this = {"parameters": m["weights"], "gradients": m["gradients"], "optimizer": m["optimizer"], "reference": ref}
        this["total"] = sum(this.values())
        if self.config.use_lora:
            base = sum(p.data.nbytes for name, p in self.policy.named_parameters() if ".adapters." not in name)
            full = {"parameters": base, "gradients": base, "optimizer": 2 * base,
                    "reference": base if self.uses_reference else 0}
            full["total"] = sum(full.values())
        else:
            full = dict(this)
        return {"mode": "lora" if self.config.use_lora else "full", "this": this, "full": full,
                "saved": full["total"] - this["total"]}


# ----------------------------------------------------------------------------- helpers
def _masked_entropy(logits: np.ndarray, mask: np.ndarray, temperature: float) -> float:
    """Mean over masked positions of H = -Σ_v p_v log p_v, p = softmax(logits / τ): the entropy
    of the distribution the completions were sampled from (TRL also divides by τ first)."""
    logp = F.log_softmax(tg.tensor(logits.astype(np.float64) / temperature), axis=-1).numpy()
    h = -(np.exp(logp) * logp).sum(axis=-1)
    return float(h[mask].mean()) if mask.any() else 0.0


def _token_weighted(metrics: list[dict[str, float]]) -> dict[str, float]:
    """Combine the micro-batches' metrics, each a mean over its tokens, into means over all tokens."""
    w = np.array([m["num_tokens"] for m in metrics], dtype=np.float64)
    total = w.sum()
    out = {"num_tokens": float(total)}
    for key in metrics[0]:
        if key != "num_tokens":
            vals = np.array([m[key] for m in metrics])
            out[key] = float((vals * w).sum() / total) if total else float(vals.mean())
    return out


def _mean_of(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def write_logs_csv(logs: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """The logs as CSV (atomically): one row per entry, columns in order of first appearance,
    empty cells where a row has no value (None, or a key it lacks)."""
    columns: list[str] = []
    for row in logs:
        columns.extend(k for k in row if k not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in logs:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return atomic_write_text(path, buf.getvalue())


def plot_logs(logs: Sequence[dict[str, Any]], path: str | Path, title: str = "GRPO training") -> Path | None:
    """A 2x3 PNG of the run (atomically): reward, held-out accuracy, KL, entropy, completion length,
    clip and zero-std fractions, each against the step. Returns None when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure  # the object API: no pyplot, no global backend
    except ImportError:
        return None
    levels = sorted({int(k.split("L")[1]) for r in logs for k in r if k.startswith(("reward_L", "accuracy_L"))})
    fig = Figure(figsize=(15, 8), layout="constrained")
    ax = fig.subplots(2, 3)

    def panel(a: Any, keys: list[tuple[str, str]], ylabel: str, subtitle: str, marker: str = "") -> None:
        for key, label in keys:
            xs, ys = log_series(logs, key)
            if xs.size:
                a.plot(xs, ys, marker=marker, label=label)
        a.set_title(subtitle)
        a.set_xlabel("GRPO step")
        a.set_ylabel(ylabel)
        if a.get_lines():
            a.legend(fontsize="small")

    panel(ax[0, 0], [("reward", "all levels")] + [(f"reward_L{lv}", f"level {lv}") for lv in levels],
          "mean reward (sum of reward functions)", "Reward of sampled completions")
    panel(ax[0, 1], [("accuracy_mean", "mean")] + [(f"accuracy_L{lv}", f"level {lv}") for lv in levels],
          "greedy accuracy (fraction correct)", "Held-out greedy accuracy", marker="o")
    panel(ax[0, 2], [("kl", "k3 estimate vs reference")], "KL (nats per token)", "KL(policy || reference)")
    panel(ax[1, 0], [("entropy", "policy at sampling temperature")], "entropy (nats per token)", "Token entropy")
    panel(ax[1, 1], [("completion_length", "all"), ("completion_length_correct", "right answer"),
                     ("completion_length_wrong", "wrong answer")], "length (tokens)", "Completion length")
    panel(ax[1, 2], [("clip_frac_region", "tokens clipped"), ("frac_reward_zero_std", "groups with equal rewards"),
                     ("truncated_frac", "completions without $")], "fraction", "Clipping and wasted groups")
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return atomic_write_bytes(path, buf.getvalue())
