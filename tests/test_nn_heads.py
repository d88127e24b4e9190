"""ScalarHead: a scalar per chosen position on a GPT's final hidden states (reward models)."""
import numpy as np
import pytest

import nn
import tinygrad_lite as tg

CONFIG = nn.GPTConfig(block_size=6, vocab_size=7, n_layer=2, n_head=2, n_embd=8)


def random_gpt(config: nn.GPTConfig = CONFIG, seed: int = 0) -> nn.GPT:
    gpt = nn.GPT(config, dtype=tg.float64, generator=tg.Generator(seed))
    rng = np.random.default_rng(seed + 100)
    with tg.no_grad():
        for p in gpt.parameters():
            p.add_(rng.standard_normal(p.shape) * 0.3)  # non-trivial biases and gains
    return gpt


def reward_model(seed: int = 0) -> nn.ScalarHead:
    rm = nn.ScalarHead(random_gpt(seed=seed), generator=tg.Generator(seed))
    with tg.no_grad():
        rm.head.bias.add_(0.5)  # a nonzero bias: padded entries must still come out exactly 0
    return rm


IDX = np.array([[1, 2, 3, 4, 5, 6], [2, 2, 0, 0, 0, 0]])  # row 1 is right-padded after 2 tokens
SELECT = np.array([[1, 3, 5], [1, -1, -1]])


def test_scores_at_selected_positions():
    rm = reward_model()
    out = rm(IDX, SELECT)
    assert out.shape == (2, 3)
    h = rm.gpt.hidden_states(IDX).numpy()
    every = h @ rm.head.weight.numpy()[0] + rm.head.bias.numpy()[0]  # (B, T) by hand
    np.testing.assert_allclose(out.numpy()[0], every[0, [1, 3, 5]], rtol=1e-12)
    assert out.numpy()[1, 0] == pytest.approx(every[1, 1], rel=1e-12)
    assert (out.numpy()[1, 1:] == 0).all()


def test_right_padding_is_ignored():
    """A row's scores depend only on its tokens up to each selected position."""
    rm = reward_model()
    other = IDX.copy()
    other[1, 2:] = [6, 5, 4, 3]  # different padding after row 1's end
    np.testing.assert_array_equal(rm(IDX, SELECT).numpy(), rm(other, SELECT).numpy())
    alone = rm(IDX[1:, :2], np.array([[1]])).numpy()
    np.testing.assert_allclose(rm(IDX, SELECT).numpy()[1, 0], alone[0, 0], rtol=1e-12)


def test_left_padded_batch_with_mask_and_positions():
    from nn.decoder import left_pad, padding_mask

    rm = reward_model()
    tokens, valid, positions = left_pad([[1, 2, 3], [4, 5]], 0)
    out = rm(tokens, np.array([[2], [2]]), attn_mask=padding_mask(valid), positions=positions)
    np.testing.assert_allclose(out.numpy()[0], rm(np.array([[1, 2, 3]]), np.array([[2]])).numpy()[0], rtol=1e-12)
    np.testing.assert_allclose(out.numpy()[1], rm(np.array([[4, 5]]), np.array([[1]])).numpy()[0], rtol=1e-12)


def test_padded_entries_get_no_gradient():
    """Gradients with -1 entries equal the gradients of the valid entries alone."""
    rm = reward_model()
    params = rm.parameters()
    g_padded = tg.grad(rm(IDX, SELECT).sum(), params)
    valid_only = rm(IDX, np.array([[1, 3, 5], [1, 1, 1]])) * np.array([[1.0, 1, 1], [1, 0, 0]])
    g_valid = tg.grad(valid_only.sum(), params)
    for a, b in zip(g_padded, g_valid):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)
    # and the bias gets exactly one unit of gradient per valid entry (4 of them)
    bias_grad = next(g for g, p in zip(g_padded, params) if p is rm.head.bias)
    assert bias_grad.numpy().tolist() == [4.0]


def test_gradcheck_parameters():
    rm = nn.ScalarHead(random_gpt(nn.GPTConfig(block_size=4, vocab_size=5, n_layer=2, n_head=2, n_embd=4)),
                       generator=tg.Generator(1))
    idx, select = np.array([[1, 2, 3, 4], [0, 1, 0, 0]]), np.array([[1, 3], [1, -1]])
    assert tg.gradcheck(lambda *ps: rm(idx, select), tuple(rm.parameters()), fast_mode=True)


def test_wraps_a_pretrained_gpt_and_round_trips_state_dict():
    gpt = random_gpt(seed=3)
    rm = nn.ScalarHead(gpt)
    assert rm.gpt is gpt
    keys = set(rm.state_dict())
    assert {"gpt.transformer.wte.weight", "head.weight", "head.bias"} <= keys
    assert keys == {f"gpt.{k}" for k in gpt.state_dict()} | {"head.weight", "head.bias"}
    fresh = nn.ScalarHead(nn.GPT(CONFIG, dtype=tg.float64))
    fresh.load_state_dict(rm.state_dict())
    np.testing.assert_array_equal(fresh(IDX, SELECT).numpy(), rm(IDX, SELECT).numpy())
    other = nn.ScalarHead(nn.GPT(CONFIG, dtype=tg.float64))  # start from pretrained weights, fresh head
    other.gpt.load_state_dict(gpt.state_dict())
    np.testing.assert_array_equal(other.gpt.hidden_states(IDX).numpy(), gpt.hidden_states(IDX).numpy())
    np.testing.assert_array_equal(gpt(IDX)[0].numpy(), gpt.lm_head(gpt.hidden_states(IDX)).numpy())


def test_errors():
    rm = reward_model()
    with pytest.raises(ValueError, match=r"select must be integers of shape \(batch=2, K\), got shape \(3,\)"):
        rm(IDX, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"select must lie in \[0, 6\) .* got values in \[-2, 5\]"):
        rm(IDX, np.array([[-2, 5], [0, 1]]))
    with pytest.raises(ValueError, match="select must lie"):
        rm(IDX, np.array([[6], [0]]))
    with pytest.raises(ValueError, match="idx must have shape"):
        rm(np.array([1, 2]), np.array([[0]]))
