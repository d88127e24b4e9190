"""Where the KL estimate enters matters: exact gradients of every (estimator, placement) pair.

The objective is to keep π_θ close to π_ref by minimizing KL(π_θ‖π_ref) = E_{x~π_θ}[log π_θ(x) - log π_ref(x)].
It cannot be computed over all completions, so trainers estimate it per sampled token with one of
Schulman's estimators (2020, "Approximating KL Divergence"), writing r = log π_ref(x) - log π_θ(x):

    k1 = -r,   k2 = ½ r²,   k3 = exp(r) - r - 1.

and then put the estimate in one of two places:

  in the loss (GRPO, TRL): add β·k(x) to the loss and backpropagate through it, the samples held
      fixed. The expected update is E_{x~π}[∇_θ k(x)], the *pathwise* part only.
  in the reward (PPO-style RLHF): subtract β·k(x) from the reward, k detached, so that the policy
      gradient (REINFORCE) sees it. The expected update of the penalty is E_{x~π}[k(x) ∇_θ log π(x)],
      the *score-function* part only.

The true gradient has both parts, ∇E_π[k] = E_π[∇k] + E_π[k ∇log π], and neither placement keeps
both. Which one survives decides what is being minimized. Derivation (d = log π - log π_ref = -r,
and E_π[∇log π] = Σ_x ∇π(x) = ∇1 = 0):

    exact       ∇KL(π‖ref) = E_π[d ∇log π] + E_π[∇log π] = E_π[d ∇log π]
    k1 in loss  ∇k1 = ∇log π                       -> E_π[∇log π] = 0: no pull toward ref at all
    k2 in loss  ∇k2 = r ∇r = d ∇log π              -> E_π[d ∇log π] = ∇KL(π‖ref): unbiased
                (per sample it *is* k1 ∇log π, the k1-in-reward term)
    k3 in loss  ∇k3 = (e^r - 1) ∇r = (1 - π_ref/π) ∇log π
                -> E_π[∇log π] - Σ_x π_ref ∇log π = -E_ref[∇log π] = ∇KL(π_ref‖π): the *forward* KL,
                   the other direction; biased for the stated reverse KL (they agree only at π = ref)
    k1 in reward E_π[d ∇log π] = ∇KL(π‖ref): unbiased (the pathwise part E[∇k1] is 0 anyway)
    k2 in reward E_π[½ d² ∇log π]: the gradient of nothing we asked for; biased
    k3 in reward E_π[(π_ref/π - 1 + d) ∇log π] = ∇KL(π‖ref) - ∇KL(π_ref‖π): biased

For a softmax policy over V outcomes, ∇_θ log π(x) = e_x - π, so E_π[c(x) ∇log π(x)] = π ⊙ (c - E_π c)
for any per-outcome cost c, and ∇KL(π_ref‖π) = π - π_ref. `analytic_gradient` writes these out;
`kl_placement_table` computes every expectation instead by enumerating x with the engine's autograd,
and (optionally) by Monte Carlo, so the two can be compared. The findings agree with Shah et al.
(2025, "A Comedy of Estimators: On KL Regularization in RL Training of LLMs", arXiv:2512.21852):
k1 in the reward is unbiased, k1 in the loss and k3 in the reward are biased.

`kl_estimator_samples` is the other half of the lecture (claim 3): the *values* of k1 and k3 are
both unbiased for KL, k3 is never negative, and it has lower variance when π is close to ref.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import tinygrad_lite as tg

from .grpo import KL_ESTIMATORS, kl_estimate

PLACEMENTS = ("loss", "reward")

# A default toy problem: five outcomes, the policy visibly different from the reference.
DEFAULT_THETA = np.array([0.5, -0.3, 1.2, 0.0, -1.0])
DEFAULT_REF_LOGITS = np.array([0.0, 0.4, -0.2, 0.8, -0.5])

# What each expected gradient equals, from the derivation in the module docstring.
EQUALS = {
    ("k1", "loss"): "0",
    ("k2", "loss"): "grad KL(pi||ref)",
    ("k3", "loss"): "grad KL(ref||pi)",
    ("k1", "reward"): "grad KL(pi||ref)",
    ("k2", "reward"): "E[k2 grad log pi]",
    ("k3", "reward"): "grad KL(pi||ref) - grad KL(ref||pi)",
}


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """log-probabilities of a 1-D array of logits, by the engine's log_softmax."""
    return tg.tensor(z).log_softmax(axis=-1).numpy()


def _check_logits(theta: Any, ref_logits: Any) -> tuple[np.ndarray, np.ndarray]:
    th = np.asarray(theta, dtype=np.float64)
    ref = np.asarray(ref_logits, dtype=np.float64)
    if th.ndim != 1 or th.shape != ref.shape or th.size < 2:
        raise ValueError(f"kl study: theta and ref_logits must be 1-D of one length >= 2, got shapes {th.shape} "
                         f"and {ref.shape}")
    return th, ref


def exact_kl(theta: Any, ref_logits: Any) -> float:
    """KL(softmax(θ)‖softmax(ref_logits)) = Σ_x π(x) (log π(x) - log π_ref(x)), by enumeration."""
    th, ref = _check_logits(theta, ref_logits)
    logp, logq = _log_softmax(th), _log_softmax(ref)
    return float(np.sum(np.exp(logp) * (logp - logq)))


def analytic_gradient(theta: Any, ref_logits: Any, estimator: str | None, placement: str | None) -> np.ndarray:
    """Closed forms for a softmax policy (see the module docstring); estimator=None gives ∇KL(π‖ref)."""
    th, ref = _check_logits(theta, ref_logits)
    logp, logq = _log_softmax(th), _log_softmax(ref)
    p, q = np.exp(logp), np.exp(logq)
    d = logp - logq

    def score(c: np.ndarray) -> np.ndarray:  # E_π[c(x) ∇_θ log π(x)] = π ⊙ (c - E_π c)
        return p * (c - p @ c)

    reverse = score(d)  # ∇KL(π‖ref)
    forward = p - q  # ∇KL(ref‖π) = -E_ref[e_x - π]
    if estimator is None:
        return reverse
    table = {
        ("k1", "loss"): np.zeros_like(p),
        ("k2", "loss"): reverse,
        ("k3", "loss"): forward,
        ("k1", "reward"): reverse,
        ("k2", "reward"): score(0.5 * d * d),
        ("k3", "reward"): reverse - forward,
    }
    if (estimator, placement) not in table:
        raise ValueError(f"analytic_gradient: unknown estimator/placement {estimator!r}/{placement!r}; "
                         f"estimators {KL_ESTIMATORS}, placements {PLACEMENTS}")
    return table[(estimator, placement)]


def _per_outcome_gradients(th: np.ndarray, logq: np.ndarray, estimator: str, placement: str) -> np.ndarray:
    """G[x] = the gradient one sample x contributes, by the engine's autograd (one backward per x):
    ∇_θ k(x) in the loss, k(x)·∇_θ log π(x) (k detached) in the reward."""
    grads = np.zeros((th.size, th.size))
    for x in range(th.size):
        theta = tg.tensor(th, requires_grad=True)
        logp = theta.log_softmax(axis=-1)
        k = kl_estimate(logp, logq, estimator)
        if placement == "loss":
            objective = k[x]
        else:
            objective = logp[x] * float(k.numpy()[x])  # k as a fixed reward weight: only ∇log π flows
        (g,) = tg.grad(objective, [theta])
        grads[x] = g.numpy()
    return grads


def _exact_reverse_kl_gradient(th: np.ndarray, logq: np.ndarray) -> np.ndarray:
    """∇_θ Σ_x π(x)(log π(x) - log π_ref(x)), everything differentiated: the ground truth."""
    theta = tg.tensor(th, requires_grad=True)
    logp = theta.log_softmax(axis=-1)
    kl = (logp.exp() * (logp - tg.tensor(logq))).sum()
    (g,) = tg.grad(kl, [theta])
    return g.numpy()


def sample_outcomes(theta: Any, n_samples: int, seed: int = 0) -> np.ndarray:
    """n_samples draws x ~ softmax(θ), by inverting the CDF at uniforms from the engine's seeded Generator."""
    th = np.asarray(theta, dtype=np.float64)
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"sample_outcomes: n_samples must be a positive int, got {n_samples!r}")
    p = np.exp(_log_softmax(th))
    u = tg.Generator(seed).uniform((int(n_samples),), np.dtype(np.float64))
    return np.minimum(np.searchsorted(np.cumsum(p), u, side="right"), th.size - 1)


def kl_placement_table(theta: Any = DEFAULT_THETA, ref_logits: Any = DEFAULT_REF_LOGITS, n_samples: int = 0,
                       seed: int = 0) -> list[dict[str, Any]]:
    """One row per (estimator, placement): the expected gradient of the KL penalty (the direction
    the update *descends*) computed exactly by enumerating the outcomes x, against the exact ∇KL(π‖ref).

    Row keys: estimator, placement, equals (what the derivation says it is), expected_grad,
    exact_grad, analytic_grad (closed form), bias (expected - exact), bias_norm, relative_bias
    (bias_norm / ‖exact‖), cosine (with the exact gradient; nan for a zero vector), unbiased
    (relative_bias < 1e-9). With n_samples > 0 also mc_grad (the mean over n_samples draws x ~ π)
    and mc_stderr (its per-coordinate standard error).
    """
    th, ref = _check_logits(theta, ref_logits)
    logq = _log_softmax(ref)
    p = np.exp(_log_softmax(th))
    exact = _exact_reverse_kl_gradient(th, logq)
    samples = sample_outcomes(th, n_samples, seed) if n_samples else None
    rows = []
    for placement in PLACEMENTS:
        for estimator in KL_ESTIMATORS:
            per_x = _per_outcome_gradients(th, logq, estimator, placement)
            expected = p @ per_x  # E_{x~π}[G[x]]
            bias = expected - exact
            norm_e, norm_x = np.linalg.norm(expected), np.linalg.norm(exact)
            row: dict[str, Any] = {
                "estimator": estimator,
                "placement": placement,
                "equals": EQUALS[(estimator, placement)],
                "expected_grad": expected,
                "exact_grad": exact,
                "analytic_grad": analytic_gradient(th, ref, estimator, placement),
                "bias": bias,
                "bias_norm": float(np.linalg.norm(bias)),
                "relative_bias": float(np.linalg.norm(bias) / norm_x),
                "cosine": float(expected @ exact / (norm_e * norm_x)) if norm_e > 0 else float("nan"),
            }
            row["unbiased"] = row["relative_bias"] < 1e-9
            if samples is not None:
                draws = per_x[samples]  # (n_samples, V): the gradient each sampled x contributes
                row["mc_grad"] = draws.mean(axis=0)
                spread = draws.std(axis=0, ddof=1) if len(samples) > 1 else np.full(th.size, np.nan)
                row["mc_stderr"] = spread / np.sqrt(len(samples))
            rows.append(row)
    return rows


def kl_estimator_samples(logp: Any, ref_logp: Any, true_kl: float | None = None) -> dict[str, Any]:
    """Per-sample k1, k2, k3 from log-probs of samples x ~ π under π (`logp`) and under π_ref
    (`ref_logp`), any shape (tokens of a real policy, or draws from a toy one), with summary stats.

    Returns {"values": {"k1": array, "k2": ..., "k3": ...}, "summary": [row per estimator]}, each
    row: estimator, mean, std, stderr (std/√n), frac_negative, min, max, and bias = mean - true_kl
    when true_kl is given. If the samples come from π, the means of k1 and k3 estimate KL(π‖ref)
    without bias (k2's does not, though it is close when π ≈ ref); k3 and k2 are never negative.
    """
    lp = np.asarray(logp, dtype=np.float64).ravel()
    rl = np.asarray(ref_logp, dtype=np.float64).ravel()
    if lp.shape != rl.shape or lp.size == 0:
        raise ValueError(f"kl_estimator_samples: logp ({lp.size} values) and ref_logp ({rl.size}) must be "
                         f"non-empty and of one size")
    if not (np.all(np.isfinite(lp)) and np.all(np.isfinite(rl))):
        raise ValueError("kl_estimator_samples: logp and ref_logp must be finite")
    values = {k: kl_estimate(tg.tensor(lp), rl, k).numpy() for k in KL_ESTIMATORS}
    summary = []
    for k, v in values.items():
        row: dict[str, Any] = {
            "estimator": k,
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "frac_negative": float(np.mean(v < 0)),
            "min": float(v.min()),
            "max": float(v.max()),
        }
        row["stderr"] = float(row["std"] / np.sqrt(v.size))
        if true_kl is not None:
            row["bias"] = row["mean"] - float(true_kl)
        summary.append(row)
    return {"values": values, "summary": summary}


def toy_policy_samples(theta: Any = DEFAULT_THETA, ref_logits: Any = DEFAULT_REF_LOGITS, n_samples: int = 10_000,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """(log π(x), log π_ref(x), exact KL(π‖ref)) for n_samples draws x ~ π of the toy categorical
    policy: the input `kl_estimator_samples` takes, from a source whose true KL is known."""
    th, ref = _check_logits(theta, ref_logits)
    x = sample_outcomes(th, n_samples, seed)
    return _log_softmax(th)[x], _log_softmax(ref)[x], exact_kl(th, ref)
