"""The GRPO objective as pure functions on Tensors: log-probs, advantages, KL estimators, the loss.

Group Relative Policy Optimization (Shao et al. 2024, "DeepSeekMath: Pushing the Limits of
Mathematical Reasoning in Open Language Models", arXiv:2402.03300, §4.1) samples G completions
o_1..o_G per prompt from the old policy π_old, scores them, and replaces PPO's learned value
baseline by the group's own statistics:

    Â_i     = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps)                  (outcome supervision)
    ρ_{i,t} = π_θ(o_{i,t} | q, o_{i,<t}) / π_old(o_{i,t} | q, o_{i,<t})
    ℓ_{i,t} = -min(ρ_{i,t}·Â_i, clip(ρ_{i,t}, 1-ε_low, 1+ε_high)·Â_i) + β·KL_{i,t}

and the loss averages ℓ over the completion tokens in one of four ways (`loss_type`).

Names and defaults follow HF TRL's `GRPOConfig` (read in trl/trainer/grpo_config.py): num_generations=8,
epsilon=0.2, epsilon_high=None (= epsilon), beta=0.0, loss_type="dapo", scale_rewards="group",
importance_sampling_level="token", temperature=1.0, num_iterations=1, max_completion_length=256,
mask_truncated_completions=False. Nothing here samples or holds a model: the trainer computes
`token_logprobs` with its model and passes arrays in.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Tensor

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")
KL_ESTIMATORS = ("k1", "k2", "k3")


def _one_of(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(repr(a) for a in allowed)}")


def _constant(values: Any, like: Tensor) -> Tensor:
    """A constant (no grad) with `like`'s dtype and device, so mixed float32/float64 never promotes."""
    if isinstance(values, Tensor):
        values = values.numpy()
    return Tensor(np.asarray(values, dtype=like.dtype), device=like.device)


# ------------------------------------------------------------------------------ log-probs
def token_logprobs(logits: Tensor, tokens: Any, temperature: float = 1.0) -> Tensor:
    """log π(token) under softmax(logits / temperature), picked at each position.

        logp[b, t] = log_softmax(logits[b, t, :] / τ)[tokens[b, t]]

    The completions were sampled at temperature τ, so the ratio π_θ/π_old and the KL must be
    measured on the distribution that produced them: TRL divides the logits by the same τ before
    its log-softmax. `logits` is (..., V) and `tokens` the matching (...) integer array.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"token_logprobs: logits must be a Tensor, got {type(logits).__name__}")
    idx = np.asarray(tokens.numpy() if isinstance(tokens, Tensor) else tokens)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"token_logprobs: tokens must be integers, got dtype {idx.dtype}")
    if logits.ndim < 1 or idx.shape != logits.shape[:-1]:
        raise ValueError(f"token_logprobs: tokens of shape {idx.shape} do not match logits of shape {logits.shape} "
                         f"(expected tokens of shape {logits.shape[:-1]})")
    if not temperature > 0:
        raise ValueError(f"token_logprobs: temperature must be > 0, got {temperature}")
    scaled = logits if temperature == 1.0 else logits * (1.0 / temperature)
    logp = scaled.log_softmax(axis=-1)
    return logp.take_along_axis(idx[..., None], axis=-1).squeeze(-1)


# ------------------------------------------------------------------------------ advantages
def _check_groups(op: str, n: int, group_size: int) -> None:
    if not isinstance(group_size, (int, np.integer)) or isinstance(group_size, bool) or group_size < 2:
        raise ValueError(f"{op}: group_size must be an int >= 2 (a group of one has no baseline), got {group_size!r}")
    if n == 0 or n % group_size:
        raise ValueError(f"{op}: {n} samples cannot be split into groups of {group_size} "
                         f"(the number of samples must be a positive multiple of group_size)")


def group_advantages(rewards: Any, group_size: int, scale_rewards: str | bool = "group",
                     eps: float = 1e-4) -> tuple[np.ndarray, dict[str, Any]]:
    """Group-relative advantages of N = n_groups · group_size rewards, laid out group after group.

        Â_i = (r_i - mean_group(r)) / (s + eps)

    where s is, by `scale_rewards` (TRL's names):
      "group": the standard deviation of the reward's own group (GRPO, Shao et al. 2024);
      "batch": the standard deviation of all N rewards (TRL: "as recommended in the PPO Lite paper");
      "none":  no division, Â_i = r_i - mean_group(r) (Dr. GRPO, Liu et al. 2025, arXiv:2503.20783,
               because dividing by s up-weights questions that are almost always or never solved).
    TRL also accepts True for "group" and False for "none"; so does this function.

    Standard deviations use Bessel's correction (ddof=1): TRL calls torch's `.std()`, which is the
    unbiased estimate by default, and adds eps=1e-4 to it. A group whose rewards are all equal has
    no signal; its advantages are set to exactly 0 (the group mean of equal floats can differ from
    them by round-off, e.g. (0.1+0.1+0.1)/3 != 0.1, and 1e-17/(0+eps) would leak through).

    Returns (advantages of shape (N,), stats) with stats: reward_mean, reward_std (batch, ddof=1),
    group_mean and group_std (per group), frac_reward_zero_std (the fraction of groups whose
    rewards are all equal). TRL reports its zero-std fraction from whichever std it divided by; here
    it always counts groups, the quantity that says how many prompts gave no learning signal.
    """
    if isinstance(scale_rewards, bool):
        scale_rewards = "group" if scale_rewards else "none"
    _one_of("group_advantages: scale_rewards", scale_rewards, SCALE_REWARDS)
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"group_advantages: rewards must be 1-D (N,), got shape {r.shape}")
    _check_groups("group_advantages", r.size, group_size)
    if not np.all(np.isfinite(r)):
        raise ValueError(f"group_advantages: rewards must be finite, got {r[~np.isfinite(r)][:5]}")
    if not eps >= 0:
        raise ValueError(f"group_advantages: eps must be >= 0, got {eps}")
    grouped = r.reshape(-1, group_size)
    group_mean = grouped.mean(axis=1, keepdims=True)
    group_std = grouped.std(axis=1, ddof=1, keepdims=True)
    flat = np.all(grouped == grouped[:, :1], axis=1, keepdims=True)
    centered = np.where(flat, 0.0, grouped - group_mean)
    # Flat groups divide 0 by 1, not by their std + eps, which is 0 when eps = 0.
    if scale_rewards == "group":
        adv = centered / np.where(flat, 1.0, group_std + eps)
    elif scale_rewards == "batch":
        batch_std = r.std(ddof=1) + eps
        adv = centered / (batch_std if batch_std > 0 else 1.0)  # 0 only when every group is flat
    else:
        adv = centered
    stats = {
        "reward_mean": float(r.mean()),
        "reward_std": float(r.std(ddof=1)) if r.size > 1 else 0.0,
        "group_mean": group_mean.ravel(),
        "group_std": group_std.ravel(),
        "frac_reward_zero_std": float(flat.mean()),
    }
    return adv.ravel(), stats


def process_advantages(step_rewards: Sequence[Any], step_of_token: Sequence[Any], group_size: int,
                       eps: float = 1e-4) -> list[np.ndarray]:
    """Per-token advantages from per-step rewards (process supervision, DeepSeekMath §4.1.3).

    With R the rewards of *all* steps of *all* G completions of a group,

        r̃_{i,k} = (r_{i,k} - mean(R)) / (std(R) + eps)
        Â_{i,t} = Σ_{k >= step(t)} r̃_{i,k}

    so a token is credited with the normalized reward of its own step and of every later step of
    its completion: the reward-to-go, as in REINFORCE. (The paper sums over the steps whose end
    token index is >= t; a token's own step ends at or after it, so this is the same set.)

    `step_rewards[i]` holds one reward per step of completion i, `step_of_token[i]` the step index
    (0-based) of each of its completion tokens; completions are laid out group after group.
    std uses ddof=1 like `group_advantages` (the paper does not say which; this keeps the two
    consistent), and a group whose step rewards are all equal gets exactly zero advantages.
    Returns one float64 array per completion, shaped like `step_of_token[i]`.
    """
    n = len(step_rewards)
    if len(step_of_token) != n:
        raise ValueError(f"process_advantages: {n} step_rewards but {len(step_of_token)} step_of_token arrays")
    _check_groups("process_advantages", n, group_size)
    rewards = [np.asarray(s, dtype=np.float64).ravel() for s in step_rewards]
    steps = [np.asarray(s) for s in step_of_token]
    for i, (rw, st) in enumerate(zip(rewards, steps)):
        if rw.size == 0:
            raise ValueError(f"process_advantages: completion {i} has no step rewards (every completion needs >= 1)")
        if not np.all(np.isfinite(rw)):
            raise ValueError(f"process_advantages: completion {i} has non-finite step rewards {rw}")
        if st.size and (st.dtype.kind not in "iu" or st.min() < 0 or st.max() >= rw.size):
            raise ValueError(f"process_advantages: completion {i} has {rw.size} steps, so step_of_token must hold "
                             f"integers in [0, {rw.size}), got {st.dtype} values in [{st.min()}, {st.max()}]")
    out: list[np.ndarray] = []
    for g in range(0, n, group_size):
        members = range(g, g + group_size)
        pooled = np.concatenate([rewards[i] for i in members])
        mean, std = pooled.mean(), pooled.std(ddof=1)
        flat = bool(np.all(pooled == pooled[0]))
        for i in members:
            normalized = np.zeros_like(rewards[i]) if flat else (rewards[i] - mean) / (std + eps)
            to_go = np.cumsum(normalized[::-1])[::-1]  # to_go[k] = Σ_{k' >= k} r̃_{k'}
            out.append(to_go[steps[i]].astype(np.float64))
    return out


# ------------------------------------------------------------------------------ KL estimators
def kl_estimate(logp: Tensor, ref_logp: Any, kind: str = "k3") -> Tensor:
    """Per-token estimate of KL(π_θ‖π_ref) from a token x sampled from π_θ (Schulman 2020,
    "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html). With r = log π_ref(x) - log π_θ(x):

        k1 = -r                 unbiased, but negative for about half the samples: high variance
        k2 = ½ r²               biased (E[k2] is an f-divergence that matches KL to second order), >= 0
        k3 = exp(r) - r - 1     unbiased (E_π[exp(r)] = 1 adds a zero-mean control variate to k1), >= 0

    GRPO (and TRL) add β·k3 to the loss. Unbiased *values* do not mean unbiased *gradients*: see
    rl/kl_study.py, where k3 in the loss turns out to follow ∇KL(π_ref‖π_θ), the other direction.
    """
    _one_of("kl_estimate: kind", kind, KL_ESTIMATORS)
    if not isinstance(logp, Tensor):
        raise TypeError(f"kl_estimate: logp must be a Tensor, got {type(logp).__name__}")
    ref = ref_logp if isinstance(ref_logp, Tensor) else _constant(ref_logp, logp)
    if ref.shape != logp.shape:
        raise ValueError(f"kl_estimate: ref_logp has shape {ref.shape}, logp {logp.shape}")
    r = ref - logp
    if kind == "k1":
        return -r
    if kind == "k2":
        return 0.5 * (r * r)
    return r.exp() - r - 1.0


# ------------------------------------------------------------------------------ the loss
def _as_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(mask.numpy() if isinstance(mask, Tensor) else mask)
    if m.shape != shape:
        raise ValueError(f"grpo_loss: mask has shape {m.shape}, logp {shape}")
    if m.dtype != np.bool_:
        if not np.all((m == 0) | (m == 1)):
            raise ValueError(f"grpo_loss: mask must be bool (or 0/1), got values {np.unique(m)[:5]}")
        m = m.astype(bool)
    return m


def _masked_input(name: str, values: Any, mask: np.ndarray) -> np.ndarray:
    """A (B, T) array whose padding entries are replaced by 0: padding may hold anything (nan, -inf)."""
    v = np.asarray(values.numpy() if isinstance(values, Tensor) else values, dtype=np.float64)
    if v.shape != mask.shape:
        raise ValueError(f"grpo_loss: {name} has shape {v.shape}, logp {mask.shape}")
    if not np.all(np.isfinite(v[mask])):
        raise ValueError(f"grpo_loss: {name} is not finite at some completion tokens (mask True)")
    return np.where(mask, v, 0.0)


def grpo_loss(
    logp: Tensor,
    old_logp: Any,
    advantages: Any,
    mask: Any,
    *,
    loss_type: str = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logp: Any = None,
    kl_estimator: str = "k3",
    importance_sampling_level: str = "token",
    max_completion_length: int | None = None,
    num_items_in_batch: float | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The clipped GRPO surrogate, normalized as `loss_type` says; returns (loss, metrics).

    logp (B, T) Tensor: log π_θ of the completion tokens (differentiable, from `token_logprobs`).
    old_logp (B, T): log π_old of the same tokens, held constant; None means π_old = π_θ (logp
    detached), the first of `num_iterations` inner steps, which is what TRL does when μ = 1.
    advantages (B,) or (B, T); mask (B, T) bool, True at completion tokens (padding may hold nan).

    Importance ratio, by `importance_sampling_level`:
      "token":    ρ_{i,t} = exp(logp - old_logp)                                   (GRPO / PPO)
      "sequence": ρ_i = exp(mean_t (logp - old_logp)) over the sequence's tokens, the same for
                  every token of it (GSPO, Zheng et al. 2025, arXiv:2507.18071: the length-normalized
                  sequence likelihood ratio, so one noisy token cannot swing the whole update).
    Per-token loss: ℓ = -min(ρ·Â, clip(ρ, 1-ε_low, 1+ε_high)·Â) + β·k(logp, ref_logp), the KL
    estimator k (default k3) added to the loss as GRPO does (not subtracted from the reward as PPO-RLHF).

    Normalization, by `loss_type` (TRL's names; S_i the masked tokens of sequence i, L = max_completion_length):
      "grpo":    (1/B) Σ_i (1/|S_i|) Σ_{t∈S_i} ℓ_{i,t}   each sequence weighs the same: a short
                 sequence's tokens weigh more (the length bias Dr. GRPO points out)
      "bnpo":    Σ ℓ / Σ_i |S_i|                           mean over the tokens of this batch
      "dr_grpo": Σ ℓ / (B · L)                             a constant (Liu et al. 2025); L defaults to T
      "dapo":    Σ ℓ / num_items_in_batch                  token-level mean over the *global* batch (Yu et
                 al. 2025, DAPO, arXiv:2503.14476). In one process and one accumulation step that count
                 is Σ_i |S_i| and dapo equals bnpo (the default when num_items_in_batch is None). Pass the
                 token count of all gradient-accumulation micro-batches so every token weighs the same
                 whatever micro-batch it fell in; with data parallelism whose all-reduce averages
                 gradients, pass the global count divided by the number of processes (as TRL does).

    Metrics (floats): clip_frac_low (ρ < 1-ε_low with Â < 0: the clipped branch is active and its
    gradient is 0), clip_frac_high (ρ > 1+ε_high with Â > 0), clip_frac_region (either), each a
    fraction of the masked tokens; ratio_mean (over masked tokens); kl (masked mean of the per-token
    estimate, whenever ref_logp is given); num_tokens.
    """
    if not isinstance(logp, Tensor):
        raise TypeError(f"grpo_loss: logp must be a Tensor, got {type(logp).__name__}")
    if logp.ndim != 2:
        raise ValueError(f"grpo_loss: logp must be (B, T), got shape {logp.shape}")
    _one_of("grpo_loss: loss_type", loss_type, LOSS_TYPES)
    _one_of("grpo_loss: importance_sampling_level", importance_sampling_level, IMPORTANCE_SAMPLING_LEVELS)
    _one_of("grpo_loss: kl_estimator", kl_estimator, KL_ESTIMATORS)
    eps_high = epsilon_low if epsilon_high is None else epsilon_high
    if not 0 <= epsilon_low < 1:
        raise ValueError(f"grpo_loss: epsilon_low must lie in [0, 1) so that 1 - epsilon_low > 0, got {epsilon_low}")
    if not eps_high >= 0:
        raise ValueError(f"grpo_loss: epsilon_high must be >= 0, got {eps_high}")
    if not beta >= 0:
        raise ValueError(f"grpo_loss: beta must be >= 0, got {beta}")
    if beta > 0 and ref_logp is None:
        raise ValueError(f"grpo_loss: beta={beta} > 0 needs ref_logp (the reference policy's log-probs)")
    B, T = logp.shape
    m = _as_mask(mask, logp.shape)
    counts = m.sum(axis=1)

    adv = np.asarray(advantages.numpy() if isinstance(advantages, Tensor) else advantages, dtype=np.float64)
    if adv.shape == (B,):
        adv = np.broadcast_to(adv[:, None], (B, T))
    elif adv.shape != (B, T):
        raise ValueError(f"grpo_loss: advantages must be ({B},) or ({B}, {T}), got shape {adv.shape}")
    adv = np.where(m, adv, 0.0)
    if not np.all(np.isfinite(adv)):
        raise ValueError("grpo_loss: advantages are not finite at some completion tokens")

    # Padding positions are zeroed before anything is exponentiated, so a nan or -inf stored there
    # cannot reach the loss or its gradient (0 · nan would still be nan).
    old = logp.detach() if old_logp is None else _constant(_masked_input("old_logp", old_logp, m), logp)
    log_ratio = tg.where(m, logp - old, 0.0)
    if importance_sampling_level == "sequence":
        seq_log_ratio = log_ratio.sum(axis=-1, keepdims=True) * _constant(1.0 / np.maximum(counts, 1)[:, None], logp)
        log_ratio = seq_log_ratio.expand(B, T)
    ratio = log_ratio.exp()

    A = _constant(adv, logp)
    unclipped = ratio * A
    clipped = ratio.clip(1.0 - epsilon_low, 1.0 + eps_high) * A
    per_token = -tg.minimum(unclipped, clipped)

    kl = None
    if ref_logp is not None:
        ref = _constant(_masked_input("ref_logp", ref_logp, m), logp)
        kl = tg.where(m, kl_estimate(logp, ref, kl_estimator), 0.0)
        if beta > 0:
            per_token = per_token + beta * kl

    mask_t = _constant(m, logp)
    total = (per_token * mask_t).sum()
    if loss_type == "grpo":
        per_seq = (per_token * mask_t).sum(axis=-1) * _constant(1.0 / np.maximum(counts, 1), logp)
        loss = per_seq.mean()
    elif loss_type == "bnpo":
        loss = total * (1.0 / max(int(counts.sum()), 1))
    elif loss_type == "dr_grpo":
        L = T if max_completion_length is None else max_completion_length
        if not isinstance(L, (int, np.integer)) or L < 1:
            raise ValueError(f"grpo_loss: max_completion_length must be a positive int, got {L!r}")
        if counts.max(initial=0) > L:
            raise ValueError(f"grpo_loss: a sequence has {counts.max()} completion tokens, more than "
                             f"max_completion_length={L}")
        loss = total * (1.0 / (B * L))
    else:  # dapo
        denom = float(counts.sum()) if num_items_in_batch is None else float(num_items_in_batch)
        if num_items_in_batch is not None and not denom > 0:
            raise ValueError(f"grpo_loss: num_items_in_batch must be > 0, got {num_items_in_batch}")
        loss = total * (1.0 / max(denom, 1.0))

    metrics = _metrics(ratio.numpy(), adv, m, epsilon_low, eps_high, None if kl is None else kl.numpy())
    return loss, metrics


def _metrics(ratio: np.ndarray, adv: np.ndarray, m: np.ndarray, eps_low: float, eps_high: float,
             kl: np.ndarray | None) -> dict[str, float]:
    """Clip fractions count a token only when clipping changes the gradient: the min picks the
    clipped branch and the clip is flat there. That needs the ratio outside the range *on the side
    the advantage pushes toward* (TRL's is_low_clipped / is_high_clipped)."""
    n = max(int(m.sum()), 1)
    low = (ratio < 1.0 - eps_low) & (adv < 0) & m
    high = (ratio > 1.0 + eps_high) & (adv > 0) & m
    out = {
        "clip_frac_low": float(low.sum() / n),
        "clip_frac_high": float(high.sum() / n),
        "clip_frac_region": float((low | high).sum() / n),
        "ratio_mean": float(ratio[m].mean()) if m.any() else 1.0,
        "num_tokens": float(m.sum()),
    }
    if kl is not None:
        out["kl"] = float(kl[m].mean()) if m.any() else 0.0
    return out


# ------------------------------------------------------------------------------ configuration
@dataclass
class GRPOConfig:
    """The GRPO options, with TRL's names and defaults (TRL's GRPOConfig docs):

    num_generations G=8 completions per prompt; epsilon ε=0.2 (lower clip); epsilon_high (None: = epsilon;
    DAPO recommends 0.28); beta β=0.0 (no KL term and no reference model; DeepSeek-R1 used 0.001);
    loss_type "dapo"; scale_rewards "group"; importance_sampling_level "token"; temperature 1.0;
    num_iterations μ=1 (policy updates per generated batch; with μ=1, π_old = π_θ at every step);
    max_completion_length 256; mask_truncated_completions False (DAPO: drop completions that hit the
    length limit from the loss). kl_estimator is ours: TRL always uses k3.
    """

    num_generations: int = 8
    epsilon: float = 0.2
    epsilon_high: float | None = None
    beta: float = 0.0
    loss_type: str = "dapo"
    scale_rewards: str | bool = "group"
    importance_sampling_level: str = "token"
    temperature: float = 1.0
    num_iterations: int = 1
    max_completion_length: int = 256
    mask_truncated_completions: bool = False
    kl_estimator: str = "k3"

    def __post_init__(self) -> None:
        if isinstance(self.scale_rewards, bool):  # TRL accepts True / False for "group" / "none"
            self.scale_rewards = "group" if self.scale_rewards else "none"
        _one_of("GRPOConfig.loss_type", self.loss_type, LOSS_TYPES)
        _one_of("GRPOConfig.scale_rewards", self.scale_rewards, SCALE_REWARDS)
        _one_of("GRPOConfig.importance_sampling_level", self.importance_sampling_level, IMPORTANCE_SAMPLING_LEVELS)
        _one_of("GRPOConfig.kl_estimator", self.kl_estimator, KL_ESTIMATORS)
        for name, low in (("num_generations", 2), ("num_iterations", 1), ("max_completion_length", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"GRPOConfig.{name}: {value!r} is not an int >= {low}")
        if not (isinstance(self.epsilon, (int, float)) and 0 <= self.epsilon < 1):
            raise ValueError(f"GRPOConfig.epsilon: {self.epsilon!r} is not in [0, 1) (the lower clip is 1 - epsilon)")
        high = self.epsilon_high
        if high is not None and not (isinstance(high, (int, float)) and high >= 0):
            raise ValueError(f"GRPOConfig.epsilon_high: {self.epsilon_high!r} is not None or a number >= 0")
        if not (isinstance(self.beta, (int, float)) and self.beta >= 0):
            raise ValueError(f"GRPOConfig.beta: {self.beta!r} is not a number >= 0")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError(f"GRPOConfig.temperature: {self.temperature!r} is not a number > 0")
        if not isinstance(self.mask_truncated_completions, bool):
            raise ValueError(f"GRPOConfig.mask_truncated_completions: {self.mask_truncated_completions!r} "
                             f"is not a bool")

    def loss_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `grpo_loss` that this config fixes."""
        return {
            "loss_type": self.loss_type, "epsilon_low": self.epsilon, "epsilon_high": self.epsilon_high,
            "beta": self.beta, "kl_estimator": self.kl_estimator,
            "importance_sampling_level": self.importance_sampling_level,
            "max_completion_length": self.max_completion_length,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
