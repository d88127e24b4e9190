"""Tokenizers: round trips on any text (hypothesis), BPE training, save/load with validation."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nn
from nn.tokenizers import SPLIT_PATTERN

CORPUS = "the cat sat on the mat. the cat ate the rat! 123 456 " * 20 + "naïve café — 東京 🙂"


@pytest.fixture(scope="module")
def bpe() -> nn.BPETokenizer:
    return nn.BPETokenizer.train(CORPUS, vocab_size=300)


def test_char_tokenizer_round_trip_and_errors():
    tok = nn.CharTokenizer.train("hello world")
    assert tok.vocab_size == 8 and tok.chars[0] == " "
    assert tok.decode(tok.encode("low hello")) == "low hello"
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        tok.encode("zoo")
    with pytest.raises(ValueError, match=r"outside \[0, 8\)"):
        tok.decode([8])


def test_bpe_learns_frequent_pairs(bpe):
    assert bpe.vocab_size == 300
    ids = bpe.encode("the cat sat on the mat")
    assert len(ids) < len(b"the cat sat on the mat") / 2  # frequent words became few tokens
    assert bpe.decode(ids) == "the cat sat on the mat"
    assert bpe.vocab[bpe.encode(" cat")[0]] == b" cat"  # a whole word with its leading space


def test_bpe_merges_never_cross_chunks(bpe):
    for token in bpe.vocab[256:]:
        text = token.decode("utf-8", errors="ignore")
        assert not ("t " in text and text.strip()), token  # no token ends a word and starts the next


def test_bpe_training_is_deterministic():
    a = nn.BPETokenizer.train(CORPUS, 280)
    b = nn.BPETokenizer.train(CORPUS, 280)
    assert a.merges == b.merges


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_bpe_round_trip_any_string(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_split_pattern_covers_every_character(text):
    import re

    assert "".join(re.findall(SPLIT_PATTERN, text)) == text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abc xyz\n", min_size=0, max_size=40))
def test_char_round_trip(text):
    tok = nn.CharTokenizer("abc xyz\n")
    assert tok.decode(tok.encode(text)) == text


def test_bpe_decode_of_a_split_character_does_not_crash(bpe):
    ids = bpe.encode("🙂")
    assert bpe.decode(ids[:1]) == "\ufffd" or len(ids) == 1


def test_save_load_round_trip(bpe, tmp_path):
    path = tmp_path / "tok.json"
    bpe.save(path)
    loaded = nn.Tokenizer.load(path)
    assert isinstance(loaded, nn.BPETokenizer) and loaded.merges == bpe.merges
    assert loaded.encode(CORPUS) == bpe.encode(CORPUS)
    char = nn.CharTokenizer("abc")
    char.save(tmp_path / "c.json")
    assert nn.Tokenizer.load(tmp_path / "c.json").chars == ["a", "b", "c"]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_load_validates(bpe, tmp_path):
    path = tmp_path / "tok.json"
    bpe.save(path)
    path.write_text(path.read_text()[:50])  # truncated
    with pytest.raises(nn.TokenizerError, match="not valid JSON"):
        nn.Tokenizer.load(path)
    d = bpe.to_dict()
    d["merges"][3] = [5, 400]  # refers to an id that does not exist yet
    path.write_text(json.dumps(d))
    with pytest.raises(nn.TokenizerError, match="merge 3"):
        nn.Tokenizer.load(path)
    path.write_text(json.dumps({"kind": "wordpiece"}))
    with pytest.raises(nn.TokenizerError, match="unknown kind 'wordpiece'"):
        nn.Tokenizer.load(path)
    with pytest.raises(nn.TokenizerError, match="does not exist"):
        nn.Tokenizer.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match=">= 256"):
        nn.BPETokenizer.train("abc", 100)
