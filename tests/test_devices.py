"""Devices: Tensor.to / .cpu / .cuda, factories with device=, the mixed-device error,
Module.to(device), checkpoints across devices, and the "cuda" device's clear errors.

Everything device-specific is checked on "fakecuda" (a NumPy-backed second device, see
tests/devices.py) so it runs without a GPU; the op tests are also parametrized over DEVICES
(["cpu"], plus "cuda" when a GPU is present).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from devices import DEVICES, OTHER_DEVICES, fake_device

import nn
import tinygrad_lite as tg
import tinygrad_lite.functional as F
from tinygrad_lite import backend


@pytest.fixture
def fake():
    with fake_device() as name:
        yield name


def _forward_backward(device: str, x0: np.ndarray, w0: np.ndarray, y: np.ndarray):
    """A small network using the main op kinds (matmul, fused layer norm / GELU / cross-entropy,
    softmax, indexing, reductions, broadcasting); returns the loss and both gradients as NumPy."""
    x = tg.Tensor(x0, device=device, requires_grad=True)
    w = tg.Tensor(w0, device=device, requires_grad=True)
    h = F.layer_norm(x @ w).gelu()
    h = h + h.softmax(axis=-1) * h[:, :1] - h.tanh().mean(axis=0, keepdims=True)
    emb = F.embedding(np.array([0, 2, 2, 1]), w.T)  # the repeated index exercises the scatter-add
    loss = F.cross_entropy(h, y) + (emb * emb).sum() + h.logsumexp(axis=-1).max()
    loss.backward()
    assert loss.device == device and x.grad.device == device and w.grad.device == device
    return float(loss.item()), x.grad.numpy(), w.grad.numpy()


@pytest.mark.parametrize("device", DEVICES + ["fakecuda"])
def test_ops_agree_across_devices(device):
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    y = np.array([0, 2, 1, 2])
    ref = _forward_backward("cpu", x0, w0, y)
    with fake_device():
        got = _forward_backward(device, x0, w0, y)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-6, atol=1e-9)


def test_to_and_back_carries_gradients(fake):
    x = tg.Tensor([1.0, -2.0, 3.0], dtype=tg.float64, requires_grad=True)
    y = x.to(fake)
    assert y.device == fake and y.requires_grad and x.to("cpu") is x
    assert y.numpy() is not x.numpy()  # a transfer copies
    z = (y * y).sum().cpu()
    assert z.device == "cpu"
    z.backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, -4.0, 6.0]
    assert "device='fakecuda'" in repr(y)


def test_factories_take_device(fake):
    for t in (tg.zeros(2, 3, device=fake), tg.ones(2, device=fake), tg.full((2,), 3.0, device=fake),
              tg.arange(4, device=fake), tg.eye(2, device=fake), tg.rand(3, device=fake),
              tg.randn(3, device=fake), tg.randint(0, 5, (3,), device=fake)):
        assert t.device == fake
    assert tg.zeros_like(tg.ones(2, device=fake)).device == fake
    # The same seed gives the same numbers on every device (drawn on the CPU, then moved).
    tg.manual_seed(3)
    a = tg.randn(4, device=fake).numpy()
    tg.manual_seed(3)
    assert np.array_equal(a, tg.randn(4).numpy())


def test_mixing_devices_names_both(fake):
    a, b = tg.ones(3), tg.ones(3, device=fake)
    with pytest.raises(RuntimeError, match=r"Add: inputs are on different devices \('cpu', 'fakecuda'\)"):
        a + b
    with pytest.raises(RuntimeError, match=r"Matmul|different devices \('fakecuda', 'cpu'\)"):
        tg.ones(2, 2, device=fake) @ tg.ones(2, 2)
    # Equal device names that are different string objects are not a mix.
    name = "".join(["fake", "cuda"])
    c = tg.Tensor._make(np.ones(3, dtype=np.float32), False, name)
    assert (b + c).device == fake


def test_mixed_devices_that_break_forward_are_named(fake):
    # On a real GPU, NumPy meeting CuPy fails inside forward (a TypeError from the array library);
    # Function.apply must replace that with the error naming both devices.
    class Incompatible(tg.Function):
        def forward(self, x, y):
            raise TypeError("Implicit conversion to a NumPy array is not allowed")

    with pytest.raises(RuntimeError, match=r"Incompatible: inputs are on different devices \('cpu', 'fakecuda'\)"):
        Incompatible.apply(tg.ones(2), tg.ones(2, device=fake))
    with pytest.raises(TypeError, match="Implicit conversion"):  # same device: the original error stands
        Incompatible.apply(tg.ones(2), tg.ones(2))


@pytest.mark.parametrize("device", OTHER_DEVICES)
def test_module_to_device_and_train_step(fake, device, monkeypatch):
    fake = device
    # The CPU side takes the NumPy reference path, like every other device: this test is about the
    # device plumbing, and Adam turns float32 rounding differences (the Numba kernels round
    # differently; tests/test_kernels_cpu.py compares them) into ~1e-6 differences in parameters
    # whose gradient is ~0.
    monkeypatch.setattr(tg.backend, "USE_NUMBA", False)
    config = nn.GPTConfig(block_size=6, vocab_size=9, n_layer=1, n_head=2, n_embd=8)
    cpu_model = nn.GPT(config, generator=tg.Generator(0))
    dev_model = nn.GPT(config, generator=tg.Generator(0)).to(fake)
    assert all(p.device == fake for p in dev_model.parameters())
    x = np.random.default_rng(0).integers(0, 9, (2, 7))
    losses = []
    for model in (cpu_model, dev_model):
        opt = model.configure_optimizers(0.1, 1e-2)
        for _ in range(2):
            opt.zero_grad()
            loss = model(x[:, :-1], x[:, 1:])[1]
            loss.backward()
            opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    for p, q in zip(cpu_model.parameters(), dev_model.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-5, atol=1e-6)
    assert dev_model.cpu().parameters()[0].device == "cpu"


@pytest.mark.parametrize("device", OTHER_DEVICES)
def test_checkpoint_saved_on_one_device_loads_on_another(fake, device, tmp_path):
    fake = device
    config = nn.GPTConfig(block_size=6, vocab_size=9, n_layer=1, n_head=2, n_embd=8)
    x = np.random.default_rng(1).integers(0, 9, (2, 7))
    model = nn.GPT(config, generator=tg.Generator(0)).to(fake)
    opt = model.configure_optimizers(0.1, 1e-2)
    model(x[:, :-1], x[:, 1:])[1].backward()
    opt.step()
    path = nn.save_checkpoint(tmp_path / "dev.npz", model, opt)
    ckpt = nn.load_checkpoint(path)
    assert all(type(v) is np.ndarray for v in ckpt.model.values())
    # device -> cpu
    cpu_model = nn.GPT(config, generator=tg.Generator(5))
    cpu_opt = cpu_model.configure_optimizers(0.1, 1e-2)
    nn.restore(ckpt, cpu_model, cpu_opt)
    for p, q in zip(model.parameters(), cpu_model.parameters()):
        assert q.device == "cpu" and np.array_equal(p.numpy(), q.numpy())
    # cpu -> device: the optimizer state lands on the parameters' device too
    path2 = nn.save_checkpoint(tmp_path / "cpu.npz", cpu_model, cpu_opt)
    back = nn.GPT(config, generator=tg.Generator(7)).to(fake)
    back_opt = back.configure_optimizers(0.1, 1e-2)
    nn.restore(nn.load_checkpoint(path2), back, back_opt)
    for p, q in zip(model.parameters(), back.parameters()):
        assert q.device == fake and np.array_equal(p.numpy(), q.numpy())
    back(x[:, :-1], x[:, 1:])[1].backward()
    back_opt.step()  # the restored Adam buffers work with the device's arrays


def test_cuda_without_gpu_says_what_is_missing(monkeypatch):
    monkeypatch.setenv(backend.FORCE_CPU_ENV, "1")
    assert not tg.cuda_available()
    assert "TGLITE_FORCE_CPU" in tg.cuda_unavailable_reason()
    with pytest.raises(RuntimeError, match="device 'cuda' is not available: TGLITE_FORCE_CPU"):
        tg.ones(2).cuda()
    with pytest.raises(RuntimeError, match="not available"):
        tg.zeros(2, device="cuda")
    monkeypatch.delenv(backend.FORCE_CPU_ENV)
    if not tg.cuda_available():  # a real CPU-only machine: the reason names the missing piece
        assert "CuPy" in tg.cuda_unavailable_reason()
        with pytest.raises(RuntimeError, match="CuPy"):
            tg.ones(2).to("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        tg.ones(2).to("tpu")


def test_cpu_path_never_imports_cupy():
    # A fresh process that trains a tiny model on the CPU and asks about devices, with an import
    # hook that records any attempt to find cupy (even importlib.util.find_spec).
    program = textwrap.dedent("""
        import sys
        seen = []
        class Spy:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("cupy", "cupyx"):
                    seen.append(name)
                return None
        sys.meta_path.insert(0, Spy())
        import numpy as np
        import nn, tinygrad_lite as tg
        model = nn.GPT(nn.GPTConfig(block_size=4, vocab_size=5, n_layer=1, n_head=1, n_embd=4))
        model.to("cpu")
        x = np.zeros((1, 5), dtype=np.int64)
        model(x[:, :-1], x[:, 1:])[1].backward()
        tg.ones(2).cpu(); tg.available_devices()
        assert not seen and "cupy" not in sys.modules, seen
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_tglite_info_reports_the_gpu_mode(capsys):
    from tglite import cli

    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    if tg.cuda_available():
        assert "GPU mode: GPU" in out
    else:
        assert f"GPU mode: CPU only: device 'cuda' unavailable ({tg.cuda_unavailable_reason()})" in out


# ------------------------------------------------------------ dropout masks are drawn on the device
class DeviceGenerator:
    """A device's own generator (the Backend's `uniform`), as CuPy's cuRAND is on "cuda": it records
    each draw, so a test can see the mask was made on the device and not moved there."""

    def __init__(self) -> None:
        self.draws: list[tuple[int, tuple[int, ...], np.dtype]] = []

    def __call__(self, seed, shape, dtype):  # noqa: ANN001, ANN204
        self.draws.append((seed, shape, np.dtype(dtype)))
        return np.random.default_rng(seed).random(shape, dtype=dtype)


def test_dropout_draws_its_mask_with_the_devices_generator():
    draw = DeviceGenerator()
    with fake_device("gpu-like", uniform=draw) as name:
        x = tg.ones((4, 6)).to(name)
        gen = tg.Generator(5)
        y = F.dropout(x, 0.5, generator=gen)
        assert [(s, d) for _, s, d in draw.draws] == [((4, 6), np.float32)]
        assert y.device == name and set(np.unique(y.numpy())) <= {0.0, 2.0}
        # The host generator made one 64-bit draw, the device generator's seed, and no mask.
        host = tg.Generator(5)
        assert draw.draws[0][0] == int(host.np.integers(0, 2**63))
        assert gen.get_state() == host.get_state()
        assert np.array_equal(F.dropout(x, 0.5, generator=tg.Generator(5)).numpy(), y.numpy())  # same seed, same mask
        assert not np.array_equal(F.dropout(x, 0.5, generator=gen).numpy(), y.numpy())  # the generator moved on


def test_attention_dropout_draws_on_the_device():
    draw = DeviceGenerator()
    with fake_device("gpu-like", uniform=draw) as name:
        attn = nn.CausalSelfAttention(8, 2, dropout=0.5, generator=tg.Generator(0)).to(name)
        attn(tg.randn(2, 3, 8).to(name)).sum().backward()
    assert [(s, d) for _, s, d in draw.draws] == [((2, 2, 3, 3), np.float32), ((2, 3, 8), np.float32)]


def test_dropout_on_the_cpu_draws_from_the_host_stream_as_before():
    x = tg.ones((3, 5))
    y = F.dropout(x, 0.4, generator=tg.Generator(2))
    keep = tg.Generator(2).uniform((3, 5), np.float32) >= 0.4  # the mask, drawn directly: no device seed
    np.testing.assert_array_equal(y.numpy(), keep / np.float32(0.6))
