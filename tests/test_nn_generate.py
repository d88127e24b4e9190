"""Generation: KV cache vs recompute, sampling filters, stop tokens, log-probabilities."""
import numpy as np
import pytest

import nn
import tinygrad_lite as tg


@pytest.fixture(scope="module")
def model() -> nn.GPT:
    config = nn.GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8)
    m = nn.GPT(config, dtype=tg.float64, generator=tg.Generator(0))
    rng = np.random.default_rng(0)
    with tg.no_grad():
        for p in m.parameters():
            p.add_(rng.standard_normal(p.shape))  # sharper, non-uniform predictions
    return m


def prompt(B: int = 4, T: int = 3) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 11, (B, T))


def test_cache_and_recompute_sample_the_same_tokens(model):
    # 12 new tokens after a 3-token prompt runs past block_size=8: the cropped window is recomputed.
    a, lp_a = model.generate(prompt(), 12, return_logprobs=True, generator=tg.Generator(3))
    b, lp_b = model.generate(prompt(), 12, return_logprobs=True, generator=tg.Generator(3), use_cache=False)
    assert a.shape == (4, 15)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(lp_a.numpy(), lp_b.numpy(), rtol=0, atol=1e-10)


def test_greedy_equals_argmax_of_full_forward(model):
    out, lp = model.generate(prompt(2), 5, greedy=True, return_logprobs=True)
    seq = out.numpy()
    for t in range(3, 8):
        logits = model(seq[:, :t])[0].numpy()[:, -1]
        np.testing.assert_array_equal(seq[:, t], logits.argmax(-1))
        logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        np.testing.assert_allclose(lp.numpy()[:, t - 3], logp[np.arange(2), seq[:, t]], atol=1e-10)


def test_sampling_is_seeded_and_batched(model):
    a = model.generate(np.zeros((64, 1), dtype=np.int64), 4, generator=tg.Generator(9)).numpy()
    b = model.generate(np.zeros((64, 1), dtype=np.int64), 4, generator=tg.Generator(9)).numpy()
    assert np.array_equal(a, b)
    assert len({tuple(r) for r in a}) > 1  # rows sample independently


def test_top_k_one_is_greedy(model):
    greedy = model.generate(prompt(), 4, greedy=True).numpy()
    topk1 = model.generate(prompt(), 4, top_k=1, generator=tg.Generator(5)).numpy()
    assert np.array_equal(greedy, topk1)


def test_filter_logits():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    assert np.isinf(nn.filter_logits(logits, top_k=2)[0, 2:]).all()
    np.testing.assert_allclose(np.exp(nn.filter_logits(logits, top_k=2)[0, :2]), [0.625, 0.375])
    kept = np.isfinite(nn.filter_logits(logits, top_p=0.7)[0])
    assert kept.tolist() == [True, True, False, False]  # 0.5 < 0.7 <= 0.5 + 0.3
    assert np.isfinite(nn.filter_logits(logits, top_p=0.1)[0]).sum() == 1  # the top token always stays
    hot = np.exp(nn.filter_logits(logits, temperature=0.5)[0])
    np.testing.assert_allclose(hot, np.array([0.25, 0.09, 0.0225, 0.0025]) / 0.365)
    with pytest.raises(ValueError, match="temperature"):
        nn.filter_logits(logits, temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        nn.filter_logits(logits, top_p=1.5)


def test_sampling_frequencies_follow_the_distribution():
    logp = np.log(np.tile([[0.2, 0.5, 0.3]], (20000, 1)))
    from nn.generate import sample_from

    counts = np.bincount(sample_from(logp, tg.Generator(0)), minlength=3) / 20000
    np.testing.assert_allclose(counts, [0.2, 0.5, 0.3], atol=0.02)


def test_stop_tokens_finish_rows(model):
    free = model.generate(prompt(), 6, greedy=True).numpy()
    stop = int(free[0, 4])  # the second generated token of row 0
    out, lp = model.generate(prompt(), 6, greedy=True, stop_tokens=[stop], return_logprobs=True)
    out, lp = out.numpy(), lp.numpy()
    for row in range(4):
        gen = out[row, 3:]
        hits = np.flatnonzero(gen == stop)
        if hits.size:
            first = hits[0]
            assert (gen[first:] == stop).all() and (lp[row, first + 1:] == 0).all()
            assert np.array_equal(gen[:first], free[row, 3 : 3 + first])


def test_model_mode_is_restored(model):
    model.train()
    model.generate(prompt(), 1)
    assert model.training
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(prompt(), -1)
