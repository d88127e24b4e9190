"""NumPy and PyTorch spell some arguments differently: `axis` / `dim`, `keepdims` / `keepdim`.

Every op takes both spellings (PyTorch itself accepts `axis=` as an alias of `dim=`). This module
is the one place that resolves them, so each op stays one line and the rule is written once:
either spelling works, and giving both at once is an error that names both.
"""
from __future__ import annotations

from typing import Any


def spelled(op: str, numpy_name: str, numpy_value: Any, torch_name: str, torch_value: Any,
            default: Any = None) -> Any:
    """The value of an argument with a NumPy and a PyTorch name; None means "not given".

    `spelled("sum", "axis", axis, "dim", dim)` is `dim` if only `dim=` was passed, `axis` if only
    `axis=` was, `default` if neither, and a TypeError naming both if both were."""
    if torch_value is None:
        return default if numpy_value is None else numpy_value
    if numpy_value is not None:
        raise TypeError(f"{op}: got both {numpy_name}={numpy_value!r} and {torch_name}={torch_value!r}, two names "
                        f"for the same argument; pass only one of them")
    return torch_value


def axis_keepdims(op: str, axis: Any, keepdims: bool | None, dim: Any, keepdim: bool | None) -> tuple[Any, bool]:
    """(axis, keepdims) of a reduction called with either spelling: `x.sum(dim=1, keepdim=True)` is
    `x.sum(axis=1, keepdims=True)`. `keepdims=False` is the default, so it cannot be told apart
    from "not given": `keepdims=False, keepdim=True` keeps the dimensions (no error)."""
    if dim is None and keepdim is None:  # NumPy's names, or none: the common case
        return axis, bool(keepdims)
    axis = spelled(op, "axis", axis, "dim", dim)
    return axis, bool(spelled(op, "keepdims", keepdims or None, "keepdim", keepdim, False))
