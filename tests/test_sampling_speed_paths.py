"""The fused sampling step (`nn.generate.sample_step`) against the plain composition it replaces:
filter_logits (temperature, top-k, log-softmax, top-p, log-softmax) then sample_from (inverse CDF),
and the top-p cut by a value sort (`_nucleus`) against the stable-argsort walk it stands for."""
import numpy as np
import pytest

import nn
import tinygrad_lite as tg
from nn.generate import _nucleus, filter_logits, sample_from, sample_step


def random_logits(rng: np.random.Generator, kind: str, B: int, V: int) -> np.ndarray:
    if kind == "normal":
        return rng.standard_normal((B, V)) * rng.uniform(0.1, 5.0)
    if kind == "float32":  # what a float32 model's logits look like after the Decoder's float64 copy
        return rng.standard_normal((B, V)).astype(np.float32).astype(np.float64)
    if kind == "ties":  # few distinct values: ties at the top-k and top-p cuts
        return rng.integers(0, 3, (B, V)).astype(np.float64)
    return np.zeros((B, V))  # uniform: every token tied


def composed(logits, temperature, top_k, top_p, seed):
    logp = filter_logits(logits, temperature, top_k, top_p)
    tokens = sample_from(logp, tg.Generator(seed))
    return tokens, logp[np.arange(len(tokens)), tokens]


@pytest.mark.parametrize("kind", ["normal", "float32", "ties", "uniform"])
def test_sample_step_equals_the_composition(kind):
    rng = np.random.default_rng(["normal", "float32", "ties", "uniform"].index(kind))
    for trial in range(300):
        B, V = int(rng.integers(1, 30)), int(rng.integers(1, 70))
        x = random_logits(rng, kind, B, V)
        temperature = float(rng.choice([0.3, 1.0, 1.7]))
        top_k = [None, 1, 3, V, V + 2][trial % 5]
        top_p = [None, 0.05, 0.5, 0.9, 0.999, 1.0][trial % 6]
        seed = int(rng.integers(1 << 30))
        want_tokens, want_lp = composed(x, temperature, top_k, top_p, seed)
        tokens, lp = sample_step(x, temperature, top_k, top_p, generator=tg.Generator(seed))
        np.testing.assert_array_equal(tokens, want_tokens)
        np.testing.assert_allclose(lp, want_lp, rtol=0, atol=1e-12)
        assert np.isfinite(lp).all()  # a drawn token is never one the filters excluded


def test_sample_step_with_one_generator_per_row():
    x = np.random.default_rng(0).standard_normal((5, 20))
    gens = [tg.Generator(10 + i) for i in range(5)]
    logp = filter_logits(x, 0.7, 8, 0.9)
    want_tokens = sample_from(logp, [tg.Generator(10 + i) for i in range(5)])
    tokens, lp = sample_step(x, 0.7, 8, 0.9, generator=gens)
    np.testing.assert_array_equal(tokens, want_tokens)
    np.testing.assert_allclose(lp, logp[np.arange(5), want_tokens], rtol=0, atol=1e-12)
    alone, _ = sample_step(x[2:3], 0.7, 8, 0.9, generator=[tg.Generator(12)])
    assert alone[0] == tokens[2]  # a row's own generator: the same token whatever shares its batch


def test_greedy_is_the_argmax_under_the_models_own_distribution():
    x = np.random.default_rng(1).standard_normal((7, 30))
    tokens, lp = sample_step(x, greedy=True)
    np.testing.assert_array_equal(tokens, x.argmax(axis=-1))
    want = tg.Tensor(x).log_softmax(axis=-1).numpy()[np.arange(7), tokens]
    np.testing.assert_allclose(lp, want, rtol=0, atol=1e-12)
    # temperature, top_k and top_p do not apply to greedy decoding
    again, lp2 = sample_step(x, temperature=0.1, top_k=2, top_p=0.1, greedy=True)
    np.testing.assert_array_equal(again, tokens)
    np.testing.assert_array_equal(lp2, lp)


def stable_walk_keep(probs: np.ndarray, top_p: float) -> np.ndarray:
    """The reference top-p cut: walk each row by a stable argsort, drop a token once the mass
    strictly ahead of it reaches top_p."""
    order = np.argsort(-probs, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(probs, order, axis=-1)
    drop_sorted = np.cumsum(sorted_p, axis=-1) - sorted_p >= top_p
    drop = np.zeros_like(drop_sorted)
    np.put_along_axis(drop, order, drop_sorted, axis=-1)
    return ~drop


@pytest.mark.parametrize("kind", ["normal", "ties", "uniform"])
def test_nucleus_equals_the_stable_argsort_walk(kind):
    rng = np.random.default_rng(7)
    for _ in range(300):
        B, V = int(rng.integers(1, 20)), int(rng.integers(1, 40))
        probs = np.exp(tg.Tensor(random_logits(rng, kind, B, V)).log_softmax(axis=-1).numpy())
        top_p = float(rng.choice([0.01, 0.3, 0.5, 0.77, 0.9, 1.0]))
        np.testing.assert_array_equal(_nucleus(probs, top_p), stable_walk_keep(probs, top_p))


def test_top_k_keeps_ties_with_the_kth():
    x = np.array([[3.0, 1.0, 3.0, 3.0, 0.0]])
    assert np.isfinite(filter_logits(x, top_k=2)[0]).tolist() == [True, False, True, True, False]
    rows = np.repeat(x, 3000, axis=0)
    tokens, lp = sample_step(rows, top_k=2, generator=tg.Generator(0))
    assert set(tokens.tolist()) == {0, 2, 3}  # all three tied tokens, nothing else
    np.testing.assert_allclose(lp, np.log(1 / 3), rtol=0, atol=1e-12)


def test_top_p_edges():
    x = np.random.default_rng(3).standard_normal((200, 12))
    # a tiny top_p keeps only the most likely token: sampling is greedy, with log-probability 0
    tokens, lp = sample_step(x, top_p=1e-9, generator=tg.Generator(1))
    np.testing.assert_array_equal(tokens, x.argmax(axis=-1))
    np.testing.assert_array_equal(lp, 0.0)
    # top_p = 1 keeps every token of these (no token's probability is lost in rounding)
    assert np.isfinite(filter_logits(x, top_p=1.0)).all()
    # ties at the cut: four equal tokens, top_p 0.6 -> the mass ahead is 0, 1/4, 1/2, 3/4: the first three stay
    uniform = np.zeros((4000, 4))
    assert np.isfinite(filter_logits(uniform, top_p=0.6)).tolist() == [[True, True, True, False]] * 4000
    tokens, lp = sample_step(uniform, top_p=0.6, generator=tg.Generator(2))
    assert set(tokens.tolist()) == {0, 1, 2}
    np.testing.assert_allclose(lp, np.log(1 / 3), rtol=0, atol=1e-12)


def test_temperature_frequencies():
    x = np.log(np.tile([[0.2, 0.5, 0.3]], (20000, 1)))
    tokens, lp = sample_step(x, temperature=0.5, generator=tg.Generator(0))
    want = np.array([0.04, 0.25, 0.09]) / 0.38  # p^(1/T), renormalized
    np.testing.assert_allclose(np.bincount(tokens, minlength=3) / 20000, want, atol=0.02)
    np.testing.assert_allclose(lp, np.log(want)[tokens], rtol=0, atol=1e-12)


def test_bad_filters_name_the_function():
    x = np.zeros((1, 4))
    with pytest.raises(ValueError, match="sample_step: temperature must be > 0"):
        sample_step(x, temperature=0.0)
    with pytest.raises(ValueError, match="sample_step: top_k must be >= 1, got 0"):
        sample_step(x, top_k=0)
    with pytest.raises(ValueError, match=r"sample_step: top_p must be in \(0, 1\], got 1.5"):
        sample_step(x, top_p=1.5)
    model = nn.GPT(nn.GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=1, n_embd=4), generator=tg.Generator(0))
    with pytest.raises(ValueError, match="generate: top_p must be in"):
        model.generate(np.zeros((1, 1), dtype=np.int64), 0, top_p=0.0)  # checked before any step


def test_generate_logprobs_are_under_the_filtered_distribution():
    """generate's log-probabilities (through the fused step) are those filter_logits gives the
    model's own logits at each position (a full forward, no cache)."""
    config = nn.GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=8)
    model = nn.GPT(config, dtype=tg.float64, generator=tg.Generator(0))
    rng = np.random.default_rng(0)
    with tg.no_grad():
        for p in model.parameters():
            p.add_(rng.standard_normal(p.shape))  # sharp, non-uniform predictions
    prompt = rng.integers(0, 11, (6, 3))
    out, lp = model.generate(prompt, 8, temperature=0.8, top_k=6, top_p=0.8, return_logprobs=True,
                             generator=tg.Generator(4))
    seq, lp = out.numpy(), lp.numpy()
    for t in range(3, 11):
        logits = model(seq[:, :t])[0].numpy()[:, -1]
        want = filter_logits(logits, 0.8, 6, 0.8)[np.arange(6), seq[:, t]]
        np.testing.assert_allclose(lp[:, t - 3], want, rtol=0, atol=1e-10)
