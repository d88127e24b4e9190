"""Forward mode (`jvp`, `jacobian`): every Function's `jvp` rule checked against reverse mode
(vᵀ(J·u) == (vᵀJ)·u), against central finite differences and Jacobians built by reverse mode; through
nn modules and the GPT; and proof that no backward pass is involved."""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import test_functional
import test_ops_elementwise
import test_ops_indexing
import test_ops_linalg
import test_ops_movement
import test_ops_reduce
from devices import fake_device
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import sample_normal, sample_positive, sample_ties

import nn
import tinygrad_lite as tg
import tinygrad_lite.functional as F
import tinygrad_lite.ops as ops
from tinygrad_lite import autograd, backend
from tinygrad_lite.function import Function
from tinygrad_lite.gradcheck import numerical_jacobian

RNG = np.random.default_rng(0)


def _inputs(shapes: list[tuple[int, ...]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _directional_fd(fn: Callable[..., tg.Tensor], xs: list[np.ndarray], vs: list[np.ndarray], h: float = 1e-6
                    ) -> np.ndarray:
    """(f(x + h·v) - f(x - h·v)) / 2h, evaluated with ordinary Tensors."""
    plus = fn(*[tg.Tensor(x + h * v) for x, v in zip(xs, vs)])
    minus = fn(*[tg.Tensor(x - h * v) for x, v in zip(xs, vs)])
    return (plus.numpy() - minus.numpy()) / (2 * h)


# ---------------------------------------------------------------- every op: vᵀ(J·u) == (vᵀJ)·u
def _op_classes() -> dict[str, type[Function]]:
    """Every Function subclass defined in tinygrad_lite.ops, found by walking __subclasses__."""
    for info in pkgutil.iter_modules(ops.__path__):  # import them all, so every class is defined
        importlib.import_module(f"{ops.__name__}.{info.name}")

    def walk(cls: type) -> Iterator[type]:
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    found = {c for c in walk(Function) if c.__module__.startswith(ops.__name__ + ".")}
    by_name = {c.__name__: c for c in found}
    assert len(by_name) == len(found), "two op classes share a name: key SAMPLES by module too"
    return by_name


OP_CLASSES = _op_classes()


_r, _pos, _ties = sample_normal, sample_positive, sample_ties  # short names for this file's own cases

_TRIU = np.triu(np.ones((3, 4), bool), 1)
_KEEP = (RNG.uniform(size=(2, 2, 3, 3)) > 0.3) / 0.7  # an inverted-dropout mask for attention
_HIDE = np.zeros((2, 1, 1, 5), bool)
_HIDE[0, ..., :3] = True  # batch row 0: its first query sees no key at all (output 0, P = 0)

# One sample call per op class: fn(*tensors) must run through that class (the test counts its jvp
# calls). Inputs are float64 arrays. Each op module's samples live beside its other tests, in
# JVP_SAMPLES of tests/test_ops_<kind>.py (tests/test_functional.py for the fused ops).
SAMPLES: dict[str, tuple[Callable[..., tg.Tensor], list[np.ndarray]]] = {
    **test_ops_elementwise.JVP_SAMPLES, **test_ops_reduce.JVP_SAMPLES, **test_ops_movement.JVP_SAMPLES,
    **test_ops_indexing.JVP_SAMPLES, **test_ops_linalg.JVP_SAMPLES, **test_functional.JVP_SAMPLES,
}


def _both_ways(fn: Callable[..., tg.Tensor], xs: list[np.ndarray], us: list[np.ndarray | None], seed: int = 0
               ) -> tuple[float, float, tg.Tensor, tg.Tensor]:
    """(vᵀ(J·u) by forward mode, (vᵀJ)·u by reverse mode, jvp's output, reverse mode's output)."""
    out, tangent = tg.jvp(fn, [tg.Tensor(x) for x in xs], us)
    leaves = [tg.Tensor(x, requires_grad=True) for x in xs]
    y = fn(*leaves)
    v = np.random.default_rng(seed).standard_normal(y.shape)
    grads = tg.grad(y, leaves, grad_outputs=tg.Tensor(v, device=y.device), allow_unused=True)
    forward = float(np.sum(v * tangent.numpy()))
    reverse = sum(float(np.sum(g.numpy() * u)) for g, u in zip(grads, us) if g is not None and u is not None)
    return forward, reverse, out, y


@pytest.fixture
def count_jvp_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[type[Function]], list[int]]:
    """Wrap a class's jvp so the test sees how often it ran."""
    def wrap(cls: type[Function]) -> list[int]:
        calls = [0]
        rule = cls.jvp

        def counted(self: Function, *tangents: Any) -> Any:
            calls[0] += 1
            return rule(self, *tangents)

        monkeypatch.setattr(cls, "jvp", counted)
        return calls
    return wrap


def test_every_op_has_a_sample() -> None:
    missing = sorted(set(OP_CLASSES) - set(SAMPLES))
    stale = sorted(set(SAMPLES) - set(OP_CLASSES))
    assert not missing, f"op classes without a sample call in SAMPLES (add one for each): {missing}"
    assert not stale, f"SAMPLES names classes that no longer exist: {stale}"


@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_jvp_agrees_with_reverse_mode(name: str, use_numba: bool, count_jvp_calls: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """vᵀ(J·u) from forward mode == (vᵀJ)·u from reverse mode, in float64, for each op class."""
    monkeypatch.setattr(backend, "USE_NUMBA", use_numba)  # fused ops: the compiled and the reference path
    calls = count_jvp_calls(OP_CLASSES[name])
    fn, xs = SAMPLES[name]
    us = _inputs([x.shape for x in xs], seed=len(name))
    with fake_device():  # a second device, for ToDevice
        forward, reverse, out, y = _both_ways(fn, xs, us)
    assert calls[0] > 0, f"the sample for {name} never ran {name}.jvp"
    np.testing.assert_allclose(out.numpy(), y.numpy(), rtol=1e-15, atol=0)
    rtol = 1e-6 if name == "Cast" else 1e-10  # Cast goes through float32 on the way
    assert forward == pytest.approx(reverse, rel=rtol, abs=1e-12)


# Points where an op's derivative is not defined, or where a naive rule gives 0·∞ or 0/0: the reverse
# rule picks a value there (a subgradient, an even split), and the jvp rule must pick the same one.
SINGULAR = {
    "max_ties": (lambda x: x.max(axis=1), [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])]),
    "maximum_ties": (lambda x, y: tg.maximum(x, y), [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])]),
    "std_constant_row": (lambda x: x.std(axis=1), [np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])]),
    "relu_abs_clip_kinks": (lambda x: x.relu() + x.abs() + x.clip(-1.0, 0.0), [np.array([0.0, -1.0, 1.0])]),
    "pow_zero_at_zero": (lambda x: x**0, [np.array([0.0, 2.0])]),
    "attention_blind_query": SAMPLES["ScaledDotProductAttention"],
    "cross_entropy_all_ignored": (lambda x: F.cross_entropy(x, np.array([-100, -100])), [_r(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(SINGULAR))
def test_jvp_matches_reverse_mode_at_singular_points(name: str) -> None:
    fn, xs = SINGULAR[name]
    us = _inputs([x.shape for x in xs], seed=3)
    forward, reverse, _, _ = _both_ways(fn, xs, us)
    assert np.isfinite(forward) and np.isfinite(reverse)
    assert forward == pytest.approx(reverse, rel=1e-12, abs=1e-14)


# ------------------------------------------------------- tangents vs central finite differences
CASES: dict[str, tuple[Callable[..., tg.Tensor], list[tuple[int, ...]]]] = {
    # elementwise, binary (with broadcasting)
    "add_broadcast": (lambda x, y: x + y, [(3, 4), (4,)]),
    "sub_broadcast": (lambda x, y: x - y, [(3, 1), (1, 4)]),
    "mul_broadcast": (lambda x, y: x * y, [(2, 3, 4), (3, 1)]),
    "div": (lambda x, y: x / y.exp(), [(3, 4), (3, 4)]),
    "scalar_ops": (lambda x: 2.0 - 3.0 * x / 4.0 + 1.5, [(5,)]),
    "rdiv": (lambda x: 1.0 / (x * x + 1.0), [(5,)]),
    "pow_scalar": (lambda x: x**3 + x.abs() ** 1.5, [(3, 4)]),
    "pow_tensor": (lambda x, y: x.exp() ** y, [(3, 4), (4,)]),
    "rpow": (lambda x: 2.0**x, [(4,)]),
    "maximum": (lambda x, y: tg.maximum(x, y) + x.minimum(y) * 2.0, [(3, 4), (4,)]),
    "where": (lambda x, y: tg.where(x > 0, x * y, y.exp()), [(3, 4), (3, 4)]),
    # elementwise, unary
    "exp_log": (lambda x: x.exp() + (x * x + 1.0).log(), [(3, 4)]),
    "sqrt": (lambda x: (x * x + 1.0).sqrt(), [(3, 4)]),
    "trig": (lambda x: x.sin() * x.cos(), [(6,)]),
    "tanh_sigmoid": (lambda x: x.tanh() + x.sigmoid() * 3.0, [(3, 4)]),
    "softplus_logsigmoid": (lambda x: x.softplus() - x.log_sigmoid() * 2.0, [(3, 4)]),
    "relu_family": (lambda x: x.relu() + x.leaky_relu(0.1) * 2.0 + x.silu(), [(3, 4)]),
    "erf_gelu": (lambda x: x.erf() + x.gelu() + x.gelu("tanh"), [(3, 4)]),
    "clip": (lambda x: x.clip(-0.5, 0.7), [(4, 5)]),
    "square_reciprocal": (lambda x: x.square() + (x.exp()).reciprocal(), [(4,)]),
    # reductions
    "sum_all": (lambda x: x.sum(), [(3, 4)]),
    "sum_axis": (lambda x: x.sum(axis=1), [(3, 4)]),
    "sum_keepdims": (lambda x: x.sum(axis=(0, 2), keepdims=True), [(2, 3, 4)]),
    "mean_axis": (lambda x: x.mean(axis=0), [(3, 4)]),
    "max_min": (lambda x: x.max(axis=1) + x.min(), [(3, 4)]),
    "var_std": (lambda x: x.var(axis=1) + x.std(axis=1, ddof=1), [(3, 4)]),
    "logsumexp": (lambda x: x.logsumexp(axis=-1), [(3, 4)]),
    "softmax": (lambda x: x.softmax(axis=0), [(3, 4)]),
    "log_softmax": (lambda x: x.log_softmax(axis=-1), [(3, 4)]),
    # shape and movement
    "reshape_permute": (lambda x: x.reshape(4, 6).T.reshape(2, 3, 4).permute(2, 0, 1), [(2, 3, 4)]),
    "transpose_expand": (lambda x: x.transpose(0, 1).expand(2, 1, 3) * 1.0, [(3, 1)]),
    "squeeze_unsqueeze": (lambda x: x.unsqueeze(0).squeeze(2).flatten(), [(3, 1, 4)]),
    "getitem": (lambda x: x[:, ::2] * x[np.array([0, 2, 2])][:, 1:3], [(3, 4)]),
    "getitem_mask": (lambda x: x[x > 0], [(3, 4)]),
    "pad_tril": (lambda x: x.pad(((1, 0), (0, 2)), value=3.0).tril(), [(3, 3)]),
    "masked_fill": (lambda x: x.masked_fill(np.triu(np.ones((3, 3), bool), 1), -1.0), [(3, 3)]),
    "split_concat": (lambda x: tg.concatenate(x.split([1, 3], axis=1)[::-1], axis=1), [(2, 4)]),
    "stack": (lambda x, y: tg.stack([x, y.exp()], axis=1), [(3,), (3,)]),
    "take_along_axis": (lambda x: x.take_along_axis(np.array([[1], [0], [3]]), axis=1), [(3, 4)]),
    # matmul (NumPy rules: 1-D operands, broadcast batch dimensions)
    "matmul_2d": (lambda a, b: a @ b, [(3, 4), (4, 5)]),
    "matmul_vec_mat": (lambda a, b: a @ b, [(4,), (4, 5)]),
    "matmul_vec_vec": (lambda a, b: a @ b, [(4,), (4,)]),
    "matmul_batched": (lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    # fused ops
    "cross_entropy": (lambda x: F.cross_entropy(x, np.array([2, 0, -100, 1]), label_smoothing=0.2), [(4, 3)]),
    "cross_entropy_none": (lambda x: F.cross_entropy(x, np.array([2, 0, 1]), reduction="none"), [(3, 3)]),
    "fused_layer_norm": (lambda x, w, b: F.layer_norm(x, w.shape, w, b), [(3, 5), (5,), (5,)]),
    "fused_linear": (lambda x, w, b: F.linear(x, w, b), [(2, 3, 4), (5, 4), (5,)]),
    "fused_gelu": (lambda x: F.fused_gelu(x), [(3, 4)]),
    "fused_attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [(1, 2, 3, 4), (1, 2, 4, 4),
                                                                                 (1, 2, 4, 4)]),
    "fused_attention_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                               [(2, 3, 4), (2, 3, 4), (2, 3, 5)]),
    # compositions
    "mlp": (lambda x, w1, w2: ((x @ w1).tanh() @ w2).log_softmax(axis=-1), [(5, 3), (3, 6), (6, 4)]),
    "layer_norm": (
        lambda x, g: (x - x.mean(axis=-1, keepdims=True)) / (x.var(axis=-1, keepdims=True) + 1e-5).sqrt() * g,
        [(3, 5), (5,)],
    ),
    "attention": (
        lambda q, k, v: (q @ k.transpose(-1, -2) * 0.5).masked_fill(np.triu(np.ones((4, 4), bool), 1), -1e9)
        .softmax(axis=-1) @ v,
        [(4, 3), (4, 3), (4, 2)],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_jvp_matches_finite_differences_and_forward(name: str) -> None:
    fn, shapes = CASES[name]
    xs = _inputs(shapes, seed=1)
    vs = _inputs(shapes, seed=2)
    out, tangent = tg.jvp(fn, [tg.Tensor(x) for x in xs], [tg.Tensor(v) for v in vs])
    reference = fn(*[tg.Tensor(x) for x in xs])
    np.testing.assert_allclose(out.numpy(), reference.numpy(), rtol=1e-12, atol=1e-12)
    assert tangent.shape == out.shape and tangent.dtype == np.float64
    np.testing.assert_allclose(tangent.numpy(), _directional_fd(fn, xs, vs), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["mlp", "softmax", "getitem", "matmul_batched", "maximum", "layer_norm",
                                  "fused_layer_norm", "fused_attention", "cross_entropy_none"])
def test_jacobian_fwd_equals_rev_equals_numerical(name: str) -> None:
    fn, shapes = CASES[name]
    xs = _inputs(shapes, seed=3)
    rest = [tg.Tensor(x) for x in xs[1:]]

    def f(x: tg.Tensor) -> tg.Tensor:
        return fn(x, *rest)

    J_fwd = tg.jacobian(f, tg.Tensor(xs[0]), mode="fwd").numpy()
    J_rev = tg.jacobian(f, tg.Tensor(xs[0]), mode="rev").numpy()
    J_num = numerical_jacobian(f, [tg.Tensor(xs[0], requires_grad=True)])[0][0].reshape(J_rev.shape)
    assert J_fwd.shape == J_rev.shape
    np.testing.assert_allclose(J_fwd, J_rev, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(J_fwd, J_num, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------ the failures named in issue 13
def test_jvp_through_where() -> None:
    x, u = _r(3, 4), _r(3, 4)
    out, t = tg.jvp(lambda x: tg.where(x > 0, x * x, x.exp()), (x,), (u,))
    np.testing.assert_allclose(t.numpy(), np.where(x > 0, 2 * x, np.exp(x)) * u, rtol=1e-12)


def test_jvp_through_nn_linear() -> None:
    layer = nn.Linear(4, 3, dtype=tg.float64)
    x, u = _r(2, 4), _r(2, 4)
    out, t = tg.jvp(layer, (x,), (u,))
    np.testing.assert_allclose(out.numpy(), x @ layer.weight.numpy().T + layer.bias.numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.numpy(), u @ layer.weight.numpy().T, rtol=1e-12)


def test_std_of_a_constant_row_has_the_tangent_reverse_mode_implies() -> None:
    x = np.array([[3.0, 3.0, 3.0], [1.0, 2.0, 4.0]])
    u = _r(2, 3)
    out, t = tg.jvp(lambda x: x.std(axis=1), (x,), (u,))
    leaf = tg.Tensor(x, requires_grad=True)
    leaf.std(axis=1).sum().backward()
    assert np.isfinite(t.numpy()).all()
    assert t.numpy()[0] == 0.0  # the reverse rule gives the constant row gradient 0 (as PyTorch)
    np.testing.assert_allclose(t.numpy().sum(), (leaf.grad.numpy() * u).sum(), rtol=1e-12)


def test_a_constant_tensor_on_the_left_of_a_dual_value() -> None:
    W, c = tg.Tensor(_r(3, 4)), tg.Tensor(_r(4, 2))
    x, u = _r(4, 2), _r(4, 2)
    (a, b), (ta, tb) = tg.jvp(lambda x: (W @ x, c + x), (x,), (u,))
    np.testing.assert_allclose(ta.numpy(), W.numpy() @ u, rtol=1e-12)
    np.testing.assert_allclose(tb.numpy(), u)
    assert W._tangent is None and c._tangent is None  # constants stay constants


# ------------------------------------------------------------------------- nn modules, the GPT
def functional_call(module: nn.Module, tensors: dict[str, tg.Tensor], *args: Any, **kwargs: Any) -> Any:
    """Call `module` with its parameters replaced by `tensors` (name -> Tensor), then put them back.

    Forward mode needs the parameters to be the jvp's inputs (Tensors carrying tangents). A tied
    parameter (the GPT's token embedding is also its LM head) is replaced everywhere it appears."""
    params = dict(module.named_parameters())
    swap = {id(params[name]): t for name, t in tensors.items()}
    replaced = []
    for m in module.modules():
        for attr, value in list(vars(m).items()):
            if isinstance(value, nn.Parameter) and id(value) in swap:
                replaced.append((m, attr, value))
                object.__setattr__(m, attr, swap[id(value)])
    try:
        return module(*args, **kwargs)
    finally:
        for m, attr, value in replaced:
            object.__setattr__(m, attr, value)


def _jvp_over_parameters(model: nn.Module, args: tuple[Any, ...], loss: Callable[[Any], tg.Tensor] = lambda out: out,
                         seed: int = 0) -> tuple[float, float]:
    """(the jvp of loss(model(*args)) along a random direction u of every parameter, Σ grad·u by backward)."""
    names, params = zip(*model.named_parameters())
    us = _inputs([p.shape for p in params], seed)

    def loss_of(*tensors: tg.Tensor) -> tg.Tensor:
        return loss(functional_call(model, dict(zip(names, tensors)), *args))

    _, tangent = tg.jvp(loss_of, [p.detach() for p in params], us)
    model.zero_grad()
    loss(model(*args)).backward()
    reverse = sum(float((p.grad.numpy() * u).sum()) for p, u in zip(params, us))
    return float(tangent.numpy()), reverse


def test_jvp_through_a_stack_of_nn_modules() -> None:
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8, dtype=tg.float64), nn.GELU(), nn.LayerNorm(8, dtype=tg.float64),
                          nn.Linear(8, 3, dtype=tg.float64), nn.Tanh())
    x, u = _r(5, 4), _r(5, 4)
    out, t = tg.jvp(model, (x,), (u,))
    np.testing.assert_allclose(t.numpy(), _directional_fd(model, [x], [u]), rtol=1e-6, atol=1e-8)
    head = nn.Linear(3, 1, dtype=tg.float64)
    stack = nn.Sequential(model, head)
    x_t = tg.Tensor(x)

    class Loss(nn.Module):  # a scalar loss of the stack, to compare with backward
        def __init__(self) -> None:
            self.stack = stack

        def forward(self) -> tg.Tensor:
            return (self.stack(x_t) ** 2).mean()

    forward, reverse = _jvp_over_parameters(Loss(), ())
    assert forward == pytest.approx(reverse, rel=1e-10)


@pytest.mark.parametrize("masked", [False, True], ids=["causal_attention", "masked_attention"])
def test_jvp_of_the_gpt_loss_over_all_parameters_equals_grad_dot_u(masked: bool, count_jvp_calls: Any) -> None:
    config = nn.GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8)
    model = nn.GPT(config, dtype=tg.float64, generator=tg.Generator(0))
    rng = np.random.default_rng(1)
    idx, targets = rng.integers(0, 11, (2, 6)), rng.integers(0, 11, (2, 6))
    mask = None
    if masked:  # a padding mask on top of the causal one, with row 0's first key hidden
        mask = np.zeros((2, 1, 1, 6), bool)
        mask[0, ..., 0] = True
    attention = count_jvp_calls(OP_CLASSES["ScaledDotProductAttention"])
    forward, reverse = _jvp_over_parameters(model, (idx, targets, None, mask), loss=lambda out: out[1])
    assert attention[0] == config.n_layer  # the path this case is about did run
    assert forward == pytest.approx(reverse, rel=1e-10)


# ---------------------------------------------------------------------- properties and errors
def test_forward_mode_never_runs_reverse_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """jvp must not be reverse mode in disguise: no backward rule runs and no graph is recorded."""
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("forward mode called into the reverse-mode engine")

    monkeypatch.setattr(autograd, "run_backward", forbidden)
    for cls in OP_CLASSES.values():
        monkeypatch.setattr(cls, "backward", forbidden)
    layer = nn.Linear(3, 4, dtype=tg.float64)  # its parameters require grad: still nothing is recorded
    seen = []

    def f(x: tg.Tensor) -> tg.Tensor:
        h = layer(x).tanh()
        seen.append(h)
        return F.cross_entropy(h, np.array([0, 1, 3, 2, 1]))

    xs, us = _r(5, 3), _r(5, 3)
    out, tangent = tg.jvp(f, (xs,), (us,))
    assert out.shape == tangent.shape == ()
    assert seen[0]._ctx is None and not seen[0].requires_grad and seen[0]._tangent is not None
    J = tg.jacobian(lambda x: (x * x).sum(axis=0), tg.Tensor(xs), mode="fwd")
    np.testing.assert_allclose(J.numpy().reshape(3, 15).sum(axis=0), 2 * xs.reshape(-1))


def test_linearity_in_the_tangent() -> None:
    fn, shapes = CASES["attention"]
    xs = _inputs(shapes)
    u, v = _inputs(shapes, seed=7), _inputs(shapes, seed=8)
    _, tu = tg.jvp(fn, xs, u)
    _, tv = tg.jvp(fn, xs, v)
    _, tuv = tg.jvp(fn, xs, [2.0 * a - 3.0 * b for a, b in zip(u, v)])
    np.testing.assert_allclose(tuv.numpy(), 2.0 * tu.numpy() - 3.0 * tv.numpy(), rtol=1e-10, atol=1e-12)


def test_constants_tensor_on_the_right_and_none_tangent() -> None:
    w = tg.randn(4, 3, dtype="float64")
    x = RNG.standard_normal((2, 4))
    v = RNG.standard_normal((2, 4))
    out, t = tg.jvp(lambda x: (x @ w).tanh(), (x,), (v,))
    np.testing.assert_allclose(t.numpy(), (1 - np.tanh(x @ w.numpy()) ** 2) * (v @ w.numpy()), rtol=1e-12)
    # a None tangent is a zero tangent: only the second input moves
    (o1, o2), (t1, t2) = tg.jvp(lambda a, b: (a * 2.0, a * b), (x, x), (None, v))
    np.testing.assert_array_equal(t1.numpy(), 0.0)
    np.testing.assert_allclose(t2.numpy(), x * v)


def test_a_constant_input_of_a_multi_input_op_adds_no_term() -> None:
    """Symbolic zeros: each multi-input rule gets None for a constant input and must skip its term."""
    x, w, b = _r(2, 3, 4), _r(5, 4), _r(5)
    for k in range(3):  # only the k-th input moves
        us = [u if i == k else None for i, u in enumerate(_inputs([x.shape, w.shape, b.shape], seed=k))]
        forward, reverse, _, _ = _both_ways(lambda x, w, b: F.linear(x, w, b), [x, w, b], us)
        assert forward == pytest.approx(reverse, rel=1e-10)
    q, kv = _r(1, 2, 3, 4), _r(1, 2, 3, 4)
    for k in range(3):
        us = [u if i == k else None for i, u in enumerate(_inputs([q.shape] * 3, seed=k))]
        forward, reverse, _, _ = _both_ways(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                            [q, kv, kv * 2], us)
        assert forward == pytest.approx(reverse, rel=1e-10)


def test_multiple_outputs_and_constant_output() -> None:
    c = tg.ones(3, dtype="float64")
    (a, b), (ta, tb) = tg.jvp(lambda x: (x.sum(), c), (np.arange(3.0),), (np.ones(3),))
    assert ta.item() == 3.0
    np.testing.assert_array_equal(tb.numpy(), 0.0)


def test_float32_stays_float32() -> None:
    x = tg.randn(2, 3, 4)  # float32
    w, b = tg.randn(4), tg.randn(4)

    def f(x: tg.Tensor) -> tg.Tensor:
        h = F.fused_gelu(F.layer_norm((x * 2.0).tanh(), w.shape, w, b))
        return F.cross_entropy(F.linear(h, tg.randn(5, 4)), np.zeros((2, 3), dtype=np.int64))

    out, t = tg.jvp(f, (x,), (tg.ones_like(x),))
    assert out.dtype == np.float32 and t.dtype == np.float32


def test_clear_errors() -> None:
    class NoRule(Function):  # an op with forward and backward, but no jvp yet
        def forward(self, x: tg.Tensor) -> Any:
            return x.data * 2

        def backward(self, g: tg.Tensor) -> tg.Tensor:
            return g * 2.0

    x = np.zeros((2, 4))
    with pytest.raises(NotImplementedError, match="NoRule has no forward-mode rule"):
        tg.jvp(lambda x: NoRule.apply(x), (x,), (x,))
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        tg.jvp(lambda x: x, (x,), (np.zeros(3),))
    with pytest.raises(ValueError, match="do not broadcast"):
        tg.jvp(lambda x: x + np.zeros(3), (x,), (x,))
    with pytest.raises(ValueError, match="mode must be"):
        tg.jacobian(lambda x: x, x, mode="sideways")
    with pytest.raises(ValueError, match="1 primals but 2 tangents"):
        tg.jvp(lambda x: x, (x,), (x, x))
    with pytest.raises(TypeError, match="only floating-point inputs have tangents"):
        tg.jvp(lambda x: x, (np.arange(3),), (np.ones(3),))
    with pytest.raises(TypeError, match="must return Tensors"):
        tg.jvp(lambda x: 3.0, (x,), (x,))


def test_jacobian_shapes_and_constant_function() -> None:
    x = tg.randn(2, 3, dtype="float64")
    for mode in ("fwd", "rev"):
        J = tg.jacobian(lambda x: x.sum(axis=1), x, mode=mode)
        assert J.shape == (2, 2, 3)
        np.testing.assert_array_equal(J.numpy(), np.repeat(np.eye(2)[:, :, None], 3, axis=2))
    c = tg.ones(4, dtype="float64")
    np.testing.assert_array_equal(tg.jacobian(lambda x: c, x, mode="rev").numpy(), 0.0)
    np.testing.assert_array_equal(tg.jacobian(lambda x: c, x, mode="fwd").numpy(), 0.0)


shape_st = st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple)


@settings(max_examples=25, deadline=None)
@given(shape=shape_st, drop=st.lists(st.booleans(), min_size=3, max_size=3),
       op=st.sampled_from(["add", "mul", "div", "where", "matmul"]))
def test_broadcasting_property(shape: tuple[int, ...], drop: list[bool], op: str) -> None:
    """Tangents broadcast with their values: no reduction rule is needed in forward mode, and the
    constant-on-either-side cases give the same tangent as reverse mode implies."""
    other = tuple(1 if d else n for n, d in zip(shape, drop))[1:]  # fewer dims, some of size 1
    if op == "matmul":
        shape, other = shape + (2,), (2, 3)
    f = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "div": lambda a, b: a / (b * b + 1.0),
         "where": lambda a, b: tg.where(a.numpy() > 0, a, b), "matmul": lambda a, b: a @ b}[op]
    xs = _inputs([shape, other], seed=len(shape))
    vs = _inputs([shape, other], seed=11)
    out, t = tg.jvp(f, xs, vs)
    np.testing.assert_allclose(t.numpy(), _directional_fd(f, xs, vs), rtol=1e-6, atol=1e-7)
    for us in ([vs[0], None], [None, vs[1]]):  # one side constant
        forward, reverse, _, _ = _both_ways(f, xs, us)
        assert forward == pytest.approx(reverse, rel=1e-10, abs=1e-12)
