"""DistributedDataParallel on 2 ranks against one process on the whole batch."""
from __future__ import annotations

import numpy as np
import pytest

from nn.distributed import launched_by_mpi

if not launched_by_mpi():
    pytest.skip("data-parallel tests run in their own CI step, under mpiexec: "
                "mpiexec -n 2 python -m pytest tests/distributed -m mpi (see .ci/run)", allow_module_level=True)

import tinygrad_lite as tg  # noqa: E402
from nn import GPT, AdamW, GPTConfig, train_step  # noqa: E402
from nn.distributed import DistributedDataParallel, DistributedError, shard_rows  # noqa: E402

pytestmark = pytest.mark.mpi

CONFIG = GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8, dropout=0.0)
GLOBAL_BATCH = 8
STEPS = 5


def make_model(dtype: str, seed: int = 0) -> tuple[GPT, AdamW]:
    model = GPT(CONFIG, dtype=dtype, generator=tg.Generator(seed))
    return model, model.configure_optimizers(weight_decay=0.1, learning_rate=3e-2, betas=(0.9, 0.95))


def batches(steps: int, micro: int = 1) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """`steps` global batches, each as `micro` micro-batches of (x, y) rows (the same on every rank)."""
    rng = np.random.default_rng(123)
    out = []
    for _ in range(steps):
        tokens = rng.integers(0, CONFIG.vocab_size, (GLOBAL_BATCH * micro, CONFIG.block_size + 1))
        rows = [tokens[i * GLOBAL_BATCH : (i + 1) * GLOBAL_BATCH] for i in range(micro)]
        out.append([(r[:, :-1], r[:, 1:]) for r in rows])
    return out


def train(model, opt, data, rows: slice = slice(None)) -> None:
    for step in data:
        micro = [(tg.Tensor(x[rows]), tg.Tensor(y[rows])) for x, y in step]
        train_step(model, opt, micro, grad_clip=1.0)


def max_diff(a: GPT, b: GPT) -> float:
    return max(float(np.abs(p.numpy() - q.numpy()).max()) for p, q in zip(a.parameters(), b.parameters()))


def test_two_ranks_equal_one_process_float64(comm):
    data = batches(STEPS)
    reference, ref_opt = make_model("float64")
    train(reference, ref_opt, data)
    model, opt = make_model("float64", seed=comm.rank)  # different on purpose: DDP broadcasts rank 0's
    ddp = DistributedDataParallel(model, comm)
    train(ddp, opt, data, shard_rows(GLOBAL_BATCH, comm))
    assert max_diff(model, reference) <= 1e-12
    assert max_diff(model, make_model("float64")[0]) > 1e-3  # the steps did move the weights


def test_two_ranks_float32_close(comm):
    data = batches(STEPS)
    reference, ref_opt = make_model("float32")
    train(reference, ref_opt, data)
    model, opt = make_model("float32")
    train(DistributedDataParallel(model, comm), opt, data, shard_rows(GLOBAL_BATCH, comm))
    # float32 round-off in the gradient sums (a different order) is amplified by Adam's division by
    # sqrt(v) for tiny gradients: bounded by a small fraction of one step (lr = 3e-2), not by 1e-7.
    assert max_diff(model, reference) <= 1e-2 * 3e-2


@pytest.mark.parametrize("bucket_cap_mb", [1e-6, 4e-4, 2e-3, 100.0])
def test_every_bucket_size_gives_the_same_result(comm, bucket_cap_mb):
    data = batches(STEPS)
    model, opt = make_model("float64")
    ddp = DistributedDataParallel(model, comm, bucket_cap_mb=bucket_cap_mb)
    n_params = len(model.parameters())
    if bucket_cap_mb == 1e-6:
        assert len(ddp.buckets) == n_params  # every parameter its own bucket
    if bucket_cap_mb == 100.0:
        assert len(ddp.buckets) == 1
    if bucket_cap_mb in (4e-4, 2e-3):
        assert 1 < len(ddp.buckets) < n_params
    train(ddp, opt, data, shard_rows(GLOBAL_BATCH, comm))
    reference, ref_opt = make_model("float64")
    train(reference, ref_opt, data)
    assert max_diff(model, reference) <= 1e-12


def test_no_sync_accumulation_equals_one_big_batch(comm):
    """2 micro-batches per step (the first under no_sync, inside train_step) on each rank equal one
    process taking the 2 x 8 rows as one batch."""
    data = batches(STEPS, micro=2)
    whole = [[(np.concatenate([x for x, _ in step]), np.concatenate([y for _, y in step]))] for step in data]
    reference, ref_opt = make_model("float64")
    train(reference, ref_opt, whole)
    model, opt = make_model("float64")
    ddp = DistributedDataParallel(model, comm)
    calls = []
    original = comm.all_reduce_async
    comm.all_reduce_async = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        train(ddp, opt, data, shard_rows(GLOBAL_BATCH, comm))
    finally:
        del comm.all_reduce_async
    assert max_diff(model, reference) <= 1e-12
    assert len(calls) == STEPS * len(ddp.buckets)  # one reduction per bucket per step, none under no_sync


def test_no_sync_leaves_gradients_local(comm):
    model, _ = make_model("float64")
    ddp = DistributedDataParallel(model, comm)
    x = np.full((2, CONFIG.block_size), comm.rank + 1)  # different data on each rank
    with ddp.no_sync():
        ddp(tg.Tensor(x), tg.Tensor(x))[1].backward()
    local = model.parameters()[0].grad.numpy().copy()
    theirs = comm.all_gather(np.ascontiguousarray(local))
    assert np.abs(theirs[0] - theirs[1]).max() > 0  # not averaged: each rank kept its own
    model.zero_grad()
    ddp(tg.Tensor(x), tg.Tensor(x))[1].backward()
    synced = comm.all_gather(np.ascontiguousarray(model.parameters()[0].grad.numpy()))
    assert np.array_equal(synced[0], synced[1])


def test_unused_parameter_is_an_error_not_a_silent_divergence(comm):
    from nn import Linear, Module

    class TwoHeads(Module):
        def __init__(self):
            self.a, self.b = Linear(3, 1, dtype="float64"), Linear(3, 1, dtype="float64")

        def forward(self, x):
            return self.a(x).sum()

    ddp = DistributedDataParallel(TwoHeads(), comm)
    ddp(tg.Tensor(np.ones((2, 3)))).backward()
    with pytest.raises(DistributedError, match=r"rank \d: the last backward gave no gradient to 2 .*'b.weight'"):
        ddp(tg.Tensor(np.ones((2, 3))))


def test_wrong_model_on_one_rank_is_named(comm):
    model = GPT(CONFIG if comm.rank == 0 else GPTConfig(**{**CONFIG.to_dict(), "n_embd": 16}), dtype="float64")
    with pytest.raises(DistributedError, match=r"rank\(s\) \[1\] differ from rank 0's"):
        DistributedDataParallel(model, comm)  # every rank raises, rank 0 too
