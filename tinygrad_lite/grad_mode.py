"""Global autograd switches: grad mode and anomaly detection.

Both are plain module-level flags read on every op, so they must be cheap to check.
`no_grad` / `enable_grad` / `detect_anomaly` work as context managers and as decorators.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class _State:
    __slots__ = ("grad_enabled", "anomaly", "forward_ad")

    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False
        self.forward_ad = 0  # > 0 inside forward_mode.jvp: ops push tangents forward


STATE = _State()


def is_grad_enabled() -> bool:
    return STATE.grad_enabled


class _FlagContext:
    """Sets one flag of STATE on enter and restores the previous value on exit.

    Used as a decorator it wraps each call in the same block; `@no_grad` and `@no_grad()` both work.
    """

    flag = ""
    value = True

    def __new__(cls, *args: Any) -> Any:
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]):
            return cls()(args[0])  # bare `@no_grad` on a function
        return super().__new__(cls)

    def __init__(self) -> None:
        self._prev: list[bool] = []  # a stack, so one instance can be entered again while active

    def __enter__(self) -> _FlagContext:
        self._prev.append(getattr(STATE, self.flag))
        setattr(STATE, self.flag, self.value)
        return self

    def __exit__(self, *exc: Any) -> None:
        setattr(STATE, self.flag, self._prev.pop())

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_FlagContext):
    """Build no graph inside this block (inference, optimizer updates)."""

    flag, value = "grad_enabled", False


class enable_grad(_FlagContext):
    """Turn graph building back on inside a `no_grad` block."""

    flag, value = "grad_enabled", True


class set_grad_enabled(_FlagContext):
    """`with set_grad_enabled(flag):` chooses the mode explicitly."""

    flag = "grad_enabled"

    def __init__(self, mode: bool = True) -> None:
        super().__init__()
        self.value = bool(mode)


class detect_anomaly(_FlagContext):
    """Check every forward output and every backward gradient for NaN/Inf.

    On the first non-finite value it raises `AnomalyError` naming the op and the line of user
    code that created the offending tensor. Slow (it records a stack per op): for debugging only.
    """

    flag, value = "anomaly", True


class pause_anomaly(_FlagContext):
    """Used by the backward pass around each backward rule: the rule's result is checked as a whole
    and blamed on its op (e.g. Sqrt), not on the Div or Mul that the rule happens to use inside."""

    flag, value = "anomaly", False


class AnomalyError(FloatingPointError):
    """A NaN or Inf appeared while `detect_anomaly()` was active."""
