"""rl: reasoning on a checkable task, reward models, test-time search and GRPO, built on nn (and lora).

    import rl
    problem = rl.test_set(level=3)[0]                      # arithmetic chains; every step checkable
    policy, _ = rl.load_shipped_policy("policy-small")      # a GPT fine-tuned on canonical solutions
    prm = rl.load_shipped_reward_model("prm")               # scores every step
    sols = rl.solve(policy, [problem], n=16)                # 16 sampled solutions
    scores = prm.score(problem.prompt, [s.completion for s in sols])
    answer = rl.weighted_best_of_n([s.verdict.answer for s in sols], [min(s) for s in scores])

The layers: task (problems and the checker) -> policy, sampling, step_sampler -> reward (ORM, PRM
and their labels) -> search (selection rules, beam search, DVTS, FLOPs) -> reward_study,
compute_study, claims (the lectures' measurements) ; grpo (the objective), rewards, grpo_trainer.
"""
from . import distributed, kl_study, plots
from .claims import ComputeClaimsConfig, claims_markdown, judge_compute_claims, run_compute_claims
from .compute_study import Pool, greedy_baseline, sample_pool, selection_curves, step_search
from .grpo import GRPOConfig, group_advantages, grpo_loss, kl_estimate, process_advantages, token_logprobs
from .grpo_trainer import GRPOTrainer, GRPOTrainerConfig, plot_logs
from .metrics import coverage_curve, pass_at_k, predicted_coverage
from .policy import PRESETS, PolicyConfig, PolicyRun, load_policy
from .reward import RewardModel, load_reward_model, monte_carlo_labels, save_reward_model, true_labels
from .reward_study import (
    RewardStudyConfig,
    aggregation_bias,
    build_reward_data,
    evaluate_reward_models,
    train_reward_models,
)
from .rewards import combine, correctness_reward, format_reward, overlong_penalty, process_reward
from .sampling import Solution, solve
from .search import (
    FlopModel,
    aggregate,
    beam_search,
    best_of_n,
    compute_optimal,
    dvts,
    evaluate_selection,
    majority_vote,
    weighted_best_of_n,
)
from .shipped import load_shipped_policy, load_shipped_reward_model
from .step_sampler import PolicyStepSampler
from .task import (
    LEVELS,
    TOKENIZER,
    Problem,
    Verdict,
    check,
    encode_examples,
    sample_problem,
    test_set,
    training_problems,
)

__all__ = [
    "LEVELS", "TOKENIZER", "Problem", "Verdict", "check", "sample_problem", "test_set", "training_problems",
    "PRESETS", "PolicyConfig", "PolicyRun", "load_policy", "Solution", "solve", "PolicyStepSampler",
    "RewardModel", "load_reward_model", "save_reward_model", "monte_carlo_labels", "true_labels",
    "FlopModel", "aggregate", "beam_search", "best_of_n", "compute_optimal", "dvts", "evaluate_selection",
    "majority_vote", "weighted_best_of_n", "pass_at_k", "coverage_curve", "predicted_coverage",
    "RewardStudyConfig", "build_reward_data", "evaluate_reward_models", "train_reward_models",
    "ComputeClaimsConfig", "run_compute_claims", "judge_compute_claims", "claims_markdown",
    "GRPOConfig", "group_advantages", "grpo_loss", "kl_estimate", "process_advantages", "token_logprobs",
    "GRPOTrainer", "GRPOTrainerConfig", "combine", "correctness_reward", "format_reward", "overlong_penalty",
    "process_reward", "load_shipped_policy", "load_shipped_reward_model", "Pool", "sample_pool", "selection_curves",
    "greedy_baseline", "step_search", "aggregation_bias", "encode_examples", "plot_logs", "kl_study", "plots",
    "distributed",
]
