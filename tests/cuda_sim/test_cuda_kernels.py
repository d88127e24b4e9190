"""The Numba CUDA kernels against the NumPy reference (the engine's CPU ops), forward and backward.

Runs in one of two modes, decided before numba is imported:
  * CUDA simulator: `NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda_sim` (its own process; CI
    does this). Arrays are NumPy; every CUDA thread is a Python thread, so shapes are tiny (a few
    blocks) but they still exercise multiple blocks, the strided column loops (rows wider than a
    block) and the shared-memory reductions.
  * a real GPU (CuPy importable and a device present): the same tests on CuPy arrays.
Otherwise the whole module is skipped, saying why: the main `python -m pytest` run on a CPU-only
machine must not pretend to have tested the kernels (the simulator step is what tests them).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
if not SIMULATED:
    import tinygrad_lite as _tg

    if not _tg.cuda_available():
        pytest.skip("CUDA kernel tests need NUMBA_ENABLE_CUDASIM=1 (CI runs them in their own process: "
                    "see .ci/run) or a GPU; this process has neither", allow_module_level=True)

import tinygrad_lite as tg  # noqa: E402
import tinygrad_lite.functional as F  # noqa: E402
from tinygrad_lite import kernels  # noqa: E402

pytestmark = [pytest.mark.cuda_sim] + ([] if SIMULATED else [pytest.mark.gpu])

K = kernels.load("cuda")  # with NUMBA_ENABLE_CUDASIM=1 a failure here is a real failure, not a skip
assert K.SIMULATOR == SIMULATED, "numba was imported before NUMBA_ENABLE_CUDASIM was set"


def dev(a: np.ndarray):
    """Onto the kernels' device: unchanged in the simulator, a CuPy copy on a GPU."""
    if SIMULATED:
        return a
    import cupy

    return cupy.asarray(a)


def host(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.get()


# Rows wider than a block (K.THREADS columns) make every thread loop; 3 rows = 3 blocks.
SHAPES = [(3, 5), (2, K.THREADS * 2 + 3)]


def _data(shape, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_forward_backward(shape):
    x, g = _data(shape), _data(shape, 1)
    ref_x = tg.Tensor(x.astype(np.float64), requires_grad=True)
    ref = ref_x.softmax(axis=-1)
    ref.backward(tg.Tensor(g.astype(np.float64)))
    y = K.softmax_forward(dev(x))
    np.testing.assert_allclose(host(y), ref.numpy(), rtol=1e-5, atol=1e-7)
    dx = K.softmax_backward(y, dev(g))
    np.testing.assert_allclose(host(dx), ref_x.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES + [(2, 2, 7)])  # leading axes are rows too
@pytest.mark.parametrize("want_gx", [True, False])
def test_layer_norm_forward_backward(shape, want_gx):
    x, gy = _data(shape) + 5.0, _data(shape, 1)  # an offset mean: the two-pass variance matters
    w, b = _data(shape[-1:], 2), _data(shape[-1:], 3)
    tx, tw, tb = (tg.Tensor(a.astype(np.float64), requires_grad=True) for a in (x, w, b))
    ref = F.layer_norm(tx, tw.shape, tw, tb, eps=1e-5)
    ref.backward(tg.Tensor(gy.astype(np.float64)))
    y, xhat, rstd = K.layer_norm_forward(dev(x), dev(w), dev(b), 1e-5)
    np.testing.assert_allclose(host(y), ref.numpy(), rtol=1e-4, atol=1e-4)
    x64 = x.astype(np.float64)
    want_rstd = 1.0 / np.sqrt(x64.var(axis=-1, keepdims=True) + 1e-5)
    assert rstd.shape == shape[:-1] + (1,)
    np.testing.assert_allclose(host(rstd), want_rstd, rtol=1e-4)
    np.testing.assert_allclose(host(xhat), (x64 - x64.mean(axis=-1, keepdims=True)) * want_rstd, rtol=1e-4, atol=1e-4)
    dx, dw, db = K.layer_norm_backward(dev(gy), xhat, rstd, dev(w), want_gx)
    for got, want in ((dw, tw.grad), (db, tb.grad)) + (((dx, tx.grad),) if want_gx else ()):
        np.testing.assert_allclose(host(got), want.numpy(), rtol=1e-4, atol=1e-4)
    assert want_gx or dx is None


@pytest.mark.parametrize("shape", [(5,), (3, K.THREADS + 7)])  # one partial block; several blocks
def test_gelu_forward(shape):
    from scipy.special import erf

    x = _data(shape)
    y, cdf = K.gelu_forward(dev(x))
    phi = 0.5 * (1.0 + erf(x.astype(np.float64) / np.sqrt(2.0)))
    np.testing.assert_allclose(host(cdf), phi, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(host(y), x * phi, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("decoupled", [True, False], ids=["adamw", "adam-l2"])
def test_adam_update_matches_the_reference_optimizer(decoupled):
    import nn

    p0, g = _data((3, K.THREADS + 5), 6), _data((3, K.THREADS + 5), 7)
    m, v = np.abs(_data(p0.shape, 8)) * 0.1, np.abs(_data(p0.shape, 9)) * 0.1
    ref = nn.Parameter(p0.astype(np.float64))  # the optimizer's NumPy path, in float64
    opt = (nn.AdamW if decoupled else nn.Adam)([ref], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    opt.state[id(ref)] = {"step": 2, "exp_avg": m.astype(np.float64), "exp_avg_sq": v.astype(np.float64)}
    ref.grad = tg.Tensor(g.astype(np.float64))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tg.backend, "USE_NUMBA", False)  # the reference, not the CPU kernel
        opt.step()
    p, dm, dv = dev(p0.copy()), dev(m.copy()), dev(v.copy())
    K.adam_update(p, dev(g), dm, dv, lr=0.01, b1=0.9, b2=0.99, eps=1e-8, step=3, weight_decay=0.1,
                  decoupled=decoupled)
    np.testing.assert_allclose(host(p), ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(dm), opt.state[id(ref)]["exp_avg"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(host(dv), opt.state[id(ref)]["exp_avg_sq"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_forward_backward(shape, label_smoothing):
    logits = _data(shape)
    target = np.random.default_rng(4).integers(0, shape[1], shape[0])
    target[1] = -100  # an ignored row: zero loss, zero gradient
    gout = _data(shape[:1], 5)
    t = tg.Tensor(logits.astype(np.float64), requires_grad=True)
    ref = F.cross_entropy(t, target, label_smoothing=label_smoothing, reduction="none")
    ref.backward(tg.Tensor(gout.astype(np.float64)))
    loss, lse = K.cross_entropy_forward(dev(logits), dev(target), -100, label_smoothing)
    np.testing.assert_allclose(host(loss), ref.numpy(), rtol=1e-5, atol=1e-5)
    dx = K.cross_entropy_backward(dev(logits), dev(target), lse, dev(gout), -100, label_smoothing)
    np.testing.assert_allclose(host(dx), t.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_wrappers_reject_wrong_dtypes_and_shapes():
    with pytest.raises(TypeError, match="float32"):
        K.softmax_forward(dev(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="feature axis"):
        K.softmax_forward(dev(np.zeros((), np.float32)))
    with pytest.raises(TypeError, match="float32"):
        K.gelu_forward(dev(np.zeros(3)))
    with pytest.raises(ValueError, match="adam_update"):
        z = dev(np.zeros(3, np.float32))
        K.adam_update(z, dev(np.zeros(4, np.float32)), z, z, lr=0.1, b1=0.9, b2=0.99, eps=1e-8, step=1,
                      weight_decay=0.0, decoupled=True)
    with pytest.raises(ValueError, match="cross_entropy_forward"):
        K.cross_entropy_forward(dev(np.zeros((2, 3), np.float32)), dev(np.zeros(3, np.int64)))
