"""GRPOTrainer on 2 ranks: each samples half of every group; the result equals one process that drew the
same completions (whole-group advantages, "dapo" normalized over the global batch, averaged gradients)."""
from __future__ import annotations

import numpy as np
import pytest
from launch import nested_mpiexec

from nn.distributed import launched_by_mpi

if not launched_by_mpi():
    pytest.skip("data-parallel tests run in their own CI step, under mpiexec: "
                "mpiexec -n 2 python -m pytest tests/distributed -m mpi (see .ci/run)", allow_module_level=True)

import rl.grpo_trainer as grpo_trainer  # noqa: E402
import tinygrad_lite as tg  # noqa: E402
from nn import GPT, GPTConfig  # noqa: E402
from nn.distributed import LocalCommunicator  # noqa: E402
from rl import TOKENIZER, GRPOConfig, GRPOTrainer, GRPOTrainerConfig, Solution, check  # noqa: E402
from rl.task import max_sequence_length  # noqa: E402

pytestmark = pytest.mark.mpi
G = 4


def scripted_solve(rank: int, k: int):
    """A stand-in for rl.solve: sample j of a problem (j = rank·k + i over the ranks) is the canonical
    solution or a wrong answer, by a fixed rule, so one process and 2 ranks see the same completions."""
    def solve(model, problems, n, temperature=1.0, generator=None, **kw):  # noqa: ANN001, ANN202
        assert n == k
        out = []
        for p in problems:
            for i in range(k):
                j = rank * k + i
                text = p.solution if (j + p.start) % 3 else p.solution.replace(f"A:{p.answer}$", f"A:{p.answer + 1}$")
                out.append(Solution(p, text, np.zeros(len(TOKENIZER.encode(text))), check(p, text)))
        return out
    return solve


def trainer(comm, loss_type: str) -> GRPOTrainer:
    config = GPTConfig(block_size=max_sequence_length(2), vocab_size=TOKENIZER.vocab_size, n_layer=1, n_head=2,
                       n_embd=16, dropout=0.0)
    policy = GPT(config, dtype="float64", generator=tg.Generator(0))
    c = GRPOTrainerConfig(grpo=GRPOConfig(num_generations=G, loss_type=loss_type), learning_rate=1e-2, levels=(1, 2),
                          prompts_per_step=3, steps=2, eval_interval=0, log_kl=False, micro_batch_size=4)
    return GRPOTrainer(policy, c, comm=comm)


@pytest.mark.parametrize("loss_type", ["dapo", "grpo"])
def test_two_ranks_equal_one_process(comm, monkeypatch, loss_type):
    monkeypatch.setattr(grpo_trainer, "solve", scripted_solve(comm.rank, G // comm.world_size))
    two = trainer(comm, loss_type)
    two.run()
    monkeypatch.setattr(grpo_trainer, "solve", scripted_solve(0, G))
    one = trainer(LocalCommunicator(), loss_type)
    one.run()
    for p, q in zip(two.policy.parameters(), one.policy.parameters()):
        assert np.abs(p.numpy() - q.numpy()).max() <= 1e-12
    assert max(np.abs(p.numpy() - q.numpy()).max() for p, q in
               zip(two.policy.parameters(), trainer(LocalCommunicator(), loss_type).policy.parameters())) > 1e-4
    for a, b in zip(two.logs, one.logs):
        assert a["reward"] == b["reward"] and a["frac_reward_zero_std"] == b["frac_reward_zero_std"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-12)
    assert len(two.last_rollouts.problems) == 3 * G // comm.world_size  # each rank holds half of each group


def test_process_rewards_are_refused_across_ranks(comm):
    config = GPTConfig(block_size=max_sequence_length(2), vocab_size=TOKENIZER.vocab_size, n_layer=1, n_head=2,
                       n_embd=16, dropout=0.0)
    c = GRPOTrainerConfig(grpo=GRPOConfig(num_generations=G), levels=(1, 2), process_rewards="checker")
    with pytest.raises(ValueError, match="not supported across 2 ranks"):
        GRPOTrainer(GPT(config, dtype="float64"), c, comm=comm)


def test_tglite_rl_grpo_under_mpiexec(comm, shared_tmp):
    """`tglite rl grpo` unchanged under `mpiexec -n 2`: one voice, one run folder, resumable."""
    import subprocess

    if comm.rank == 0:
        out = shared_tmp / "grpo"
        command, env = nested_mpiexec("-m", "tglite", "rl", "grpo", "--out", str(out), "--no-progress",
                                      "prompts_per_step=2", "grpo.num_generations=4", "eval_interval=0",
                                      TGLITE_DIST_TIMEOUT="60")
        done = subprocess.run([*command, "steps=1"], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("2 ranks x 2 completions") == 1 and (out / "ckpt.npz").is_file()
        again = subprocess.run([*command[:-3], "--resume", "steps=2"], env=env, capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("resumed") == 1
        assert len((out / "grpo_log.csv").read_text().strip().splitlines()) == 1 + 2  # header, steps 1 and 2
    comm.barrier()
