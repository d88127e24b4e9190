"""PyTorch habits (issue #13, section 6): what a PyTorch user types either works as in PyTorch or
fails with a message that says what to write; it never silently computes something else."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from strategies import assert_forward, check_grad, check_gradgrad, leaf

import nn
import tinygrad_lite as tg
import tinygrad_lite.functional as F
from tinygrad_lite import Tensor

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4))


def _x() -> Tensor:
    return leaf(X)


# ---------------------------------------------------------------- dim= and keepdim=
# Each row: (name, the call with PyTorch's names, the same call with NumPy's names).
SPELLINGS: list[tuple[str, Any, Any]] = [
    ("sum", lambda x: x.sum(dim=1, keepdim=True), lambda x: x.sum(axis=1, keepdims=True)),
    ("mean", lambda x: x.mean(dim=(0, 2)), lambda x: x.mean(axis=(0, 2))),
    ("max values", lambda x: x.max(dim=1, keepdim=True).values, lambda x: x.max(axis=1, keepdims=True)),
    ("min values", lambda x: x.min(dim=-1).values, lambda x: x.min(axis=-1)),
    ("var", lambda x: x.var(dim=1, keepdim=True, correction=0), lambda x: x.var(axis=1, keepdims=True)),
    ("std", lambda x: x.std(dim=2, correction=1), lambda x: x.std(axis=2, ddof=1)),
    ("logsumexp", lambda x: x.logsumexp(dim=1, keepdim=True), lambda x: x.logsumexp(axis=1, keepdims=True)),
    ("softmax", lambda x: x.softmax(dim=1), lambda x: x.softmax(axis=1)),
    ("log_softmax", lambda x: x.log_softmax(dim=0), lambda x: x.log_softmax(axis=0)),
    ("F.softmax", lambda x: F.softmax(x, dim=-1), lambda x: F.softmax(x, axis=-1)),
    ("F.log_softmax", lambda x: F.log_softmax(x, dim=1), lambda x: F.log_softmax(x, axis=1)),
    ("F.logsumexp", lambda x: F.logsumexp(x, dim=1, keepdim=True), lambda x: F.logsumexp(x, axis=1, keepdims=True)),
    ("argmax", lambda x: x.argmax(dim=1, keepdim=True), lambda x: x.argmax(axis=1, keepdims=True)),
    ("argmin", lambda x: x.argmin(dim=2), lambda x: x.argmin(axis=2)),
    ("any", lambda x: (x > 1).any(dim=1, keepdim=True), lambda x: (x > 1).any(axis=1, keepdims=True)),
    ("all", lambda x: (x > -3).all(dim=0), lambda x: (x > -3).all(axis=0)),
    ("norm", lambda x: x.norm(dim=1, keepdim=True), lambda x: x.norm(axis=1, keepdims=True)),
    ("unsqueeze", lambda x: x.unsqueeze(dim=1), lambda x: x.unsqueeze(axis=1)),
    ("squeeze", lambda x: x[:, :1].squeeze(dim=1), lambda x: x[:, :1].squeeze(axis=1)),
    ("flatten", lambda x: x.flatten(start_dim=1), lambda x: x.flatten(start_axis=1)),
    ("transpose", lambda x: x.transpose(dim0=0, dim1=2), lambda x: x.transpose(axis0=0, axis1=2)),
    ("tril", lambda x: x.tril(diagonal=1), lambda x: x.tril(k=1)),
    ("split", lambda x: x.split(2, dim=2)[1], lambda x: x.split(2, axis=2)[1]),
    ("chunk", lambda x: x.chunk(3, dim=1)[2], lambda x: x.chunk(3, axis=1)[2]),
    ("tg.split", lambda x: tg.split(x, [1, 3], dim=2)[1], lambda x: tg.split(x, [1, 3], axis=2)[1]),
    ("cat", lambda x: tg.cat([x, x], dim=1), lambda x: tg.cat([x, x], axis=1)),
    ("stack", lambda x: tg.stack([x, x], dim=2), lambda x: tg.stack([x, x], axis=2)),
    ("take_along_axis", lambda x: x.take_along_axis(np.zeros((2, 1, 4), dtype=np.int64), dim=1),
     lambda x: x.take_along_axis(np.zeros((2, 1, 4), dtype=np.int64), axis=1)),
]


@pytest.mark.parametrize("name,torch_form,numpy_form", SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_dim_and_keepdim_mean_axis_and_keepdims(name: str, torch_form: Any, numpy_form: Any) -> None:
    expected = numpy_form(_x())
    out = torch_form(_x())
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


def test_dim_and_keepdim_change_the_result() -> None:
    """The PyTorch names are not ignored (the test above would pass if both were no-ops)."""
    x = _x()
    assert x.sum(dim=1).shape == (2, 4) and x.sum(dim=1, keepdim=True).shape == (2, 1, 4)
    assert x.softmax(dim=0).numpy()[:, 0, 0].sum() == pytest.approx(1.0)


BOTH = [
    ("sum", lambda x: x.sum(axis=1, dim=1), r"sum: got both axis=1 and dim=1"),
    ("keepdims", lambda x: x.sum(axis=1, keepdims=True, keepdim=True), r"sum: got both keepdims=True and keepdim"),
    ("max", lambda x: x.max(1, axis=1), r"max: got both axis=1 and dim=1"),
    ("softmax", lambda x: x.softmax(-1, dim=-1), r"softmax: got both axis=-1 and dim=-1"),
    ("F.softmax", lambda x: F.softmax(x, axis=0, dim=1), r"softmax: got both axis=0 and dim=1"),
    ("split", lambda x: x.split(2, axis=2, dim=2), r"split: got both axis=2 and dim=2"),
    ("cat", lambda x: tg.cat([x, x], axis=0, dim=0), r"concatenate: got both axis=0 and dim=0"),
    ("var", lambda x: x.var(ddof=0, correction=0), r"var: got both ddof=0 and correction=0"),
    ("unbiased", lambda x: x.std(correction=1, unbiased=False), r"std: got both correction=1 and unbiased=0"),
    ("flatten", lambda x: x.flatten(start_axis=1, start_dim=1), r"flatten: got both start_axis=1 and start_dim=1"),
]


@pytest.mark.parametrize("name,call,message", BOTH, ids=[b[0] for b in BOTH])
def test_both_spellings_at_once_is_an_error_naming_both(name: str, call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message + r".*two names for the same argument; pass only one of them"):
        call(_x())


# ------------------------------------------------------------ max(dim) and min(dim)
def test_max_with_a_dim_returns_values_and_indices() -> None:
    x = tg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    v, i = x.max(1)  # two rows: a silent unpacking of the rows would give v = [1, 5, 2]
    np.testing.assert_array_equal(v.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(i.numpy(), [1, 0])
    assert i.dtype == np.int64
    pair = x.min(dim=0, keepdim=True)
    assert pair.values.shape == (1, 3) and pair.indices.tolist() == [[0, 1, 0]]
    assert x.max(axis=1).tolist() == [5.0, 7.0]  # NumPy's spelling: the values alone
    assert x.max().item() == 7.0 and x.min().item() == 0.0
    assert tg.max(x, 1).indices.tolist() == [1, 0]  # torch.max(x, 1)


def test_max_of_a_tensor_argument_is_the_elementwise_maximum() -> None:
    a, b = tg.tensor([1.0, 5.0]), tg.tensor([3.0, 2.0])
    assert a.max(b).tolist() == [3.0, 5.0] and a.min(b).tolist() == [1.0, 2.0]
    assert tg.max(a, b).tolist() == [3.0, 5.0]


def test_the_pair_never_silently_becomes_an_array() -> None:
    x = tg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    with pytest.raises(TypeError, match=r"return a \(values, indices\) pair, as in PyTorch: take \.values"):
        _ = x - x.max(0)  # shape (2, 3) minus a stacked (2, 3) [values; indices] would broadcast silently
    with pytest.raises(TypeError, match=r"max\(dim\): dim must be one int.*write max\(axis=\(0, 1\)\)"):
        x.max(dim=(0, 1))


def test_max_with_indices_sends_the_gradient_to_the_returned_index() -> None:
    x = leaf([[3.0, 1.0, 3.0]])
    values, _ = x.max(1)
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 0.0, 0.0]])  # the first maximum, as PyTorch
    x.grad = None
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.5, 0.0, 0.5]])  # NumPy's form shares among ties


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_with_indices_gradcheck(op: str, keepdim: bool) -> None:
    x = leaf(RNG.permutation(24).reshape(2, 3, 4) * 0.25)  # distinct values: no ties
    check_grad(lambda x: getattr(x, op)(1, keepdim).values, x)
    check_gradgrad(lambda x: getattr(x, op)(dim=-1).values * x.sum(), leaf(RNG.permutation(6).reshape(2, 3) * 0.5))


def test_max_with_indices_of_a_0d_tensor() -> None:
    v, i = tg.tensor(2.5).max(0)
    assert v.shape == () and v.item() == 2.5 and i.item() == 0


# ------------------------------------------------ size(), dim(), float(), int(), to()
def test_size_is_numpys_int_and_pytorchs_method() -> None:
    x = tg.zeros(2, 3, 4)
    assert x.size == 24 and isinstance(x.size, int) and x.size * 2 == 48  # NumPy's habit
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4 and x.size(dim=0) == 2  # PyTorch's
    assert x.dim() == 3 and tg.tensor(1.0).dim() == 0
    with pytest.raises(IndexError, match=r"size\(3\): dim out of range for a tensor with 3 dimensions"):
        x.size(3)
    import copy
    import pickle
    assert pickle.loads(pickle.dumps(x.size)) == 24 and copy.deepcopy(x.size) == 24


def test_float_and_int_of_a_one_element_tensor() -> None:
    assert float(tg.tensor([[2.5]])) == 2.5 and isinstance(float(tg.tensor(2)), float)
    assert int(tg.tensor([2.7])) == 2 and int(tg.tensor(-2.7)) == -2  # truncation, as int(2.7)
    assert math.isclose(math.exp(tg.tensor(1.0, dtype=tg.float64)), math.e)
    with pytest.raises(ValueError, match=r"float\(\): only one-element tensors can be converted, got shape \(2,\)"):
        float(tg.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"int\(\): only one-element tensors"):
        int(tg.zeros(0))


def test_to_takes_a_dtype_a_device_or_a_tensor() -> None:
    x = leaf([1.0, 2.0])
    y = x.to(tg.float32)
    assert y.dtype == np.float32 and x.dtype == np.float64
    y.sum().backward()  # differentiable, as astype
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [1.0, 1.0]
    assert x.to("cpu") is x and x.to(x) is x and x.to("cpu", tg.float64) is x
    assert x.to(dtype=np.float32).dtype == np.float32 and x.to(tg.zeros(1)).dtype == np.float32
    assert x.to(tg.int64).dtype == np.int64 and not x.to(tg.int64).requires_grad
    with pytest.raises(ValueError, match="no-such-device"):
        x.to("no-such-device")


# ------------------------------------------------------------ clone, repeat, norm
def test_clone_is_a_differentiable_copy() -> None:
    x = leaf([1.0, 2.0, 3.0])
    c = x.clone()
    assert c.data is not x.data and not np.shares_memory(c.data, x.data) and c.dtype == x.dtype
    assert c.requires_grad and c.grad_fn is not None
    with tg.no_grad():
        c[0] = 10.0
    assert x.tolist() == [1.0, 2.0, 3.0]
    check_grad(lambda x: x.clone() * x, leaf([1.0, -2.0, 0.5]))
    assert tg.arange(3).clone().tolist() == [0, 1, 2]  # integers clone too (no gradient)
    assert tg.clone(x).tolist() == x.tolist()


def test_contiguous() -> None:
    x = tg.tensor(np.arange(6.0).reshape(2, 3))
    assert x.contiguous() is x
    t = x.T.contiguous()
    assert t.tolist() == x.T.tolist() and not np.shares_memory(t.data, x.data)


@pytest.mark.parametrize("shape,reps", [((3,), (2,)), ((2, 3), (2, 1)), ((2, 3), (1, 2, 2)), ((2,), (3, 2)),
                                        ((2, 2), (0, 1)), ((), (3,))])
def test_repeat_is_numpys_tile(shape: tuple[int, ...], reps: tuple[int, ...]) -> None:
    a = RNG.standard_normal(shape)
    assert_forward(leaf(a).repeat(*reps), np.tile(a, reps))
    assert_forward(leaf(a).repeat(reps), np.tile(a, reps))  # a tuple, as PyTorch also accepts
    weights = tg.tensor(RNG.standard_normal(np.tile(a, reps).shape))  # each copy weighted differently
    check_grad(lambda x: x.repeat(*reps) * weights, leaf(a))


def test_repeat_errors() -> None:
    with pytest.raises(ValueError, match=r"repeat: needs a count >= 0 for each of the 2 axes of shape \(2, 3\)"):
        tg.zeros(2, 3).repeat(2)  # np.repeat's habit (repeat each element): not PyTorch's repeat
    with pytest.raises(ValueError, match="repeat: needs a count >= 0"):
        tg.zeros(2).repeat(-1)


NORMS = [(2, None), (2, 1), (1, (0, 2)), (math.inf, -1), (-math.inf, 0), (3, 1), (0.5, None), ("fro", None), (0, 1)]


@pytest.mark.parametrize("p,dim", NORMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_norm_matches_numpy_and_gradchecks(p: Any, dim: Any, keepdim: bool) -> None:
    a = RNG.standard_normal((2, 3, 4)) + 0.1
    order = 2 if p == "fro" else p
    axes = tuple(range(a.ndim)) if dim is None else (dim if isinstance(dim, tuple) else (dim,))
    absolute = np.abs(a)
    if order == math.inf:
        expected = absolute.max(axis=axes, keepdims=keepdim)
    elif order == -math.inf:
        expected = absolute.min(axis=axes, keepdims=keepdim)
    elif order == 0:
        expected = (a != 0).sum(axis=axes, keepdims=keepdim).astype(np.float64)
    else:
        expected = (absolute ** order).sum(axis=axes, keepdims=keepdim) ** (1.0 / order)
    assert_forward(leaf(a).norm(p, dim, keepdim), expected)
    if order != 0:
        check_grad(lambda x: x.norm(p=p, dim=dim, keepdim=keepdim), leaf(a))


def test_norm_of_zero_has_gradient_zero_not_nan() -> None:
    x = leaf(np.zeros((2, 3)))
    x.norm(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))
    y = leaf([[0.0, 0.0], [3.0, 4.0]])
    y.norm(p=3, dim=1).sum().backward()
    assert np.isfinite(y.grad.numpy()).all() and y.grad.numpy()[0].tolist() == [0.0, 0.0]
    check_grad(lambda x: x.norm(dim=1), leaf([[0.0, 0.0], [3.0, 4.0]]))


def test_norm_errors() -> None:
    with pytest.raises(TypeError, match=r"norm: needs a floating-point tensor, got int64"):
        tg.arange(3).norm()
    with pytest.raises(ValueError, match=r"norm: p must be a number, inf, -inf or 'fro' \(vector norms\), got 'nuc'"):
        tg.ones(2, 2).norm("nuc")


# ----------------------------------------------------------------- from_numpy
def test_from_numpy_shares_memory_both_ways() -> None:
    a = np.arange(3.0)
    t = tg.from_numpy(a)
    assert t.dtype == np.float64 and t.data is a
    a[0] = 7.0
    assert t.tolist() == [7.0, 1.0, 2.0]
    with tg.no_grad():
        t[1] = 5.0
    assert a.tolist() == [7.0, 5.0, 2.0]
    with pytest.raises(TypeError, match=r"from_numpy: expected a numpy.ndarray, got list"):
        tg.from_numpy([1.0, 2.0])


# ------------------------------------------------------------- top-level functions
TOP_LEVEL = ["abs", "exp", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "erf", "square", "reciprocal", "sign",
             "log"]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_function_is_the_method(name: str) -> None:
    a = RNG.uniform(0.5, 2.0, (2, 3))
    np.testing.assert_array_equal(getattr(tg, name)(tg.tensor(a)).numpy(), getattr(tg.tensor(a), name)().numpy())


def test_top_level_functions_with_arguments() -> None:
    x = tg.tensor(X)
    np.testing.assert_allclose(tg.softmax(x, dim=1).numpy(), x.softmax(axis=1).numpy())
    np.testing.assert_allclose(tg.sum(x, 1).numpy(), X.sum(axis=1))
    np.testing.assert_allclose(tg.mean(x, dim=(0, 1)).numpy(), X.mean(axis=(0, 1)))
    assert tg.transpose(x, 0, 2).shape == (4, 3, 2) and tg.flatten(x, 1).shape == (2, 12)
    assert tg.clamp(x, min=0).min().item() == 0.0 and tg.numel(x) == 24
    assert tg.gather(x, 2, np.zeros((2, 3, 1), dtype=np.int64)).shape == (2, 3, 1)
    assert tg.sigmoid([0.0]).tolist() == [0.5]  # a list is wrapped first
    assert tg.exp.__doc__ == Tensor.exp.__doc__ and tg.max.__name__ == "max"


# ------------------------------------------------------------------ optimizers
def test_zero_grad_set_to_none() -> None:
    model = nn.Linear(2, 2, generator=tg.Generator(0))
    opt = nn.SGD(model.parameters(), lr=0.1)
    model(tg.ones(1, 2)).sum().backward()
    grad = model.weight.grad
    opt.zero_grad(set_to_none=False)
    assert model.weight.grad is grad and grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]  # zeroed in place
    opt.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None  # PyTorch's default: None
    model(tg.ones(1, 2)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert model.bias.grad.tolist() == [0.0, 0.0]
    model.zero_grad(set_to_none=True)
    assert model.bias.grad is None


# ---------------------------------------------------------------------- losses
def test_loss_modules_wrap_the_functional_losses() -> None:
    logits = leaf(RNG.standard_normal((4, 3)))
    target = np.array([0, 2, 1, 2])
    assert nn.CrossEntropyLoss()(logits, target).item() == F.cross_entropy(logits, target).item()
    assert nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1)(logits, target).item() == \
        F.cross_entropy(logits, target, reduction="sum", label_smoothing=0.1).item()
    assert nn.CrossEntropyLoss(ignore_index=2)(logits, target).item() == \
        F.cross_entropy(logits, target, ignore_index=2).item()
    assert nn.CrossEntropyLoss(reduction="none")(logits, target).shape == (4,)
    y = RNG.standard_normal((4, 3))
    for reduction in ("mean", "sum", "none"):
        np.testing.assert_array_equal(nn.MSELoss(reduction=reduction)(logits, y).numpy(),
                                      F.mse_loss(logits, y, reduction=reduction).numpy())
    np.testing.assert_array_equal(nn.BCEWithLogitsLoss()(logits, (y > 0) * 1.0).numpy(),
                                  F.binary_cross_entropy_with_logits(logits, (y > 0) * 1.0).numpy())
    logp = logits.log_softmax(dim=-1)
    assert nn.NLLLoss()(logp, target).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-12)
    loss = nn.MSELoss()(logits, y)
    loss.backward()
    np.testing.assert_allclose(logits.grad.numpy(), 2 * (logits.numpy() - y) / y.size)
    assert "reduction='sum'" in repr(nn.MSELoss(reduction="sum"))


def test_a_misspelled_reduction_is_an_error_not_none() -> None:
    for call in (lambda: nn.MSELoss(reduction="avg")(tg.ones(2), np.ones(2)),
                 lambda: F.nll_loss(tg.ones(2, 2), np.array([0, 1]), reduction="elementwise_mean"),
                 lambda: F.binary_cross_entropy_with_logits(tg.ones(2), np.ones(2), reduction="batchmean")):
        with pytest.raises(ValueError, match=r"reduction must be 'mean', 'sum' or 'none'"):
            call()


def test_linear_refuses_a_numpy_array_with_what_to_write() -> None:
    layer = nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"linear: the input must be a Tensor, got ndarray; wrap it first with "
                                        r"tinygrad_lite.tensor\(x, dtype=...\).*from_numpy.*the weight is float32"):
        layer(np.ones((1, 3)))
    assert layer(tg.tensor(np.ones((1, 3)), dtype=tg.float32)).shape == (1, 2)


# ------------------------------------------------------------ argument orders
def test_embedding_takes_pytorchs_order() -> None:
    w = leaf(RNG.standard_normal((5, 2)))
    idx = np.array([[4, 0], [1, 1]])
    np.testing.assert_array_equal(F.embedding(idx, w).numpy(), w.numpy()[idx])
    np.testing.assert_array_equal(tg.embedding(tg.tensor(idx), w).numpy(), w.numpy()[idx])
    emb = nn.Embedding(5, 2)
    np.testing.assert_array_equal(emb(idx).numpy(), emb.weight.numpy()[idx])


@pytest.mark.parametrize("indices", [np.array([0, 1]), [0, 1], tg.tensor([0, 1])])
def test_embedding_in_the_old_order_says_the_order_changed(indices: Any) -> None:
    with pytest.raises(TypeError, match=r"the argument order is PyTorch's.*old order embedding\(weight, indices\).*"
                                        r"write embedding\(indices, weight\)"):
        F.embedding(tg.ones(4, 2), indices)


def test_gather_is_pytorchs_and_take_along_axis_is_numpys() -> None:
    a = np.arange(12.0).reshape(3, 4)
    x = leaf(a)
    same = np.array([[0, 3], [1, 1], [2, 0]])
    assert_forward(x.gather(1, same), np.take_along_axis(a, same, axis=1))
    assert_forward(x.take_along_axis(same, 1), np.take_along_axis(a, same, axis=1))
    short = np.array([[3, 0]])  # one row: PyTorch reads row 0 only, NumPy broadcasts it to every row
    assert_forward(x.gather(1, short), [[3.0, 0.0]])
    assert_forward(x.take_along_axis(short, axis=1), np.take_along_axis(a, short, axis=1))
    assert x.take_along_axis(short, axis=1).shape == (3, 2)
    check_grad(lambda x: x.gather(0, np.array([[2, 0, 1, 2], [0, 0, 1, 1]])), x)
    check_grad(lambda x: x.gather(1, np.array([[2], [3]])), x)
    with pytest.raises(ValueError, match=r"gather: index of shape \(4, 1\) is larger than the tensor's \(3, 4\) "
                                         r"outside dim 1"):
        x.gather(1, np.zeros((4, 1), dtype=np.int64))


def test_layer_norm_takes_pytorchs_order() -> None:
    x, w, b = leaf(RNG.standard_normal((2, 4))), leaf(RNG.standard_normal(4)), leaf(RNG.standard_normal(4))
    expected = nn.layer_norm_reference(x, w, b).numpy()
    np.testing.assert_allclose(F.layer_norm(x, (4,), w, b).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(F.layer_norm(x, 4, weight=w, bias=b).numpy(), expected, rtol=1e-12)
    assert nn.LayerNorm((4,)).dim == 4 and nn.LayerNorm(4)(x).shape == (2, 4)
    with pytest.raises(ValueError, match=r"LayerNorm: normalizes the last axis only; give its size n or \(n,\)"):
        nn.LayerNorm((2, 4))


# ------------------------------------------------------------------ var and std
def test_var_and_std_follow_the_spelling_of_the_call() -> None:
    a = RNG.standard_normal((3, 5))
    x = tg.tensor(a)
    assert x.std().item() == pytest.approx(a.std(ddof=1))  # PyTorch's x.std(): the unbiased estimate
    assert x.var(1).numpy() == pytest.approx(a.var(axis=1, ddof=1))
    assert x.var(dim=1, keepdim=True).numpy() == pytest.approx(a.var(axis=1, ddof=1, keepdims=True))
    assert x.std(axis=0).numpy() == pytest.approx(a.std(axis=0))  # NumPy's x.std(axis=0): ddof=0
    assert x.var(keepdims=True).numpy() == pytest.approx(a.var(keepdims=True))
    assert x.var(dim=0, correction=0).numpy() == pytest.approx(a.var(axis=0))
    assert x.std(axis=1, ddof=1).numpy() == pytest.approx(a.std(axis=1, ddof=1))
    assert x.var(1, unbiased=False).numpy() == pytest.approx(a.var(axis=1))  # PyTorch's older keyword
    assert x.std(unbiased=True).item() == pytest.approx(a.std(ddof=1))
    check_grad(lambda x: x.std(1), leaf(a))
