"""nn.Trainer and `tglite train gpt` under mpiexec: the ranks split the global batch and match one process."""
from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pytest
from launch import nested_mpiexec

from nn.distributed import launched_by_mpi

if not launched_by_mpi():
    pytest.skip("data-parallel tests run in their own CI step, under mpiexec: "
                "mpiexec -n 2 python -m pytest tests/distributed -m mpi (see .ci/run)", allow_module_level=True)

from nn.distributed import LocalCommunicator  # noqa: E402
from nn.train import CONFIGS, Trainer  # noqa: E402

pytestmark = pytest.mark.mpi
TEXT = "".join(f"LINE {i}: the quick brown fox jumps over the lazy dog {i * 7 % 13}.\n" for i in range(200))


def config(out_dir, **changes):
    base = dataclasses.replace(CONFIGS["tiny"], dtype="float64", batch_size=4, grad_accum=2, max_iters=4,
                               eval_interval=2, eval_iters=1, out_dir=str(out_dir))
    return dataclasses.replace(base, **changes)


def weights(trainer: Trainer) -> list[np.ndarray]:
    return [p.numpy().copy() for p in trainer.model.parameters()]


def same(a: Trainer | list, b: Trainer | list, tol: float = 1e-12) -> bool:
    a, b = (weights(x) if isinstance(x, Trainer) else x for x in (a, b))
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b)) <= tol


def test_trainer_on_two_ranks_equals_one_process(comm, shared_tmp):
    two = Trainer(config(shared_tmp / "two"), text=TEXT, comm=comm)
    lines: list[str] = []
    two.run(progress=False, log=lines.append)
    one = Trainer(config(shared_tmp / f"one{comm.rank}"), text=TEXT, comm=LocalCommunicator())
    one.run(progress=False, log=lambda _: None)
    assert same(two, one)
    assert np.allclose([h.loss for h in two.history], [h.loss for h in one.history], rtol=0, atol=1e-12)
    assert [e["val"] for e in two.evals] == pytest.approx([e["val"] for e in one.evals], abs=1e-12)
    assert (lines != []) == (comm.rank == 0)  # only rank 0 logs
    comm.barrier()
    assert (shared_tmp / "two" / "ckpt.npz").is_file() and (shared_tmp / "two" / "config.json").is_file()


def test_resume_with_the_same_and_a_different_number_of_ranks(comm, shared_tmp):
    straight = Trainer(config(shared_tmp / f"straight{comm.rank}"), text=TEXT, comm=LocalCommunicator())
    straight.run(progress=False, log=lambda _: None)
    half = Trainer(config(shared_tmp / "half", max_iters=2), text=TEXT, comm=comm)
    half.run(progress=False, log=lambda _: None)
    comm.barrier()  # rank 0 has written the checkpoint
    ckpt = shared_tmp / "half" / "ckpt.npz"
    again = Trainer(config(shared_tmp / "again"), text=TEXT, comm=comm)  # 2 ranks -> 2 ranks
    again.resume(ckpt)
    again.run(progress=False, log=lambda _: None)
    alone = Trainer(config(shared_tmp / f"alone{comm.rank}"), text=TEXT, comm=LocalCommunicator())  # 2 -> 1
    alone.resume(ckpt)
    alone.run(progress=False, log=lambda _: None)
    assert again.step == alone.step == 4
    assert same(again, straight) and same(alone, straight)
    with pytest.raises(ValueError, match="batch_size=3 is the global batch, split over 2 ranks"):
        Trainer(config(shared_tmp / "odd", batch_size=3), text=TEXT, comm=comm)


def test_tglite_train_gpt_under_mpiexec(comm, shared_tmp):
    """The unchanged command under `mpiexec -n 2`: one progress report, one checkpoint, resumable."""
    if comm.rank == 0:
        out = shared_tmp / "cli"
        command, env = nested_mpiexec("-m", "tglite", "train", "gpt", "--config", "tiny", "--no-progress",
                                      f"out_dir={out}", "max_iters=4", "eval_interval=2", TGLITE_DIST_TIMEOUT="60")
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("step 2: train loss") == 1  # rank 0 speaks, rank 1 does not
        assert "over 2 ranks" in done.stdout
        assert (out / "ckpt.npz").is_file()
        resumed = subprocess.run(command[:-2] + ["--resume", f"out_dir={out}", "max_iters=6"], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.count("resumed from") == 1 and "step 6: train loss" in resumed.stdout
    comm.barrier()
