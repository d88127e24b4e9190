"""docs/from_pytorch.md cannot drift: every row of its table of differences is executed here, by a
test named after the row's id (test_d1_..., test_d2_...), and every id in the table has one."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

import nn
import tinygrad_lite as tg
import tinygrad_lite.functional as F

DOC = Path(__file__).resolve().parent.parent / "docs" / "from_pytorch.md"


def test_every_row_of_the_table_has_a_test() -> None:
    ids = re.findall(r"^\| (D\d+) \|", DOC.read_text(), flags=re.M)
    assert ids == [f"D{i}" for i in range(1, len(ids) + 1)], "row ids must be D1, D2, ... in order"
    tested = {name.split("_")[1].upper() for name in dir(sys.modules[__name__]) if re.match(r"test_d\d+_", name)}
    assert set(ids) == tested, f"rows without a test: {set(ids) - tested}; tests without a row: {tested - set(ids)}"


def test_d1_numpy_names_and_pytorch_names_both_work_but_not_together() -> None:
    x = tg.tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(axis=1, keepdims=True).tolist() == x.sum(dim=1, keepdim=True).tolist() == [[3.0], [12.0]]
    with pytest.raises(TypeError, match=r"got both axis=1 and dim=1"):
        x.sum(axis=1, dim=1)


def test_d2_max_with_a_dim_is_the_pair_and_with_axis_the_values() -> None:
    x = tg.tensor([[3.0, 1.0, 3.0]], requires_grad=True)
    values, indices = x.max(1)
    assert values.tolist() == [3.0] and indices.tolist() == [0]
    assert x.max(dim=1).indices.tolist() == [0]
    assert x.max(axis=1).tolist() == [3.0]
    x.max(axis=1).sum().backward()
    assert x.grad.tolist() == [[0.5, 0.0, 0.5]]  # ties share the gradient, as torch.amax
    with pytest.raises(TypeError, match=r"return a \(values, indices\) pair"):
        _ = x - x.max(1)


def test_d3_var_and_std_divide_by_n_minus_1_unless_called_numpys_way() -> None:
    a = np.array([1.0, 2.0, 4.0, 7.0])
    x = tg.tensor(a)
    assert x.var().item() == pytest.approx(a.var(ddof=1))
    assert x.var(0).item() == pytest.approx(a.var(ddof=1))
    assert x.var(axis=0).item() == pytest.approx(a.var())
    assert x.std(keepdims=True).tolist() == pytest.approx([a.std()])
    assert x.var(ddof=1).item() == x.var(correction=1).item() == x.var(unbiased=True).item()


def test_d4_size_is_an_int_that_can_be_called() -> None:
    x = tg.zeros(2, 3)
    assert x.size == 6 and x.size() == (2, 3) and x.size(1) == 3


def test_d5_tensor_infers_the_dtype_like_torch_tensor() -> None:
    assert tg.Tensor([1, 2]).dtype == np.int64 and tg.tensor([1, 2]).dtype == np.int64
    assert tg.Tensor([1.0, 2.0]).dtype == np.float32 and tg.Tensor([1, 2], dtype=tg.float32).dtype == np.float32


def test_d6_full_is_float32_by_default() -> None:
    assert tg.full((2,), 3).dtype == np.float32 and tg.full((2,), 3, dtype=tg.int64).dtype == np.int64


def test_d7_one_hot_is_float32_by_default() -> None:
    assert F.one_hot(np.array([0, 2]), 3).dtype == np.float32
    assert F.one_hot(np.array([0, 2]), 3, dtype=tg.int64).dtype == np.int64


def test_d8_data_is_the_array_device_a_string_dtype_numpys() -> None:
    x = tg.tensor([1.0])
    assert isinstance(x.data, np.ndarray) and x.device == "cpu" and isinstance(x.device, str)
    assert tg.float32 == np.float32 and x.dtype == tg.float32 and isinstance(x.dtype, np.dtype)


def test_d9_cross_entropy_takes_classes_on_the_last_axis() -> None:
    logits = tg.tensor(np.random.default_rng(0).standard_normal((2, 5, 3)))  # (B, T, V)
    assert F.cross_entropy(logits, np.zeros((2, 5), dtype=np.int64), reduction="none").shape == (2, 5)
    with pytest.raises(ValueError, match=r"need targets of shape \(2, 5\) \(classes on the last axis\)"):
        F.cross_entropy(logits, np.zeros((2, 3), dtype=np.int64))  # PyTorch's (N, d) targets for (N, C, d)


def test_d10_mixed_float_dtypes_promote_in_matmul_and_linear() -> None:
    a, b = tg.ones(2, 2), tg.ones(2, 2, dtype=tg.float64)
    assert (a @ b).dtype == np.float64 and F.linear(b, a).dtype == np.float64 and (a + b).dtype == np.float64


def test_d11_squeeze_of_an_axis_that_is_not_1_raises() -> None:
    with pytest.raises(ValueError, match=r"squeeze: axis 0 has size 2, not 1"):
        tg.zeros(2, 3).squeeze(0)


def test_d12_empty_reductions_raise_instead_of_nan() -> None:
    with pytest.raises(ValueError, match=r"mean: reducing an empty axis"):
        tg.zeros(0, 2).mean(0)
    with pytest.raises(ValueError, match=r"std: 1 elements with ddof=1 leaves no degrees of freedom"):
        tg.ones(1).std()


def test_d13_softmax_without_dim_is_over_the_last_axis() -> None:
    x = tg.tensor(np.random.default_rng(1).standard_normal((2, 3, 4)))
    np.testing.assert_allclose(F.softmax(x).numpy().sum(axis=-1), np.ones((2, 3)))
    np.testing.assert_array_equal(F.softmax(x).numpy(), F.softmax(x, dim=-1).numpy())


def test_d14_in_place_ops_inside_a_recorded_graph_raise() -> None:
    y = tg.ones(2, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"records no in-place ops.*x = x \+ y"):
        y += 1.0
    w = tg.ones(2, requires_grad=True)
    with tg.no_grad():
        w -= 0.5  # a leaf under no_grad: in place, the same object
    assert w.tolist() == [0.5, 0.5] and w.requires_grad


def test_d15_the_engine_has_its_own_seeded_generator() -> None:
    tg.manual_seed(0)
    a = tg.randn(3).tolist()
    tg.manual_seed(0)
    assert tg.randn(3).tolist() == a  # reproducible (not PyTorch's numbers: a different generator)


def test_d16_pad_is_numpys_and_there_is_no_functional_pad() -> None:
    assert not hasattr(F, "pad")
    assert tg.zeros(2, 3).pad(((0, 0), (1, 2))).shape == (2, 6)  # NumPy's np.pad widths, per axis


def test_d17_layer_norm_normalizes_the_last_axis_only() -> None:
    x = tg.tensor(np.random.default_rng(2).standard_normal((2, 3, 4)))
    assert F.layer_norm(x, (4,)).shape == (2, 3, 4) and F.layer_norm(x, 4).shape == (2, 3, 4)
    with pytest.raises(ValueError, match=r"normalizes the last axis only, so normalized_shape must be \(4,\)"):
        F.layer_norm(x, (3, 4))


def test_d18_numpy_works_on_a_tensor_that_requires_grad() -> None:
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert x.numpy().tolist() == [1.0, 2.0] and np.shares_memory(x.numpy(), x.data)


def test_d19_gather_accepts_negative_indices() -> None:
    x = tg.tensor([[1.0, 2.0, 3.0]])
    assert x.gather(1, np.array([[-1, 0]])).tolist() == [[3.0, 1.0]]


def test_d20_missing_ops_raise_attribute_error() -> None:
    for name in ("cumsum", "sort", "topk"):
        with pytest.raises(AttributeError):
            getattr(tg.zeros(2), name)


def test_sgd_takes_pytorchs_arguments_and_defaults() -> None:
    """Not a difference any more (it was: lr=1e-2 and no dampening); kept here as the guard."""
    p = nn.Parameter(np.ones(2))
    opt = nn.SGD([p], 0.1, 0.9, 0.5)  # PyTorch's positional order: lr, momentum, dampening
    assert opt.param_groups[0]["dampening"] == 0.5 and not opt.param_groups[0]["nesterov"]
    assert nn.SGD([p]).param_groups[0]["lr"] == 1e-3


def test_d21_attention_dropout_uses_the_engines_generator_and_unsupported_arguments_raise() -> None:
    q = tg.tensor(np.random.default_rng(0).standard_normal((1, 2, 3, 4)))
    a = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5, generator=tg.Generator(1))
    b = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5, generator=tg.Generator(1))
    assert a.tolist() == b.tolist()
    with pytest.raises(NotImplementedError, match="enable_gqa"):
        F.scaled_dot_product_attention(q, q, q, enable_gqa=True)
    with pytest.raises(NotImplementedError, match="requires grad"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=tg.zeros(3, 3, dtype=tg.float64, requires_grad=True))
    with pytest.raises(ValueError, match="same leading dimensions"):
        F.scaled_dot_product_attention(q, q[:, :1], q[:, :1])


def test_d22_model_attn_mask_true_means_may_not_attend() -> None:
    attn = nn.CausalSelfAttention(4, 2, generator=tg.Generator(0)).double()
    x = tg.tensor(np.random.default_rng(1).standard_normal((1, 3, 4)))
    hide_first = np.array([True, False, False])  # key 0 is padding
    masked = attn(x, attn_mask=hide_first).numpy()
    assert np.allclose(masked[:, 1:], attn(x[:, 1:]).numpy())  # as if position 0 were absent
