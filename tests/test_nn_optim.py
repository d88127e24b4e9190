"""Optimizers, schedules, clipping and gradient accumulation."""
import math

import numpy as np
import pytest

import nn
import tinygrad_lite as tg
from tinygrad_lite import kernels as tg_kernels


def quadratic_run(make_opt, steps: int = 5) -> list[np.ndarray]:
    """Minimize sum((A·w - 1)²) for a few steps; return w after each step."""
    A = np.random.default_rng(0).standard_normal((4, 3))
    w = nn.Parameter(np.array([0.5, -1.0, 2.0]))
    opt = make_opt([w])
    out = []
    for _ in range(steps):
        opt.zero_grad()
        r = tg.Tensor(A) @ w - 1.0
        (r * r).sum().backward()
        opt.step()
        out.append(w.numpy().copy())
    return out


def test_sgd_plain_step_by_hand():
    w = nn.Parameter(np.array([1.0, 2.0]))
    opt = nn.SGD([w], lr=0.1, weight_decay=0.5)
    (w * w).sum().backward()
    opt.step()
    # g = 2w + 0.5w = 2.5w  ->  w - 0.1·2.5·w = 0.75·w
    np.testing.assert_allclose(w.numpy(), [0.75, 1.5])


def test_adam_first_step_is_lr_times_sign():
    w = nn.Parameter(np.array([1.0, -3.0]))
    opt = nn.Adam([w], lr=0.01)
    (w * w).sum().backward()
    opt.step()  # bias correction makes the first step ≈ lr·sign(g)
    np.testing.assert_allclose(w.numpy(), [1.0 - 0.01, -3.0 + 0.01], rtol=1e-6)


def test_adamw_decay_is_decoupled():
    w = nn.Parameter(np.array([2.0]))
    opt = nn.AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = tg.zeros(1, dtype=tg.float64)  # zero gradient: only the decay acts
    opt.step()
    np.testing.assert_allclose(w.numpy(), [2.0 * (1 - 0.1 * 0.5)])


def test_step_is_in_place_and_bumps_version():
    w = nn.Parameter(np.ones(2))
    data, version = w.data, w._version
    opt = nn.SGD([w], lr=0.1)
    w.sum().backward()
    opt.step()
    assert w.data is data and w._version > version


def test_param_groups_and_errors():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = nn.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    (a.sum() + b.sum()).backward()
    opt.step()
    np.testing.assert_allclose(a.numpy(), [0.9, 0.9])
    np.testing.assert_allclose(b.numpy(), [0.5, 0.5])
    with pytest.raises(ValueError, match="two groups"):
        nn.SGD([{"params": [a]}, {"params": [a]}])
    with pytest.raises(ValueError, match="unknown option"):
        nn.SGD([{"params": [a], "betas": (0.9, 0.9)}])
    with pytest.raises(ValueError, match="nesterov"):
        nn.SGD([a], nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        nn.Adam([])


@pytest.mark.parametrize("kwargs, named", [({"lr": -1.0}, "lr=-1.0"), ({"lr": math.nan}, "lr=nan"),
                                           ({"eps": -1e-8}, "eps=-1e-08"), ({"betas": (0.9, 1.0)}, "betas=(0.9, 1.0)")])
def test_adam_errors_name_only_the_bad_value(kwargs, named):
    with pytest.raises(ValueError) as e:
        nn.AdamW([nn.Parameter(np.ones(2))], weight_decay=0.1, **kwargs)
    assert f"AdamW: {named}:" in str(e.value) and "weight_decay=" not in str(e.value)


def test_frozen_parameter_without_grad_is_skipped():
    a = nn.Parameter(np.ones(2))
    opt = nn.Adam([a])
    opt.step()  # no gradient yet: nothing happens
    np.testing.assert_array_equal(a.numpy(), [1.0, 1.0])


@pytest.mark.oracle
@pytest.mark.parametrize("name,kwargs", [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.1}),
    ("Adam", {"lr": 0.1, "betas": (0.8, 0.9), "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.1, "weight_decay": 0.3}),
])
def test_matches_pytorch_optimizers(name, kwargs):
    torch = pytest.importorskip("torch")
    ours = quadratic_run(lambda ps: getattr(nn, name)(ps, **kwargs))
    A = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 3)))
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, name)([w], **kwargs)
    for step in range(5):
        opt.zero_grad()
        ((A @ w - 1.0) ** 2).sum().backward()
        opt.step()
        np.testing.assert_allclose(ours[step], w.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_optimizer_state_dict_round_trip():
    def run(split: bool) -> np.ndarray:
        w = nn.Parameter(np.array([0.5, -1.0]))
        opt = nn.AdamW([w], lr=0.1)
        for i in range(6):
            if split and i == 3:  # rebuild the optimizer from its state dict halfway
                sd = opt.state_dict()
                opt = nn.AdamW([w], lr=123.0)
                opt.load_state_dict(sd)
            opt.zero_grad()
            (w * w * w).sum().backward()
            opt.step()
        return w.numpy()

    assert np.array_equal(run(False), run(True))


def test_optimizer_load_state_dict_checks_shapes():
    w = nn.Parameter(np.ones(2))
    opt = nn.Adam([w])
    w.sum().backward()
    opt.step()
    sd = opt.state_dict()
    other = nn.Adam([nn.Parameter(np.ones(3))])
    with pytest.raises(ValueError, match=r"exp_avg.*\(2,\).*\(3,\)"):
        other.load_state_dict(sd)
    assert other.state == {}


def test_warmup_cosine_schedule():
    s = nn.WarmupCosine(max_lr=1.0, warmup_steps=10, decay_steps=110, min_lr=0.1)
    assert s(0) == pytest.approx(1 / 11)
    assert all(s(i) < s(i + 1) for i in range(9))
    assert s(10) == pytest.approx(1.0)
    assert s(60) == pytest.approx(0.1 + 0.5 * 0.9)  # halfway down the cosine
    assert s(110) == s(5000) == 0.1
    assert nn.Constant(0.3)(12345) == 0.3
    with pytest.raises(ValueError, match="warmup_steps"):
        nn.WarmupCosine(1.0, 20, 10)


def test_set_lr():
    opt = nn.SGD([{"params": [nn.Parameter(np.ones(1))]}, {"params": [nn.Parameter(np.ones(1))], "lr": 5.0}])
    nn.set_lr(opt, 0.25)
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25]


def test_set_lr_keeps_each_groups_lr_scale():
    """A group's lr_scale survives every set_lr call (a schedule), so ratios between groups hold."""
    a, b, c = (nn.Parameter(np.ones(1)) for _ in range(3))
    opt = nn.AdamW([{"params": [a]}, {"params": [b], "lr": 4e-3, "lr_scale": 4.0}, {"params": [c], "lr_scale": 0}],
                   lr=1e-3)
    assert [g["lr_scale"] for g in opt.param_groups] == [1.0, 4.0, 0]
    schedule = nn.WarmupCosine(1e-3, 5, 50, 1e-4)
    for step in (0, 3, 20, 60):
        nn.set_lr(opt, schedule(step))
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([schedule(step), 4 * schedule(step), 0.0])
    # the scale is part of the state dict, so a resumed run keeps it
    fresh = nn.AdamW([{"params": [a]}, {"params": [b]}, {"params": [c]}], lr=1e-3)
    fresh.load_state_dict(opt.state_dict())
    nn.set_lr(fresh, 2e-3)
    assert [g["lr"] for g in fresh.param_groups] == pytest.approx([2e-3, 8e-3, 0.0])


@pytest.mark.parametrize("scale", [-1.0, math.inf, math.nan, "2", True])
def test_lr_scale_is_checked(scale):
    with pytest.raises(ValueError, match="lr_scale must be a finite number >= 0"):
        nn.SGD([{"params": [nn.Parameter(np.ones(1))], "lr_scale": scale}])


def test_clip_grad_norm():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))
    a.grad, b.grad = tg.Tensor(np.array([3.0, 0.0])), tg.Tensor(np.array([4.0]))
    norm = nn.clip_grad_norm_([a, b], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    total = math.sqrt((a.grad.numpy() ** 2).sum() + (b.grad.numpy() ** 2).sum())
    assert total == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(a.grad.numpy() / b.grad.numpy()[0], [0.75, 0.0])  # direction kept
    assert nn.clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)  # no-op below the max
    b.grad = tg.Tensor(np.array([np.nan]))
    with pytest.raises(FloatingPointError, match="nan"):
        nn.clip_grad_norm_([a, b], 1.0)


def test_gradient_accumulation_equals_big_batch():
    lin = nn.Linear(3, 2, generator=tg.Generator(0)).double()
    X = np.random.default_rng(1).standard_normal((8, 3))

    def loss_fn(x):
        return (lin(tg.Tensor(x)) ** 2).mean()

    loss_fn(X).backward()
    big = [p.grad.numpy().copy() for p in lin.parameters()]
    lin.zero_grad()
    mean_loss = nn.accumulate_gradients(loss_fn, [X[:4], X[4:]])
    assert mean_loss == pytest.approx(loss_fn(X).item())
    for g, p in zip(big, lin.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-12)


# ------------------------------------------------ the compiled (Numba) path against the NumPy one
numba_missing = pytest.mark.skipif(not tg.backend.numba_available(), reason="numba not installed (extra: fast)")


def trajectory(use_numba, monkeypatch, make_opt, dtype, steps=6):
    """Parameters after each of `steps` optimizer steps on a fixed problem, on one path."""
    monkeypatch.setattr(tg.backend, "USE_NUMBA", use_numba)
    rng = np.random.default_rng(5)
    A, b = rng.standard_normal((7, 5)), rng.standard_normal(7)
    w = nn.Parameter(rng.standard_normal((5, 3)).astype(dtype))
    bias = nn.Parameter(rng.standard_normal(3).astype(dtype))
    opt = make_opt([w, bias])
    out = []
    for _ in range(steps):
        opt.zero_grad()
        y = (tg.Tensor(A.astype(dtype)) @ w + bias).tanh()
        ((y.sum(axis=1) - tg.Tensor(b.astype(dtype))) ** 2).sum().backward()
        nn.clip_grad_norm_([w, bias], 0.5)
        opt.step()
        out.append(np.concatenate([w.numpy().ravel(), bias.numpy()]))
    return np.array(out)


@numba_missing
@pytest.mark.parametrize("make_opt", [
    lambda ps: nn.Adam(ps, lr=0.05, betas=(0.8, 0.95), weight_decay=0.1),
    lambda ps: nn.AdamW(ps, lr=0.05, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.3),
], ids=["adam-l2", "adamw"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_adam_and_clipping_match_numpy(make_opt, dtype, monkeypatch):
    calls = []
    kernels = tg_kernels.load("cpu")  # the module the CPU backend's registry serves
    real_update, real_sq = kernels.adam_update, kernels.sum_of_squares
    monkeypatch.setattr(kernels, "adam_update", lambda *a, **k: (calls.append("adam"), real_update(*a, **k))[1])
    monkeypatch.setattr(kernels, "sum_of_squares", lambda *a: (calls.append("norm"), real_sq(*a))[1])
    compiled = trajectory(True, monkeypatch, make_opt, dtype)
    assert "adam" in calls and "norm" in calls  # the compiled path really ran
    reference = trajectory(False, monkeypatch, make_opt, dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(compiled, reference, rtol=tol, atol=tol)
    assert np.abs(reference[-1] - reference[0]).max() > 0.05  # the parameters really moved


@numba_missing
def test_sum_of_squares_kernel_accumulates_in_float64():
    a = np.full(1_000_001, 3.0, np.float32)  # in float32, a running sum of 9s stalls near 2**24 * 9
    assert tg_kernels.load("cpu").sum_of_squares(a) == pytest.approx(9.0 * a.size, rel=1e-12)
    with pytest.raises(ValueError, match="adam_update"):
        tg_kernels.load("cpu").adam_update(np.zeros(3), np.zeros(4), np.zeros(3), np.zeros(3), lr=0.1, b1=0.9,
                                            b2=0.99, eps=1e-8, step=1, weight_decay=0.0, decoupled=True)
