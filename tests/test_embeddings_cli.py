"""`tglite word2vec train|eval` and `tglite search` on a tiny corpus file."""
from __future__ import annotations

import importlib.util

import pytest

from tglite.cli import main

pytest.importorskip("numba")

TEXT = "\n\n".join(
    " ".join(["the king and the queen rode to the castle", "the knight kept his sword by the gate",
              "a fool sang of love and wine", "the queen loved the king"][i % 4].split()) for i in range(200)
) + "\n\nthe secret code xq-17 opens the gate\n"


def test_word2vec_train_eval_and_search(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    out = tmp_path / "v.txt"
    assert main(["word2vec", "train", "--corpus", str(corpus), "--out", str(out), "--dim", "8", "--epochs", "2",
                 "--min-count", "1", "--no-progress"]) == 0
    first = out.read_text().splitlines()[0].split()
    assert first[1] == "8" and int(first[0]) > 10
    assert "words/s" in capsys.readouterr().out
    assert main(["search", "--corpus", str(corpus), "--query", "xq-17", "-k", "1"]) == 0
    assert "secret code" in capsys.readouterr().out
    assert main(["search", "--corpus", str(corpus), "--query", "sword gate", "--vectors", str(out), "-k", "2"]) == 0
    assert "hybrid search" in capsys.readouterr().out
    assert main(["search", "--corpus", str(corpus), "--query", "x", "--mode", "dense"]) == 2  # needs --vectors
    if importlib.util.find_spec("gensim") is not None:  # the evaluation files ship with gensim
        assert main(["word2vec", "eval", str(out), "--neighbours", "king", "zzz"]) == 0
        text = capsys.readouterr().out
        assert "3cosadd" in text and "wordsim353.tsv" in text and "not in the vocabulary" in text


def test_word2vec_eval_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("3 2\nking 0.1 0.2\n")
    assert main(["word2vec", "eval", str(bad)]) == 2
    assert "error" in capsys.readouterr().err


def test_word2vec_train_writes_binary_for_bin_suffix_or_flag(tmp_path, capsys):
    from embeddings import WordVectors

    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    args = ["word2vec", "train", "--corpus", str(corpus), "--dim", "8", "--epochs", "1", "--min-count", "1",
            "--workers", "1", "--no-progress"]
    by_suffix, by_flag = tmp_path / "v.bin", tmp_path / "v.vec"
    assert main([*args, "--out", str(by_suffix)]) == 0 and main([*args, "--out", str(by_flag), "--binary"]) == 0
    for path in (by_suffix, by_flag):
        header, _, body = path.read_bytes().partition(b"\n")
        n, dim = map(int, header.split())
        assert dim == 8 and len(body) > n * 4 * dim  # float32 records, not text numbers
        kv = WordVectors.load_word2vec_format(path, binary=True)
        assert len(kv) == n and kv.vectors.dtype == "float32"
    with pytest.raises(ValueError, match="not UTF-8 text"):  # read as text by mistake: the error says why
        WordVectors.load_word2vec_format(by_flag)
    capsys.readouterr()
    assert main(["search", "--corpus", str(corpus), "--query", "sword gate", "--vectors", str(by_suffix),
                 "-k", "2"]) == 0
    assert "hybrid search" in capsys.readouterr().out
