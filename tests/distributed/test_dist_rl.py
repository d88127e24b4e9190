"""rl across ranks: sampling shards, and group normalization over whole groups."""
from __future__ import annotations

import numpy as np
import pytest

from nn.distributed import launched_by_mpi

if not launched_by_mpi():
    pytest.skip("data-parallel tests run in their own CI step, under mpiexec: "
                "mpiexec -n 2 python -m pytest tests/distributed -m mpi (see .ci/run)", allow_module_level=True)

import rl  # noqa: E402
from rl.distributed import (  # noqa: E402
    gather_groups,
    group_advantages_across_ranks,
    samples_per_rank,
    select_across_ranks,
    solve_shard,
)

pytestmark = pytest.mark.mpi
GROUP = 4  # samples per prompt in all; 2 per rank
# The whole batch: 3 groups of 4 rewards. Rank r holds columns 2r, 2r+1 of each group.
WHOLE = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_see_whole_groups(comm, scale):
    mine = WHOLE[:, 2 * comm.rank : 2 * comm.rank + 2].ravel()
    adv, stats = group_advantages_across_ranks(mine, GROUP, comm, scale_rewards=scale)
    full, full_stats = rl.group_advantages(WHOLE.ravel(), GROUP, scale_rewards=scale)
    assert np.allclose(adv, full.reshape(3, 4)[:, 2 * comm.rank : 2 * comm.rank + 2].ravel(), rtol=0, atol=1e-15)
    assert stats["frac_reward_zero_std"] == full_stats["frac_reward_zero_std"] == pytest.approx(1 / 3)
    if scale != "batch":  # normalizing each rank's half-groups alone would give other advantages
        alone, _ = rl.group_advantages(mine, 2, scale_rewards=scale)
        assert not np.allclose(alone, adv)
    assert np.array_equal(gather_groups(mine, GROUP, comm), WHOLE)


def test_uneven_groups_are_refused(comm):
    with pytest.raises(ValueError, match="a group of 3 samples does not split evenly over 2 ranks"):
        samples_per_rank(3, comm)


def test_best_of_n_selects_over_every_ranks_samples(comm):
    # problem 0: rank 1 holds the best-scored answer; problem 1: the majority is split over ranks
    answers = [[7, 8], [3, None]] if comm.rank == 0 else [[9, 8], [3, 5]]
    scores = [[0.1, 0.2], [0.5, 0.5]] if comm.rank == 0 else [[0.9, 0.3], [0.1, 0.1]]
    assert select_across_ranks(answers, scores, "best_of_n", comm) == [9, 3]
    assert select_across_ranks(answers, None, "majority", comm) == [8, 3]


def test_sampling_shards_differ_by_rank_and_repeat(comm):
    policy, _ = rl.load_shipped_policy("policy-small")
    problems = rl.test_set(level=2)[:2]
    mine = solve_shard(policy, problems, n=GROUP, comm=comm, seed=3)
    assert len(mine) == 2 * samples_per_rank(GROUP, comm)
    texts = [s.completion for s in mine]
    assert texts == [s.completion for s in solve_shard(policy, problems, n=GROUP, comm=comm, seed=3)]
    everyone = comm.all_gather_object(texts)
    assert everyone[0] != everyone[1]  # each rank its own samples, not copies
