"""The dtypes the engine speaks: NumPy dtypes, with float32 as the default for floats."""
from __future__ import annotations

from typing import Any

import numpy as np

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

DEFAULT_FLOAT = float32


def to_dtype(dtype: Any) -> np.dtype:
    """Normalize "float64", np.float64, float64 ... to a np.dtype; a clear error otherwise."""
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"not a dtype: {dtype!r}") from e


def is_floating(dtype: np.dtype) -> bool:
    return dtype.kind == "f"
