"""The autograd machinery: when a graph is built, backward and grad, hooks, higher-order
gradients, in-place safety, anomaly detection and graph drawing."""
import inspect
import re
import sys

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import AnomalyError, Tensor
from tinygrad_lite.gradcheck import numerical_grad


def leaf(*shape, seed=0, low=-1.0, high=1.0):
    return Tensor(np.random.default_rng(seed).uniform(low, high, size=shape), requires_grad=True)


def const(*shape, seed=1):
    return Tensor(np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape))


def line_after() -> int:
    """The line number just after the caller's line (where the op under test is)."""
    return inspect.currentframe().f_back.f_lineno + 1


# ------------------------------------------------------------------ when a graph is built
def test_graph_only_when_some_input_requires_grad():
    a, b = const(3), const(3, seed=2)
    y = a * b
    assert y._ctx is None and not y.requires_grad and y.is_leaf
    x = leaf(3)
    z = a * x
    assert z.requires_grad and not z.is_leaf
    assert type(z._ctx).__name__ == "Mul" and z._ctx.parents == (a, x)


def test_no_graph_under_no_grad():
    x = leaf(3)
    with tg.no_grad():
        y = (x * 2.0).exp()
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert y._ctx is None and not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_and_enable_grad_nest_as_context_managers():
    x = leaf(2)
    with tg.no_grad():
        with tg.enable_grad():
            assert (x * 2).requires_grad
            with tg.no_grad():
                assert not (x * 2).requires_grad
            assert tg.is_grad_enabled()
        assert not tg.is_grad_enabled()
        with tg.set_grad_enabled(True):
            assert (x * 2).requires_grad
    assert tg.is_grad_enabled()


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            raise ZeroDivisionError
    assert tg.is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators():
    x = leaf(2)

    @tg.no_grad()
    def infer(t):
        """Docstring survives."""
        return t * 2

    @tg.enable_grad()
    def train(t):
        return t * 2

    @tg.set_grad_enabled(False)
    def off(t):
        return t * 2

    assert infer.__name__ == "infer" and infer.__doc__ == "Docstring survives."
    assert not infer(x).requires_grad
    assert tg.is_grad_enabled()
    assert not off(x).requires_grad
    with tg.no_grad():
        assert train(x).requires_grad  # enable_grad inside no_grad
        assert not tg.is_grad_enabled()

    @tg.no_grad()
    def outer(t):
        return train(t), t * 2  # a decorated enable_grad function nested in a no_grad one

    inner, plain = outer(x)
    assert inner.requires_grad and not plain.requires_grad
    assert tg.is_grad_enabled()


# ------------------------------------------------------------------ backward
def test_backward_accumulates_into_leaves():
    x = leaf(3)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())
    y.backward()  # a second pass through the retained graph adds up, as in PyTorch
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy())
    (x * 3.0).sum().backward()  # and so does a different graph
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy() + 3)
    assert x.grad.requires_grad is False and x.grad._ctx is None
    x.zero_grad_()
    assert x.grad is None


def test_second_backward_on_a_freed_graph_raises():
    x = leaf(3)
    y = (x.exp() * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True") as info:
        y.backward()
    assert "second time" in str(info.value)
    # part of a freed graph used in a new one fails the same way
    x2 = leaf(2)
    h = x2 * 3.0
    h.sum().backward()
    with pytest.raises(RuntimeError, match="already freed"):
        (h * 2.0).sum().backward()


def test_backward_on_a_non_scalar_needs_grad():
    x = leaf(2, 3)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"non-scalar tensor of shape \(2, 3\) needs grad=") as info:
        y.backward()
    assert "ones_like" in str(info.value)
    v = np.arange(6.0).reshape(2, 3)
    y.backward(Tensor(v))
    np.testing.assert_allclose(x.grad.numpy(), 2 * v)
    with pytest.raises(RuntimeError, match=r"shape \(3,\)"):
        (x * 2.0).backward(Tensor(np.ones(3)))


def test_backward_sums_over_every_path():
    # a node reached along paths of different lengths must wait for all of its consumers
    x = leaf(3, seed=3)

    def f(x):
        a = x * 2.0
        b = a * a
        c = b + a
        return (c * b + a.exp() * c).sum()

    f(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), numerical_grad(f, x), rtol=1e-6)


def test_deep_and_wide_graph_matches_finite_differences():
    x = leaf(4, seed=4)

    def f(x):
        y = x
        for i in range(30):
            y = (y * 0.9 + x * (0.01 * i)).tanh() + y * 0.1
        return y.sum()

    f(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), numerical_grad(f, x), rtol=1e-6, atol=1e-9)


def test_100k_node_chain_has_no_recursion_error():
    limit = sys.getrecursionlimit()
    x = Tensor(np.array(0.5), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.backward()
    assert x.grad.item() == 1.0 and y.item() == 100_000.5
    assert sys.getrecursionlimit() == limit


# ------------------------------------------------------------------ grad()
def test_grad_returns_gradients_without_touching_dot_grad():
    x, w = leaf(3), leaf(3, seed=2)
    y = (x * w).sum()
    gx, gw = tg.grad(y, [x, w])
    np.testing.assert_allclose(gx.numpy(), w.numpy())
    np.testing.assert_allclose(gw.numpy(), x.numpy())
    assert x.grad is None and w.grad is None
    assert not gx.requires_grad
    with pytest.raises(RuntimeError, match="retain_graph"):
        tg.grad(y, [x])  # the graph was freed


def test_grad_with_grad_outputs_and_several_outputs():
    x = leaf(2, 2)
    y1, y2 = x * 3.0, x.exp()
    v1, v2 = Tensor(np.ones((2, 2))), Tensor(np.full((2, 2), 2.0))
    (g,) = tg.grad([y1, y2], x, grad_outputs=[v1, v2])
    np.testing.assert_allclose(g.numpy(), 3.0 + 2.0 * np.exp(x.numpy()))
    with pytest.raises(RuntimeError, match="not a scalar; pass grad_outputs"):
        tg.grad(x * 2.0, x)
    with pytest.raises(ValueError, match="grad_outputs"):
        tg.grad([x * 2.0, x * 3.0], x, grad_outputs=[v1])


def test_grad_with_respect_to_an_intermediate():
    x = leaf(3)
    h = x * 2.0
    y = (h * h).sum()
    (gh,) = tg.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())


def test_grad_unused_inputs():
    x, unused = leaf(2), leaf(2, seed=5)
    with pytest.raises(RuntimeError, match="input 1 .* not used.*allow_unused=True"):
        tg.grad((x * 2.0).sum(), [x, unused])
    gx, gu = tg.grad((x * 2.0).sum(), [x, unused], allow_unused=True)
    np.testing.assert_allclose(gx.numpy(), [2.0, 2.0])
    assert gu is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.grad((x * 2.0).sum(), [const(2)])


def test_retain_grad_on_a_non_leaf():
    x = leaf(3)
    h = x * 2.0
    h2 = x * 3.0
    assert h.retain_grad() is h
    (h * h + h2).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.numpy())
    assert h2.grad is None  # non-leaves keep no .grad unless asked
    with pytest.raises(RuntimeError, match="does not require grad"):
        const(2).retain_grad()


# ------------------------------------------------------------------ hooks
def test_hook_can_replace_the_gradient_and_be_removed():
    x = leaf(3)
    remove = x.register_hook(lambda g: g * 10.0)
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 20.0)
    remove()
    x.zero_grad_()
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_hook_on_a_non_leaf_changes_what_flows_upstream():
    x = leaf(3)
    h = x * 3.0
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))  # returns None: only observes
    h.register_hook(lambda g: g * 0.5)
    (h * h).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * h.numpy())
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * 0.5 * 2 * h.numpy())


def test_hook_sees_the_total_gradient_once():
    x = leaf(2)
    calls = []
    x.register_hook(lambda g: calls.append(g.numpy().copy()))
    (x * 2.0 + x * 3.0).sum().backward()  # two paths into x
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], 5.0)


# ------------------------------------------------------------------ higher order
@pytest.mark.parametrize("cube", [lambda x: x ** 3, lambda x: x * x * x], ids=["pow", "mul"])
def test_second_and_third_derivative_of_cube(cube):
    x = Tensor(np.array([0.5, -1.2, 2.0]), requires_grad=True)
    (g1,) = tg.grad(cube(x).sum(), x, create_graph=True)
    assert g1.requires_grad
    np.testing.assert_allclose(g1.numpy(), 3 * x.numpy() ** 2)
    (g2,) = tg.grad(g1.sum(), x, create_graph=True)
    np.testing.assert_allclose(g2.numpy(), 6 * x.numpy())
    (g3,) = tg.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.numpy(), 6.0)


def test_second_derivative_of_tanh():
    x = Tensor(np.linspace(-2, 2, 7), requires_grad=True)
    (g1,) = tg.grad(x.tanh().sum(), x, create_graph=True)
    (g2,) = tg.grad(g1.sum(), x)
    t = np.tanh(x.numpy())
    np.testing.assert_allclose(g2.numpy(), -2 * t * (1 - t * t), atol=1e-12)


def test_backward_with_create_graph_gives_a_differentiable_grad():
    x = Tensor(np.array([1.5, -0.5]), requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy())


def test_hessian_vector_product_matches_finite_differences():
    rng = np.random.default_rng(7)
    a = Tensor(rng.standard_normal((4, 3)))
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    v = rng.standard_normal(3)

    def f(x):
        return ((a @ x).tanh() ** 2).sum() + (x * x * x).sum() * 0.1

    (g,) = tg.grad(f(x), x, create_graph=True)
    (hv,) = tg.grad((g * Tensor(v)).sum(), x)

    def gradient_at(values):
        p = Tensor(values, requires_grad=True)
        return tg.grad(f(p), p)[0].numpy()

    eps = 1e-6
    expected = (gradient_at(x.numpy() + eps * v) - gradient_at(x.numpy() - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.numpy(), expected, rtol=1e-6, atol=1e-8)


def test_fused_cross_entropy_refuses_double_backward():
    logits = leaf(3, 4)
    target = np.array([0, 3, 1])
    loss = tg.functional.cross_entropy(logits, target)
    with pytest.raises(RuntimeError, match="CrossEntropy.*double backward"):
        tg.grad(loss, logits, create_graph=True)
    # first order is fine, and the composed form supports second order
    loss = tg.functional.cross_entropy(logits, target)
    loss.backward()
    composed = -(logits.log_softmax(axis=-1) * Tensor(np.eye(4)[target])).sum(axis=-1).mean()
    (g,) = tg.grad(composed, logits, create_graph=True)
    np.testing.assert_allclose(g.numpy(), logits.grad.numpy(), atol=1e-12)
    (h,) = tg.grad((g * g).sum(), logits)
    assert np.isfinite(h.numpy()).all()


# ------------------------------------------------------------------ in-place safety
INPLACE = {
    "add_": lambda t: t.add_(1.0),
    "sub_": lambda t: t.sub_(1.0),
    "mul_": lambda t: t.mul_(2.0),
    "div_": lambda t: t.div_(2.0),
    "copy_": lambda t: t.copy_(np.ones(t.shape)),
    "fill_": lambda t: t.fill_(3.0),
    "__setitem__": lambda t: t.__setitem__(0, 5.0),
}


@pytest.mark.parametrize("op", INPLACE)
def test_inplace_on_a_tensor_backward_needs_raises_at_backward(op):
    x, c = leaf(3), const(3)
    y = (x * c).sum()  # Mul saves c to compute d/dx = c
    v = c._version
    INPLACE[op](c)  # c does not require grad: the update itself is allowed
    assert c._version == v + 1
    with pytest.raises(RuntimeError, match=r"Mul\.backward.*modified in place"):
        y.backward()


@pytest.mark.parametrize("op", INPLACE)
def test_inplace_on_a_leaf_that_requires_grad(op):
    x = leaf(3)
    with pytest.raises(RuntimeError, match=re.escape(op) + ".*requires grad.*no_grad"):
        INPLACE[op](x)
    assert x._version == 0
    y = (x * x).sum()
    with tg.no_grad():
        INPLACE[op](x)  # optimizer style: allowed
    assert x._version == 1
    with pytest.raises(RuntimeError, match=r"Mul\.backward.*modified in place"):
        y.backward()  # ...but the graph built before it saved the old x


def test_inplace_on_a_saved_output_is_detected():
    x = leaf(3)
    y = x.exp()  # Exp's backward reuses its output e^x
    with tg.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"Exp\.backward.*output.*modified in place"):
        y.sum().backward()


def test_inplace_on_a_tensor_backward_does_not_need_is_fine():
    x, c = leaf(3), const(3)
    y = (x + c).sum()  # Add saves nothing
    c.add_(1.0)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.0)


@pytest.mark.parametrize("alias", [lambda c: c.detach(), lambda c: c.reshape(1, 3), lambda c: c[0:2]],
                         ids=["detach", "reshape", "slice"])
def test_inplace_through_an_alias_is_detected(alias):
    """Views and detach() share the version counter with their base."""
    x, c = leaf(1, 3), const(3)
    y = (x * c).sum()
    with tg.no_grad():
        alias(c).mul_(2.0)  # changes c's data, which Mul saved
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_optimizer_style_update_after_backward():
    x = leaf(3)
    for _ in range(3):
        loss = (x * x).sum()
        loss.backward()
        with tg.no_grad():
            x.sub_(x.grad * 0.25)
        x.zero_grad_()
    np.testing.assert_allclose(x.numpy(), leaf(3).numpy() * 0.5 ** 3)


# ------------------------------------------------------------------ anomaly detection
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_in_forward_names_the_op_and_the_line():
    x = leaf(3)
    with tg.detect_anomaly():
        with pytest.raises(AnomalyError) as info:
            line = line_after()
            (x - 2.0).log()
    msg = str(info.value)
    assert "Log" in msg and "NaN" in msg
    assert f"test_autograd.py:{line}" in msg
    assert isinstance(info.value, FloatingPointError)
    # outside detect_anomaly, NaN passes silently (as in NumPy)
    assert np.isnan((x - 2.0).log().numpy()).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_anomaly_in_backward_names_the_op_and_where_it_was_created():
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with tg.detect_anomaly():
        line = line_after()
        y = x.sqrt()  # finite forward; d sqrt(x)/dx = 1 / (2 sqrt(x)) is inf at 0
        loss = (y * 3.0).sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    msg = str(info.value)
    assert "Sqrt.backward" in msg and "Inf" in msg
    assert f"test_autograd.py:{line}" in msg
    assert "Div" not in msg  # blamed on Sqrt, not on the division inside its backward rule


def test_detect_anomaly_is_quiet_on_finite_values_and_works_as_decorator():
    x = leaf(3)

    @tg.detect_anomaly()
    def step():
        (x.tanh() * 2.0).sum().backward()

    step()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1 - np.tanh(x.numpy()) ** 2))
    from tinygrad_lite.grad_mode import STATE

    assert STATE.anomaly is False


# ------------------------------------------------------------------ draw_graph
def test_draw_graph_of_a_small_expression():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.full((2, 3), 2.0), requires_grad=True)
    a.name, b.name = "a", "b"
    e = (a + b) * (b + 1)
    e.name = 'e "out"'
    dot = tg.draw_graph(e)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert dot.count('label="Add"') == 2 and dot.count('label="Mul"') == 1
    assert 'label="a\\nshape (2, 3)"' in dot and 'label="b\\nshape (2, 3)"' in dot
    assert "label=\"e 'out'\\nshape (2, 3)\"" in dot  # a quote cannot end the label early
    assert 'label="const\\nshape ()"' in dot  # the constant 1
    assert dot.count('label="tensor\\nshape (2, 3)"') == 2  # a + b and b + 1
    # structure: 6 tensors, 3 ops, each op with 2 inputs and 1 output
    nodes = set(re.findall(r"^\s*(\w+) \[shape=", dot, flags=re.M))
    edges = re.findall(r"^\s*(\w+) -> (\w+);", dot, flags=re.M)
    assert len(nodes) == 9 and len(edges) == 9
    assert all(src in nodes and dst in nodes for src, dst in edges)
    b_id = next(n for n in nodes if f"{n} [shape=box, label=\"b" in dot)
    assert sum(src == b_id for src, _ in edges) == 2  # b feeds both additions


# ------------------------------------------------------------------ .grad owns its memory
def test_leaf_grads_do_not_alias_each_other_or_the_callers_grad():
    x, y = leaf(3), leaf(3)
    G = tg.ones(3, dtype="float64")
    (x + y).backward(G)  # add hands the same gradient array to both inputs
    with tg.no_grad():
        x.grad.mul_(10.0)
    np.testing.assert_array_equal(y.grad.numpy(), 1.0)
    np.testing.assert_array_equal(G.numpy(), 1.0)


def test_grad_of_a_broadcast_is_writable():
    w = leaf(2, 3)
    w.sum().backward()  # the gradient of a sum is a broadcast (read-only) view of one number
    with tg.no_grad():
        w.grad.mul_(0.5)
    np.testing.assert_array_equal(w.grad.numpy(), 0.5)


def test_grad_of_a_view_does_not_alias_another_leaf():
    p, q = leaf(2, 2), leaf(4)
    (p.reshape(4) + q).sum().backward()
    with tg.no_grad():
        p.grad.mul_(3.0)
    np.testing.assert_array_equal(q.grad.numpy(), 1.0)


def test_hook_handle_removes_the_hook():
    x = leaf(3)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    (x * 2).sum().backward()
    handle.remove()
    handle.remove()  # a second remove is harmless
    (x * 2).sum().backward()
    assert calls == [1]
