"""Every `tglite lora` experiment with an --out writes its numbers (JSON) and its plot (PNG) there and
prints where each file went; an interrupted one says what it had written, exits 130 and leaves no
temporary file. The experiments run on tiny settings here (the CLI calls them through
lora.experiments, which the tests shrink)."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from lora import experiments as E
from tglite import cli

TEXT_A = "ALICE:\nThe cat sat on the mat and sang a merry song.\n\n" * 40
TEXT_B = "HAMLET:\nTo be or not to be, the dread of something after death.\n\n" * 40
TINY = ["n_layer=1", "n_head=2", "n_embd=16", "block_size=16", "batch_size=4", "pretrain_steps=20",
        "finetune_steps=20", "eval_iters=2"]


@pytest.fixture(autouse=True)
def tiny_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(E, "load_corpus", functools.partial(E.load_corpus, (TEXT_A, TEXT_B)))


def call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_written(path: Path, out: str) -> None:
    assert path.is_file() and path.stat().st_size > 0, path
    assert str(path) in out, f"the command did not say where {path.name} went"
    if path.suffix == ".png":
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lora_ranks_writes_its_table_and_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(E, "rank_scaling", functools.partial(E.rank_scaling, ranks=(2, 8), d=16, steps=3))
    code, out, err = call(["lora", "ranks", "--out", str(tmp_path / "lora")], capsys)
    assert code == 0, err
    assert_written(tmp_path / "lora" / "lora_ranks.png", out)
    assert_written(tmp_path / "lora" / "lora_ranks.json", out)
    rows = json.loads((tmp_path / "lora" / "lora_ranks.json").read_text())
    assert [(x["r"], x["rule"]) for x in rows] == [(2, "alpha/r"), (2, "alpha/sqrt(r)"), (8, "alpha/r"),
                                                    (8, "alpha/sqrt(r)")]
    for x in rows:  # the numbers printed are the numbers saved
        assert f"‖∇B‖ at start {x['grad_B']:.3f}" in out


def test_lora_finetune_writes_its_numbers_and_curve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "lora"
    code, out, err = call(["lora", "finetune", "--no-progress", "--method", "lora", "--rank", "2", "--out",
                           str(out_dir), *TINY], capsys)
    assert code == 0, err
    assert_written(out_dir / "lora_finetune_lora_r2.png", out)
    assert_written(out_dir / "lora_finetune_lora_r2.json", out)
    result = json.loads((out_dir / "lora_finetune_lora_r2.json").read_text())
    (row,) = result["runs"]
    assert row["method"] == "lora" and row["r"] == 2 and len(row["curve"]) == 20
    assert f"after lora {row['val_loss']:.4f}" in out and result["config"]["finetune_steps"] == 20

    code, out, err = call(["lora", "finetune", "--no-progress", "--method", "full", "--out", str(out_dir), *TINY],
                          capsys)
    assert code == 0, err
    assert_written(out_dir / "lora_finetune_full.json", out)  # next to the first run's files, not over them
    assert (out_dir / "lora_finetune_lora_r2.json").is_file()


def interrupted(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


def test_an_interrupted_experiment_says_what_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    finetune = E.finetune
    monkeypatch.setattr(E, "finetune", interrupted)
    code, out, err = call(["lora", "finetune", "--no-progress", "--out", str(tmp_path / "a"), *TINY], capsys)
    assert code == 130 and "Traceback" not in err
    assert "tglite lora finetune: interrupted; nothing written" in err
    assert not (tmp_path / "a").exists()

    monkeypatch.setattr(E, "finetune", finetune)
    monkeypatch.setattr(E, "loraplus_vs_lora", interrupted)  # after the sweep's first plot
    code, out, err = call(["lora", "sweep", "--no-progress", "--out", str(tmp_path / "b"), *TINY,
                           "methods=full"], capsys)
    assert code == 130
    assert f"interrupted; written before it: {tmp_path / 'b' / 'lora_finetune.png'} " in err
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["lora_finetune.png"]  # no temporary file
