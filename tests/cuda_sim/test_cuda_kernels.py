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


@pytest.mark.parametrize("shape", SHAPES)
def test_layernorm_forward_backward(shape):
    x, gy = _data(shape) + 5.0, _data(shape, 1)  # an offset mean: the two-pass variance matters
    w, b = _data(shape[1:], 2), _data(shape[1:], 3)
    tx, tw, tb = (tg.Tensor(a.astype(np.float64), requires_grad=True) for a in (x, w, b))
    ref = F.layer_norm(tx, tw.shape, tw, tb, eps=1e-5)
    ref.backward(tg.Tensor(gy.astype(np.float64)))
    y, mean, rstd = K.layernorm_forward(dev(x), dev(w), dev(b), 1e-5)
    np.testing.assert_allclose(host(y), ref.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(host(mean), x.astype(np.float64).mean(axis=1), rtol=1e-5)
    dx, dw, db = K.layernorm_backward(dev(x), dev(w), mean, rstd, dev(gy))
    for got, want in ((dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(host(got), want.numpy(), rtol=1e-4, atol=1e-4)


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


def sgns_reference(w_in, w_out, centers, contexts, negatives, lr):
    """Skip-gram negative sampling, one pair after another, in float64 (the kernel's semantics
    when pairs touch disjoint rows, as in this test)."""
    w_in, w_out = w_in.astype(np.float64), w_out.astype(np.float64)
    losses = []
    for c, pos, negs in zip(centers, contexts, negatives):
        h, gh, total = w_in[c].copy(), np.zeros(w_in.shape[1]), 0.0
        for k, j in enumerate([pos, *negs]):
            s = h @ w_out[j]
            label = 1.0 if k == 0 else 0.0
            coef = 1.0 / (1.0 + np.exp(-s)) - label
            total += np.logaddexp(0.0, -s if k == 0 else s)
            gh += coef * w_out[j]
            w_out[j] -= lr * coef * h
        w_in[c] -= lr * gh
        losses.append(total)
    return w_in, w_out, np.array(losses)


@pytest.mark.parametrize("dim", [6, K.THREADS + 5])
def test_sgns_update(dim):
    rng = np.random.default_rng(6)
    vocab, pairs, k = 24, 3, 2
    w_in, w_out = _data((vocab, dim), 7, 0.5), _data((vocab, dim), 8, 0.5)
    ids = rng.permutation(vocab)  # disjoint rows across pairs: the result cannot depend on block order
    centers, contexts = ids[:pairs], ids[pairs:2 * pairs]
    negatives = ids[2 * pairs:2 * pairs + pairs * k].reshape(pairs, k)
    negatives[0, 1] = contexts[0]  # the context drawn again as a negative: the in-block ordering matters
    want_in, want_out, want_loss = sgns_reference(w_in, w_out, centers, contexts, negatives, 0.5)
    d_in, d_out = dev(w_in), dev(w_out)
    loss = K.sgns_update(d_in, d_out, dev(centers), dev(contexts), dev(negatives), 0.5)
    np.testing.assert_allclose(host(loss), want_loss, rtol=1e-5)
    np.testing.assert_allclose(host(d_in), want_in, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(d_out), want_out, rtol=1e-5, atol=1e-6)


def test_wrappers_reject_wrong_dtypes_and_shapes():
    with pytest.raises(TypeError, match="float32"):
        K.softmax_forward(dev(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="2-D"):
        K.softmax_forward(dev(np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="sgns_update"):
        z = dev(np.zeros((4, 3), np.float32))
        ids = dev(np.zeros(2, np.int64))
        K.sgns_update(z, z, ids, dev(np.zeros(3, np.int64)), dev(np.zeros((2, 1), np.int64)), 0.1)
