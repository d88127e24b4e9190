"""Forward mode: carry each value's tangent along with it.

A tangent is the derivative of a value along one chosen direction v of the inputs. Inside `jvp`,
every Tensor may carry one (`._tangent`, a backend array shaped like its data, or None for a
constant). Each op computes its output with `forward` and, right after, the output's tangent with
its `jvp` rule, the chain rule applied *forwards* (see function.py):

    y = f(x)        ẏ = f'(x) · ẋ

After one pass the output's tangent is J·v, a Jacobian-vector product. No graph is recorded and
nothing runs backwards; the tangent costs a small constant times the forward pass. One pass gives
one *column* of the Jacobian (reverse mode gives one *row*, vᵀ·J, per backward pass), so forward
mode wins when a function has few inputs and many outputs.

The values are ordinary Tensors, so `jvp` goes through everything backward goes through: Tensor
methods, `tg.where`, `nn` modules, the GPT. A Tensor without a tangent (a weight, a mask, a
literal) is a constant: its symbolic zero adds no terms, so `x @ W` costs one extra matmul.

    out, tangent = jvp(lambda x, w: (x @ w).tanh().sum(axis=1), (x, w), (vx, vw))
    J = jacobian(f, x, mode="fwd")      # one JVP per input element
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import dtypes
from .autograd import grad as reverse_grad
from .backend import get_backend
from .grad_mode import STATE, no_grad
from .tensor import Tensor


def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _array(x: Any) -> tuple[Any, str]:
    if isinstance(x, Tensor):
        return x.data, x.device
    return np.asarray(x), "cpu"


def _unpack(out: Any) -> tuple[Tensor, Tensor]:
    """(value, tangent) of one output, both constant Tensors; no tangent means zero."""
    if not isinstance(out, Tensor):
        raise TypeError(f"jvp: the function must return Tensors (or a tuple of them), got {type(out).__name__}")
    t = out._tangent if out._tangent is not None else out.xp.zeros_like(out.data)
    return Tensor._make(out.data, False, out.device), Tensor._make(out.xp.array(t), False, out.device)


def jvp(fn: Callable[..., Any], primals: Sequence[Any] | Any, tangents: Sequence[Any] | Any) -> tuple[Any, Any]:
    """Evaluate `fn(*primals)` and its Jacobian-vector product J·tangents in one forward pass.

    `fn` receives Tensors that carry the tangents and may use anything built from the engine's ops
    (Tensor methods, functional, nn modules). Returns `(outputs, output_tangents)` as constant
    Tensors, each a tuple when `fn` returns a tuple. Nothing is recorded and no backward pass runs.
    """
    primals, tangents = _as_tuple(primals), _as_tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; give one tangent per primal")
    inputs = []
    for i, (x, v) in enumerate(zip(primals, tangents)):
        xa, device = _array(x)
        if not dtypes.is_floating(xa.dtype):
            raise TypeError(f"jvp: primal {i} has dtype {xa.dtype}; only floating-point inputs have tangents")
        t = Tensor._make(xa, False, device)
        if v is not None:
            va = get_backend(device).xp.asarray(_array(v)[0], dtype=xa.dtype)
            if va.shape != xa.shape:
                raise ValueError(f"jvp: tangent {i} has shape {va.shape} but its primal has shape {xa.shape}")
            t._tangent = va
        inputs.append(t)
    STATE.forward_ad += 1
    try:
        with no_grad():  # forward mode records nothing
            out = fn(*inputs)
    finally:
        STATE.forward_ad -= 1
    if isinstance(out, (tuple, list)):
        pairs = [_unpack(o) for o in out]
        return tuple(p for p, _ in pairs), tuple(t for _, t in pairs)
    return _unpack(out)


def jacobian(fn: Callable[[Any], Any], x: Any, mode: str = "rev") -> Tensor:
    """The full Jacobian of `fn` at `x`, shaped `out.shape + x.shape`.

    mode="fwd": one JVP per input element (n forward passes, one column each).
    mode="rev": one forward pass, then one backward pass per output element (m rows).
    Forward mode is cheaper when n << m, reverse mode when n >> m (a loss: m = 1).
    """
    xa, device = _array(x)
    if not dtypes.is_floating(xa.dtype):
        raise TypeError(f"jacobian: x has dtype {xa.dtype}; only floating-point inputs have derivatives")
    xp = get_backend(device).xp
    if mode == "fwd":
        columns, out_shape = [], None
        for k in range(xa.size):
            e_k = xp.zeros(xa.size, dtype=xa.dtype)
            e_k[k] = 1
            out, tangent = jvp(fn, (Tensor._make(xa, False, device),), (e_k.reshape(xa.shape),))
            if not isinstance(out, Tensor):
                raise TypeError("jacobian: fn must return a single Tensor")
            columns.append(tangent.data.reshape(-1))
            out_shape = out.shape
        if out_shape is None:  # an empty input: evaluate once for the output shape
            out_shape = jvp(fn, (Tensor._make(xa, False, device),), (None,))[0].shape
        J = xp.stack(columns, axis=1) if columns else xp.zeros((math.prod(out_shape), 0), dtype=xa.dtype)
        return Tensor._make(J.reshape(out_shape + xa.shape), False, device)
    if mode == "rev":
        leaf = Tensor._make(xa.copy(), True, device)
        out = fn(leaf)
        if not isinstance(out, Tensor):
            raise TypeError("jacobian: fn must return a single Tensor")
        J = xp.zeros((out.size, xa.size), dtype=out.dtype)
        if out.requires_grad:
            for m in range(out.size):
                onehot = xp.zeros(out.size, dtype=out.dtype)
                onehot[m] = 1
                (g,) = reverse_grad(out, [leaf], grad_outputs=Tensor._make(onehot.reshape(out.shape), False, device),
                                    retain_graph=True, allow_unused=True)
                if g is not None:
                    J[m] = g.data.reshape(-1)
        return Tensor._make(J.reshape(out.shape + xa.shape), False, device)
    raise ValueError(f"jacobian: mode must be 'fwd' or 'rev', got {mode!r}")


__all__ = ["jvp", "jacobian"]
