"""Each fast path of the engine's reading path gives what its reference gives.

tensor.py's `_operands_fast_path` skips `_const` and `_promote` for the operands of almost every
arithmetic op; the reference is `_promote(a, a._const(other))`. The fused ops' kernels are checked
against their xp references in tests/test_kernel_registry.py and tests/test_nn_layers.py, and the
fused attention against its composed reference in tests/test_attention.py."""
import itertools

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite.tensor import _operands_fast_path, _promote

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.bool_]
SCALARS = [0.5, -3, 7, True, 2**40, np.float64(0.25), np.int64(3)]


def tensor_of(dtype, values=(1.5, -2.0, 0.0)):
    return tg.tensor(np.array(values).astype(dtype))


def reference(a, other, true_div):
    return _promote(a, a._const(other), true_div)


@pytest.mark.parametrize("true_div", [False, True])
@pytest.mark.parametrize("a_dtype,b_dtype", list(itertools.product(DTYPES, DTYPES)))
def test_two_tensors_give_the_reference_results(a_dtype, b_dtype, true_div):
    a, b = tensor_of(a_dtype), tensor_of(b_dtype, (2.0, 1.0, -1.0))
    fast = _operands_fast_path(a, b, true_div)
    if fast is None:
        return  # not a fast case: _operands runs the reference itself
    ref = reference(a, b, true_div)
    for op in (np.add, np.subtract, np.multiply) if not true_div else (np.true_divide,):
        try:
            want = op(ref[0].data, ref[1].data)
        except TypeError:  # e.g. bool - bool: NumPy refuses it, and must refuse the fast operands too
            with pytest.raises(TypeError):
                op(fast[0].data, fast[1].data)
            continue
        got = op(fast[0].data, fast[1].data)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("true_div", [False, True])
@pytest.mark.parametrize("a_dtype", DTYPES)
@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
def test_tensor_and_scalar_give_the_reference_results(a_dtype, scalar, true_div):
    a = tensor_of(a_dtype)
    fast = _operands_fast_path(a, scalar, true_div)
    if fast is None:
        return
    ref = reference(a, scalar, true_div)
    assert fast[1].dtype == ref[1].dtype and fast[1].shape == ref[1].shape
    np.testing.assert_array_equal(fast[1].data, ref[1].data)
    assert fast[0] is a and ref[0] is a


def test_the_fast_cases_are_taken():
    """The fast path must actually serve the common cases (otherwise it is dead code)."""
    x = tensor_of(np.float32)
    assert _operands_fast_path(x, tensor_of(np.float32), False) is not None
    assert _operands_fast_path(x, tensor_of(np.bool_), False) is not None
    assert _operands_fast_path(x, 0.5, True) is not None
    assert _operands_fast_path(x, tensor_of(np.int64), False) is None  # needs a cast: the reference
    assert _operands_fast_path(tensor_of(np.int64), 0.5, False) is None  # int tensor, float scalar


def test_tensor_make_and_the_constructor_give_the_same_fields():
    """Tensor._make (the internal constructor of every op's output) and Tensor(...) set the same slots."""
    made = tg.Tensor._make(np.ones(3, np.float32), False, "cpu")
    built = tg.Tensor(np.ones(3, np.float32))
    for slot in tg.Tensor.__slots__:
        if slot in ("data", "__weakref__"):
            continue
        assert getattr(made, slot) == getattr(built, slot), slot
    assert isinstance(tg.Tensor._make(np.float32(2.0), False, "cpu").data, np.ndarray)  # a scalar becomes 0-d
