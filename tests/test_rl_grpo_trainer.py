"""The GRPO trainer (rl/grpo_trainer.py) and the reward functions (rl/rewards.py).

Every trainer here is tiny (one layer, n_embd=16, level-1 problems, a few prompts and G=4) and
float64 where numbers are compared. An untrained policy never answers correctly, so the tests that
need a learning signal use `digit_reward`, which differs between completions of one prompt.
"""
from __future__ import annotations

import csv
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import lora
import nn
import tinygrad_lite as tg
from nn import GPT, GPTConfig
from rl.grpo import GRPOConfig, process_advantages
from rl.grpo_trainer import (
    EVAL_KEYS,
    LOG_KEYS,
    GRPOTrainer,
    GRPOTrainerConfig,
    plot_logs,
    write_logs_csv,
)
from rl.rewards import (
    combine,
    compute_rewards,
    correctness_reward,
    format_reward,
    is_well_formed,
    overlong_penalty,
    prm_step_reward,
    process_reward,
    step_correctness_reward,
)
from rl.task import LEVELS, TOKENIZER, Problem, max_sequence_length
from rl.task import test_set as fixed_test_set  # aliased: pytest would collect a name starting with test_

P = Problem(start=7, ops=(("+", 5), ("*", 3), ("-", 4)), level=2)  # 7+5=12, 12*3=36, 36-4=32
RIGHT = "7+5=12\n12*3=36\n36-4=32\nA:32$"


# ----------------------------------------------------------------------------- helpers
def digit_reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
    """A reward that varies between samples of one prompt: the fraction of digit characters."""
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def constant_reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
    return [0.5] * len(completions)


def tiny_policy(seed: int = 0, dtype: Any = np.float64) -> GPT:
    config = GPTConfig(block_size=max_sequence_length(1) + 8, vocab_size=TOKENIZER.vocab_size, n_layer=1,
                       n_head=2, n_embd=16)
    return GPT(config, dtype=dtype, generator=tg.Generator(seed))


def tiny_config(**kw: Any) -> GRPOTrainerConfig:
    grpo = {"num_generations": 4, **kw.pop("grpo", {})}
    base: dict[str, Any] = {"prompts_per_step": 3, "levels": (1,), "steps": 3, "eval_interval": 0,
                            "eval_problems": 2, "learning_rate": 1e-2}
    base.update(kw)
    return GRPOTrainerConfig(grpo=GRPOConfig(**grpo), **base)


def snapshot(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def copy_of(model: GPT) -> GPT:
    other = GPT(model.config, dtype=model.transformer.wte.weight.dtype, generator=tg.Generator(0))
    other.load_state_dict(snapshot(model))
    return other


# ----------------------------------------------------------------------------- reward functions
def test_correctness_reward_on_hand_made_completions() -> None:
    lucky = "7+5=12\n12*3=99\n36-4=32\nA:32$"  # a wrong step, the right answer: the outcome reward pays
    cases = {RIGHT: 1.0, RIGHT.replace("A:32", "A:31"): 0.0, lucky: 1.0,
             "7+5=12\n12*3=36\n36-4=32\nA:32": 0.0,  # cut before "$"
             "12+5=7\nA:32 $": 0.0, "": 0.0, "A:32$": 1.0}
    assert correctness_reward([P] * len(cases), list(cases)) == list(cases.values())


def test_format_reward_checks_shape_not_arithmetic() -> None:
    cases = {RIGHT: 0.1,
             "7+5=13\n13*3=1\nA:5$": 0.1,  # wrong arithmetic, well formed
             "A:32$": 0.0,  # no step
             "7+5=12\nA:12": 0.0,  # no "$"
             "7+5=12\n12x3=36\nA:36$": 0.0,  # a malformed step
             "7+5=12\nA:12$\n": 0.0,  # something after the answer line (an empty last line)
             "": 0.0}
    assert format_reward([P] * len(cases), list(cases)) == list(cases.values())
    assert format_reward([P], [RIGHT], value=0.25) == [0.25]
    assert is_well_formed(P.solution)
    with pytest.raises(ValueError, match="value must be finite"):
        format_reward([P], [RIGHT], value=math.inf)


def test_overlong_penalty_follows_dapo() -> None:
    penalty = overlong_penalty(max_len=20, cache_len=5)  # free up to 15 tokens, -1 beyond 20
    lengths = [0, 15, 16, 18, 20, 21, 40]
    got = penalty([P] * len(lengths), ["1" * n for n in lengths])
    # (15 - n) / 5 inside the cache: 16 -> -0.2, 18 -> -0.6, 20 -> -1
    np.testing.assert_allclose(got, [0.0, 0.0, -0.2, -0.6, -1.0, -1.0, -1.0], rtol=0, atol=1e-15)
    hard = overlong_penalty(10, 0)
    assert hard([P] * 3, ["1" * 10, "1" * 11, ""]) == [0.0, -1.0, 0.0]
    assert penalty.__name__ == "overlong_penalty"


@given(max_len=st.integers(1, 60), frac=st.floats(0, 1), n=st.integers(0, 80))
@settings(max_examples=60, deadline=None)
def test_overlong_penalty_is_bounded_and_monotone(max_len: int, frac: float, n: int) -> None:
    penalty = overlong_penalty(max_len, int(frac * max_len))
    a, b = penalty([P, P], ["1" * n, "1" * (n + 1)])
    assert -1.0 <= b <= a <= 0.0


@pytest.mark.parametrize("args, error, match", [
    ((0, 0), ValueError, "max_len must be >= 1"),
    ((10, 11), ValueError, r"cache_len must lie in \[0, max_len=10\]"),
    ((10, -1), ValueError, "cache_len must lie"),
    ((10.0, 2), TypeError, "max_len must be an int"),
])
def test_overlong_penalty_errors(args: tuple[Any, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        overlong_penalty(*args)


class FakePRM:
    """Step scores from the checker: 0.9 for a right step, 0.2 for a wrong one; records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def score(self, prompt: str, completions: Sequence[str]) -> list[list[float]]:
        self.calls.append((prompt, len(completions)))
        problem = P if prompt == P.prompt else Q
        from rl.task import check

        return [[0.9 if s.correct else 0.2 for s in check(problem, c).steps] for c in completions]


Q = Problem(start=3, ops=(("+", 4),), level=1)  # 3+4=7


def test_process_reward_aggregates_step_scores_per_prompt() -> None:
    prm = FakePRM()
    lucky = "7+5=12\n12*3=99\n36-4=32\nA:32$"
    problems = [P, P, Q, Q]
    completions = [RIGHT, lucky, "3+4=7\nA:7$", ""]
    got = process_reward(prm, "min")(problems, completions)
    assert got == [0.9, 0.2, 0.9, 0.0]  # the lucky solution is caught; no steps scores 0
    assert prm.calls == [(P.prompt, 2), (Q.prompt, 2)]  # one call per prompt, its completions together
    assert process_reward(FakePRM(), "last")(problems, completions) == [0.9, 0.9, 0.9, 0.0]
    with pytest.raises(ValueError, match="aggregate must be one of"):
        process_reward(prm, "max")
    with pytest.raises(TypeError, match=r"must have a \.score"):
        process_reward(object())


def test_step_correctness_reward_is_one_up_to_the_first_error() -> None:
    lucky = "7+5=12\n12*3=99\n36-4=32\nA:32$"  # right answer through a wrong second step
    early = "7+5=12\n12*3=36\nA:36$"  # stops a step early: its answer line is not the final value
    got = step_correctness_reward([P, P, P, P, Q, Q], [RIGHT, lucky, early, "7+5=12\n12*3", "", "3+4=8\n8+0=8\nA:8$"])
    assert got == [[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0], [0.0],
                   [0.0, 0.0, 0.0]]  # after an error even right arithmetic (8+0=8) earns 0
    with pytest.raises(ValueError, match="2 problems for 1 completions"):
        step_correctness_reward([P, P], [RIGHT])


def test_prm_step_reward_passes_the_prms_step_scores() -> None:
    prm = FakePRM()
    lucky = "7+5=12\n12*3=99\n36-4=32\nA:32$"
    got = prm_step_reward(prm)([P, Q, P], [RIGHT, "", lucky])
    assert got == [[0.9] * 4, [0.0], [0.9, 0.2, 0.2, 0.9]]  # no steps: [0.0]; each line as the PRM scores it
    assert prm.calls == [(P.prompt, 2), (Q.prompt, 1)]
    with pytest.raises(TypeError, match=r"must have a \.score"):
        prm_step_reward(object())


def test_combine_and_compute_rewards() -> None:
    fn = combine(correctness_reward, (0.5, format_reward), (2.0, overlong_penalty(20, 5)))
    wrong_long = "1+1=2\n" * 3 + "A:2$"  # 22 tokens: well formed, wrong, over max_len
    got = fn([P, P], [RIGHT, wrong_long])  # both are over 20 tokens (28 and 22): penalty -1 each
    np.testing.assert_allclose(got, [1.0 + 0.05 + 2.0 * -1.0, 0.0 + 0.05 - 2.0], atol=1e-15)
    assert fn.__name__ == "correctness_reward+0.5*format_reward+2*overlong_penalty"
    total, parts = compute_rewards([correctness_reward, correctness_reward], [P], [RIGHT])
    assert total.tolist() == [2.0] and sorted(parts) == ["correctness_reward", "correctness_reward_2"]


def test_reward_errors_name_the_function() -> None:
    with pytest.raises(ValueError, match="2 problems for 1 completions"):
        correctness_reward([P, P], [RIGHT])

    def short(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
        return [1.0]

    def nan(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
        return [math.nan] * len(completions)

    with pytest.raises(ValueError, match=r"'short' returned shape \(1,\) for 2 completions"):
        compute_rewards(short, [P, P], [RIGHT, RIGHT])
    with pytest.raises(ValueError, match="'nan' returned non-finite"):
        compute_rewards(nan, [P], [RIGHT])
    with pytest.raises(TypeError, match="is not callable"):
        combine((1.0, "correctness"))
    with pytest.raises(ValueError, match="need at least one"):
        compute_rewards([], [P], [RIGHT])


# ----------------------------------------------------------------------------- one step
def test_one_step_changes_the_policy_and_logs_sane_metrics() -> None:
    policy = tiny_policy()
    before = snapshot(policy)
    trainer = GRPOTrainer(policy, tiny_config(grpo={"beta": 0.04}), [correctness_reward, digit_reward])
    row = trainer.train_step()
    assert any(not np.array_equal(before[k], v) for k, v in snapshot(policy).items())
    documented = {k for k in LOG_KEYS if "{" not in k} | {"reward_L1", "reward/correctness_reward",
                                                           "reward/digit_reward"}
    assert set(row) == documented  # eval_interval=0: no accuracy keys
    assert row["step"] == 1 and trainer.step == 1 and trainer.logs == [row]
    for key in ("clip_frac_low", "clip_frac_high", "clip_frac_region", "frac_reward_zero_std", "truncated_frac"):
        assert 0.0 <= row[key] <= 1.0, key
    assert 0.0 < row["entropy"] <= math.log(TOKENIZER.vocab_size) + 1e-12
    assert row["kl"] >= 0.0 and row["ratio_mean"] == 1.0  # μ = 1: π_old is the policy itself
    assert row["num_groups"] == 3 and row["num_draws"] == 1 and row["completion_length"] >= 1
    assert row["reward_L1"] == row["reward"] and row["reward/correctness_reward"] == 0.0
    # an untrained policy never answers right: every completion is a wrong one
    assert row["completion_length_correct"] is None and row["completion_length_wrong"] == row["completion_length"]
    assert math.isfinite(row["loss"]) and row["seconds"] > 0


def test_equal_rewards_give_zero_gradient_and_no_change() -> None:
    """Claim 1: if every completion of a prompt gets the same reward, every advantage is 0, so (with
    beta = 0) the gradient is exactly zero and AdamW (weight_decay 0) leaves the weights alone."""
    policy = tiny_policy()
    before = snapshot(policy)
    trainer = GRPOTrainer(policy, tiny_config(), constant_reward)
    row = trainer.train_step()
    assert row["frac_reward_zero_std"] == 1.0 and row["loss"] == 0.0
    grads = [p.grad for p in policy.parameters()]
    assert all(g is not None and not np.any(g.numpy()) for g in grads)
    assert all(np.array_equal(before[k], v) for k, v in snapshot(policy).items())


def test_first_update_has_ratio_exactly_one_and_keeps_old_logprobs() -> None:
    policy = tiny_policy()
    start = copy_of(policy)
    trainer = GRPOTrainer(policy, tiny_config(grpo={"num_iterations": 3}), digit_reward)
    trainer.train_step()
    first, second, third = trainer.last_iterations
    assert first["ratio_mean"] == 1.0 and first["clip_frac_region"] == 0.0
    assert second["ratio_mean"] != 1.0 and third["ratio_mean"] != 1.0  # the policy moved away from π_old
    # The old log-probs used by updates 2 and 3 are those of the policy that sampled the batch.
    recomputed = trainer.completion_logprobs(start, trainer.last_rollouts)
    np.testing.assert_array_equal(trainer.last_old_logp, recomputed)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 2e-5)])
def test_trainer_logprobs_equal_those_solve_reported(dtype: Any, tol: float) -> None:
    """One full forward over the right-padded batch gives the same per-token log-probs as the
    KV-cache decoder in `solve`: the shift, padding and mask line up, and the temperature is applied."""
    policy = tiny_policy(dtype=dtype)
    trainer = GRPOTrainer(policy, tiny_config(micro_batch_size=5, grpo={"temperature": 0.7}), digit_reward)
    batch = trainer.rollout(0)
    logp = trainer.completion_logprobs(policy, batch)
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape == logp.shape
    for i, sol in enumerate(batch.solutions):
        row = logp[i, batch.mask[i]]
        assert row.shape == sol.logprobs.shape
        np.testing.assert_allclose(row, sol.logprobs, rtol=0, atol=tol)
        assert TOKENIZER.decode(batch.targets[i, batch.mask[i]].tolist()) == sol.completion


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_micro_batches_give_the_whole_batch_gradient(loss_type: str) -> None:
    grads = []
    for micro in (None, 3):  # 20 completions in 7 parts of 3 or 2: unequal sizes and token counts
        policy = tiny_policy()
        config = tiny_config(prompts_per_step=5, micro_batch_size=micro, grpo={"loss_type": loss_type})
        trainer = GRPOTrainer(policy, config, digit_reward)
        trainer.train_step()
        grads.append([p.grad.numpy().copy() for p in policy.parameters()])
    for whole, split in zip(*grads):
        np.testing.assert_allclose(split, whole, rtol=1e-9, atol=1e-13)


def line_digit_reward(problems: Sequence[Problem], completions: Sequence[str]) -> list[list[float]]:
    """A step reward that varies between the lines of untrained samples: each line's digit count."""
    return [[float(sum(ch.isdigit() for ch in line)) for line in c.split("\n")] for c in completions]


def test_process_rewards_give_each_token_its_lines_reward_to_go() -> None:
    trainer = GRPOTrainer(tiny_policy(), tiny_config(process_rewards="custom"), correctness_reward,
                          step_reward_fn=line_digit_reward)
    row = trainer.train_step()
    batch = trainer.last_rollouts
    assert batch is not None and batch.advantages.shape == batch.mask.shape
    assert not np.any(batch.advantages[~batch.mask])
    completions = [s.completion for s in batch.solutions]
    steps = [np.array([c[:t].count("\n") for t in range(len(c))]) for c in completions]  # the line of each char
    expected = process_advantages(line_digit_reward(batch.problems, completions), steps, 4)
    for i, e in enumerate(expected):
        np.testing.assert_allclose(batch.advantages[i][batch.mask[i]], e, rtol=0, atol=0)
    assert np.any(batch.advantages) and row["step_reward"] == pytest.approx(
        np.mean(np.concatenate(line_digit_reward(batch.problems, completions))))
    assert row["reward/correctness_reward"] == 0.0  # the outcome reward is still logged


def test_process_rewards_micro_batches_give_the_whole_batch_gradient() -> None:
    grads = []
    for micro in (None, 3):
        policy = tiny_policy()
        trainer = GRPOTrainer(policy, tiny_config(prompts_per_step=5, micro_batch_size=micro, process_rewards="custom"),
                              correctness_reward, step_reward_fn=line_digit_reward)
        trainer.train_step()
        grads.append([p.grad.numpy().copy() for p in policy.parameters()])
    for whole, split in zip(*grads):
        np.testing.assert_allclose(split, whole, rtol=1e-9, atol=1e-13)


def test_process_rewards_choose_the_step_reward_function() -> None:
    assert GRPOTrainer(tiny_policy(), tiny_config()).step_reward_fn is None
    assert GRPOTrainer(tiny_policy(), tiny_config(process_rewards="checker")).step_reward_fn is step_correctness_reward
    assert GRPOTrainer(tiny_policy(), tiny_config(process_rewards="prm")).step_reward_fn.__name__ == "prm_step_reward"
    with pytest.raises(ValueError, match="exactly when process_rewards='custom'"):
        GRPOTrainer(tiny_policy(), tiny_config(process_rewards="custom"))
    with pytest.raises(ValueError, match="exactly when process_rewards='custom'"):
        GRPOTrainer(tiny_policy(), tiny_config(), step_reward_fn=line_digit_reward)

    def empty(problems: Sequence[Problem], completions: Sequence[str]) -> list[list[float]]:
        return [[] for _ in completions]

    trainer = GRPOTrainer(tiny_policy(), tiny_config(process_rewards="custom"), step_reward_fn=empty)
    with pytest.raises(ValueError, match="'empty' returned .* needs at least one finite step reward"):
        trainer.train_step()


def test_learning_rate_schedule_by_hand() -> None:
    constant = GRPOTrainerConfig(learning_rate=1e-3, steps=10, warmup_steps=4)
    assert [constant.lr_at(s) for s in (0, 1, 3, 4, 9)] == pytest.approx([2.5e-4, 5e-4, 1e-3, 1e-3, 1e-3])
    linear = GRPOTrainerConfig(learning_rate=1e-3, steps=10, warmup_steps=4, lr_scheduler="linear")
    assert [linear.lr_at(s) for s in (0, 3, 4, 7, 9)] == pytest.approx([2.5e-4, 1e-3, 1e-3, 5e-4, 1e-3 / 6])
    assert GRPOTrainerConfig(learning_rate=1e-3, steps=4, lr_scheduler="linear").lr_at(0) == 1e-3
    trainer = GRPOTrainer(tiny_policy(), tiny_config(learning_rate=1e-2, warmup_steps=2), digit_reward)
    rows = [trainer.train_step() for _ in range(3)]
    assert [r["lr"] for r in rows] == pytest.approx([5e-3, 1e-2, 1e-2])
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2)


def test_problems_are_seeded_by_step_and_never_from_the_test_set() -> None:
    trainer = GRPOTrainer(tiny_policy(), tiny_config(prompts_per_step=40), digit_reward)
    a, b, c = trainer.rollout(4), trainer.rollout(4), trainer.rollout(5)
    assert [s.completion for s in a.solutions] == [s.completion for s in b.solutions]
    assert [p.prompt for p in a.problems] != [p.prompt for p in c.problems]
    banned = {p.prompt for lv in LEVELS for p in fixed_test_set(lv)}
    assert not banned & {p.prompt for p in a.problems + c.problems}
    assert a.problems[0] is a.problems[3] and a.problems[3] is not a.problems[4]  # G = 4 in a row


def test_dynamic_sampling_drops_groups_without_signal() -> None:
    def odd_only(problems: Sequence[Problem], completions: Sequence[str]) -> list[float]:
        """Varies only for problems with an odd start: the other groups are flat."""
        return [digit_reward([p], [c])[0] if p.start % 2 else 0.0 for p, c in zip(problems, completions)]

    trainer = GRPOTrainer(tiny_policy(), tiny_config(dynamic_sampling=True, max_extra_draws=2), odd_only)
    batch = trainer.rollout(0)
    assert batch.problems and all(p.start % 2 for p in batch.problems)
    assert batch.num_groups == len(batch.problems) // 4 <= 3
    grouped = batch.rewards.reshape(-1, 4)
    assert np.all(grouped.std(axis=1) > 0)

    policy = tiny_policy()
    before = snapshot(policy)
    flat = GRPOTrainer(policy, tiny_config(dynamic_sampling=True, max_extra_draws=2), constant_reward)
    row = flat.train_step()  # nothing to learn from in 3 draws: no update, and a log row that says so
    assert row["num_groups"] == 0 and row["num_draws"] == 3 and row["loss"] is None
    assert all(np.array_equal(before[k], v) for k, v in snapshot(policy).items())


def test_max_completion_length_and_mask_truncated_completions() -> None:
    config = tiny_config(grpo={"max_completion_length": 6, "mask_truncated_completions": True,
                               "loss_type": "dr_grpo"})
    trainer = GRPOTrainer(tiny_policy(), config, digit_reward)
    trainer.train_step()
    batch = trainer.last_rollouts
    assert max(len(s.completion) for s in batch.solutions) <= 6 and batch.mask.sum(axis=1).max() <= 6
    assert batch.truncated.tolist() == [not s.completion.endswith("$") for s in batch.solutions]
    # DAPO's overlong filtering: only the completions that ended count in the loss
    assert trainer.last_iterations[0]["num_tokens"] == batch.mask[~batch.truncated].sum()


# ----------------------------------------------------------------------------- LoRA
def test_lora_trains_only_adapters_and_its_reference_is_the_base() -> None:
    policy = tiny_policy()
    base = copy_of(policy)
    trainer = GRPOTrainer(policy, tiny_config(use_lora=True, lora_r=2, grpo={"beta": 0.04}), digit_reward)
    assert trainer.reference is None  # no second copy: the reference is the policy, adapters off
    trainer.train_step()
    after = snapshot(policy)
    adapters = {k for k in after if ".adapters." in k}
    assert adapters
    for name, value in snapshot(base).items():  # lora moves the base weights under `.base.`
        key = name if name in after else name.replace(".weight", ".base.weight").replace(".bias", ".base.bias")
        np.testing.assert_array_equal(after[key], value, err_msg=name)
    assert any(np.any(after[k]) for k in adapters if k.endswith(".B"))  # B started at 0 and moved

    batch = trainer.rollout(1)
    np.testing.assert_allclose(batch.ref_logp, trainer.completion_logprobs(base, batch), rtol=0, atol=1e-12)
    adapted = trainer.completion_logprobs(policy, batch)
    assert np.abs(adapted - batch.ref_logp).max() > 1e-8  # the adapters do change the policy


def test_lora_memory_report_matches_a_full_run() -> None:
    full = GRPOTrainer(tiny_policy(), tiny_config(grpo={"beta": 0.04}), digit_reward)
    low = GRPOTrainer(tiny_policy(), tiny_config(use_lora=True, lora_r=2, grpo={"beta": 0.04}), digit_reward)
    full.train_step()
    low.train_step()
    f, q = full.memory_report(), low.memory_report()
    assert f["mode"] == "full" and f["saved"] == 0 and f["this"]["reference"] == f["this"]["parameters"]
    assert q["full"] == f["this"]  # the count for full fine-tuning equals what a full run measures
    adapter_bytes = sum(p.data.nbytes for p in low.policy.parameters() if p.requires_grad)
    assert q["this"]["optimizer"] == 2 * adapter_bytes and q["this"]["reference"] == 0
    assert q["saved"] == q["full"]["total"] - q["this"]["total"] > 0


# ----------------------------------------------------------------------------- resume, files
@pytest.mark.parametrize("use_lora", [False, True])
def test_resume_equals_a_straight_run_bit_for_bit(tmp_path: Path, use_lora: bool) -> None:
    config = tiny_config(use_lora=use_lora, lora_r=2, grpo={"beta": 0.04, "num_iterations": 2})
    straight = GRPOTrainer(tiny_policy(), config, digit_reward)
    for _ in range(3):
        straight.train_step()

    first = GRPOTrainer(tiny_policy(), config, digit_reward)
    first.train_step()
    first.save(tmp_path / "ckpt.npz")
    # Another initialization: every weight, the reference copy included, must come from the file.
    resumed = GRPOTrainer(tiny_policy(seed=1), config, digit_reward)
    resumed.resume(tmp_path / "ckpt.npz")
    assert resumed.step == 1
    resumed.train_step()
    resumed.train_step()

    a, b = snapshot(straight.policy), snapshot(resumed.policy)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in straight.logs]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.logs]


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    trainer = GRPOTrainer(tiny_policy(), tiny_config(), digit_reward)
    trainer.save(tmp_path / "ckpt.npz")
    longer = GRPOTrainer(tiny_policy(), tiny_config(steps=10), digit_reward)
    longer.resume(tmp_path / "ckpt.npz")  # only the number of steps may change
    other = GRPOTrainer(tiny_policy(), tiny_config(learning_rate=0.5, grpo={"epsilon": 0.3}), digit_reward)
    with pytest.raises(ValueError, match=r"different settings \(grpo, learning_rate\)"):
        other.resume(tmp_path / "ckpt.npz")
    with pytest.raises(ValueError, match="reward_fns"):
        GRPOTrainer(tiny_policy(), tiny_config(), constant_reward).resume(tmp_path / "ckpt.npz")


def test_resume_reads_a_checkpoint_saved_before_newer_settings_existed(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = GRPOTrainer(tiny_policy(), tiny_config(), digit_reward)
    full = trainer._checkpoint_config()

    def older() -> dict[str, Any]:  # as a version without these settings wrote it
        cfg = {k: v for k, v in full["grpo_trainer"].items() if k not in ("warmup_steps", "lr_scheduler",
                                                                          "process_rewards")}
        return {**full, "grpo_trainer": cfg}

    monkeypatch.setattr(trainer, "_checkpoint_config", older)
    trainer.save(tmp_path / "ckpt.npz")
    assert "process_rewards" not in nn.load_checkpoint(tmp_path / "ckpt.npz").config["grpo_trainer"]
    GRPOTrainer(tiny_policy(), tiny_config(steps=10), digit_reward).resume(tmp_path / "ckpt.npz")  # defaults fill in
    with pytest.raises(ValueError, match=r"different settings \(process_rewards\)"):
        GRPOTrainer(tiny_policy(), tiny_config(process_rewards="checker"), digit_reward).resume(tmp_path / "ckpt.npz")


def test_run_writes_csv_plot_and_checkpoint(tmp_path: Path) -> None:
    trainer = GRPOTrainer(tiny_policy(), tiny_config(steps=2, eval_interval=2, save_interval=1), digit_reward)
    logs = trainer.run(tmp_path, progress=True)
    assert [r["step"] for r in logs] == [0, 1, 2]
    assert set(logs[0]) == {"step", "accuracy_L1", "accuracy_mean"}  # the starting policy's accuracy
    assert {"accuracy_L1", "accuracy_mean"} <= set(logs[2]) and "accuracy_L1" not in logs[1]
    assert {k.replace("{level}", "1") for k in EVAL_KEYS} <= set(logs[2])
    assert all(0.0 <= r["accuracy_mean"] <= 1.0 for r in (logs[0], logs[2]))
    with open(tmp_path / "grpo_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and rows[1]["accuracy_L1"] == "" and float(rows[2]["reward"]) == logs[2]["reward"]
    assert (tmp_path / "grpo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = nn.load_checkpoint(tmp_path / "ckpt.npz")
    assert ckpt.step == 2 and len(ckpt.extra["logs"]) == 3
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writer left no temporary file


def test_plot_is_skipped_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # `import` now raises ImportError
    assert plot_logs([{"step": 1, "reward": 0.5}], tmp_path / "p.png") is None
    assert not (tmp_path / "p.png").exists()
    write_logs_csv([{"step": 1, "kl": None}], tmp_path / "log.csv")
    assert (tmp_path / "log.csv").read_text() == "step,kl\n1,\n"


# ----------------------------------------------------------------------------- bad values
@pytest.mark.parametrize("field, value, match", [
    ("prompts_per_step", 0, r"prompts_per_step: 0 is not an int >= 1"),
    ("steps", 2.5, r"steps: 2.5 is not an int >= 1"),
    ("levels", (1, 9), r"levels: \(1, 9\) is not a non-empty subset"),
    ("levels", (), "levels"),
    ("learning_rate", -1e-3, r"learning_rate: -0.001 is not a number > 0"),
    ("grad_clip", math.nan, "grad_clip: nan is not a number >= 0"),
    ("micro_batch_size", 0, "micro_batch_size: 0 is not an int >= 1"),
    ("eval_problems", 500, "more than the 200 problems"),
    ("betas", (0.9, 1.0), r"betas: \(0.9, 1.0\) is not a pair"),
    ("use_lora", "yes", "use_lora: 'yes' is not a bool"),
    ("lr_scheduler", "cosine", "lr_scheduler: 'cosine' is not one of constant, linear"),
    ("warmup_steps", -1, "warmup_steps: -1 is not an int >= 0"),
    ("process_rewards", "gold", "process_rewards: 'gold' is not one of none, checker, prm, custom"),
    ("grpo", {"num_generations": 1}, r"GRPOConfig.num_generations: 1 is not an int >= 2"),
])
def test_bad_config_values_raise_clear_errors(field: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GRPOTrainerConfig(**{field: value})


def test_bad_trainer_arguments_raise_clear_errors() -> None:
    config = tiny_config()
    with pytest.raises(TypeError, match="policy must be an nn.GPT"):
        GRPOTrainer(object(), config)  # type: ignore[arg-type]
    dropout = GPT(GPTConfig(block_size=48, vocab_size=TOKENIZER.vocab_size, n_layer=1, n_head=2, n_embd=16,
                            dropout=0.1))
    with pytest.raises(ValueError, match="dropout=0.1"):
        GRPOTrainer(dropout, config)
    short = GPT(GPTConfig(block_size=20, vocab_size=TOKENIZER.vocab_size, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match=r"block_size=20 is too short for levels \[1\]"):
        GRPOTrainer(short, config)
    with pytest.raises(ValueError, match="do not pass a reference"):
        GRPOTrainer(tiny_policy(), tiny_config(use_lora=True), reference=tiny_policy())
    adapted = lora.apply_lora(tiny_policy(), r=2)
    with pytest.raises(ValueError, match="already has LoRA adapters"):
        GRPOTrainer(adapted, tiny_config(use_lora=True))
    with pytest.raises(TypeError, match="is not callable"):
        GRPOTrainer(tiny_policy(), config, ["correctness"])  # type: ignore[list-item]


@pytest.mark.parametrize("use_lora", [False, True])
def test_load_policy_reads_the_trained_policy_from_a_grpo_checkpoint(tmp_path, use_lora: bool) -> None:
    from rl.policy import load_policy

    trainer = GRPOTrainer(tiny_policy(), tiny_config(steps=1, use_lora=use_lora, eval_interval=0))
    trainer.train_step()
    trainer.save(tmp_path / "ckpt.npz")
    loaded, info = load_policy(tmp_path / "ckpt.npz")
    assert info["step"] == 1 and not any("lora" in name for name, _ in loaded.named_parameters())
    x = np.array([[3, 4, 5, 6]])
    with tg.no_grad():
        want = trainer.policy(x)[0].numpy()
        got = loaded.to(dtype=want.dtype)(x)[0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
