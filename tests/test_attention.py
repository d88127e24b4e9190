"""The engine's one attention, `scaled_dot_product_attention`, with PyTorch's arguments and semantics.

The fused op is checked against its composed reference (`..._reference`, primitive ops), both are
gradient-checked in float64, and each PyTorch rule (bool mask = may attend, float mask added,
top-left causal mask, dropout, scale, Ev != E, fully masked rows give 0) has a test of its own.
tests/test_from_pytorch_oracle.py compares with PyTorch itself where it is installed."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lite as tg
import tinygrad_lite.functional as F

FUSED, REFERENCE = F.scaled_dot_product_attention, F.scaled_dot_product_attention_reference


def inputs(B=2, H=2, L=3, S=5, E=4, Ev=4, seed=0):
    rng = np.random.default_rng(seed)
    shapes = ((B, H, L, E), (B, H, S, E), (B, H, S, Ev))
    return tuple(tg.Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes)


def naive(q, k, v, allowed=None, bias=None, scale=None):
    """softmax(q·kᵀ·scale + bias, hidden = -inf)·v in NumPy, rows with no allowed key set to 0."""
    q, k, v = q.numpy(), k.numpy(), v.numpy()
    s = q @ k.swapaxes(-1, -2) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if bias is not None:
        s = s + bias
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    blind = np.isneginf(s).all(axis=-1, keepdims=True)
    s = np.where(blind, 0.0, s)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p = np.where(blind, 0.0, p / p.sum(axis=-1, keepdims=True))
    return p @ v


def assert_fused_equals_reference(q, k, v, dropout_seed=None, **kwargs):
    """Same output and same gradients, fused and composed; both pass gradcheck. With dropout_seed,
    every call draws its dropout mask from a new generator of that seed: the same mask each time."""
    def attend(f):
        if dropout_seed is None:
            return lambda q, k, v: f(q, k, v, **kwargs)
        return lambda q, k, v: f(q, k, v, generator=tg.Generator(dropout_seed), **kwargs)

    g = tg.Tensor(np.random.default_rng(9).standard_normal(q.shape[:-1] + (v.shape[-1],)))
    fused, ref = attend(FUSED)(q, k, v), attend(REFERENCE)(q, k, v)
    np.testing.assert_allclose(fused.numpy(), ref.numpy(), rtol=1e-12, atol=1e-14)
    for a, r in zip(tg.grad(fused, [q, k, v], g), tg.grad(ref, [q, k, v], g)):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-10, atol=1e-12)
    assert tg.gradcheck(attend(FUSED), (q, k, v))
    assert tg.gradcheck(attend(REFERENCE), (q, k, v))
    return fused


@pytest.mark.parametrize("L,S", [(3, 3), (1, 5), (3, 5), (5, 3)])
def test_plain_attention_is_the_formula(L, S):
    q, k, v = inputs(L=L, S=S, Ev=6)
    y = assert_fused_equals_reference(q, k, v)
    np.testing.assert_allclose(y.numpy(), naive(q, k, v), rtol=1e-12)
    assert y.shape == (2, 2, L, 6)


@pytest.mark.parametrize("L,S", [(4, 4), (2, 5), (5, 2)])
def test_is_causal_is_aligned_top_left_as_in_pytorch(L, S):
    """Query i attends to keys 0 … i, whatever S is (PyTorch's rule: tril of ones(L, S))."""
    q, k, v = inputs(L=L, S=S)
    y = assert_fused_equals_reference(q, k, v, is_causal=True)
    np.testing.assert_allclose(y.numpy(), naive(q, k, v, allowed=np.tril(np.ones((L, S), bool))), rtol=1e-12)


def test_bool_mask_true_means_may_attend_and_float_mask_is_added():
    q, k, v = inputs()
    allowed = np.random.default_rng(1).random((2, 1, 3, 5)) < 0.7
    y = assert_fused_equals_reference(q, k, v, attn_mask=allowed)
    np.testing.assert_allclose(y.numpy(), naive(q, k, v, allowed=allowed), rtol=1e-12)
    bias = np.random.default_rng(2).standard_normal((3, 5))
    y = assert_fused_equals_reference(q, k, v, attn_mask=bias)
    np.testing.assert_allclose(y.numpy(), naive(q, k, v, bias=bias), rtol=1e-12)
    y = FUSED(q, k, v, attn_mask=tg.Tensor(allowed))  # a Tensor mask works too
    np.testing.assert_allclose(y.numpy(), naive(q, k, v, allowed=allowed), rtol=1e-12)


def test_is_causal_and_a_mask_are_refused_together_and_combine_by_hand():
    """PyTorch refuses the pair (with gradients on); the causal mask folds into attn_mask."""
    q, k, v = inputs(L=4, S=4)
    pad = np.array([False, True, True, True])  # key 0 is padding
    with pytest.raises(ValueError, match="attn_mask or is_causal=True, not both"):
        FUSED(q, k, v, attn_mask=pad, is_causal=True)
    both = pad & np.tril(np.ones((4, 4), bool))
    y = assert_fused_equals_reference(q, k, v, attn_mask=both)
    np.testing.assert_allclose(y.numpy(), naive(q, k, v, allowed=both), rtol=1e-12)
    assert (y.numpy()[:, :, 0] == 0).all()  # query 0 may only look at key 0, which is hidden


def test_masked_keys_are_as_if_absent():
    """Hiding keys equals deleting them."""
    q, k, v = inputs(B=1, H=1, L=1, S=5)
    allowed = np.array([True, False, True, False, True])  # (S,) broadcasts like (1, 1, 1, S)
    kept = np.flatnonzero(allowed)
    masked, dropped = FUSED(q, k, v, attn_mask=allowed), FUSED(q, k[:, :, kept], v[:, :, kept])
    np.testing.assert_allclose(masked.numpy(), dropped.numpy(), rtol=1e-13, atol=1e-15)


def test_a_query_that_may_see_no_key_gets_zero_and_finite_gradients():
    """Left padding with a causal mask: the pad queries 0 and 1 see only pad keys. PyTorch gives 0 there."""
    q, k, v = inputs(B=1, H=2, L=4, S=4)
    allowed = np.array([False, False, True, True]) & np.tril(np.ones((4, 4), bool))  # causal, no pad keys
    for bias in (None, np.where(allowed, 0.0, -np.inf)):  # as a bool mask and as a float mask of -inf
        kwargs = {"attn_mask": allowed if bias is None else bias}
        y = assert_fused_equals_reference(q, k, v, **kwargs)
        assert np.isfinite(y.numpy()).all() and (y.numpy()[:, :, :2] == 0).all()
        grads = tg.grad(FUSED(q, k, v, **kwargs), [q, k, v], tg.Tensor(np.ones((1, 2, 4, 4))))
        assert all(np.isfinite(gr.numpy()).all() for gr in grads)


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 3), H=st.integers(1, 2), L=st.integers(1, 4), S=st.integers(1, 5),
       full_mask=st.booleans(), causal=st.booleans(), seed=st.integers(0, 10_000))
def test_random_masks_match_the_reference_and_gradcheck(B, H, L, S, full_mask, causal, seed):
    """Any key mask, (B, 1, 1, S) or a full (B, H, L, S) one, including rows that hide everything."""
    q, k, v = inputs(B, H, L, S, seed=seed)
    allowed = np.random.default_rng(seed).random((B, H, L, S) if full_mask else (B, 1, 1, S)) < 0.6
    if causal:
        allowed = allowed & np.tril(np.ones((L, S), bool))
    y = assert_fused_equals_reference(q, k, v, attn_mask=allowed)
    assert np.isfinite(y.numpy()).all()


def test_scale_overrides_one_over_sqrt_e():
    q, k, v = inputs()
    y = assert_fused_equals_reference(q, k, v, scale=0.3)
    np.testing.assert_allclose(y.numpy(), naive(q, k, v, scale=0.3), rtol=1e-12)


def test_dropout_is_drawn_from_the_generator_and_both_paths_draw_the_same_mask():
    q, k, v = inputs()
    y = assert_fused_equals_reference(q, k, v, dropout_p=0.4, dropout_seed=3)
    again = FUSED(q, k, v, dropout_p=0.4, generator=tg.Generator(3))
    other = FUSED(q, k, v, dropout_p=0.4, generator=tg.Generator(4))
    np.testing.assert_array_equal(y.numpy(), again.numpy())
    assert not np.allclose(y.numpy(), other.numpy())
    assert not np.allclose(y.numpy(), FUSED(q, k, v).numpy())
    tg.manual_seed(5)
    a = FUSED(q, k, v, dropout_p=0.4)  # without a generator: the default one, as nn.Dropout
    tg.manual_seed(5)
    np.testing.assert_array_equal(a.numpy(), FUSED(q, k, v, dropout_p=0.4).numpy())
    assert (FUSED(q, k, v, dropout_p=1.0).numpy() == 0).all()  # PyTorch: every weight dropped


def test_dropout_is_unbiased_on_average():
    """Inverted dropout: E[output] equals the output without dropout (averaged over many masks)."""
    q, k, v = inputs(B=1, H=1, L=2, S=6, seed=7)
    gen = tg.Generator(0)
    with tg.no_grad():
        mean = np.mean([FUSED(q, k, v, dropout_p=0.5, generator=gen).numpy() for _ in range(4000)], axis=0)
    np.testing.assert_allclose(mean, FUSED(q, k, v).numpy(), atol=0.05)


def test_float32_stays_float32():
    q, k, v = (t.float() for t in inputs())
    for kwargs in ({}, {"is_causal": True}, {"attn_mask": np.zeros((3, 5))}, {"dropout_p": 0.2}):
        assert FUSED(q, k, v, **kwargs).dtype == np.float32


def test_errors_name_the_op_and_the_values():
    q, k, v = inputs(L=3, S=5)
    with pytest.raises(ValueError, match=r"query \(2, 2, 3, 4\), key \(2, 2, 5, 3\)"):
        FUSED(q, tg.ones(2, 2, 5, 3), v)
    with pytest.raises(ValueError, match="same leading dimensions"):
        FUSED(q, k[:1], v[:1])
    with pytest.raises(ValueError, match=r"attn_mask of shape \(2, 1, 1, 4\) does not broadcast to .*\(2, 2, 3, 5\)"):
        FUSED(q, k, v, attn_mask=np.zeros((2, 1, 1, 4), dtype=bool))
    with pytest.raises(TypeError, match="attn_mask must be bool .* or float"):
        FUSED(q, k, v, attn_mask=np.zeros((3, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="dropout_p must be between 0 and 1, got 1.5"):
        FUSED(q, k, v, dropout_p=1.5)
    with pytest.raises(NotImplementedError, match="enable_gqa"):
        FUSED(q, k, v, enable_gqa=True)
    with pytest.raises(NotImplementedError, match="requires grad"):
        FUSED(q, k, v, attn_mask=tg.zeros(3, 5, dtype=np.float64, requires_grad=True))


def test_the_fused_op_refuses_double_backward_and_the_reference_gives_it():
    q, k, v = inputs(B=1, H=1, L=2, S=3)
    (gq,) = tg.grad(REFERENCE(q, k, v, is_causal=True).sum(), [q], create_graph=True)
    assert gq.requires_grad
    with pytest.raises(RuntimeError, match="double backward"):
        tg.grad(FUSED(q, k, v, is_causal=True).sum(), [q], create_graph=True)
