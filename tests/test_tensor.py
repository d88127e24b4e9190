"""The Tensor itself: constructor, factories, properties, conversions, dtype rules, in-place
updates, seeded randomness and the errors they raise."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from strategies import check_grad, leaf

import tinygrad_lite as tg
from tinygrad_lite import Tensor

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


# ------------------------------------------------------------------ constructor
@pytest.mark.parametrize("data,dtype", [
    (1.5, np.float32),                                  # Python floats -> float32, as in PyTorch
    ([1.0, 2.0], np.float32),
    ([[1, 2.5]], np.float32),
    (3, np.int64),
    ([1, 2], np.int64),
    (True, np.bool_),
    ([True, False], np.bool_),
    (np.array([1.0, 2.0]), np.float64),                 # NumPy arrays keep their dtype
    (np.array([1, 2], dtype=np.int32), np.int32),
    (np.array([1.0], dtype=np.float16), np.float16),
    (np.float64(2.0), np.float64),
])
def test_constructor_dtype_rules(data: Any, dtype: Any) -> None:
    t = Tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))
    assert tg.tensor(data).dtype == dtype


@pytest.mark.parametrize("dtype", ["float64", np.float64, tg.float64, np.dtype("float64")])
def test_constructor_explicit_dtype_spellings(dtype: Any) -> None:
    t = Tensor([1, 2], dtype=dtype)
    assert t.dtype == np.float64
    assert t.tolist() == [1.0, 2.0]


def test_constructor_copies_its_input() -> None:
    a = np.array([1.0, 2.0])
    t = Tensor(a)
    a[0] = 100.0
    assert t.tolist() == [1.0, 2.0]
    u = Tensor(t)  # from another tensor: a copy too, and a fresh leaf
    t.data[1] = -1.0
    assert u.tolist() == [1.0, 2.0] and u.is_leaf and not u.requires_grad


def test_constructor_requires_grad() -> None:
    t = Tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.grad is None
    assert repr(t) == "Tensor([1., 2.], dtype=float32, requires_grad=True)"
    y = t * 2
    assert not y.is_leaf and "grad_fn=Mul" in repr(y)


@pytest.mark.parametrize("data", [[1, 2], [True, False], np.array([1, 2], dtype=np.int32)])
def test_requires_grad_on_int_or_bool_tensor_is_refused(data: Any) -> None:
    with pytest.raises(TypeError, match=r"requires_grad_: only floating-point tensors can require gradients, "
                                        r"this one is (int|bool)"):
        Tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match=r"requires_grad_: .* this one is int64"):
        tg.arange(3).requires_grad_()
    with pytest.raises(TypeError, match=r"requires_grad_: .* this one is int64"):
        tg.arange(3, requires_grad=True)


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown device 'cuda:7'; available devices: \['cpu'"):
        Tensor([1.0], device="cuda:7")
    with pytest.raises(TypeError, match=r"not a dtype: 'floot32'"):
        Tensor([1.0], dtype="floot32")


# ------------------------------------------------------------------- properties
def test_properties() -> None:
    t = Tensor(np.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.size == 24 and t.numel() == 24
    assert len(t) == 2 and t.device == "cpu" and t.dtype == np.float64
    assert t.T.shape == (4, 3, 2)
    assert t.xp is np
    s = Tensor(5.0)
    assert s.shape == () and s.ndim == 0 and s.size == 1


def test_tensors_are_hashable_despite_elementwise_eq() -> None:
    a, b = Tensor([1.0]), Tensor([1.0])
    assert isinstance(a == b, Tensor)
    assert len({a: 1, b: 2}) == 2


# ------------------------------------------------------------------ conversions
def test_numpy_shares_memory_and_item_tolist() -> None:
    t = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    arr = t.numpy()
    assert isinstance(arr, np.ndarray) and np.shares_memory(arr, t.data)
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert t[1, 0].item() == 3.0 and isinstance(t[1, 0].item(), float)
    assert Tensor([7]).item() == 7 and isinstance(Tensor([7]).item(), int)
    assert bool(Tensor([1.0])) and not bool(Tensor(0.0))


def test_conversion_errors() -> None:
    t = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"item\(\): only one-element tensors can be converted, got shape \(2, 3\)"):
        t.item()
    with pytest.raises(ValueError, match=r"the truth value of a tensor of shape \(2, 3\) is ambiguous"):
        bool(t)
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d tensor"):
        len(Tensor(1.0))


def test_detach_shares_data_and_leaves_the_graph() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert d.is_leaf and not d.requires_grad
    assert np.shares_memory(d.data, y.data)


def test_astype_between_floats_is_differentiable() -> None:
    x = leaf([0.5, -1.5, 2.0])
    y = x.astype(tg.float32)
    assert y.dtype == np.float32 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64  # a gradient always has its input's dtype
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), rtol=1e-6)
    check_grad(lambda x: x.astype(tg.float32).astype(tg.float64) * 0.0 + x.double() * 2.0, x)
    assert x.astype(tg.float64) is x  # same dtype: no new node


def test_astype_to_integer_is_a_constant() -> None:
    x = leaf([0.5, -1.5, 2.7])
    i = x.long()
    assert i.dtype == np.int64 and not i.requires_grad and i.tolist() == [0, -1, 2]
    assert x.float().dtype == np.float32 and x.float().double().dtype == np.float64
    assert x.astype(bool).tolist() == [True, True, True]


# ------------------------------------------------------------- dtype rules of ops
@pytest.mark.parametrize("make,dtype", [
    (lambda: tg.ones(3) * tg.ones(3), np.float32),
    (lambda: tg.ones(3) * 2.5, np.float32),                   # a Python float takes the tensor's dtype
    (lambda: 2.5 - tg.ones(3), np.float32),
    (lambda: tg.ones(3) * 2, np.float32),
    (lambda: tg.ones(3, dtype=tg.float64) / 3, np.float64),
    (lambda: tg.ones(3, dtype=tg.float16) + 1.0, np.float16),
    (lambda: tg.arange(3) * 2, np.int64),                     # int with int stays int
    (lambda: tg.arange(3) + 0.5, np.float32),                 # int with a float: the default float
    (lambda: 0.5 * tg.arange(3), np.float32),
    (lambda: tg.arange(3) / 2, np.float32),                   # true division of ints: the default float
    (lambda: 1 / tg.arange(1, 4), np.float32),
    (lambda: tg.arange(3) / tg.arange(1, 4), np.float32),
    (lambda: tg.arange(3).mean(), np.float32),
    (lambda: tg.arange(3) ** 2, np.int64),
    (lambda: tg.ones(3) * np.arange(3), np.float32),          # an int array joins the float tensor
    (lambda: tg.ones(3) * Tensor([True, False, True]), np.float32),
    (lambda: tg.arange(3) * tg.ones(3, dtype=tg.float64), np.float64),
    (lambda: tg.ones(3) + tg.ones(3, dtype=tg.float64), np.float64),  # two floats: the wider one
    (lambda: tg.maximum(tg.arange(3), 0.5), np.float32),
    (lambda: tg.ones(2) < 1, np.bool_),
])
def test_result_dtypes(make: Any, dtype: Any) -> None:
    assert make().dtype == dtype


def test_int_with_float_values_are_exact() -> None:
    np.testing.assert_array_equal((tg.arange(4) / 2).numpy(), np.array([0.0, 0.5, 1.0, 1.5], dtype=np.float32))
    np.testing.assert_array_equal((tg.arange(3) + 0.25).numpy(), np.array([0.25, 1.25, 2.25], dtype=np.float32))


def test_gradient_dtype_follows_each_leaf_in_mixed_precision() -> None:
    w32 = Tensor([1.0, 2.0], requires_grad=True)
    x64 = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    (w32 * x64).sum().backward()
    assert w32.grad.dtype == np.float32 and x64.grad.dtype == np.float64
    np.testing.assert_array_equal(w32.grad.numpy(), [3.0, 4.0])


def test_numpy_array_on_the_left_gives_a_tensor() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for out in (np.ones(2) + x, np.ones(2) * x, np.ones(2) - x, np.ones(2) / x):
        assert isinstance(out, Tensor) and out.requires_grad


# ------------------------------------------------------------------- factories
@pytest.mark.parametrize("factory,value", [(tg.zeros, 0.0), (tg.ones, 1.0)])
def test_zeros_ones(factory: Any, value: float) -> None:
    for t in (factory(2, 3), factory((2, 3)), factory([2, 3])):
        assert t.shape == (2, 3) and t.dtype == np.float32 and (t.numpy() == value).all()
    assert factory(2, dtype=tg.int64).dtype == np.int64
    assert factory(3, requires_grad=True).requires_grad
    assert factory().shape == ()


def test_full_arange_eye() -> None:
    f = tg.full((2, 2), 7.5)
    assert f.dtype == np.float32 and f.tolist() == [[7.5, 7.5], [7.5, 7.5]]
    assert tg.full(3, 2.0, dtype=tg.float64).dtype == np.float64
    a = tg.arange(5)
    assert a.dtype == np.int64 and a.tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(1, 7, 2).tolist() == [1, 3, 5]
    af = tg.arange(0.0, 1.0, 0.25)
    assert af.dtype == np.float32 and af.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert tg.arange(3, dtype=tg.float64).dtype == np.float64
    e = tg.eye(2, 3)
    assert e.dtype == np.float32 and e.tolist() == [[1, 0, 0], [0, 1, 0]]
    assert tg.eye(3).shape == (3, 3)


def test_like_factories_follow_their_input() -> None:
    x = Tensor(np.zeros((2, 3)))
    for t in (tg.zeros_like(x), tg.ones_like(x), tg.full_like(x, 4.0), tg.rand_like(x), tg.randn_like(x)):
        assert t.shape == (2, 3) and t.dtype == np.float64
    assert tg.ones_like(tg.arange(3)).dtype == np.int64
    assert tg.zeros_like(x, dtype=tg.float32).dtype == np.float32
    assert tg.full_like(x, 4.0).tolist() == [[4.0] * 3] * 2
    assert tg.ones_like(x, requires_grad=True).requires_grad


def test_random_factories_ranges_and_dtypes() -> None:
    tg.manual_seed(0)
    u = tg.rand(10000)
    assert u.dtype == np.float32 and 0.0 <= u.numpy().min() and u.numpy().max() < 1.0
    n = tg.randn(10000, dtype=tg.float64)
    assert n.dtype == np.float64
    assert abs(n.numpy().mean()) < 0.05 and abs(n.numpy().std() - 1.0) < 0.05
    r = tg.randint(-2, 3, (1000,))
    assert r.dtype == np.int64 and set(np.unique(r.numpy())) == {-2, -1, 0, 1, 2}
    assert tg.randn(2, 3, requires_grad=True).requires_grad
    assert tg.rand((2, 3)).shape == (2, 3)


def test_factory_errors_name_the_factory() -> None:
    with pytest.raises(ValueError, match=r"zeros: negative dimension in shape \(-1, 2\)"):
        tg.zeros(-1, 2)
    with pytest.raises(ValueError, match=r"ones: negative dimension"):
        tg.ones(3, -3)
    with pytest.raises(ValueError, match=r"full: negative dimension in shape \(-2,\)"):
        tg.full(-2, 1.0)
    with pytest.raises(ValueError, match=r"randn: negative dimension"):
        tg.randn(-1)
    with pytest.raises(ValueError, match=r"randint: low=5 must be less than high=2"):
        tg.randint(5, 2, (3,))
    with pytest.raises(ValueError, match=r"arange: step must not be zero"):
        tg.arange(0, 3, 0)


# ------------------------------------------------------------ seeded randomness
def test_manual_seed_gives_bit_identical_draws() -> None:
    def draw() -> list[np.ndarray]:
        return [tg.randn(3, 4).numpy(), tg.rand(5, dtype=tg.float64).numpy(), tg.randint(0, 100, 6).numpy(),
                tg.functional.dropout(tg.ones(8), 0.5).numpy(), tg.randn_like(tg.ones(2)).numpy()]

    assert tg.manual_seed(42) is tg.default_generator
    first = draw()
    tg.manual_seed(42)
    second = draw()
    for a, b in zip(first, second):
        assert a.tobytes() == b.tobytes()
    tg.manual_seed(43)
    assert tg.randn(3, 4).numpy().tobytes() != first[0].tobytes()


def test_generators_are_independent() -> None:
    g1, g2 = tg.Generator(5), tg.Generator(5)
    tg.manual_seed(0)
    expected_default = tg.randn(4).numpy()
    tg.manual_seed(0)
    a = tg.randn(4, generator=g1).numpy()
    _ = tg.randn(100, generator=g1)  # advancing g1 touches neither g2 nor the default
    np.testing.assert_array_equal(tg.randn(4, generator=g2).numpy(), a)
    np.testing.assert_array_equal(tg.randn(4).numpy(), expected_default)
    r1, r2 = (tg.randint(0, 10, 5, generator=tg.Generator(1)).tolist() for _ in range(2))
    assert r1 == r2


def test_generator_state_round_trip() -> None:
    g = tg.Generator(11)
    g.normal((3,), np.float64)
    state = g.get_state()
    a = tg.rand(4, generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(tg.rand(4, generator=g).numpy(), a)


def test_seed_errors() -> None:
    with pytest.raises(ValueError, match=r"manual_seed: seed must be a non-negative int, got -1"):
        tg.manual_seed(-1)
    with pytest.raises(ValueError, match=r"manual_seed: seed must be a non-negative int, got 1.5"):
        tg.Generator(1.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------- in-place updates
def test_inplace_updates_under_no_grad() -> None:
    w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with tg.no_grad():
        w.sub_(Tensor(np.array([0.5, 0.5, 0.5])))
        w.mul_(2.0)
        w.add_(np.ones(3), alpha=0.5)
        w.div_(2.0)
    np.testing.assert_array_equal(w.numpy(), [0.75, 1.75, 2.75])
    with tg.no_grad():
        w[0] = 10.0
        w.copy_(w.numpy() * 2)
    assert w.tolist() == [20.0, 3.5, 5.5]
    with tg.no_grad():
        w.zero_()
    assert w.tolist() == [0.0, 0.0, 0.0] and w.requires_grad


def test_inplace_errors() -> None:
    w = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add_: a leaf Variable that requires grad is being used in an in-place"):
        w.add_(1.0)
    with pytest.raises(ValueError, match=r"copy_: cannot copy shape \(3,\) into shape \(2,\)"):
        Tensor([1.0, 2.0]).copy_(np.zeros(3))
    with pytest.raises(ValueError, match=r"copy_: cannot copy shape \(2, 2\) into shape \(2,\)"):
        Tensor([1.0, 2.0]).copy_(np.zeros((2, 2)))


def test_op_outputs_are_arrays_so_inplace_updates_work() -> None:
    # NumPy gives scalars for full reductions and single elements; the engine keeps 0-d arrays.
    x = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    for t in (x.sum(), x.max(), x[0, 1], x.mean(), x.logsumexp()):
        assert isinstance(t.data, np.ndarray) and t.shape == ()
        t.fill_(5.0)
        assert t.item() == 5.0
