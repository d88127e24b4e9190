"""The word2vec CUDA kernel (embeddings/_cuda_kernels.py, `sgns_update`) against a float64 NumPy
reference. Runs under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, its own process, as CI does) or
on a GPU; skipped otherwise, saying why (see test_cuda_kernels.py)."""
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

from embeddings import word2vec_fast  # noqa: E402

pytestmark = [pytest.mark.cuda_sim] + ([] if SIMULATED else [pytest.mark.gpu])

W = word2vec_fast.cuda_kernels()


def dev(a: np.ndarray):
    """Onto the kernels' device: unchanged in the simulator, a CuPy copy on a GPU."""
    if SIMULATED:
        return a
    import cupy

    return cupy.asarray(a)


def host(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.get()


def _data(shape, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


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


@pytest.mark.parametrize("dim", [6, W.THREADS + 5])
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
    loss = W.sgns_update(d_in, d_out, dev(centers), dev(contexts), dev(negatives), 0.5)
    np.testing.assert_allclose(host(loss), want_loss, rtol=1e-5)
    np.testing.assert_allclose(host(d_in), want_in, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(d_out), want_out, rtol=1e-5, atol=1e-6)


def test_sgns_update_rejects_bad_shapes():
    z = dev(np.zeros((4, 3), np.float32))
    ids = dev(np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="sgns_update"):
        W.sgns_update(z, z, ids, dev(np.zeros(3, np.int64)), dev(np.zeros((2, 1), np.int64)), 0.1)
    with pytest.raises(TypeError, match="float32"):
        W.sgns_update(dev(np.zeros((4, 3))), dev(np.zeros((4, 3))), ids, ids, dev(np.zeros((2, 1), np.int64)), 0.1)
