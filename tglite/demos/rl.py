"""The reasoning lecture demos, on the models shipped with the rl package (no training needed).

    best-of-n   the small policy on level-2 problems: greedy decoding against majority voting and
                best-of-N / weighted best-of-N with the process reward model, each with its
                inference FLOPs; saves accuracy against FLOPs. 2.9 s measured in the tour on 2 shared
                cores (20 problems, N up to 8); --quick: 5 problems, N up to 4.
    grpo        a short GRPO run from the policy saved in the middle of its learning jump
                (16 problems x G=8 completions per step, levels 1 and 2, 40 steps); prints the
                reward and the held-out accuracy before and after, saves the curves, the log
                (CSV) and a checkpoint. 76 s measured in the tour on 2 shared cores; --quick: 2 steps
                of 8 x 4.

The full measurements are `tglite rl claims` and `tglite rl grpo`.
"""
from __future__ import annotations

from pathlib import Path

from ..tour import register


@register("best-of-n", folder="rl")  # tests/test_rl_cli.py reads rl/ and rl/grpo/
def best_of_n_step(out_dir: Path, quick: bool) -> str:
    import rl
    from rl.compute_study import greedy_baseline, sample_pool, selection_curves
    from rl.plots import plot_accuracy_vs_flops
    from rl.search import FlopModel

    level, n_problems, n_max = (2, 5, 4) if quick else (2, 20, 8)
    policy, _ = rl.load_shipped_policy("policy-small")
    prm = rl.load_shipped_reward_model("prm")
    problems = rl.test_set(level)[:n_problems]
    flops = FlopModel(policy.num_parameters(), prm.num_parameters())
    print(f"the shipped small policy ({policy.num_parameters():,} parameters) and PRM "
          f"({prm.num_parameters():,}) on the first {n_problems} level-{level} test problems")
    print(f"N = {n_max} samples per problem at temperature 1, drawn once; smaller N are random subsets "
          f"(3 seeds; ± is the standard error over them)")

    greedy = greedy_baseline(policy, problems, flops)
    pool = sample_pool(policy, problems, n_max, seed=0)
    pool.score("prm", prm, aggregations=("min",))  # a solution's score: its weakest step's
    ns = [n for n in (1, 2, 4, 8) if n <= n_max]
    curves = selection_curves(pool, ns, seeds=3, flops=flops)  # majority vote and the PRM (min) rules

    print(f"\n{'method':<32} {'N':>2}  {'accuracy':<15} FLOPs per problem")
    print(f"{'greedy decoding':<32} {1:>2}  {greedy['accuracy']:<15.3f} {greedy['flops']:.3g}")
    for label, curve in curves.items():
        for n, mean, err, f in zip(curve.ns, curve.mean, curve.stderr, curve.flops):
            print(f"{label:<32} {n:>2}  {f'{mean:.3f} ± {err:.3f}':<15} {f:.3g}")
    coverage = float(pool.correct.any(axis=1).mean())
    print(f"(an oracle that picks a right sample whenever there is one: {coverage:.3f} at N={n_max})")
    print("FLOPs: 2 x parameters per token generated or read; the PRM reads every sample once "
          "(majority voting needs no verifier)")

    row = {"curves": {label: {"ns": c.ns, "mean": c.mean.tolist(), "stderr": c.stderr.tolist(),
                              "flops": c.flops.tolist()} for label, c in curves.items()},
           "greedy_small": greedy}
    path = out_dir / "best_of_n.png"
    plot_accuracy_vs_flops({str(level): row}, path)
    print(f"saved {path}")
    majority = curves["majority vote"].mean[-1]
    weighted = curves["weighted best-of-N, PRM (min)"].mean[-1]
    return (f"level {level}, {n_problems} problems: greedy {greedy['accuracy']:.2f}, majority@{n_max} "
            f"{majority:.2f}, weighted PRM@{n_max} {weighted:.2f}")


@register("grpo", folder="rl/grpo")
def grpo_step(out_dir: Path, quick: bool) -> str:
    import rl
    from rl import GRPOConfig, GRPOTrainer, GRPOTrainerConfig

    from ..commands.rl import grpo_before_after, grpo_summary

    prompts, group, steps, eval_problems = (8, 4, 2, 10) if quick else (16, 8, 40, 40)
    policy, _ = rl.load_shipped_policy("policy-small-mid")
    # A short demo: a larger learning rate than the 300-step default (3e-5) so that 40 steps move the
    # reward visibly, and no reference forward (log_kl) to keep the step quick.
    config = GRPOTrainerConfig(grpo=GRPOConfig(num_generations=group), prompts_per_step=prompts, levels=(1, 2),
                               steps=steps, eval_interval=steps, eval_problems=eval_problems, save_interval=0,
                               learning_rate=1e-4, log_kl=False)
    print(f"GRPO from the shipped policy-small-mid (saved in the middle of its learning jump): {prompts} problems x "
          f"G={group} completions per step, levels 1 and 2, {steps} steps, reward 1 for a right answer, "
          f"lr {config.learning_rate:g}")
    run_dir = out_dir
    logs = GRPOTrainer(policy, config).run(run_dir, progress=True)
    print(grpo_summary(logs))
    print(f"saved {run_dir / 'grpo.png'}, {run_dir / 'grpo_log.csv'} and the checkpoint {run_dir / 'ckpt.npz'}")
    s = grpo_before_after(logs)
    return (f"{steps} steps: reward {s['reward_first']:.2f} -> {s['reward_last']:.2f} (mean of the first / last "
            f"{s['k']}), held-out accuracy {s['eval_first']['accuracy_mean']:.2f} -> "
            f"{s['eval_last']['accuracy_mean']:.2f} (±{_binomial_points(eval_problems)} points on "
            f"{eval_problems} problems a level: the mechanics, not learning; docs/rl.md has the long runs)")


def _binomial_points(n: int) -> int:
    """The standard error, in accuracy points, of a level's accuracy near 0.4 measured on n problems."""
    return round(100 * (0.4 * 0.6 / n) ** 0.5)
