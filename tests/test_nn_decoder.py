"""Padding-aware attention, the preallocated KV cache, the batched Decoder and ragged generation.

The reference for every batched, padded or cached result is the same sequence run alone through
a full forward pass without a cache, in float64."""
import numpy as np
import pytest

import nn
import tinygrad_lite as tg

BLOCK = 10
CONFIG = nn.GPTConfig(block_size=BLOCK, vocab_size=11, n_layer=2, n_head=2, n_embd=8)
ATOL = 1e-9


@pytest.fixture(scope="module")
def model() -> nn.GPT:
    m = nn.GPT(CONFIG, dtype=tg.float64, generator=tg.Generator(0))
    rng = np.random.default_rng(0)
    with tg.no_grad():
        for p in m.parameters():
            p.add_(rng.standard_normal(p.shape))  # sharp, non-uniform predictions
    return m.eval()


def alone(model: nn.GPT, seq: list[int]) -> np.ndarray:
    """Next-token logits of one sequence from a full forward pass: no cache, no padding."""
    with tg.no_grad():
        return model(np.array([seq]))[0].numpy()[0, -1]


PROMPTS = [[1, 2, 3], [4], [5, 6, 7, 8, 9], [10, 0]]


# ------------------------------------------------------------------ masked attention
# The engine's attention and its masks: tests/test_attention.py. Here: how nn uses it.
def test_attention_mask_errors():
    with pytest.raises(TypeError, match="CausalSelfAttention: attn_mask must be bool"):
        nn.GPT(CONFIG)(np.zeros((2, 3), dtype=np.int64), attn_mask=np.zeros((2, 1, 1, 3)))
    with pytest.raises(ValueError, match="attn_mask must broadcast"):
        nn.GPT(CONFIG)(np.zeros((2, 3), dtype=np.int64), attn_mask=np.zeros((2, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"positions must lie in \[0, block_size=10\)"):
        nn.GPT(CONFIG)(np.zeros((1, 2), dtype=np.int64), positions=np.array([[0, 10]]))
    with pytest.raises(ValueError, match=r"positions must be integers of shape \(batch, time\) = \(1, 2\)"):
        nn.GPT(CONFIG)(np.zeros((1, 2), dtype=np.int64), positions=np.array([0, 1]))


def test_left_padded_training_forward_matches_rows_alone_and_gradchecks(model):
    """The masked path also trains: logits of a left-padded batch at the real positions equal
    each row alone, and the loss gradient is checked against finite differences."""
    from nn.decoder import left_pad, padding_mask

    tokens, valid, positions = left_pad(PROMPTS, 0)
    mask = padding_mask(valid)
    logits = model(tokens, attn_mask=mask, positions=positions)[0].numpy()
    assert np.isfinite(logits).all()
    for row, p in enumerate(PROMPTS):
        full = model(np.array([p]))[0].numpy()[0]
        np.testing.assert_allclose(logits[row, valid[row]], full, rtol=0, atol=ATOL)
    tiny = nn.GPT(nn.GPTConfig(block_size=4, vocab_size=5, n_layer=1, n_head=2, n_embd=4),
                  dtype=tg.float64, generator=tg.Generator(1))
    tokens, valid, positions = left_pad([[1, 2, 3], [4]], 0)
    targets = np.where(valid, np.roll(tokens, -1, axis=1) % 5, -100)  # pads are ignored by the loss
    mask = padding_mask(valid)
    assert tg.gradcheck(lambda *ps: tiny(tokens, targets, attn_mask=mask, positions=positions)[1],
                        tuple(tiny.parameters()), fast_mode=True)


# ------------------------------------------------------------------ KV cache
@pytest.mark.parametrize("capacity", [None, 4, BLOCK])
def test_preallocated_cache_equals_full_recompute(model, capacity):
    """None and 4 make the buffers grow (doubling) on the way; BLOCK never reallocates."""
    seq = np.random.default_rng(2).integers(0, 11, (3, BLOCK))
    cache = nn.KVCache(CONFIG.n_layer, capacity=capacity)
    with tg.no_grad():
        logits, _ = model(seq[:, :3], cache=cache)
        np.testing.assert_allclose(logits.numpy(), model(seq[:, :3])[0].numpy(), rtol=0, atol=ATOL)
        for t in range(3, BLOCK):
            step, _ = model(seq[:, t: t + 1], cache=cache)
            np.testing.assert_allclose(step.numpy()[:, -1], model(seq[:, : t + 1])[0].numpy()[:, -1],
                                       rtol=0, atol=ATOL)
    assert cache.length == BLOCK and cache[0].k.shape == (3, 2, BLOCK, 4)
    if capacity == BLOCK:
        assert cache.allocated == BLOCK


def test_cache_select_rows_then_continue(model):
    seq = np.random.default_rng(3).integers(0, 11, (3, 6))
    cache = nn.KVCache(CONFIG.n_layer, capacity=BLOCK)
    rows = np.array([2, 0, 0, 1])
    with tg.no_grad():
        model(seq[:, :4], cache=cache)
        cache.select(rows)
        nxt = np.array([[1], [2], [3], [4]])  # the two copies of row 0 diverge
        step = model(nxt, cache=cache)[0].numpy()[:, -1]
        full = model(np.concatenate([seq[rows, :4], nxt], axis=1))[0].numpy()[:, -1]
    np.testing.assert_allclose(step, full, rtol=0, atol=ATOL)
    assert cache.batch_size == 4


def test_cache_under_autograd_refuses_to_drop_the_gradient_of_cached_positions():
    layer = nn.LayerKV(capacity=8)
    rng = np.random.default_rng(0)
    k0 = tg.Tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    keys, _ = layer.append(k0, tg.Tensor(rng.standard_normal((1, 2, 3, 4))))  # nothing cached yet: graph kept
    (grad,) = tg.grad(keys.sum(), [k0])
    np.testing.assert_array_equal(grad.numpy(), np.ones((1, 2, 3, 4)))
    k_new = tg.Tensor(rng.standard_normal((1, 2, 1, 4)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"3 positions are cached without their graph.*no_grad"):
        layer.append(k_new, tg.Tensor(rng.standard_normal((1, 2, 1, 4))))
    with tg.no_grad():  # generation: no graph, so nothing to lose
        assert layer.append(k_new, k_new)[0].shape == (1, 2, 4, 4)


def test_cache_errors():
    cache = nn.KVCache(2, capacity=4)
    with pytest.raises(ValueError, match="KVCache.select: the cache is empty"):
        cache.select([0])
    k = tg.Tensor(np.zeros((2, 2, 1, 4)))
    cache[0].append(k, k)
    cache[1].append(k, k)
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 2\) for a batch of 2 rows, got values in \[0, 2\]"):
        cache.select([0, 2])
    with pytest.raises(ValueError, match="not a boolean mask"):
        cache.select(np.array([True, False]))
    with pytest.raises(ValueError, match=r"non-empty 1-D array .* got shape \(1, 2\)"):
        cache.select([[0, 1]])
    with pytest.raises(ValueError, match=r"new keys of shape \(3, 2, 1, 4\)"):
        cache[0].append(tg.Tensor(np.zeros((3, 2, 1, 4))), tg.Tensor(np.zeros((3, 2, 1, 4))))
    with pytest.raises(ValueError, match=r"slots must lie in \[0, 1\)"):
        cache.take_slots(np.array([[0, 1], [0, 0]]))


# ------------------------------------------------------------------ Decoder
def test_prefill_equals_each_prompt_alone(model):
    dec = nn.Decoder(model, PROMPTS)
    assert dec.batch_size == 4 and dec.lengths.tolist() == [3, 1, 5, 2]
    assert dec.logits.shape == (4, 11) and dec.logits.dtype == np.float64
    for i, p in enumerate(PROMPTS):
        assert dec.tokens(i) == p
        np.testing.assert_allclose(dec.logits[i], alone(model, p), rtol=0, atol=ATOL)


def test_appends_equal_full_recompute_every_step(model):
    dec = nn.Decoder(model, PROMPTS, pad_id=7)  # the pad token's value must not matter
    seqs = [list(p) for p in PROMPTS]
    for _ in range(4):
        nxt = dec.logits.argmax(axis=-1)
        dec.append(nxt)
        for i, s in enumerate(seqs):
            s.append(int(nxt[i]))
            np.testing.assert_allclose(dec.logits[i], alone(model, s), rtol=0, atol=ATOL)
    assert [dec.tokens(i) for i in range(4)] == seqs


def test_inactive_rows_do_not_advance(model):
    dec = nn.Decoder(model, PROMPTS)
    seqs = [list(p) for p in PROMPTS]
    pattern = [[1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 0]]
    for active in np.array(pattern, dtype=bool):
        before = dec.logits.copy()
        nxt = (dec.logits.argmax(axis=-1) + 1) % 11
        dec.append(nxt, active)
        for i in range(4):
            if active[i]:
                seqs[i].append(int(nxt[i]))
            else:
                np.testing.assert_array_equal(dec.logits[i], before[i])  # logits stay what they were
            np.testing.assert_allclose(dec.logits[i], alone(model, seqs[i]), rtol=0, atol=ATOL)
            assert dec.tokens(i) == seqs[i]
    assert dec.lengths.tolist() == [len(s) for s in seqs]
    dec.append(np.zeros(4, dtype=np.int64), np.zeros(4, dtype=bool))  # nobody moves: nothing changes
    assert dec.lengths.tolist() == [len(s) for s in seqs]


def test_select_duplicates_and_reorders_rows(model):
    dec = nn.Decoder(model, PROMPTS)
    dec.append(np.array([1, 2, 3, 4]), np.array([True, False, True, True]))
    seqs = [PROMPTS[0] + [1], PROMPTS[1], PROMPTS[2] + [3], PROMPTS[3] + [4]]
    rows = [2, 0, 0, 1, 1]
    dec.select(np.array(rows))
    seqs = [list(seqs[r]) for r in rows]
    assert dec.batch_size == 5 and dec.lengths.tolist() == [len(s) for s in seqs]
    for i in range(5):
        np.testing.assert_allclose(dec.logits[i], alone(model, seqs[i]), rtol=0, atol=ATOL)
    for step in range(3):  # the duplicates diverge: each copy gets its own tokens
        nxt = np.array([5, 6, 7, 8, 9]) - step
        active = np.array([True, True, True, step != 1, True])
        dec.append(nxt, active)
        for i in np.flatnonzero(active):
            seqs[i].append(int(nxt[i]))
        for i in range(5):
            assert dec.tokens(i) == seqs[i]
            np.testing.assert_allclose(dec.logits[i], alone(model, seqs[i]), rtol=0, atol=ATOL)


def test_composed_attention_path_gives_the_same_logits(model):
    """fused=False runs the reference attention (primitive ops) with the same mask semantics."""
    fused = nn.Decoder(model, PROMPTS)
    fused.append(np.array([1, 2, 3, 4]), np.array([True, False, True, True]))
    try:
        for block in model.transformer.h:
            block.attn.fused = False
        composed = nn.Decoder(model, PROMPTS)
        composed.append(np.array([1, 2, 3, 4]), np.array([True, False, True, True]))
    finally:
        for block in model.transformer.h:
            block.attn.fused = True
    np.testing.assert_allclose(composed.logits, fused.logits, rtol=0, atol=ATOL)


def test_padding_is_squeezed_out_when_the_cache_is_full(model):
    """Waiting rows spend cache slots; once block_size slots are used, the padding is squeezed
    out instead of growing the cache, and the results do not change."""
    dec = nn.Decoder(model, [[1], [2, 3]])
    seqs = [[1], [2, 3]]
    rng = np.random.default_rng(4)
    for step in range(14):  # 14 appends > BLOCK slots, while each row stays within BLOCK tokens
        active = np.array([step % 2 == 0, step % 3 == 0]) & (dec.lengths < BLOCK)
        nxt = rng.integers(0, 11, 2)
        dec.append(nxt, active)
        for i in np.flatnonzero(active):
            seqs[i].append(int(nxt[i]))
    assert dec._cache.allocated == BLOCK  # squeezed, never grown
    for i in range(2):
        assert dec.tokens(i) == seqs[i]
        np.testing.assert_allclose(dec.logits[i], alone(model, seqs[i]), rtol=0, atol=ATOL)


def test_decoder_restores_mode_and_builds_no_graph(model):
    model.train()
    try:
        dec = nn.Decoder(model, [[1, 2]])
        dec.append(np.array([3]))
        assert model.training
    finally:
        model.eval()
    assert not dec.logits.flags.writeable
    assert not dec._cache[0].k.requires_grad


def test_decoder_errors(model):
    with pytest.raises(ValueError, match="prompt 1 has 11 tokens, more than block_size=10"):
        nn.Decoder(model, [[1], list(range(11))])
    with pytest.raises(ValueError, match="prompt 0 must be a non-empty sequence"):
        nn.Decoder(model, [[], [1]])
    with pytest.raises(ValueError, match=r"pad_id must lie in \[0, vocab_size=11\), got 11"):
        nn.Decoder(model, [[1]], pad_id=11)
    dec = nn.Decoder(model, [[1] * 9, [2]])
    dec.append(np.array([1, 1]))
    with pytest.raises(ValueError, match="row 0 already has 10 tokens; one more would exceed block_size=10"):
        dec.append(np.array([1, 1]))
    dec.append(np.array([1, 1]), np.array([False, True]))  # a full row may wait while others go on
    with pytest.raises(ValueError, match=r"tokens must be integers of shape \(2,\), got shape \(2, 1\)"):
        dec.append(np.array([[1], [1]]))
    with pytest.raises(ValueError, match=r"active must be a bool array of shape \(2,\)"):
        dec.append(np.array([1, 1]), np.array([1, 0]))
    with pytest.raises(ValueError, match=r"tokens must lie in \[0, vocab_size=11\), got values in \[1, 11\]"):
        dec.append(np.array([11, 1]), np.array([True, True]))
    with pytest.raises(ValueError, match=r"Decoder.select: rows must lie in \[0, 2\)"):
        dec.select([0, -1])
    with pytest.raises(IndexError, match="row 2 is out of range for a batch of 2 rows"):
        dec.tokens(2)


# ------------------------------------------------------------------ generate
def test_ragged_greedy_generation_equals_each_row_alone(model):
    out = nn.generate(model, PROMPTS, 4, greedy=True)
    assert isinstance(out, nn.Generation) and out.logprobs.shape == (4, 4) and out.mask.all()
    for i, p in enumerate(PROMPTS):
        one, lp = nn.generate(model, np.array([p]), 4, greedy=True, return_logprobs=True)
        assert out.tokens[i] == one.numpy()[0].tolist() and out.completions[i] == out.tokens[i][len(p):]
        np.testing.assert_allclose(out.logprobs[i], lp.numpy()[0], rtol=0, atol=ATOL)
    assert out.prompt_lengths.tolist() == [3, 1, 5, 2]


@pytest.mark.parametrize("use_cache", [True, False])
def test_ragged_sampling_with_per_row_generators_equals_each_row_alone(model, use_cache):
    """One generator per row: a row samples the same tokens whatever shares its batch. 8 new
    tokens take the longest prompt (5) past block_size=10, so the cropped window is recomputed."""
    kw = dict(temperature=0.9, top_k=6, top_p=0.95)
    out = nn.generate(model, PROMPTS, 8, generator=[tg.Generator(10 + i) for i in range(4)],
                      use_cache=use_cache, **kw)
    for i, p in enumerate(PROMPTS):
        one, lp = nn.generate(model, np.array([p]), 8, generator=[tg.Generator(10 + i)], return_logprobs=True, **kw)
        assert out.tokens[i] == one.numpy()[0].tolist()
        np.testing.assert_allclose(out.logprobs[i], lp.numpy()[0], rtol=0, atol=ATOL)


def test_ragged_stop_tokens_and_mask(model):
    free = nn.generate(model, PROMPTS, 5, greedy=True)
    stop = free.completions[0][1]  # row 0's second token
    out = nn.generate(model, PROMPTS, 5, greedy=True, stop_tokens=[stop])
    stopped = 0
    for i in range(4):
        free_comp = free.completions[i]
        n = free_comp.index(stop) + 1 if stop in free_comp else len(free_comp)  # up to the first stop
        stopped += n < len(free_comp)
        assert out.completions[i] == free_comp[:n] and out.tokens[i] == PROMPTS[i] + free_comp[:n]
        assert out.mask[i, :n].all() and not out.mask[i, n:].any() and (out.logprobs[i, n:] == 0).all()
        np.testing.assert_allclose(out.logprobs[i, :n], free.logprobs[i, :n], rtol=0, atol=ATOL)
    assert stopped >= 1 and out.mask.shape[1] <= 5


def test_generate_argument_errors(model):
    with pytest.raises(ValueError, match="prompt 1 must be a non-empty list"):
        nn.generate(model, [[1], []], 2)
    with pytest.raises(ValueError, match="got 1 generators for 2 rows"):
        nn.generate(model, [[1], [2, 3]], 2, generator=[tg.Generator(0)])
