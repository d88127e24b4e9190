"""Forward mode (`jvp`, `jacobian`): tangents checked against central finite differences and
against Jacobians built by reverse mode; and proof that no backward pass is involved."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lite as tg
from tinygrad_lite import forward_mode as fm
from tinygrad_lite.gradcheck import numerical_jacobian

RNG = np.random.default_rng(0)


def _inputs(shapes: list[tuple[int, ...]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _directional_fd(fn, xs, vs, ns, h=1e-6):
    """(f(x + h·v) - f(x - h·v)) / 2h, evaluated with ordinary Tensors."""
    plus = fn(ns, *[tg.Tensor(x + h * v) for x, v in zip(xs, vs)])
    minus = fn(ns, *[tg.Tensor(x - h * v) for x, v in zip(xs, vs)])
    return (plus.numpy() - minus.numpy()) / (2 * h)


# fn(ns, *inputs): `ns` is tinygrad_lite for the Tensor run and forward_mode for the Dual run
# (only needed for the free functions: where, concatenate, stack, maximum).
CASES = {
    # elementwise, binary (with broadcasting)
    "add_broadcast": (lambda ns, x, y: x + y, [(3, 4), (4,)]),
    "sub_broadcast": (lambda ns, x, y: x - y, [(3, 1), (1, 4)]),
    "mul_broadcast": (lambda ns, x, y: x * y, [(2, 3, 4), (3, 1)]),
    "div": (lambda ns, x, y: x / y.exp(), [(3, 4), (3, 4)]),
    "scalar_ops": (lambda ns, x: 2.0 - 3.0 * x / 4.0 + 1.5, [(5,)]),
    "rdiv": (lambda ns, x: 1.0 / (x * x + 1.0), [(5,)]),
    "pow_scalar": (lambda ns, x: x**3 + x.abs() ** 1.5, [(3, 4)]),
    "pow_tensor": (lambda ns, x, y: x.exp() ** y, [(3, 4), (4,)]),
    "rpow": (lambda ns, x: 2.0**x, [(4,)]),
    "maximum": (lambda ns, x, y: ns.maximum(x, y) + x.minimum(y) * 2.0, [(3, 4), (4,)]),
    "where": (lambda ns, x, y: ns.where(x > 0, x * y, y.exp()), [(3, 4), (3, 4)]),
    # elementwise, unary
    "exp_log": (lambda ns, x: x.exp() + (x * x + 1.0).log(), [(3, 4)]),
    "sqrt": (lambda ns, x: (x * x + 1.0).sqrt(), [(3, 4)]),
    "trig": (lambda ns, x: x.sin() * x.cos(), [(6,)]),
    "tanh_sigmoid": (lambda ns, x: x.tanh() + x.sigmoid() * 3.0, [(3, 4)]),
    "softplus_logsigmoid": (lambda ns, x: x.softplus() - x.log_sigmoid() * 2.0, [(3, 4)]),
    "relu_family": (lambda ns, x: x.relu() + x.leaky_relu(0.1) * 2.0 + x.silu(), [(3, 4)]),
    "erf_gelu": (lambda ns, x: x.erf() + x.gelu() + x.gelu("tanh"), [(3, 4)]),
    "clip": (lambda ns, x: x.clip(-0.5, 0.7), [(4, 5)]),
    "square_reciprocal": (lambda ns, x: x.square() + (x.exp()).reciprocal(), [(4,)]),
    # reductions
    "sum_all": (lambda ns, x: x.sum(), [(3, 4)]),
    "sum_axis": (lambda ns, x: x.sum(axis=1), [(3, 4)]),
    "sum_keepdims": (lambda ns, x: x.sum(axis=(0, 2), keepdims=True), [(2, 3, 4)]),
    "mean_axis": (lambda ns, x: x.mean(axis=0), [(3, 4)]),
    "max_min": (lambda ns, x: x.max(axis=1) + x.min(), [(3, 4)]),
    "var_std": (lambda ns, x: x.var(axis=1) + x.std(axis=1, ddof=1), [(3, 4)]),
    "logsumexp": (lambda ns, x: x.logsumexp(axis=-1), [(3, 4)]),
    "softmax": (lambda ns, x: x.softmax(axis=0), [(3, 4)]),
    "log_softmax": (lambda ns, x: x.log_softmax(axis=-1), [(3, 4)]),
    # shape and movement
    "reshape_permute": (lambda ns, x: x.reshape(4, 6).T.reshape(2, 3, 4).permute(2, 0, 1), [(2, 3, 4)]),
    "transpose_expand": (lambda ns, x: x.transpose(0, 1).expand(2, 1, 3) * 1.0, [(3, 1)]),
    "squeeze_unsqueeze": (lambda ns, x: x.unsqueeze(0).squeeze(2).flatten(), [(3, 1, 4)]),
    "getitem": (lambda ns, x: x[:, ::2] * x[np.array([0, 2, 2])][:, 1:3], [(3, 4)]),
    "getitem_mask": (lambda ns, x: x[x > 0], [(3, 4)]),
    "pad_tril": (lambda ns, x: x.pad(((1, 0), (0, 2)), value=3.0).tril(), [(3, 3)]),
    "masked_fill": (lambda ns, x: x.masked_fill(np.triu(np.ones((3, 3), bool), 1), -1.0), [(3, 3)]),
    "split_concat": (lambda ns, x: ns.concatenate(x.split([1, 3], axis=1)[::-1], axis=1), [(2, 4)]),
    "stack": (lambda ns, x, y: ns.stack([x, y.exp()], axis=1), [(3,), (3,)]),
    "take_along_axis": (lambda ns, x: x.take_along_axis(np.array([[1], [0], [3]]), axis=1), [(3, 4)]),
    # matmul (NumPy rules: 1-D operands, broadcast batch dimensions)
    "matmul_2d": (lambda ns, a, b: a @ b, [(3, 4), (4, 5)]),
    "matmul_vec_mat": (lambda ns, a, b: a @ b, [(4,), (4, 5)]),
    "matmul_vec_vec": (lambda ns, a, b: a @ b, [(4,), (4,)]),
    "matmul_batched": (lambda ns, a, b: a @ b, [(2, 3, 4), (4, 5)]),
    # compositions
    "mlp": (lambda ns, x, w1, w2: ((x @ w1).tanh() @ w2).log_softmax(axis=-1), [(5, 3), (3, 6), (6, 4)]),
    "layer_norm": (
        lambda ns, x, g: (x - x.mean(axis=-1, keepdims=True)) / (x.var(axis=-1, keepdims=True) + 1e-5).sqrt() * g,
        [(3, 5), (5,)],
    ),
    "attention": (
        lambda ns, q, k, v: (q @ k.transpose(-1, -2) * 0.5).masked_fill(np.triu(np.ones((4, 4), bool), 1), -1e9)
        .softmax(axis=-1) @ v,
        [(4, 3), (4, 3), (4, 2)],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_jvp_matches_finite_differences_and_forward(name: str) -> None:
    fn, shapes = CASES[name]
    xs = _inputs(shapes, seed=1)
    vs = _inputs(shapes, seed=2)
    out, tangent = tg.jvp(lambda *d: fn(fm, *d), [tg.Tensor(x) for x in xs], [tg.Tensor(v) for v in vs])
    reference = fn(tg, *[tg.Tensor(x) for x in xs])
    np.testing.assert_allclose(out.numpy(), reference.numpy(), rtol=1e-12, atol=1e-12)
    assert tangent.shape == out.shape and tangent.dtype == np.float64
    fd = _directional_fd(fn, xs, vs, tg)
    np.testing.assert_allclose(tangent.numpy(), fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["mlp", "softmax", "getitem", "matmul_batched", "maximum", "layer_norm"])
def test_jacobian_fwd_equals_rev_equals_numerical(name: str) -> None:
    fn, shapes = CASES[name]
    xs = _inputs(shapes, seed=3)
    first = tg.Tensor(xs[0])
    rest = [tg.Tensor(x) for x in xs[1:]]

    def f(x, ns):
        return fn(ns, x, *rest)

    J_fwd = tg.jacobian(lambda x: f(x, fm), first, mode="fwd").numpy()
    J_rev = tg.jacobian(lambda x: f(x, tg), first, mode="rev").numpy()
    leaf = tg.Tensor(xs[0], requires_grad=True)
    J_num = numerical_jacobian(lambda x: f(x, tg), [leaf])[0][0].reshape(J_rev.shape)
    assert J_fwd.shape == J_rev.shape
    np.testing.assert_allclose(J_fwd, J_rev, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(J_fwd, J_num, rtol=1e-6, atol=1e-7)


def test_forward_mode_never_runs_reverse_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """jvp must not be reverse mode in disguise: no Function node is applied, no backward runs."""
    import tinygrad_lite.autograd as autograd
    from tinygrad_lite.function import Function

    def forbidden(*args, **kwargs):
        raise AssertionError("forward mode called into the reverse-mode engine")

    monkeypatch.setattr(Function, "apply", classmethod(forbidden))
    monkeypatch.setattr(autograd, "run_backward", forbidden)
    fn, shapes = CASES["mlp"]
    xs = _inputs(shapes)
    vs = _inputs(shapes, seed=5)
    out, tangent = tg.jvp(lambda *d: fn(fm, *d), xs, vs)
    assert out.shape == tangent.shape == (5, 4)
    J = tg.jacobian(lambda x: (x * x).sum(axis=0), tg.Tensor(xs[0]), mode="fwd")
    np.testing.assert_allclose(J.numpy().reshape(3, 15).sum(axis=0), 2 * xs[0].reshape(-1))


def test_linearity_in_the_tangent() -> None:
    fn, shapes = CASES["attention"]
    xs = _inputs(shapes)
    u, v = _inputs(shapes, seed=7), _inputs(shapes, seed=8)
    f = lambda *d: fn(fm, *d)  # noqa: E731
    _, tu = tg.jvp(f, xs, u)
    _, tv = tg.jvp(f, xs, v)
    _, tuv = tg.jvp(f, xs, [2.0 * a - 3.0 * b for a, b in zip(u, v)])
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


def test_multiple_outputs_and_constant_output() -> None:
    c = tg.ones(3, dtype="float64")
    (a, b), (ta, tb) = tg.jvp(lambda x: (x.sum(), c), (np.arange(3.0),), (np.ones(3),))
    assert ta.item() == 3.0
    np.testing.assert_array_equal(tb.numpy(), 0.0)


def test_float32_stays_float32() -> None:
    x = tg.randn(3, 4)  # float32
    out, t = tg.jvp(lambda x: (x * 2.0).tanh().sum(axis=0), (x,), (tg.ones_like(x),))
    assert out.dtype == np.float32 and t.dtype == np.float32


def test_clear_errors() -> None:
    w = tg.randn(4, 3, dtype="float64")
    x = np.zeros((2, 4))
    with pytest.raises(TypeError, match="Dual cannot be turned into an array"):
        tg.jvp(lambda x: w.T @ x.T, (x,), (x,))
    with pytest.raises(AttributeError, match="no tangent rule"):
        tg.jvp(lambda x: tg.functional.cross_entropy(x, np.zeros(2, dtype=np.int64)), (x,), (x,))
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        tg.jvp(lambda x: x, (x,), (np.zeros(3),))
    with pytest.raises(ValueError, match="do not broadcast"):
        tg.jvp(lambda x: x + np.zeros(3), (x,), (x,))
    with pytest.raises(ValueError, match="mode must be"):
        tg.jacobian(lambda x: x, x, mode="sideways")
    with pytest.raises(ValueError, match="1 primals but 2 tangents"):
        tg.jvp(lambda x: x, (x,), (x, x))


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
@given(shape=shape_st, drop=st.lists(st.booleans(), min_size=3, max_size=3), op=st.sampled_from(["add", "mul", "div"]))
def test_broadcasting_binary_ops_property(shape, drop, op) -> None:
    """Tangents broadcast with their values: no reduction rule is needed in forward mode."""
    other = tuple(1 if d else n for n, d in zip(shape, drop))[1:]  # fewer dims, some of size 1
    xs = _inputs([shape, other], seed=len(shape))
    vs = _inputs([shape, other], seed=11)
    f = {"add": lambda ns, a, b: a + b, "mul": lambda ns, a, b: a * b, "div": lambda ns, a, b: a / (b * b + 1.0)}[op]
    out, t = tg.jvp(lambda *d: f(fm, *d), xs, vs)
    np.testing.assert_allclose(t.numpy(), _directional_fd(f, xs, vs, tg), rtol=1e-6, atol=1e-7)
