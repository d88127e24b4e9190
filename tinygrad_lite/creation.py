"""Factories: zeros, ones, full, arange, eye, rand, randn and their `*_like` forms.

Float factories default to float32. Random ones draw from the default generator (reset by
`manual_seed`) unless a `Generator` is passed.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import dtypes
from .backend import DEFAULT_DEVICE, get_backend
from .random import Generator, default_generator
from .tensor import Tensor

Shape = int | Sequence[int]


def _shape(shape: tuple[Any, ...], op: str) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    out = tuple(int(n) for n in shape)
    if any(n < 0 for n in out):
        raise ValueError(f"{op}: negative dimension in shape {out}")
    return out


def _wrap(data: Any, requires_grad: bool, device: str) -> Tensor:
    t = Tensor._make(data, False, device)
    return t.requires_grad_(True) if requires_grad else t


def _float(dtype: Any) -> Any:
    return dtypes.DEFAULT_FLOAT if dtype is None else dtypes.to_dtype(dtype)


def zeros(*shape: Any, dtype: Any = None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    return _wrap(get_backend(device).xp.zeros(_shape(shape, "zeros"), dtype=_float(dtype)), requires_grad, device)


def ones(*shape: Any, dtype: Any = None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    return _wrap(get_backend(device).xp.ones(_shape(shape, "ones"), dtype=_float(dtype)), requires_grad, device)


def full(shape: Shape, fill_value: float, dtype: Any = None, device: str = "cpu",
         requires_grad: bool = False) -> Tensor:
    shape = _shape((shape,) if isinstance(shape, int) else (tuple(shape),), "full")
    return _wrap(get_backend(device).xp.full(shape, fill_value, dtype=_float(dtype)), requires_grad, device)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None, device: str = "cpu",
           requires_grad: bool = False) -> Tensor:
    """Integers give int64 (like PyTorch); any float argument gives float32."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        is_int = all(isinstance(v, int) for v in (start, stop, step))
        dtype = dtypes.int64 if is_int else dtypes.DEFAULT_FLOAT
    return _wrap(get_backend(device).xp.arange(start, stop, step, dtype=dtypes.to_dtype(dtype)), requires_grad, device)


def eye(n: int, m: int | None = None, dtype: Any = None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    return _wrap(get_backend(device).xp.eye(n, m, dtype=_float(dtype)), requires_grad, device)


def rand(*shape: Any, dtype: Any = None, device: str = "cpu", requires_grad: bool = False,
         generator: Generator | None = None) -> Tensor:
    """Uniform on [0, 1)."""
    data = (generator or default_generator).uniform(_shape(shape, "rand"), _float(dtype))
    return _wrap(get_backend(device).xp.asarray(data), requires_grad, device)


def randn(*shape: Any, dtype: Any = None, device: str = "cpu", requires_grad: bool = False,
          generator: Generator | None = None) -> Tensor:
    """Standard normal."""
    data = (generator or default_generator).normal(_shape(shape, "randn"), _float(dtype))
    return _wrap(get_backend(device).xp.asarray(data), requires_grad, device)


def randint(low: int, high: int, shape: Shape, device: str = "cpu", generator: Generator | None = None) -> Tensor:
    shape = _shape((shape,) if isinstance(shape, int) else (tuple(shape),), "randint")
    if low >= high:
        raise ValueError(f"randint: low={low} must be less than high={high} (high is excluded)")
    data = (generator or default_generator).integers(low, high, shape)
    return _wrap(get_backend(device).xp.asarray(data), False, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor that shares memory with `array`, as torch.from_numpy: no copy, the dtype kept
    (float64 stays float64), and a write through either one shows in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}; "
                        f"tinygrad_lite.tensor(data) copies any data into a new tensor")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: the array's dtype {array.dtype} is not a number or bool dtype")
    return Tensor._make(array, False, DEFAULT_DEVICE)


def _like(x: Tensor, dtype: Any) -> dict[str, Any]:
    return {"dtype": x.dtype if dtype is None else dtype, "device": x.device}


def zeros_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(x.shape, requires_grad=requires_grad, **_like(x, dtype))


def ones_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return ones(x.shape, requires_grad=requires_grad, **_like(x, dtype))


def full_like(x: Tensor, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return full(x.shape, fill_value, requires_grad=requires_grad, **_like(x, dtype))


def rand_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, generator: Generator | None = None) -> Tensor:
    return rand(x.shape, requires_grad=requires_grad, generator=generator, **_like(x, dtype))


def randn_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, generator: Generator | None = None) -> Tensor:
    return randn(x.shape, requires_grad=requires_grad, generator=generator, **_like(x, dtype))
