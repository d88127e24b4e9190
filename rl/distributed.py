"""Sampling across data-parallel ranks: best-of-N and GRPO rollouts, split over nn.distributed's ranks.

Each rank samples group_size / world_size completions of every prompt, with its own generator
(seeded from the run seed and the rank), so the ranks draw different samples and a run is
reproducible. Selection (best-of-N) and group normalization (GRPO) need whole groups, so the
rewards are gathered first: every rank sees the group's group_size rewards, computes the same
advantages, and keeps its own share.

    comm = nn.distributed.get_communicator()
    mine = rl.distributed.solve_shard(policy, problems, n=16, comm=comm, seed=0)    # 16 / N each
    rewards = [correctness_reward(s) for s in mine]                                 # local rewards
    adv, stats = rl.distributed.group_advantages_across_ranks(rewards, 16, comm)    # whole groups

Layout: a rank's samples are laid out problem after problem (its k = group_size / world_size samples
of problem 0, then of problem 1, ...); a whole group is rank 0's k samples, then rank 1's, and so on.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import tinygrad_lite as tg
from nn import GPT
from nn.distributed import Communicator, rank_seed

from .grpo import group_advantages
from .sampling import Solution, solve
from .search import Answer, Selection, select_answer


def samples_per_rank(group_size: int, comm: Communicator) -> int:
    """group_size / world_size: how many samples of each prompt this rank draws."""
    if group_size < 1 or group_size % comm.world_size:
        raise ValueError(f"a group of {group_size} samples does not split evenly over {comm.world_size} ranks; "
                         f"use a multiple of {comm.world_size}")
    return group_size // comm.world_size


def rank_generator(seed: int, comm: Communicator) -> tg.Generator:
    """This rank's sampling generator: its own stream, derived from the run seed and the rank."""
    return tg.Generator(rank_seed(seed, comm.rank))


def solve_shard(model: GPT, problems: Sequence[Any], n: int, comm: Communicator, seed: int = 0,
                temperature: float = 1.0) -> list[Solution]:
    """This rank's n / world_size samples of every problem (rl.solve with the rank's generator)."""
    return solve(model, problems, n=samples_per_rank(n, comm), temperature=temperature,
                 generator=rank_generator(seed, comm))


def gather_groups(local: Any, group_size: int, comm: Communicator) -> np.ndarray:
    """Every rank's values, (n_groups · k,) each, as whole groups: an (n_groups, group_size) array."""
    k = samples_per_rank(group_size, comm)
    values = np.ascontiguousarray(np.asarray(local, dtype=np.float64))
    if values.ndim != 1 or values.size % k:
        raise ValueError(f"gather_groups: expected this rank's {k} samples per group, laid out group after group "
                         f"(a 1-D array of a multiple of {k} values), got shape {values.shape}")
    everyone = comm.all_gather(values.reshape(-1, k))  # (world, n_groups, k)
    if everyone.shape[1] * k * comm.world_size != everyone.size:
        raise ValueError("gather_groups: the ranks hold different numbers of groups")
    return everyone.transpose(1, 0, 2).reshape(-1, group_size)


def group_advantages_across_ranks(local_rewards: Any, group_size: int, comm: Communicator,
                                  scale_rewards: str | bool = "group",
                                  eps: float = 1e-4) -> tuple[np.ndarray, dict[str, Any]]:
    """rl.group_advantages over whole groups gathered from every rank; returns this rank's share of
    the advantages (in its local layout) and the statistics of the whole batch."""
    k = samples_per_rank(group_size, comm)
    whole = gather_groups(local_rewards, group_size, comm)  # (n_groups, group_size)
    adv, stats = group_advantages(whole.ravel(), group_size, scale_rewards=scale_rewards, eps=eps)
    mine = adv.reshape(-1, comm.world_size, k)[:, comm.rank, :]
    return mine.ravel(), stats


def select_across_ranks(local_answers: Sequence[Sequence[Answer]], local_scores: Sequence[Sequence[float]] | None,
                        method: Selection, comm: Communicator) -> list[Answer]:
    """Best-of-N (or majority, weighted best-of-N) per problem over all ranks' samples: each rank gives
    its answers (and verifier scores) for every problem; every rank returns the same selections.
    Answers travel as JSON (ints, strings or None)."""
    my_scores = None if local_scores is None else [[float(s) for s in row] for row in local_scores]
    shards = comm.all_gather_object([[list(a) for a in local_answers], my_scores])
    n_problems = len(local_answers)
    if any(len(answers) != n_problems for answers, _ in shards):
        raise ValueError("select_across_ranks: the ranks hold different numbers of problems")
    chosen = []
    for i in range(n_problems):
        answers = [a for rank_answers, _ in shards for a in rank_answers[i]]
        scores = None if local_scores is None else [s for _, rank_scores in shards for s in rank_scores[i]]
        chosen.append(select_answer(answers, scores, method))
    return chosen
