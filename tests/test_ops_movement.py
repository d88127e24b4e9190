"""Shape and movement ops: reshape, permute/transpose, expand, squeeze/unsqueeze, flatten,
concatenate/stack, split/chunk, pad, tril/triu, masked_fill. Each backward is the inverse
movement of the gradient; gradcheck on drawn shapes and non-contiguous inputs checks it."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import assume, given
from strategies import (
    GRADGRAD_SIZE,
    arrays,
    assert_forward,
    check_grad,
    check_gradgrad,
    grad_of,
    leaf,
    leaves,
    sample_normal,
    shapes,
    with_layout,
)

import tinygrad_lite as tg
from tinygrad_lite import Tensor

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _same_size_shapes(size: int, max_dims: int = 3) -> list[tuple[int, ...]]:
    """Every shape of up to `max_dims` axes holding exactly `size` elements."""
    out: list[tuple[int, ...]] = [()] if size == 1 else []

    def extend(prefix: tuple[int, ...], rest: int) -> None:
        if rest == 1 and prefix:
            out.append(prefix)
        if len(prefix) == max_dims:
            return
        for d in range(1, rest + 1):
            if rest % d == 0:
                extend(prefix + (d,), rest // d)

    extend((), size)
    return sorted(set(out))


# ---------------------------------------------------------------------- reshape
@given(data=st.data())
def test_reshape(data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    target = data.draw(st.sampled_from(_same_size_shapes(math.prod(shape))), label="target")
    if target and data.draw(st.booleans(), label="infer"):  # let reshape infer one size with -1
        i = data.draw(st.integers(0, len(target) - 1), label="i")
        target = target[:i] + (-1,) + target[i + 1 :]
    x = data.draw(leaves(arrays(shape)), label="x")
    assert_forward(x.reshape(target), x.numpy().reshape(target))
    assert_forward(x.view(*target), x.numpy().reshape(target))
    check_grad(lambda x: x.reshape(target), x)


# ------------------------------------------------------- permute / transpose / T
@given(data=st.data())
def test_permute(data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    axes = data.draw(st.permutations(range(len(shape))), label="axes")
    negative = tuple(a - len(shape) for a in axes)  # the same permutation, counted from the end
    x = data.draw(leaves(arrays(shape)), label="x")
    assert_forward(x.permute(axes), x.numpy().transpose(axes))
    assert_forward(x.permute(*negative), x.numpy().transpose(axes))
    check_grad(lambda x: x.permute(axes) * tg.tensor(np.arange(x.size, dtype=float).reshape(x.permute(axes).shape)), x)


@given(data=st.data())
def test_transpose_swapaxes_and_T(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1), label="shape")
    a = data.draw(st.integers(-len(shape), len(shape) - 1), label="a")
    b = data.draw(st.integers(-len(shape), len(shape) - 1), label="b")
    x = data.draw(leaves(arrays(shape)), label="x")
    assert_forward(x.transpose(a, b), np.swapaxes(x.numpy(), a, b))
    assert_forward(x.swapaxes(a, b), np.swapaxes(x.numpy(), a, b))
    assert_forward(x.T, x.numpy().T)
    if len(shape) >= 2:
        assert_forward(x.transpose(), np.swapaxes(x.numpy(), -1, -2))
    weights = tg.tensor(np.linspace(-1, 1, x.size).reshape(np.swapaxes(x.numpy(), a, b).shape))
    check_grad(lambda x: x.transpose(a, b) * weights, x)
    check_grad(lambda x: x.T.exp(), x)


# ------------------------------------------------------------------------ expand
@st.composite
def expand_targets(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = draw(shapes(max_size=8), label="shape")
    lead = draw(st.lists(st.integers(1, 3), max_size=2), label="lead")
    grown = [draw(st.integers(1, 3)) if n == 1 else n for n in shape]
    target = tuple(lead) + tuple(grown)
    assume(math.prod(target) <= 24)
    return shape, target


@given(data=st.data())
def test_expand_broadcast_to(data: Any) -> None:
    shape, target = data.draw(expand_targets(), label="shapes")
    x = data.draw(leaves(arrays(shape)), label="x")
    expected = np.broadcast_to(x.numpy(), target)
    assert_forward(x.expand(target), expected)
    assert_forward(x.broadcast_to(*target), expected)
    lead = len(target) - len(shape)
    keep = target[:lead] + tuple(-1 if n == t else t for n, t in zip(shape, target[lead:]))
    assert_forward(x.expand(keep), expected)  # -1 keeps a size
    check_grad(lambda x: x.expand(target) * tg.tensor(np.linspace(0.5, 2.0, math.prod(target)).reshape(target)), x)


def test_expand_gradient_sums_over_the_copies() -> None:
    x = leaf([[1.0], [2.0]])
    (g,) = grad_of(lambda x: x.expand(3, 2, 4), x)
    np.testing.assert_array_equal(g, [[12.0], [12.0]])


# -------------------------------------------------------------- squeeze/unsqueeze
@given(data=st.data())
def test_squeeze(data: Any) -> None:
    shape = data.draw(shapes(max_side=2), label="shape")  # many size-1 axes
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = data.draw(st.one_of(st.none(), st.lists(st.sampled_from(ones), unique=True).map(tuple)) if ones
                     else st.none(), label="axis")
    x = data.draw(leaves(arrays(shape)), label="x")
    assert_forward(x.squeeze(axis), np.squeeze(x.numpy(), axis=axis))
    check_grad(lambda x: x.squeeze(axis), x)


@given(data=st.data())
def test_unsqueeze(data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    x = data.draw(leaves(arrays(shape)), label="x")
    assert_forward(x.unsqueeze(axis), np.expand_dims(x.numpy(), axis))
    check_grad(lambda x: x.unsqueeze(axis), x)


@given(data=st.data())
def test_flatten(data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    x = data.draw(leaves(arrays(shape)), label="x")
    if not shape:
        assert_forward(x.flatten(), x.numpy().reshape(1))
        return
    start = data.draw(st.integers(-len(shape), len(shape) - 1), label="start")
    end = data.draw(st.integers(start % len(shape), len(shape) - 1), label="end")
    s, e = start % len(shape), end
    expected = x.numpy().reshape(shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])
    assert_forward(x.flatten(start, end), expected)
    assert_forward(x.flatten(), x.numpy().reshape(-1))
    check_grad(lambda x: x.flatten(start, end), x)


# ------------------------------------------------------------- concatenate / stack
@given(data=st.data())
def test_concatenate(data: Any) -> None:
    base = data.draw(shapes(min_dims=1, max_size=8), label="base")
    axis = data.draw(st.integers(-len(base), len(base) - 1), label="axis")
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="sizes")
    parts = []
    for n in sizes:
        shape = list(base)
        shape[axis] = n
        parts.append(data.draw(leaves(arrays(tuple(shape))), label="part"))
    expected = np.concatenate([p.numpy() for p in parts], axis=axis)
    assert_forward(tg.concatenate(parts, axis=axis), expected)
    assert_forward(tg.cat(parts, axis), expected)
    check_grad(lambda *ps: tg.concatenate(list(ps), axis=axis), *parts)


@given(data=st.data())
def test_stack(data: Any) -> None:
    shape = data.draw(shapes(max_size=8), label="shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    count = data.draw(st.integers(1, 3), label="count")
    parts = [data.draw(leaves(arrays(shape)), label="part") for _ in range(count)]
    assert_forward(tg.stack(parts, axis=axis), np.stack([p.numpy() for p in parts], axis=axis))
    check_grad(lambda *ps: tg.stack(list(ps), axis=axis), *parts)


def test_concatenate_and_stack_accept_constants() -> None:
    x = leaf([1.0, 2.0])
    out = tg.concatenate([x, np.array([3.0]), [4.0, 5.0]])
    assert_forward(out, [1.0, 2.0, 3.0, 4.0, 5.0])
    (g,) = grad_of(lambda x: tg.concatenate([x, np.array([3.0])]) * tg.tensor([1.0, 2.0, 3.0]), x)
    np.testing.assert_array_equal(g, [1.0, 2.0])


# ------------------------------------------------------------------ split / chunk
@given(data=st.data())
def test_split(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    n = shape[axis]
    if data.draw(st.booleans(), label="by_size"):
        size = data.draw(st.integers(1, n + 1), label="size")
        cuts = list(range(size, n, size))
        arg: Any = size
    else:
        cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3), label="cuts"))
        arg = [b - a for a, b in zip([0] + cuts, cuts + [n])]
    x = data.draw(leaves(arrays(shape)), label="x")
    pieces = x.split(arg, axis=axis)
    expected = np.split(x.numpy(), cuts, axis=axis)
    assert len(pieces) == len(expected)
    for p, e in zip(pieces, expected):
        assert_forward(p, e)
    assert tg.split(x, arg, axis) is not None
    check_grad(lambda x: tuple(x.split(arg, axis=axis)), x)


@pytest.mark.parametrize("n,chunks,sizes", [(6, 3, [2, 2, 2]), (5, 3, [2, 2, 1]), (6, 4, [2, 2, 2]), (2, 5, [1, 1]),
                                            (4, 1, [4])])
def test_chunk_sizes_follow_pytorch(n: int, chunks: int, sizes: list[int]) -> None:
    x = leaf(np.arange(float(n)).reshape(1, n))
    pieces = x.chunk(chunks, axis=1)
    assert [p.shape[1] for p in pieces] == sizes
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in pieces], axis=1), x.numpy())
    check_grad(lambda x: tuple(x.chunk(chunks, axis=-1)), x)


def test_split_is_one_node_whose_backward_runs_once_with_every_pieces_gradient(monkeypatch) -> None:
    """The pieces share one multi-output node: its backward runs once, after every piece's gradient
    has arrived (here the pieces are used at different depths), with None for an unused piece."""
    from tinygrad_lite.ops.movement import Split

    calls = []
    original = Split.backward
    monkeypatch.setattr(Split, "backward", lambda self, grads: calls.append(grads) or original(self, grads))
    x = leaf(np.arange(12.0).reshape(3, 4))
    a, b, c = x.split([1, 2, 1], axis=1)
    assert a._ctx is b._ctx is c._ctx
    loss = (a * 2.0).sum() + ((b.exp() * 3.0).tanh() * 0.0 + b).sum() * 5.0  # b reaches the loss by two paths
    loss.backward()
    assert len(calls) == 1 and calls[0][2] is None  # c was never used
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 5.0, 5.0, 0.0]] * 3)


def test_split_pieces_work_with_grad_hooks_retain_graph_and_double_backward() -> None:
    x = leaf(np.linspace(-1.0, 1.0, 6).reshape(2, 3))
    a, b = x.split([2, 1], axis=1)
    seen = []
    b.register_hook(lambda g: seen.append(g.numpy().copy()))
    y = (a ** 3).sum() + (b ** 2).sum()
    (gx,) = tg.grad(y, [x], create_graph=True)
    np.testing.assert_allclose(gx.numpy(), np.concatenate([3 * x.numpy()[:, :2] ** 2, 2 * x.numpy()[:, 2:]], 1))
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 * x.numpy()[:, 2:])  # the hook saw b's gradient
    (ggx,) = tg.grad(gx.sum(), [x])  # through Split's backward (a concatenate of Tensor ops)
    np.testing.assert_allclose(ggx.numpy(), np.concatenate([6 * x.numpy()[:, :2], np.full((2, 1), 2.0)], 1))
    a, b = x.split([2, 1], axis=1)  # the second grad() freed the first pieces' node, as in PyTorch
    z = (a.sum() + b.sum()) * 1.0
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_split_pieces_are_views_and_share_the_version_counter() -> None:
    x = leaf(np.arange(4.0))
    with tg.no_grad():
        base = x * 1.0
    a, b = base.split(2)
    assert np.shares_memory(a.data, base.data)
    base.add_(1.0)
    assert a._version == base._version and a.tolist() == [1.0, 2.0]


# -------------------------------------------------------------------------- pad
@given(data=st.data())
def test_pad(data: Any) -> None:
    shape = data.draw(shapes(max_size=8), label="shape")
    widths = tuple(data.draw(st.tuples(st.integers(0, 2), st.integers(0, 2)), label="w") for _ in shape)
    value = data.draw(st.sampled_from([0.0, -1.5]), label="value")
    x = data.draw(leaves(arrays(shape)), label="x")
    expected = np.pad(x.numpy(), widths, constant_values=value) if shape else x.numpy()  # a 0-d tensor has no sides
    assert_forward(x.pad(widths, value=value), expected)
    check_grad(lambda x: x.pad(widths, value=value), x)


def test_pad_with_an_int_pads_every_side() -> None:
    x = leaf(np.ones((2, 1)))
    assert_forward(x.pad(1), np.pad(np.ones((2, 1)), 1))


# ----------------------------------------------------------------- tril / triu
@pytest.mark.parametrize("name", ["tril", "triu"])
@given(data=st.data())
def test_tril_triu(name: str, data: Any) -> None:
    shape = data.draw(shapes(min_dims=2), label="shape")
    k = data.draw(st.integers(-2, 2), label="k")
    x = data.draw(leaves(arrays(shape)), label="x")
    assert_forward(getattr(x, name)(k), getattr(np, name)(x.numpy(), k))
    check_grad(lambda x: getattr(x, name)(k), x)


# ------------------------------------------------------------------ masked_fill
@st.composite
def masks_for(draw: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A bool mask that broadcasts to `shape` without growing it (dims of 1 or n, maybe fewer)."""
    dropped = draw(st.integers(0, len(shape)))
    mshape = tuple(draw(st.sampled_from([1, n])) for n in shape[dropped:])
    return draw(hnp.arrays(np.bool_, mshape))


@given(data=st.data())
def test_masked_fill(data: Any) -> None:
    shape = data.draw(shapes(), label="shape")
    mask = data.draw(masks_for(shape), label="mask")
    value = data.draw(st.sampled_from([0.0, -1e9, 2.5]), label="value")
    x = data.draw(leaves(arrays(shape)), label="x")
    assert_forward(x.masked_fill(mask, value), np.where(mask, value, x.numpy()))
    assert_forward(x.masked_fill(tg.tensor(mask), value), np.where(mask, value, x.numpy()))
    check_grad(lambda x: x.masked_fill(mask, value), x)


def test_masked_fill_with_minus_infinity_then_softmax() -> None:
    # the causal-attention pattern: masked positions get probability exactly 0 and no gradient
    x = leaf(np.zeros((3, 3)))
    causal = ~np.tril(np.ones((3, 3), dtype=bool))
    probs = x.masked_fill(causal, -np.inf).softmax(axis=-1)
    np.testing.assert_allclose(probs.numpy(), np.tril(np.ones((3, 3))) / np.arange(1, 4)[:, None], rtol=1e-15)
    weights = tg.tensor(np.arange(9.0).reshape(3, 3))
    (g,) = grad_of(lambda x: x.masked_fill(causal, -np.inf).softmax(axis=-1) * weights, x)
    assert (g[causal] == 0).all()


# ------------------------------------------------------------------ second order
@given(data=st.data())
def test_movement_second_order(data: Any) -> None:
    shape = data.draw(shapes(min_dims=2, max_size=GRADGRAD_SIZE), label="shape")
    x = data.draw(leaves(arrays(shape)), label="x")
    check_gradgrad(lambda x: (x.T.reshape(-1) ** 2).pad(((1, 0),)).unsqueeze(0).expand(2, -1) * x.sum(), x)


def test_layouts_really_are_strided() -> None:
    a = np.arange(6.0).reshape(2, 3)
    assert not with_layout(a, "transposed").flags.c_contiguous
    assert not with_layout(a, "sliced").flags.c_contiguous
    assert not with_layout(np.arange(3.0), "transposed").flags.c_contiguous
    for layout in ("contiguous", "transposed", "sliced"):
        np.testing.assert_array_equal(with_layout(a, layout), a)


# ------------------------------------------------------------------------ errors
def test_movement_errors_name_the_op_and_the_values() -> None:
    x = tg.ones(2, 3)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) "
                                         r"into \(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"reshape: .* into \(-1, -1\)"):
        x.reshape(-1, -1)
    with pytest.raises(ValueError, match=r"reshape: .* into \(4, -1\)"):
        x.reshape(4, -1)
    with pytest.raises(ValueError, match=r"permute: \(0, 0\) is not a permutation of the 2 axes of shape \(2, 3\)"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match=r"permute: \(0, 1, 5\) is not a permutation of the 3 axes"):
        tg.ones(2, 3, 4).permute(0, 1, 5)  # 5 % 3 == 2 must not sneak through
    with pytest.raises(ValueError, match=r"permute: \(0,\) is not a permutation of the 2 axes"):
        x.permute(0)
    with pytest.raises(ValueError, match=r"transpose: axis 2 is out of range for a tensor with 2 dimensions"):
        x.transpose(0, 2)
    with pytest.raises(ValueError, match=r"expand: cannot broadcast shape \(2, 3\) to \(3, 3\)"):
        x.expand(3, 3)
    with pytest.raises(ValueError, match=r"expand: cannot broadcast shape \(2, 3\) to \(-1, 2, 3\)"):
        x.expand(-1, 2, 3)  # -1 may only keep an existing size
    with pytest.raises(ValueError, match=r"expand: cannot broadcast shape \(2, 3\) to \(3,\)"):
        x.expand(3)
    with pytest.raises(ValueError, match=r"squeeze: axis 0 has size 2, not 1 \(shape \(2, 3\)\)"):
        x.squeeze(0)
    with pytest.raises(ValueError, match=r"squeeze: axis 2 is out of range"):
        x.squeeze(2)
    with pytest.raises(ValueError, match=r"unsqueeze: axis 3 is out of range for a tensor with 2 dimensions"):
        x.unsqueeze(3)
    with pytest.raises(ValueError, match=r"flatten: start_axis 1 comes after end_axis 0"):
        x.flatten(1, 0)


def test_joining_errors_name_the_op_and_the_values() -> None:
    x = tg.ones(2, 3)
    with pytest.raises(ValueError, match=r"concatenate: shapes \[\(2, 3\), \(3, 2\)\] differ outside axis 0"):
        tg.concatenate([x, tg.ones(3, 2)])
    with pytest.raises(ValueError, match=r"concatenate: shapes \[\(2, 3\), \(3,\)\] differ outside axis 0"):
        tg.concatenate([x, tg.ones(3)])
    with pytest.raises(ValueError, match=r"concatenate: need at least one tensor"):
        tg.concatenate([])
    with pytest.raises(ValueError, match=r"concatenate: zero-dimensional tensors .* use stack"):
        tg.concatenate([tg.tensor(1.0), tg.tensor(2.0)])
    with pytest.raises(ValueError, match=r"concatenate: axis 2 is out of range"):
        tg.concatenate([x, x], axis=2)
    with pytest.raises(ValueError, match=r"stack: all tensors need the same shape, got \[\(2, 3\), \(3, 2\)\]"):
        tg.stack([x, tg.ones(3, 2)])
    with pytest.raises(ValueError, match=r"stack: need at least one tensor"):
        tg.stack([])
    with pytest.raises(ValueError, match=r"split: sections \[1, 1\] do not add up to the axis length 3"):
        x.split([1, 1], axis=1)
    with pytest.raises(ValueError, match=r"split: split size must be positive, got 0"):
        x.split(0)
    with pytest.raises(ValueError, match=r"chunk: chunks must be positive, got 0"):
        x.chunk(0)
    with pytest.raises(ValueError, match=r"pad: pad_width \(\(1, 1\),\) needs one non-negative"):
        x.pad(((1, 1),))
    with pytest.raises(ValueError, match=r"pad: pad_width .* per axis of shape \(2, 3\)"):
        x.pad(((1, -1), (0, 0)))
    with pytest.raises(ValueError, match=r"tril: needs at least 2 dimensions, got shape \(3,\)"):
        tg.ones(3).tril()
    with pytest.raises(ValueError, match=r"triu: needs at least 2 dimensions, got shape \(\)"):
        tg.tensor(1.0).triu()


def test_masked_fill_errors() -> None:
    x = tg.ones(2, 3)
    with pytest.raises(TypeError, match=r"masked_fill: the mask must be bool, got int64"):
        x.masked_fill(np.array([1, 0, 1]), 0.0)
    with pytest.raises(ValueError, match=r"masked_fill: mask of shape \(2,\) does not broadcast with the tensor's "
                                         r"\(2, 3\)"):
        x.masked_fill(np.ones(2, dtype=bool), 0.0)


# ----------------------------------------------------------- forward mode
# One sample call per op class of this module, checked against reverse mode by tests/test_forward_mode.py
# (vᵀ(J·u) == (vᵀJ)·u; it counts the class's jvp calls). A new op adds its line here.
_TRIU = np.triu(np.ones((3, 4), bool), 1)
JVP_SAMPLES: dict[str, tuple[Callable[..., Tensor], list[np.ndarray]]] = {
    "Reshape": (lambda x: x.reshape(4, 6), [sample_normal(2, 3, 4)]),
    "Permute": (lambda x: x.permute(2, 0, 1), [sample_normal(2, 3, 4)]),
    "Expand": (lambda x: x.expand(2, 3, 4), [sample_normal(3, 1)]),
    "Concatenate": (lambda x, y: tg.concatenate([x, y.exp(), x], axis=1), [sample_normal(2, 3), sample_normal(2, 1)]),
    "Split": (lambda x: tg.concatenate([p * (i + 1.0) for i, p in enumerate(x.split([1, 3, 2], dim=1))][::-1], axis=1),
              [sample_normal(2, 6)]),
    "Pad": (lambda x: x.pad(((1, 0), (0, 2)), value=3.0), [sample_normal(3, 3)]),
    "Tril": (lambda x: x.tril() + x.triu(1) * 2.0, [sample_normal(3, 4)]),
    "MaskedFill": (lambda x: x.masked_fill(_TRIU, -1.0), [sample_normal(3, 4)]),
    "Cast": (lambda x: x.astype(tg.float32).astype(tg.float64), [sample_normal(3, 4)]),
    "ToDevice": (lambda x: (x.to("fakecuda") * 2.0).to("cpu"), [sample_normal(3, 4)]),
}
