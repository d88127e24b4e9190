"""The Numba CPU scatter-add (embedding backward) against its NumPy reference, np.add.at.

Both paths are gradient-checked through the engine: TGLITE_NUMBA's module switch
(`backend.USE_NUMBA`) picks the path, and a spy proves which one actually ran.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tg
import tinygrad_lite.functional as F
from tinygrad_lite import backend, kernels

numba_missing = pytest.mark.skipif(not backend.numba_available(), reason="numba not installed (extra: fast)")


def spy_on_kernel(monkeypatch, use_numba, name):
    """Select the path; on the Numba path wrap kernel `name` so the test can see it was called."""
    monkeypatch.setattr(backend, "USE_NUMBA", use_numba)
    calls = []
    if use_numba:
        module = kernels.load("cpu")  # the module the CPU backend's registry serves
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, **k: (calls.append(name), real(*a, **k))[1])
    return calls


@numba_missing
@given(n_out=st.integers(1, 6), cols=st.integers(1, 5), n=st.integers(0, 12), seed=st.integers(0, 99),
       dtype=st.sampled_from([np.float32, np.float64]), idtype=st.sampled_from([np.int64, np.int32]))
def test_index_add_rows_matches_add_at(n_out, cols, n, seed, dtype, idtype):
    rng = np.random.default_rng(seed)
    idx = rng.integers(-n_out, n_out, n).astype(idtype)  # negative and repeated indices included
    values = rng.standard_normal((n, cols)).astype(dtype)
    ref = np.zeros((n_out, cols), dtype)
    np.add.at(ref, (idx,), values)
    out = np.zeros((n_out, cols), dtype)
    kernels.load("cpu").index_add_rows(out, idx, values)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


@numba_missing
def test_index_add_rows_rejects_bad_shapes():
    with pytest.raises(ValueError, match="index_add_rows"):
        kernels.load("cpu").index_add_rows(np.zeros((3, 2)), np.zeros(4, np.int64), np.zeros((4, 3)))


@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=numba_missing)])
def test_embedding_gradients_on_both_paths(use_numba, monkeypatch):
    calls = spy_on_kernel(monkeypatch, use_numba, "index_add_rows")
    rng = np.random.default_rng(0)
    weight = tg.Tensor(rng.standard_normal((5, 3)), dtype=tg.float64, requires_grad=True)
    idx = np.array([[0, 4, 4], [2, 0, -1]])  # (B, T) with repeats and a negative index
    tg.gradcheck(lambda w: F.embedding(idx[:, :2] % 5, w) * 2.0, [weight])
    tg.gradcheck(lambda w: w[idx] ** 2, [weight])
    assert bool(calls) == use_numba  # the path under test is the one that ran


@numba_missing
def test_cache_dir_defaults_to_a_writable_place(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert backend.ensure_numba_cache_dir() == str(tmp_path / "tinygrad_lite" / "numba")
    assert (tmp_path / "tinygrad_lite" / "numba").is_dir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert backend.ensure_numba_cache_dir() == str(tmp_path / "mine")  # the user's choice wins


def test_missing_numba_names_the_extra(monkeypatch):
    import sys

    from tinygrad_lite.extras import MissingExtraError

    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    with pytest.raises(MissingExtraError, match=r'pip install -e "\.\[gpu\]"'):
        kernels.load("cuda")
    with pytest.raises(MissingExtraError, match=r'pip install -e "\.\[fast\]"'):
        kernels.load("cpu")
    with pytest.raises(ValueError, match="unknown target"):
        kernels.load("tpu")


# ------------------------------------------------------------------ GELU and layer norm kernels
# The fused ops find these kernels through the CPU backend's registry; these tests compare each
# kernel with an exact float64 reference, and run the ops on both paths with a spy that proves
# which one ran.

def exact_phi(x):
    from scipy.special import erf
    return 0.5 * (1.0 + erf(np.asarray(x, np.float64) / np.sqrt(2.0)))


@numba_missing
def test_gelu_kernel_matches_exact_cdf_everywhere():
    # A dense grid over the whole float32 range that matters, plus the clamp edges and extremes.
    x = np.concatenate([np.linspace(-12, 12, 400_001), [0.0, -0.0, 1e-30, -1e-30, 5.42, -5.42, 3e38, -3e38]])
    x = x.astype(np.float32)
    y, cdf = kernels.load("cpu").gelu_forward(x)
    phi = exact_phi(x)
    assert y.dtype == cdf.dtype == np.float32
    assert np.abs(cdf - phi).max() < 2e-7  # float32 rounding level (eps/2 = 6e-8 near 1)
    exact = x.astype(np.float64) * phi
    assert np.all(np.abs(y - exact) <= 2e-7 * np.abs(x) + 1e-7 * np.abs(exact))  # Φ's error times |x|, plus rounding
    assert np.all(np.isfinite(y))


@numba_missing
def test_gelu_kernel_keeps_shape_and_rejects_float64():
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)[:, ::-1]  # non-contiguous
    y, cdf = kernels.load("cpu").gelu_forward(x)
    assert y.shape == cdf.shape == x.shape
    np.testing.assert_allclose(cdf, exact_phi(x), atol=2e-7)
    with pytest.raises(ValueError, match="float32"):
        kernels.load("cpu").gelu_forward(x.astype(np.float64))


@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=numba_missing)])
def test_fused_gelu_float32_forward_and_backward_on_both_paths(use_numba, monkeypatch):
    calls = spy_on_kernel(monkeypatch, use_numba, "gelu_forward")
    rng = np.random.default_rng(1)
    x64 = rng.standard_normal((6, 33)) * 3
    g64 = rng.standard_normal((6, 33))
    x = tg.Tensor(x64, dtype=tg.float32, requires_grad=True)
    y = F.fused_gelu(x)
    y.backward(tg.Tensor(g64, dtype=tg.float32))
    xr = x64.astype(np.float32).astype(np.float64)
    phi = exact_phi(xr)
    pdf = np.exp(-0.5 * xr * xr) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(y.numpy(), xr * phi, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), g64 * (phi + xr * pdf), rtol=1e-5, atol=1e-6)
    assert calls == (["gelu_forward"] if use_numba else [])


@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=numba_missing)])
def test_fused_gelu_float64_uses_the_exact_path_and_gradchecks(use_numba, monkeypatch):
    calls = spy_on_kernel(monkeypatch, use_numba, "gelu_forward")
    x = tg.Tensor(np.random.default_rng(2).standard_normal((3, 5)) * 2, dtype=tg.float64, requires_grad=True)
    tg.gradcheck(F.fused_gelu, [x])
    assert calls == []  # the float32 kernel never serves float64


def layer_norm_reference(x, w, b, eps, g):
    """float64 NumPy layer norm and its gradients, written out independently of the engine."""
    x, w, b, g = (np.asarray(a, np.float64) for a in (x, w, b, g))
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    xhat = (x - mean) / np.sqrt(var + eps)
    n = x.shape[-1]
    gxhat = g * w
    gx = (n * gxhat - gxhat.sum(-1, keepdims=True) - xhat * (gxhat * xhat).sum(-1, keepdims=True)) / (
        n * np.sqrt(var + eps))
    lead = tuple(range(x.ndim - 1))
    return xhat * w + b, gx, (g * xhat).sum(lead), g.sum(lead)


@numba_missing
@given(shape=st.sampled_from([(1, 1), (3, 1), (2, 5), (4, 3, 8), (2, 2, 2, 16)]), seed=st.integers(0, 99),
       dtype=st.sampled_from([np.float32, np.float64]), want_gx=st.booleans())
def test_layer_norm_kernels_match_reference(shape, seed, dtype, want_gx):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w, b = rng.standard_normal(shape[-1]).astype(dtype), rng.standard_normal(shape[-1]).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    k = kernels.load("cpu")
    y, xhat, rstd = k.layer_norm_forward(x, w, b, 1e-5)
    gx, gw, gb = k.layer_norm_backward(g, xhat, rstd, w, want_gx=want_gx)
    ry, rgx, rgw, rgb = layer_norm_reference(x, w, b, 1e-5, g)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    assert y.dtype == gw.dtype == gb.dtype == dtype and rstd.shape == shape[:-1] + (1,)
    np.testing.assert_allclose(y, ry, rtol=tol, atol=tol)
    np.testing.assert_allclose(gw, rgw, rtol=tol, atol=tol)
    np.testing.assert_allclose(gb, rgb, rtol=tol, atol=tol)
    if want_gx:
        np.testing.assert_allclose(gx, rgx, rtol=tol, atol=tol)
    else:
        assert gx is None


@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=numba_missing)])
def test_layer_norm_op_gradchecks_on_both_paths(use_numba, monkeypatch):
    calls = spy_on_kernel(monkeypatch, use_numba, "layer_norm_backward")
    rng = np.random.default_rng(3)
    x = tg.Tensor(rng.standard_normal((2, 3, 6)), dtype=tg.float64, requires_grad=True)
    w = tg.Tensor(rng.standard_normal(6), dtype=tg.float64, requires_grad=True)
    b = tg.Tensor(rng.standard_normal(6), dtype=tg.float64, requires_grad=True)
    tg.gradcheck(lambda x, w, b: F.layer_norm(x, w.shape, w, b), [x, w, b])
    w_only = tg.Tensor(rng.standard_normal(6), dtype=tg.float64, requires_grad=True)
    tg.gradcheck(lambda w: F.layer_norm(x.detach(), w.shape, w, b.detach()), [w_only])  # no dx wanted
    assert bool(calls) == use_numba


@numba_missing
def test_kernels_propagate_nan_and_inf_like_numpy():
    # The kernels use fast math without "nnan"/"ninf": non-finite values must come out as NumPy's do.
    k = kernels.load("cpu")
    x = np.array([np.nan, np.inf, -np.inf, 0.5] * 4, np.float32)
    y, _ = k.gelu_forward(x)
    with np.errstate(invalid="ignore"):
        expected = x.astype(np.float64) * exact_phi(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(y[~np.isnan(y)], expected[~np.isnan(expected)].astype(np.float32))
    assert np.isnan(k.sum_of_squares(x[:1])) and k.sum_of_squares(x[1:3]) == np.inf
    ln, _, _ = k.layer_norm_forward(np.array([[np.nan, 1.0, 2.0]], np.float32), np.ones(3, np.float32),
                                    np.zeros(3, np.float32), 1e-5)
    assert np.isnan(ln).all()


@numba_missing
def test_clip_grad_norm_still_refuses_nan_gradients_on_the_compiled_path(monkeypatch):
    import nn

    monkeypatch.setattr(backend, "USE_NUMBA", True)
    p = nn.Parameter(np.ones(4, np.float32))
    p.grad = tg.Tensor(np.array([1.0, np.nan, 0.0, 2.0], np.float32))
    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        nn.clip_grad_norm_([p], 1.0)
