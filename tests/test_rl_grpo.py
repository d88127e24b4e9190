"""The GRPO objective (rl/grpo.py) and the KL-placement study (rl/kl_study.py).

Hand-computed numbers are written out in the tests, with the arithmetic in comments, so a reader
can check each one with a pencil.
"""
from __future__ import annotations

import math
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import tinygrad_lite as tg
from rl.grpo import (
    IMPORTANCE_SAMPLING_LEVELS,
    KL_ESTIMATORS,
    LOSS_TYPES,
    GRPOConfig,
    group_advantages,
    grpo_loss,
    kl_estimate,
    process_advantages,
    token_logprobs,
)
from rl.kl_study import (
    DEFAULT_REF_LOGITS,
    DEFAULT_THETA,
    exact_kl,
    kl_estimator_samples,
    kl_placement_table,
    toy_policy_samples,
)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _np_log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# ----------------------------------------------------------------------------- token_logprobs
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_token_logprobs_forward_and_gradient(temperature: float) -> None:
    rng = np.random.default_rng(0)
    logits_np = rng.standard_normal((2, 3, 4))
    tokens = rng.integers(0, 4, size=(2, 3))
    logits = tg.tensor(logits_np, requires_grad=True)
    got = token_logprobs(logits, tokens, temperature).numpy()
    want = np.take_along_axis(_np_log_softmax(logits_np / temperature), tokens[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert tg.gradcheck(lambda x: token_logprobs(x, tokens, temperature), [logits])


def test_token_logprobs_errors() -> None:
    logits = tg.tensor(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"tokens of shape \(3, 2\)"):
        token_logprobs(logits, np.zeros((3, 2), dtype=int))
    with pytest.raises(TypeError, match="integers"):
        token_logprobs(logits, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(logits, np.zeros((2, 3), dtype=int), temperature=0.0)


# ----------------------------------------------------------------------------- group advantages
def test_group_advantages_by_hand() -> None:
    # group 1: rewards 1,0,0,0: mean 0.25, std (ddof=1) = sqrt((0.75² + 3·0.25²)/3) = sqrt(0.25) = 0.5
    # group 2: rewards 1,1,1,1: no signal.
    rewards = np.array([1.0, 0, 0, 0, 1, 1, 1, 1])
    adv, stats = group_advantages(rewards, group_size=4, eps=0.0)
    np.testing.assert_allclose(adv, [1.5, -0.5, -0.5, -0.5, 0, 0, 0, 0], atol=1e-15)
    assert stats["frac_reward_zero_std"] == 0.5
    np.testing.assert_allclose(stats["group_std"], [0.5, 0.0])
    # "none" (Dr. GRPO): just centered. "batch": centered / std of all 8 rewards (ddof=1).
    adv_none, _ = group_advantages(rewards, 4, "none")
    np.testing.assert_allclose(adv_none, [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0])
    # batch: mean 5/8, Σ(r - 5/8)² = 5·(3/8)² + 3·(5/8)² = 120/64, /7 -> var = 15/56
    adv_batch, _ = group_advantages(rewards, 4, "batch", eps=0.0)
    np.testing.assert_allclose(adv_batch, adv_none / math.sqrt(15 / 56))
    # TRL's booleans
    np.testing.assert_array_equal(group_advantages(rewards, 4, True)[0], group_advantages(rewards, 4, "group")[0])
    np.testing.assert_array_equal(group_advantages(rewards, 4, False)[0], adv_none)


def test_group_advantages_equal_rewards_are_exactly_zero() -> None:
    # (0.1 + 0.1 + 0.1) / 3 = 0.10000000000000002 != 0.1: without the explicit zero, round-off
    # divided by (0 + eps) would leave advantages of about 1e-13.
    adv, stats = group_advantages(np.array([0.1, 0.1, 0.1, 1.0, 0.0, 0.5]), 3)
    assert np.all(adv[:3] == 0.0)
    assert stats["frac_reward_zero_std"] == 0.5


@given(
    n_groups=st.integers(1, 4),
    group_size=st.integers(2, 5),
    binary=st.booleans(),
    mode=st.sampled_from(["group", "batch", "none"]),
    data=st.data(),
)
def test_group_advantages_properties(n_groups: int, group_size: int, binary: bool, mode: str, data: Any) -> None:
    element = st.sampled_from([0.0, 1.0]) if binary else st.floats(-10, 10, allow_nan=False)
    rewards = np.array(data.draw(st.lists(element, min_size=n_groups * group_size, max_size=n_groups * group_size)))
    adv, stats = group_advantages(rewards, group_size, mode)
    grouped, a = rewards.reshape(n_groups, group_size), adv.reshape(n_groups, group_size)
    centered = grouped - grouped.mean(axis=1, keepdims=True)
    flat = np.ptp(grouped, axis=1) == 0
    np.testing.assert_allclose(a.sum(axis=1), 0.0, atol=1e-9 * (1 + np.abs(a).max()))  # zero-sum in every group
    assert np.all(a[flat] == 0.0)
    assert stats["frac_reward_zero_std"] == pytest.approx(flat.mean())
    if mode == "none":
        expected = centered
    elif mode == "group":
        expected = centered / (grouped.std(axis=1, ddof=1, keepdims=True) + 1e-4)
    else:
        expected = centered / (rewards.std(ddof=1) + 1e-4)
    np.testing.assert_allclose(a[~flat], expected[~flat], rtol=1e-9, atol=1e-9)
    if mode == "group":
        assert np.all(a.std(axis=1, ddof=1) <= 1.0 + 1e-9)  # std/(std+eps) <= 1


def test_group_advantages_errors() -> None:
    with pytest.raises(ValueError, match="7 samples cannot be split into groups of 2"):
        group_advantages(np.zeros(7), 2)
    with pytest.raises(ValueError, match="group_size must be an int >= 2"):
        group_advantages(np.zeros(4), 1)
    with pytest.raises(ValueError, match="'mean' is not one of 'group', 'batch', 'none'"):
        group_advantages(np.zeros(4), 2, "mean")
    with pytest.raises(ValueError, match="1-D"):
        group_advantages(np.zeros((2, 2)), 2)


# ----------------------------------------------------------------------------- process supervision
def test_process_advantages_by_hand() -> None:
    # Group of 2. Completion 0: steps rewarded [1, 0]; completion 1: [0, 0, 1].
    # Pooled R = [1, 0, 0, 0, 1]: mean 0.4, std (ddof=1) = sqrt((2·0.6² + 3·0.4²)/4) = sqrt(0.3).
    # Normalized: c0 = [0.6, -0.4]/σ, c1 = [-0.4, -0.4, 0.6]/σ.
    # Reward-to-go: c0 = [0.2, -0.4]/σ, c1 = [-0.2, 0.2, 0.6]/σ.
    s = math.sqrt(0.3)
    adv = process_advantages([np.array([1.0, 0.0]), np.array([0.0, 0.0, 1.0])],
                             [np.array([0, 0, 1]), np.array([0, 1, 1, 2])], group_size=2, eps=0.0)
    np.testing.assert_allclose(adv[0], np.array([0.2, 0.2, -0.4]) / s)
    np.testing.assert_allclose(adv[1], np.array([-0.2, 0.2, 0.2, 0.6]) / s)


def test_process_advantages_with_one_step_equal_outcome_advantages() -> None:
    rewards = np.array([0.3, 1.0, 0.0, 0.5, 0.5, 0.5])
    outcome, _ = group_advantages(rewards, 3)
    lengths = [2, 4, 1, 3, 2, 5]
    process = process_advantages([np.array([r]) for r in rewards], [np.zeros(n, dtype=int) for n in lengths], 3)
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(process[i], np.full(n, outcome[i]), rtol=1e-12, atol=0)


def test_process_advantages_errors() -> None:
    with pytest.raises(ValueError, match=r"completion 1 has 2 steps, so step_of_token must hold integers in \[0, 2\)"):
        process_advantages([np.ones(1), np.ones(2)], [np.zeros(3, int), np.array([0, 2])], 2)
    with pytest.raises(ValueError, match="no step rewards"):
        process_advantages([np.ones(1), np.ones(0)], [np.zeros(3, int), np.zeros(0, int)], 2)
    with pytest.raises(ValueError, match="3 step_rewards but 2"):
        process_advantages([np.ones(1)] * 3, [np.zeros(1, int)] * 2, 3)


# ----------------------------------------------------------------------------- KL estimators
def test_kl_estimators_by_hand() -> None:
    # logp = [-1, -2], ref = [-1.5, -1]: r = ref - logp = [-0.5, 1]
    logp = tg.tensor(np.array([-1.0, -2.0]))
    ref = np.array([-1.5, -1.0])
    np.testing.assert_allclose(kl_estimate(logp, ref, "k1").numpy(), [0.5, -1.0])  # -r
    np.testing.assert_allclose(kl_estimate(logp, ref, "k2").numpy(), [0.125, 0.5])  # r²/2
    # e^-0.5 + 0.5 - 1 = 0.60653066 - 0.5 = 0.10653066;  e^1 - 1 - 1 = 0.71828183
    np.testing.assert_allclose(kl_estimate(logp, ref, "k3").numpy(), [0.10653066, 0.71828183], rtol=1e-7)
    with pytest.raises(ValueError, match="'k4' is not one of"):
        kl_estimate(logp, ref, "k4")


@pytest.mark.parametrize("kind", KL_ESTIMATORS)
def test_kl_estimate_gradient(kind: str) -> None:
    logp = tg.tensor(np.array([-1.0, -2.0, -0.3]), requires_grad=True)
    assert tg.gradcheck(lambda x: kl_estimate(x, np.array([-1.5, -1.0, -0.2]), kind), [logp])


# ----------------------------------------------------------------------------- grpo_loss by hand
# Two sequences, T = 3; the first has 2 completion tokens (its third entry is padding and holds a
# nan that must not matter), the second 3. Advantages: +2 and -1. ε = 0.2: clip range [0.8, 1.2].
#   seq 0, Â = 2:  ratios [1.5, 1.1]       -> min(3.0, 2.4) = 2.4,  min(2.2, 2.2) = 2.2  -> losses [-2.4, -2.2]
#   seq 1, Â = -1: ratios [0.5, 1.0, 2.0]  -> min(-0.5, -0.8) = -0.8, -1, min(-2, -1.2) = -2 -> losses [0.8, 1, 2]
# Σ = -4.6 + 3.8 = -0.8 over 5 tokens. Clipped: token (0,0) high (1.5 > 1.2, Â > 0), token (1,0)
# low (0.5 < 0.8, Â < 0); token (1,2) has ratio 2 > 1.2 but Â < 0: the unclipped branch is the min.
HAND_LOGP = np.array([[-1.0, -2.0, -3.0], [-0.5, -1.0, -1.5]])
HAND_RATIOS = np.array([[1.5, 1.1, 1.0], [0.5, 1.0, 2.0]])
HAND_MASK = np.array([[True, True, False], [True, True, True]])
HAND_ADV = np.array([2.0, -1.0])


def _hand_old_logp() -> np.ndarray:
    old = HAND_LOGP - np.log(HAND_RATIOS)
    old[0, 2] = np.nan  # padding: any value, even nan
    return old


@pytest.mark.parametrize("loss_type, kwargs, expected", [
    ("grpo", {}, (-4.6 / 2 + 3.8 / 3) / 2),  # mean of per-sequence means: (-2.3 + 1.2667)/2 = -0.51667
    ("bnpo", {}, -0.8 / 5),
    ("dr_grpo", {}, -0.8 / (2 * 3)),  # B·T
    ("dr_grpo", {"max_completion_length": 4}, -0.8 / (2 * 4)),  # B·L
    ("dapo", {}, -0.8 / 5),  # one process, one micro-batch: the same as bnpo
    ("dapo", {"num_items_in_batch": 8}, -0.8 / 8),  # e.g. 8 tokens across two accumulation steps
    ("bnpo", {"epsilon_high": 0.6}, (-3.0 - 2.2 + 3.8) / 5),  # 1.5 < 1.6: token (0,0) no longer clipped
])
def test_grpo_loss_normalizations_by_hand(loss_type: str, kwargs: dict[str, Any], expected: float) -> None:
    logp = tg.tensor(HAND_LOGP, requires_grad=True)
    loss, metrics = grpo_loss(logp, _hand_old_logp(), HAND_ADV, HAND_MASK, loss_type=loss_type, **kwargs)
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    high = 0.0 if "epsilon_high" in kwargs else 0.2
    assert metrics["clip_frac_low"] == pytest.approx(0.2)
    assert metrics["clip_frac_high"] == pytest.approx(high)
    assert metrics["clip_frac_region"] == pytest.approx(0.2 + high)
    assert metrics["ratio_mean"] == pytest.approx((1.5 + 1.1 + 0.5 + 1.0 + 2.0) / 5)
    loss.backward()
    assert np.all(np.isfinite(logp.grad.numpy())) and logp.grad.numpy()[0, 2] == 0.0


def test_grpo_loss_sequence_level_by_hand() -> None:
    # GSPO: seq 0 ratio = exp(mean(log 1.5, log 1.1)) = sqrt(1.65) = 1.2845 > 1.2 with Â > 0: clipped,
    # each token -1.2·2 = -2.4. seq 1: mean(log 0.5, 0, log 2) = 0 -> ratio 1, each token 1.0.
    # bnpo: (2·(-2.4) + 3·1.0) / 5 = -0.36. Gradient: seq 0 is clipped (zero); seq 1's loss 3·ρ/5
    # with dρ/dlogp_t = ρ/3 gives 0.2 per token.
    logp = tg.tensor(HAND_LOGP, requires_grad=True)
    loss, metrics = grpo_loss(logp, _hand_old_logp(), HAND_ADV, HAND_MASK, loss_type="bnpo",
                              importance_sampling_level="sequence")
    assert loss.item() == pytest.approx(-0.36, abs=1e-12)
    assert metrics["clip_frac_high"] == pytest.approx(2 / 5)  # both tokens of sequence 0
    loss.backward()
    np.testing.assert_allclose(logp.grad.numpy(), [[0, 0, 0], [0.2, 0.2, 0.2]], atol=1e-12)


@pytest.mark.parametrize("kind, per_token", [
    # logp - ref = [0.5, -1] at the two tokens of a single sequence (r = [-0.5, 1], as in the KL test)
    ("k1", [0.5, -1.0]), ("k2", [0.125, 0.5]), ("k3", [0.10653066, 0.71828183]),
])
def test_grpo_loss_kl_term_by_hand(kind: str, per_token: list[float]) -> None:
    # Zero advantages leave only β·KL: bnpo gives β·mean(k) over the 2 completion tokens; padding ignored.
    logp = tg.tensor(np.array([[-1.0, -2.0, -7.0]]), requires_grad=True)
    ref = np.array([[-1.5, -1.0, np.inf]])
    mask = np.array([[True, True, False]])
    loss, metrics = grpo_loss(logp, None, np.zeros(1), mask, loss_type="bnpo", beta=0.5, ref_logp=ref,
                              kl_estimator=kind)
    assert loss.item() == pytest.approx(0.5 * sum(per_token) / 2, rel=1e-7)
    assert metrics["kl"] == pytest.approx(sum(per_token) / 2, rel=1e-7)
    # β = 0 with a reference: the KL is logged, not added to the loss
    loss0, metrics0 = grpo_loss(logp, None, np.zeros(1), mask, loss_type="bnpo", ref_logp=ref, kl_estimator=kind)
    assert loss0.item() == 0.0 and metrics0["kl"] == pytest.approx(metrics["kl"])


def test_grpo_loss_errors() -> None:
    logp = tg.tensor(HAND_LOGP)
    with pytest.raises(ValueError, match="'cispo' is not one of 'grpo', 'bnpo', 'dr_grpo', 'dapo'"):
        grpo_loss(logp, HAND_LOGP, HAND_ADV, HAND_MASK, loss_type="cispo")
    with pytest.raises(ValueError, match="beta=0.1 > 0 needs ref_logp"):
        grpo_loss(logp, HAND_LOGP, HAND_ADV, HAND_MASK, beta=0.1)
    with pytest.raises(ValueError, match=r"advantages must be \(2,\) or \(2, 3\)"):
        grpo_loss(logp, HAND_LOGP, np.zeros(3), HAND_MASK)
    with pytest.raises(ValueError, match=r"old_logp has shape \(3, 2\)"):
        grpo_loss(logp, np.zeros((3, 2)), HAND_ADV, HAND_MASK)
    with pytest.raises(ValueError, match="old_logp is not finite at some completion tokens"):
        grpo_loss(logp, np.full((2, 3), np.nan), HAND_ADV, HAND_MASK)
    with pytest.raises(ValueError, match="more than max_completion_length=2"):
        grpo_loss(logp, HAND_LOGP, HAND_ADV, HAND_MASK, loss_type="dr_grpo", max_completion_length=2)
    with pytest.raises(ValueError, match="'seq' is not one of 'token', 'sequence'"):
        grpo_loss(logp, HAND_LOGP, HAND_ADV, HAND_MASK, importance_sampling_level="seq")


# ----------------------------------------------------------------------------- gradient checks
def _gradcheck_problem(level: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Logits (4, 3, 5) of two groups of 2, with old log-probs placed so every ratio sits at least
    0.05 away from the clip kinks 0.8 and 1.2 (finite differences move it by ~1e-6), some of them in
    the clipped region (0.7 with Â < 0, 1.35 with Â > 0) and some inside."""
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 3, 5))
    tokens = rng.integers(0, 5, size=(4, 3))
    mask = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=bool)
    advantages, _ = group_advantages(np.array([1.0, 0.0, 0.2, 0.9]), group_size=2)  # signs +, -, -, +
    logp = token_logprobs(tg.tensor(logits), tokens).numpy()
    if level == "token":
        ratios = np.array([[1.35, 0.9, 1.1], [0.7, 1.05, 1.0], [0.7, 1.0, 1.0], [1.1, 1.35, 0.95]])
    else:  # one ratio per sequence: seq 0 clipped high, seq 1 clipped low, the others inside
        ratios = np.repeat(np.array([[1.35], [0.7], [0.9], [1.1]]), 3, axis=1)
    old = logp - np.log(ratios)
    old[~mask] = np.nan
    ref = np.where(mask, logp + 0.3 * rng.standard_normal(logp.shape), -np.inf)
    return logits, tokens, mask, advantages, old, ref


@pytest.mark.parametrize("level", IMPORTANCE_SAMPLING_LEVELS)
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("kind", KL_ESTIMATORS)
def test_grpo_loss_gradcheck(loss_type: str, level: str, kind: str) -> None:
    logits, tokens, mask, advantages, old, ref = _gradcheck_problem(level)

    def loss_of(x: tg.Tensor) -> tg.Tensor:
        loss, _ = grpo_loss(token_logprobs(x, tokens), old, advantages, mask, loss_type=loss_type, beta=0.1,
                            ref_logp=ref, kl_estimator=kind, importance_sampling_level=level, max_completion_length=4)
        return loss

    x = tg.tensor(logits, requires_grad=True)
    _, metrics = grpo_loss(token_logprobs(x, tokens), old, advantages, mask, importance_sampling_level=level)
    assert 0 < metrics["clip_frac_region"] < 1  # both the clipped and the unclipped branch are exercised
    assert tg.gradcheck(loss_of, [x])


# ----------------------------------------------------------------------------- claim 2
def test_grpo_loss_is_zero_at_the_first_inner_step_but_its_gradient_is_not() -> None:
    """At the first inner step π_old = π_θ, so every ratio is 1 and each sequence's token mean of
    -ρ·Â is -Â_i. "grpo" averages those over sequences: -(1/B) Σ_i Â_i = 0, because the advantages
    sum to zero within each group. The gradient, -(1/B) Σ_i Â_i · mean_t ∇log π(o_{i,t}), is not 0."""
    rng = np.random.default_rng(2)
    logits = tg.tensor(rng.standard_normal((8, 5, 6)), requires_grad=True)
    tokens = rng.integers(0, 6, size=(8, 5))
    lengths = np.array([5, 2, 4, 1, 3, 5, 2, 4])
    mask = np.arange(5)[None, :] < lengths[:, None]
    advantages, _ = group_advantages(np.array([1.0, 0, 0, 1, 0.5, 0.2, 0.9, 0.1]), group_size=4)
    logp = token_logprobs(logits, tokens)
    loss, metrics = grpo_loss(logp, None, advantages, mask, loss_type="grpo")
    assert abs(loss.item()) < 1e-12
    assert metrics["ratio_mean"] == 1.0
    loss.backward()
    assert np.linalg.norm(logits.grad.numpy()) > 1e-2
    # The token-level losses are not zero at this point: with unequal lengths, dapo's value is not 0.
    dapo, _ = grpo_loss(token_logprobs(logits, tokens), None, advantages, mask, loss_type="dapo")
    assert abs(dapo.item()) > 1e-3


# ----------------------------------------------------------------------------- config
def test_grpo_config_defaults_follow_trl() -> None:
    c = GRPOConfig()
    assert (c.num_generations, c.epsilon, c.epsilon_high, c.beta, c.loss_type, c.scale_rewards) == \
        (8, 0.2, None, 0.0, "dapo", "group")
    assert (c.importance_sampling_level, c.temperature, c.num_iterations, c.max_completion_length) == \
        ("token", 1.0, 1, 256)
    assert c.mask_truncated_completions is False
    assert GRPOConfig(scale_rewards=False).scale_rewards == "none"
    loss, _ = grpo_loss(tg.tensor(HAND_LOGP), _hand_old_logp(), HAND_ADV, HAND_MASK, **c.loss_kwargs())
    assert loss.item() == pytest.approx(-0.8 / 5)


@pytest.mark.parametrize("field, value, message", [
    ("loss_type", "sapo", "GRPOConfig.loss_type: 'sapo' is not one of"),
    ("scale_rewards", "mean", "GRPOConfig.scale_rewards: 'mean' is not one of"),
    ("importance_sampling_level", "seq", "GRPOConfig.importance_sampling_level: 'seq'"),
    ("num_generations", 1, r"GRPOConfig.num_generations: 1 is not an int >= 2"),
    ("num_iterations", 0, r"GRPOConfig.num_iterations: 0 is not an int >= 1"),
    ("epsilon", 1.0, r"GRPOConfig.epsilon: 1.0 is not in \[0, 1\)"),
    ("epsilon_high", -0.1, "GRPOConfig.epsilon_high: -0.1"),
    ("beta", -1.0, "GRPOConfig.beta: -1.0"),
    ("temperature", 0, "GRPOConfig.temperature: 0"),
    ("kl_estimator", "k4", "GRPOConfig.kl_estimator: 'k4'"),
])
def test_grpo_config_validation(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GRPOConfig(**{field: value})


# ----------------------------------------------------------------------------- claim 8: KL placement
def test_kl_placement_study_matches_the_derivation() -> None:
    rows = {(r["estimator"], r["placement"]): r for r in kl_placement_table(n_samples=20_000, seed=0)}
    assert len(rows) == 6
    for row in rows.values():
        # enumeration with autograd agrees with the closed forms of the docstring
        np.testing.assert_allclose(row["expected_grad"], row["analytic_grad"], atol=1e-12)
        # Monte Carlo agrees with the exact expectation (5 standard errors; a fixed seed)
        assert np.all(np.abs(row["mc_grad"] - row["expected_grad"]) <= 5 * row["mc_stderr"] + 1e-12)
    # unbiased: k2 in the loss and k1 in the reward (the same vector)
    for key in [("k2", "loss"), ("k1", "reward")]:
        assert rows[key]["unbiased"] and rows[key]["relative_bias"] < 1e-12
    np.testing.assert_allclose(rows[("k2", "loss")]["expected_grad"], rows[("k1", "reward")]["expected_grad"],
                               atol=1e-15)
    # k1 in the loss: zero expected gradient
    assert np.abs(rows[("k1", "loss")]["expected_grad"]).max() < 1e-15
    # k3 in the loss (GRPO): the gradient of the forward KL(ref‖π) = π - π_ref, clearly not ∇KL(π‖ref)
    p = np.exp(DEFAULT_THETA - np.log(np.exp(DEFAULT_THETA).sum()))
    q = np.exp(DEFAULT_REF_LOGITS - np.log(np.exp(DEFAULT_REF_LOGITS).sum()))
    np.testing.assert_allclose(rows[("k3", "loss")]["expected_grad"], p - q, atol=1e-12)
    for key in [("k1", "loss"), ("k3", "loss"), ("k2", "reward"), ("k3", "reward")]:
        assert not rows[key]["unbiased"] and rows[key]["relative_bias"] > 0.1


def test_kl_placement_study_exact_gradient_by_finite_differences() -> None:
    exact = kl_placement_table()[0]["exact_grad"]
    h = 1e-6
    numeric = np.array([(exact_kl(DEFAULT_THETA + h * e, DEFAULT_REF_LOGITS)
                         - exact_kl(DEFAULT_THETA - h * e, DEFAULT_REF_LOGITS)) / (2 * h) for e in np.eye(5)])
    np.testing.assert_allclose(exact, numeric, atol=1e-8)


# ----------------------------------------------------------------------------- claim 3: estimator values
def test_kl_estimator_samples_far_and_near() -> None:
    near_ref = DEFAULT_THETA + 0.1 * np.array([1.0, -1.0, 0.5, 0.0, -0.5])
    for ref_logits in (DEFAULT_REF_LOGITS, near_ref):
        logp, ref_logp, true_kl = toy_policy_samples(DEFAULT_THETA, ref_logits, n_samples=20_000, seed=3)
        result = kl_estimator_samples(logp, ref_logp, true_kl)
        s = {row["estimator"]: row for row in result["summary"]}
        for k in ("k1", "k3"):  # unbiased for KL(π‖ref)
            assert abs(s[k]["bias"]) < 4 * s[k]["stderr"]
        assert s["k3"]["min"] >= 0 and s["k2"]["min"] >= 0 and s["k3"]["frac_negative"] == 0
        assert s["k1"]["frac_negative"] > 0.2
        assert result["values"]["k1"].shape == (20_000,)
    # close to the reference, k3's spread is a small fraction of k1's
    assert s["k3"]["std"] < 0.1 * s["k1"]["std"]


def test_kl_estimator_samples_errors() -> None:
    with pytest.raises(ValueError, match="of one size"):
        kl_estimator_samples(np.zeros(3), np.zeros(2))


# ----------------------------------------------------------------------------- optional oracle
@pytest.mark.oracle
def test_token_logprobs_against_trl() -> None:
    torch = pytest.importorskip("torch")
    trl_utils = pytest.importorskip("trl.trainer.utils")
    rng = np.random.default_rng(4)
    logits, tokens = rng.standard_normal((2, 3, 7)), rng.integers(0, 7, size=(2, 3))
    want = trl_utils.selective_log_softmax(torch.tensor(logits) / 0.7, torch.tensor(tokens)).numpy()
    np.testing.assert_allclose(token_logprobs(tg.tensor(logits), tokens, 0.7).numpy(), want, rtol=1e-10)


def _trl_compute_loss(torch: Any, *, logp: np.ndarray, old: np.ndarray, ref: np.ndarray, adv: np.ndarray,
                      mask: np.ndarray, loss_type: str, epsilon_low: float, epsilon_high: float, beta: float,
                      level: str, max_completion_length: int, num_items_in_batch: float, num_processes: int = 1,
                      grad_accum: int = 1, steps_per_generation: int = 1,
                      use_bias_correction_kl: bool = False) -> tuple[Any, Any, dict[str, list[float]]]:
    """Run TRL's own `GRPOTrainer._compute_loss` on these arrays: returns (loss, d loss/d logp, logged metrics).

    `self` is a stub carrying only the attributes `_compute_loss` reads; its model forward
    (`_get_per_token_logps_and_entropies`) is replaced by one that returns `logp` as the policy's
    per-token log-probs, so everything after it (ratio, clip, KL, normalization) is TRL's code.
    One process (or a fake multi-process accelerator whose gather/reduce are the identity), train mode.
    """
    from collections import defaultdict
    from types import SimpleNamespace

    from trl.trainer.grpo_trainer import GRPOTrainer

    per_token_logps = torch.tensor(logp, dtype=torch.float64, requires_grad=True)
    B, T = logp.shape
    metrics: defaultdict[str, defaultdict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    stub = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *args, **kwargs: (
            per_token_logps, torch.zeros_like(per_token_logps), None),
        aux_loss_enabled=False, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        importance_sampling_level=level, beta=beta, loss_type=loss_type,
        epsilon_low=epsilon_low, epsilon_high=epsilon_high,
        use_vllm=False, vllm_importance_sampling_correction=False, _entropy_bonus_enabled=False,
        model=SimpleNamespace(training=True), current_gradient_accumulation_steps=grad_accum,
        max_completion_length=max_completion_length, _metrics=metrics,
        accelerator=SimpleNamespace(num_processes=num_processes, gather=lambda x: x, gather_for_metrics=lambda x: x,
                                    reduce=lambda x, reduction="sum": x),
        args=SimpleNamespace(use_bias_correction_kl=use_bias_correction_kl, delta=None,
                             steps_per_generation=steps_per_generation),
    )
    inputs = {
        "prompt_ids": torch.zeros((B, 1), dtype=torch.long), "prompt_mask": torch.ones((B, 1), dtype=torch.long),
        "completion_ids": torch.zeros((B, T), dtype=torch.long),
        "completion_mask": torch.tensor(mask.astype(np.int32)),  # TRL's completion_mask is an int tensor
        "advantages": torch.tensor(adv, dtype=torch.float64),
        "old_per_token_logps": torch.tensor(old, dtype=torch.float64),
        "ref_per_token_logps": torch.tensor(ref, dtype=torch.float64),
        "num_items_in_batch": torch.tensor(float(num_items_in_batch), dtype=torch.float64),
    }
    loss = GRPOTrainer._compute_loss(stub, None, inputs)
    loss.backward()
    return loss.item(), per_token_logps.grad.numpy(), {k: list(v) for k, v in metrics["train"].items()}


def _oracle_batch(level: str) -> tuple[np.ndarray, ...]:
    """B=6 completions of up to T=5 tokens, one of them all padding (e.g. a masked truncated completion).

    Padding holds finite junk (TRL multiplies it by the 0 mask, so it must not be nan). old_logp is set so
    that the ratios π_θ/π_old (per token, or per sequence for "sequence") fall on both sides of
    [1-ε_low, 1+ε_high] = [0.8, 1.28] for either sign of Â: clipped low (ρ < 0.8, Â < 0), clipped high
    (ρ > 1.28, Â > 0), outside the range on the side where the min keeps the unclipped term, and inside."""
    rng = np.random.default_rng(11)
    lengths = np.array([5, 3, 1, 4, 0, 2])
    mask = np.arange(5)[None, :] < lengths[:, None]
    adv = np.array([1.3, -0.7, 0.4, -1.1, 0.9, -0.2])
    logp = np.log(rng.uniform(0.05, 0.95, size=mask.shape))
    ref = logp + rng.normal(0.0, 0.5, size=mask.shape)
    if level == "token":
        ratios = np.array([[1.45, 0.9, 1.1, 0.7, 1.6],
                           [0.6, 1.35, 0.95, 1.0, 1.0],
                           [1.05, 1.0, 1.0, 1.0, 1.0],
                           [0.5, 1.2, 1.7, 0.85, 1.0],
                           [1.0, 1.0, 1.0, 1.0, 1.0],
                           [1.3, 0.75, 1.0, 1.0, 1.0]])
        log_ratio = np.log(ratios)
    else:  # the sequence ratio exp(masked mean of log ρ_t) is set exactly; tokens jitter around it
        seq_ratio = np.array([1.45, 0.6, 0.7, 1.5, 1.0, 1.1])
        jitter = np.where(mask, rng.normal(0.0, 0.3, size=mask.shape), 0.0)
        jitter -= np.where(mask, jitter.sum(1, keepdims=True) / np.maximum(lengths, 1)[:, None], 0.0)
        log_ratio = np.log(seq_ratio)[:, None] + jitter
    old = logp - log_ratio
    old[~mask] = rng.uniform(-9.0, -0.1, size=int((~mask).sum()))  # junk that is not logp - log ρ
    return logp, old, ref, adv, mask


@pytest.mark.oracle
@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("level", IMPORTANCE_SAMPLING_LEVELS)
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_against_trl(loss_type: str, level: str, beta: float) -> None:
    """Our grpo_loss against TRL's GRPOTrainer._compute_loss on the same float64 tensors: loss and gradient.

    Argument mapping (checked against trl 1.16.0, trl/trainer/grpo_trainer.py `_compute_loss`):
      logp -> per_token_logps (what the stubbed forward returns); old_logp -> inputs["old_per_token_logps"];
      ref_logp -> inputs["ref_per_token_logps"]; advantages (B,) -> inputs["advantages"];
      mask -> inputs["completion_mask"] (int, no tool_mask); epsilon_low/high -> self.epsilon_low/high;
      importance_sampling_level -> self.importance_sampling_level (TRL's "sequence" ratio is
      exp(Σ mask·log_ratio / max(|S_i|, 1)), shape (B, 1), broadcast over the tokens, as ours);
      beta -> self.beta with kl_estimator="k3": TRL's per_token_kl = exp(ref - logp) - (ref - logp) - 1,
      added as +β·KL to the per-token loss, our k3 with r = ref - logp; TRL computes no KL when β = 0.
      max_completion_length -> self.max_completion_length (dr_grpo's B·L).
      dapo: TRL's inputs["num_items_in_batch"] is the mask count of the whole generation batch, gathered over
      processes; it divides by num_items / num_processes · grad_accum / steps_per_generation. Here one process,
      grad_accum = steps_per_generation = 1, and num_items = mask.sum(), which is our num_items_in_batch=None.
      TRL's train mode divides grpo/bnpo/dr_grpo by current_gradient_accumulation_steps: 1 here (ours never does;
      our trainer weights micro-batches itself).
      TRL options pinned off: use_bias_correction_kl=False (TRL's default is True: it multiplies the KL by the
      importance ratio; grpo_loss has no such option, see the xfail below), delta=None, no entropy mask, no
      off-policy mask, no vLLM importance-sampling correction, no entropy bonus, no aux loss.
    """
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl.trainer.grpo_trainer")
    logp, old, ref, adv, mask = _oracle_batch(level)
    eps_low, eps_high, max_len = 0.2, 0.28, 7
    want, want_grad, trl_metrics = _trl_compute_loss(
        torch, logp=logp, old=old, ref=ref, adv=adv, mask=mask, loss_type=loss_type, epsilon_low=eps_low,
        epsilon_high=eps_high, beta=beta, level=level, max_completion_length=max_len,
        num_items_in_batch=mask.sum())
    ours = tg.tensor(logp, requires_grad=True)
    loss, metrics = grpo_loss(ours, old, adv, mask, loss_type=loss_type, epsilon_low=eps_low, epsilon_high=eps_high,
                              beta=beta, ref_logp=ref, kl_estimator="k3", importance_sampling_level=level,
                              max_completion_length=max_len)
    # clipping is active on both sides, and not everywhere, so the test sees both branches of the min
    assert 0 < metrics["clip_frac_low"] and 0 < metrics["clip_frac_high"] and metrics["clip_frac_region"] < 1
    assert loss.item() == pytest.approx(want, rel=1e-12, abs=1e-14)
    loss.backward()
    np.testing.assert_allclose(ours.grad.numpy(), want_grad, rtol=1e-10, atol=1e-14)
    if beta > 0:  # TRL logs the KL only when it uses it: the masked token mean in both
        assert metrics["kl"] == pytest.approx(trl_metrics["kl"][0], rel=1e-12)
    if level == "token":  # at sequence level TRL's clip fractions count sequences, ours count tokens
        for key, trl_key in (("clip_frac_low", "clip_ratio/low_mean"), ("clip_frac_high", "clip_ratio/high_mean"),
                             ("clip_frac_region", "clip_ratio/region_mean")):
            # TRL averages its clip flags as float32 (`.float()`); the counts themselves are exact
            assert metrics[key] == pytest.approx(trl_metrics[trl_key][0], rel=1e-6)


@pytest.mark.oracle
@pytest.mark.parametrize("level", IMPORTANCE_SAMPLING_LEVELS)
def test_grpo_loss_dapo_num_items_against_trl(level: str) -> None:
    """dapo with TRL's data-parallel / accumulation bookkeeping: TRL is told the token count of the whole
    generation batch (here 37, over 2 processes and steps_per_generation=4 micro-batches, with 2
    accumulation steps per optimizer step) and divides by 37 / 2 · 2 / 4 = 9.25, which is what our
    num_items_in_batch is (see grpo_loss's docstring)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl.trainer.grpo_trainer")
    logp, old, ref, adv, mask = _oracle_batch(level)
    want, want_grad, _ = _trl_compute_loss(
        torch, logp=logp, old=old, ref=ref, adv=adv, mask=mask, loss_type="dapo", epsilon_low=0.2, epsilon_high=0.28,
        beta=0.04, level=level, max_completion_length=7, num_items_in_batch=37, num_processes=2, grad_accum=2,
        steps_per_generation=4)
    ours = tg.tensor(logp, requires_grad=True)
    loss, _ = grpo_loss(ours, old, adv, mask, loss_type="dapo", epsilon_low=0.2, epsilon_high=0.28, beta=0.04,
                        ref_logp=ref, importance_sampling_level=level, num_items_in_batch=37 / 2 * 2 / 4)
    assert loss.item() == pytest.approx(want, rel=1e-12, abs=1e-14)
    loss.backward()
    np.testing.assert_allclose(ours.grad.numpy(), want_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.oracle
@pytest.mark.xfail(strict=True, reason="TRL's default use_bias_correction_kl=True multiplies the k3 term by the "
                                       "importance ratio (DeepSeek-V3.2); grpo_loss adds β·k3 unweighted")
def test_grpo_loss_kl_without_trl_bias_correction() -> None:
    """Records a known difference: with TRL's default use_bias_correction_kl=True and π_old ≠ π_θ, TRL's
    per-token KL is ratio·k3, so the losses differ. (Skipped with a TRL that has no such option.)"""
    torch = pytest.importorskip("torch")
    trl_config = pytest.importorskip("trl.trainer.grpo_config")
    if "use_bias_correction_kl" not in trl_config.GRPOConfig.__dataclass_fields__:
        pytest.skip("this TRL has no use_bias_correction_kl")
    logp, old, ref, adv, mask = _oracle_batch("token")
    want, _, _ = _trl_compute_loss(
        torch, logp=logp, old=old, ref=ref, adv=adv, mask=mask, loss_type="bnpo", epsilon_low=0.2, epsilon_high=0.28,
        beta=0.04, level="token", max_completion_length=7, num_items_in_batch=mask.sum(), use_bias_correction_kl=True)
    loss, _ = grpo_loss(tg.tensor(logp), old, adv, mask, loss_type="bnpo", epsilon_low=0.2, epsilon_high=0.28,
                        beta=0.04, ref_logp=ref)
    assert loss.item() == pytest.approx(want, rel=1e-12, abs=1e-14)
