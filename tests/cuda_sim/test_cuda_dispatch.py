"""The engine's ops on the GPU path: each finds its Numba CUDA kernel in the backend's registry.

Under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) the CUDA kernels take NumPy arrays, so the ops run
on "cuda-sim" (tests/devices.py): a device whose arrays are NumPy and whose kernel registry is
the CUDA one. Every fused op, softmax and AdamW then dispatches exactly as on "cuda", and the
kernels run in the simulator. On a machine with a GPU the same tests run on "cuda" itself.
Each test compares with the NumPy reference on "cpu" (float64, or the float32 reference path) and
spies on the kernels to prove which ran. Shapes are tiny: every simulated CUDA thread is a Python
thread.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
if not SIMULATED:
    import tinygrad_lite as _tg

    if not _tg.cuda_available():
        pytest.skip("CUDA dispatch tests need NUMBA_ENABLE_CUDASIM=1 (CI runs them in their own process: "
                    "see .ci/run) or a GPU; this process has neither", allow_module_level=True)

from devices import cuda_sim_device  # noqa: E402

import nn  # noqa: E402
import tinygrad_lite as tg  # noqa: E402
import tinygrad_lite.functional as F  # noqa: E402
from tinygrad_lite import backend, kernels  # noqa: E402

pytestmark = [pytest.mark.cuda_sim] + ([] if SIMULATED else [pytest.mark.gpu])

K = kernels.load("cuda")
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


@pytest.fixture
def device():
    """The device whose registry holds the CUDA kernels: "cuda-sim" in the simulator, else "cuda"."""
    with cuda_sim_device() if SIMULATED else contextlib.nullcontext("cuda") as name:
        yield name


@pytest.fixture
def calls(monkeypatch):
    """Wrap every kernel in the CUDA registry with a spy; the list names the kernels that ran."""
    ran: list[str] = []
    for name in K.DTYPES:
        real = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _real=real, _name=name, **k: (ran.append(_name), _real(*a, **k))[1])
    return ran


def data(shape, seed=0, scale=2.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * scale


def on(device: str, a: np.ndarray, dtype=tg.float32, requires_grad: bool = True) -> tg.Tensor:
    return tg.Tensor(a, dtype=dtype, requires_grad=requires_grad).to(device).detach().requires_grad_(requires_grad)


def host(t: tg.Tensor) -> np.ndarray:
    return t.cpu().numpy().astype(np.float64)


# Rows wider than a simulated block (K.THREADS columns): each thread loops; 2 x 2 = 4 rows = 4 blocks.
# (Few rows: each simulated barrier switches between Python threads, which is slow.)
SHAPE = (2, 2, K.THREADS + 3)


def test_the_registry_serves_the_cuda_kernels_for_float32_only(device):
    b = backend.get_backend(device)
    assert b.kernel("softmax_forward", F32) is K.softmax_forward
    assert b.kernel("layer_norm_backward", F32) is K.layer_norm_backward
    assert b.kernel("softmax_forward", F64) is None  # float64 on the GPU: the ops' CuPy reference code
    assert b.kernel("index_add_rows", F32) is None  # a CPU-only kernel
    assert b.kernel("no_such_kernel", F32) is None


def test_layer_norm(device, calls):
    x, w, bias, g = data(SHAPE) + 3.0, data(SHAPE[-1:], 1), data(SHAPE[-1:], 2), data(SHAPE, 3)
    ts = [on(device, a) for a in (x, w, bias)]
    y = F.layer_norm(ts[0], ts[1].shape, *ts[1:])
    y.backward(on(device, g, requires_grad=False))
    refs = [tg.Tensor(a, dtype=tg.float64, requires_grad=True) for a in (x, w, bias)]
    ref = F.layer_norm(refs[0], refs[1].shape, *refs[1:])
    ref.backward(tg.Tensor(g))
    assert y.device == device and calls == ["layer_norm_forward", "layer_norm_backward"]
    np.testing.assert_allclose(host(y), ref.numpy(), rtol=1e-4, atol=1e-4)
    for t, r in zip(ts, refs):
        np.testing.assert_allclose(host(t.grad), r.grad.numpy(), rtol=1e-4, atol=2e-4)


def test_layer_norm_without_the_input_gradient(device, calls):
    x, w, bias = on(device, data(SHAPE), requires_grad=False), on(device, data(SHAPE[-1:], 1)), \
        on(device, data(SHAPE[-1:], 2))
    F.layer_norm(x, w.shape, w, bias).sum().backward()
    assert calls == ["layer_norm_forward", "layer_norm_backward"] and x.grad is None
    np.testing.assert_allclose(host(bias.grad), np.full(SHAPE[-1], SHAPE[0] * SHAPE[1]), rtol=1e-6)


def test_fused_gelu(device, calls):
    x, g = data(SHAPE), data(SHAPE, 1)
    t = on(device, x)
    y = F.fused_gelu(t)
    y.backward(on(device, g, requires_grad=False))
    r = tg.Tensor(x, dtype=tg.float64, requires_grad=True)
    ref = F.fused_gelu(r)
    ref.backward(tg.Tensor(g))
    assert calls == ["gelu_forward"]  # backward is two xp multiplies and an exp: no kernel needed
    np.testing.assert_allclose(host(y), ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(t.grad), r.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_float64_takes_the_reference_path(device, calls):
    t = on(device, data((3, 4)), dtype=tg.float64)
    tg.gradcheck(lambda a: F.layer_norm(F.fused_gelu(a), 4).softmax(axis=-1), [t])
    assert calls == []


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy(device, calls, reduction, label_smoothing):
    logits = data(SHAPE, scale=3.0)
    target = np.random.default_rng(4).integers(0, SHAPE[-1], SHAPE[:-1])
    target[1, 0] = -100  # an ignored position: no loss, no gradient
    t = on(device, logits)
    loss = F.cross_entropy(t, target, label_smoothing=label_smoothing, reduction=reduction)
    g = data(loss.shape, 5) if reduction == "none" else np.array(0.7)
    loss.backward(on(device, g, requires_grad=False))
    r = tg.Tensor(logits, dtype=tg.float64, requires_grad=True)
    ref = F.cross_entropy(r, target, label_smoothing=label_smoothing, reduction=reduction)
    ref.backward(tg.Tensor(g))
    assert calls == ["cross_entropy_forward", "cross_entropy_backward"]
    assert loss.dtype == tg.float32 and loss.shape == ref.shape
    np.testing.assert_allclose(host(loss), ref.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(host(t.grad), r.grad.numpy(), rtol=1e-4, atol=1e-6)
    assert not host(t.grad)[1, 0].any()


def test_cross_entropy_jvp_on_the_kernel_path(device, calls):
    # forward mode after a compiled forward: the tangent is built from the saved logsumexp
    logits, tangent = data((5, 7)), data((5, 7), 1)
    target = np.array([0, 6, -100, 3, 3])
    _, dy = tg.jvp(lambda a: F.cross_entropy(a, target), [on(device, logits, requires_grad=False)],
                   [on(device, tangent, requires_grad=False)])
    _, ref = tg.jvp(lambda a: F.cross_entropy(a, target), [tg.Tensor(logits, dtype=tg.float64)],
                    [tg.Tensor(tangent, dtype=tg.float64)])
    assert calls == ["cross_entropy_forward"]
    np.testing.assert_allclose(host(dy), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_softmax(device, calls):
    x, g = data(SHAPE), data(SHAPE, 1)
    t = on(device, x)
    y = t.softmax(axis=-1)
    y.backward(on(device, g, requires_grad=False))
    r = tg.Tensor(x, dtype=tg.float64, requires_grad=True)
    ref = r.softmax(axis=-1)
    ref.backward(tg.Tensor(g))
    assert calls == ["softmax_forward", "softmax_backward"]
    np.testing.assert_allclose(host(y), ref.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(host(t.grad), r.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_softmax_keeps_higher_order_gradients(device, calls):
    # create_graph=True records backward as Tensor ops (the reference), so a second derivative exists
    x = data((2, 5))
    t, r = on(device, x), tg.Tensor(x, dtype=tg.float64, requires_grad=True)
    grads = []
    for a in (t, r):
        (ga,) = tg.grad((a.softmax(axis=-1) ** 2).sum(), [a], create_graph=True)
        if a is t:
            assert calls == ["softmax_forward"]  # a backward that records its graph: Tensor ops
        (gga,) = tg.grad((ga * ga).sum(), [a])  # (this one records nothing: the kernel may serve it)
        grads.append(host(gga))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


def test_softmax_over_another_axis_takes_the_reference_path(device, calls):
    t = on(device, data((4, 3)))
    t.softmax(axis=0).sum().backward()
    assert calls == []


@pytest.mark.parametrize("opt", ["AdamW", "Adam"])
def test_optimizer_step(device, calls, monkeypatch, opt):
    rng = np.random.default_rng(7)
    w0, b0, x = rng.standard_normal((K.THREADS + 4, 3)), rng.standard_normal(3), rng.standard_normal((5, K.THREADS + 4))
    results = []
    for dev in (device, "cpu"):
        monkeypatch.setattr(backend, "USE_NUMBA", dev == device)  # on "cpu": the NumPy reference, not Numba
        w, b = on(dev, w0), on(dev, b0)
        optimizer = getattr(nn, opt)([w, b], lr=0.05, weight_decay=0.1)
        for _ in range(3):
            optimizer.zero_grad()
            ((tg.Tensor(x, dtype=tg.float32).to(dev) @ w + b).tanh() ** 2).sum().backward()
            optimizer.step()
        results.append(np.concatenate([host(w).ravel(), host(b)]))
    assert calls.count("adam_update") == 6  # two parameters, three steps, on the kernel device only
    np.testing.assert_allclose(results[0], results[1], rtol=2e-5, atol=2e-6)
    assert np.abs(results[1] - np.concatenate([w0.ravel(), b0])).max() > 0.05  # the parameters moved


def test_a_gpt_training_step_uses_every_kernel(device, calls, monkeypatch):
    config = nn.GPTConfig(block_size=4, vocab_size=11, n_layer=1, n_head=2, n_embd=8)
    # 1 x 2 tokens: two rows per row-wise kernel (a block each), since simulated barriers are slow
    batch = np.random.default_rng(8).integers(0, config.vocab_size, (1, 3))
    losses, weights = [], []
    for dev in (device, "cpu"):
        monkeypatch.setattr(backend, "USE_NUMBA", dev == device)
        model = nn.GPT(config, generator=tg.Generator(0)).to(dev)
        opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-2)
        _, loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        opt.step()
        losses.append(loss.item())
        weights.append(np.concatenate([host(p).ravel() for p in model.parameters()]))
    assert {"layer_norm_forward", "layer_norm_backward", "gelu_forward", "cross_entropy_forward",
            "cross_entropy_backward", "adam_update"} <= set(calls)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    np.testing.assert_allclose(weights[0], weights[1], rtol=1e-4, atol=1e-5)  # one AdamW step moves each by ~lr
