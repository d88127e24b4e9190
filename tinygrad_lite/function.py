"""`Function`: one differentiable primitive, its forward, backward and jvp rules side by side.

A subclass writes
    forward(self, *inputs: Tensor, **params) -> backend array     (the math on raw arrays)
    backward(self, grad: Tensor) -> one gradient Tensor per input   (written with Tensor ops)
    jvp(self, *tangents) -> the output's tangent                  (forward mode, on raw arrays)

`jvp` is the chain rule run forwards: given each input's tangent (a backend array shaped like the
input, or None for a constant: a symbolic zero), return the output's tangent, J·tangent. It may
read `self.inputs` (the input Tensors) and `self.result` (the output array), besides whatever
forward kept on `self`. It runs only inside `forward_mode.jvp`, right after forward.

`Function.apply(*inputs)` runs forward and, when grad mode is on and some input requires grad,
records the node: the output's `_ctx` is this Function instance and `self.parents` are the
inputs. Because backward rules are Tensor expressions, running them with grad mode on
(`create_graph=True`) records a graph of the backward pass itself: higher-order gradients for
free. Fused ops whose backward works on raw arrays set `double_backward = False`.

A Function with several outputs (`split`) sets `multiple_outputs = True`: forward returns a tuple
of arrays, `apply` returns a tuple of Tensors that share the one node, backward receives one
gradient per output (None for an output that no gradient reached) and runs once, after all of them
have arrived, and jvp returns one tangent per output.
"""
from __future__ import annotations

import traceback
import weakref
from typing import Any

from .grad_mode import STATE, AnomalyError
from .tensor import Tensor

_make_tensor = Tensor._make


class Function:
    double_backward = True  # False: backward is not itself differentiable (fused fast paths)
    saves_output = False  # True: backward reads `self.output` (e.g. exp, tanh, softmax)
    may_return_view = False  # True: forward may return a view of its first input's memory
    multiple_outputs = False  # True: forward returns a tuple of arrays (see the module docstring)

    parents: tuple[Tensor, ...]
    saved: tuple[Tensor, ...] = ()  # class-level defaults: most ops save nothing
    versions: tuple[int, ...] = ()

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        ctx = cls.__new__(cls)
        try:
            out_data = ctx.forward(*inputs, **params)
        except Exception:  # free when nothing is raised; NumPy meeting CuPy fails here: name the devices
            _check_same_device(cls, inputs)
            raise
        # One pass over the inputs does both checks: the device (an identity test, since device names
        # are nearly always the same string object) and whether any input requires grad.
        requires_grad = False
        dev = inputs[0].device
        for t in inputs:
            if t.device is not dev:
                _check_same_device(cls, inputs)
            if t.requires_grad:
                requires_grad = True
        requires_grad = requires_grad and STATE.grad_enabled
        if cls.multiple_outputs:
            return _apply_multiple(ctx, cls, inputs, out_data, requires_grad, dev)
        out = _make_tensor(out_data, requires_grad, dev)
        if cls.may_return_view and out.xp.may_share_memory(out_data, inputs[0].data):
            out._vc = inputs[0]._shared_counter()  # a view: in-place updates through it are updates of the base
        if requires_grad:
            ctx.parents = inputs
            if ctx.saved:
                ctx.versions = tuple([t._version for t in ctx.saved])
            out._ctx = ctx
            if cls.saves_output:  # a weak reference: the output must not keep itself alive
                ctx._output = weakref.ref(out)
                ctx._output_version = out._version
        if STATE.forward_ad:
            out._tangent = _push_tangent(ctx, inputs, out_data)
        if STATE.anomaly:
            _check_forward(ctx, cls, inputs, out)
        return out

    # ---------------------------------------------------------------- for subclasses
    def forward(self, *inputs: Tensor, **params: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad: Tensor) -> Tensor | None | tuple[Tensor | None, ...]:  # pragma: no cover
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def jvp(self, *tangents: Any) -> Any:
        """The output's tangent from the inputs' tangents (backend arrays, None = zero)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no forward-mode rule (jvp) yet: forward mode (tg.jvp) cannot go "
            f"through it; reverse mode (backward) can"
        )

    def save_for_backward(self, *tensors: Tensor) -> None:
        """Keep these input tensors for backward; their versions are checked when it runs."""
        self.saved = tensors

    @property
    def saved_tensors(self) -> tuple[Tensor, ...]:
        for t, v in zip(self.saved, self.versions):
            if t._version != v:
                raise RuntimeError(
                    f"{type(self).__name__}.backward: a tensor of shape {t.shape} that this op saved "
                    f"for backward was modified in place after the forward pass (version {v} -> "
                    f"{t._version}). Its gradient would be wrong; work on a copy instead "
                    f"(e.g. `x = x * 1` before the in-place update)."
                )
        return self.saved

    @property
    def output(self) -> Tensor:
        out = self._output()
        if out is None:  # pragma: no cover - the output is alive while anything depends on it
            raise RuntimeError(f"{type(self).__name__}.backward: the output tensor was freed")
        if out._version != self._output_version:  # an in-place update (under no_grad) bumped it
            raise RuntimeError(
                f"{type(self).__name__}.backward: its output (shape {out.shape}), which backward reuses, "
                f"was modified in place after the forward pass (version {self._output_version} -> "
                f"{out._version}). Its "
                f"gradient would be wrong; work on a copy instead (e.g. `y = y * 1` before the update)."
            )
        return out

    @property
    def name(self) -> str:
        return type(self).__name__

    def release(self) -> None:
        """Free what backward needed (called after backward unless retain_graph=True)."""
        self.saved = ()
        self.parents = None  # type: ignore[assignment]


def _apply_multiple(ctx: Function, cls: type, inputs: tuple[Tensor, ...], out_data: tuple[Any, ...],
                    requires_grad: bool, dev: str) -> tuple[Tensor, ...]:
    """`apply` for a Function with several outputs: one Tensor per array, all made by the one node
    `ctx`, which knows each output's position (`ctx.output_index`, keyed by the output's id)."""
    outs = tuple([_make_tensor(a, requires_grad, dev) for a in out_data])
    if cls.may_return_view:
        for out in outs:
            if out.xp.may_share_memory(out.data, inputs[0].data):
                out._vc = inputs[0]._shared_counter()
    if requires_grad:
        ctx.parents = inputs
        if ctx.saved:
            ctx.versions = tuple([t._version for t in ctx.saved])
        ctx.output_index = {id(out): i for i, out in enumerate(outs)}
        for out in outs:
            out._ctx = ctx
    if STATE.forward_ad:
        tangents = tuple([t._tangent for t in inputs])
        if any(v is not None for v in tangents):
            ctx.inputs, ctx.result = inputs, out_data
            for out, tangent in zip(outs, ctx.jvp(*tangents)):
                out._tangent = tangent
    if STATE.anomaly:
        for out in outs:
            _check_forward(ctx, cls, inputs, out)
    return outs


def tangent_sum(*terms: Any) -> Any:
    """The sum of a jvp rule's terms, skipping symbolic zeros (None): a constant input adds nothing."""
    total = None
    for t in terms:
        if t is not None:
            total = t if total is None else total + t
    return total


def _push_tangent(ctx: Function, inputs: tuple[Tensor, ...], out_data: Any) -> Any:
    """Forward mode: the output's tangent by the op's jvp rule, or None when no input has one."""
    tangents = tuple([t._tangent for t in inputs])
    if all(v is None for v in tangents):
        return None
    ctx.inputs, ctx.result = inputs, out_data
    tangent = ctx.jvp(*tangents)
    if tangent is None:
        return None
    if tangent.dtype != out_data.dtype:
        tangent = tangent.astype(out_data.dtype)
    if tangent.shape != out_data.shape:  # a broadcast input's term alone (x + c with x smaller)
        tangent = inputs[0].xp.broadcast_to(tangent, out_data.shape)
    return tangent


def _check_same_device(cls: type, inputs: tuple[Tensor, ...]) -> None:
    # Only reached when two inputs' device strings are different objects; they may still be
    # equal strings (e.g. a device name built at run time), so compare by value here.
    devices = [getattr(t, "device", None) for t in inputs]
    if any(d != devices[0] for d in devices):
        raise RuntimeError(
            f"{cls.__name__}: inputs are on different devices ({', '.join(repr(d) for d in devices)}); "
            f"move them to one device first, e.g. `b = b.to({devices[0]!r})`"
        )


# ---------------------------------------------------------------------- anomaly mode
def _check_forward(ctx: Function, cls: type, inputs: tuple[Tensor, ...], out: Tensor) -> None:
    # Record where the output was created so a later backward anomaly can point at it.
    ctx.created_at = _user_frame()
    xp = out.xp
    if out.data.dtype.kind == "f" and not bool(xp.isfinite(out.data).all()):
        bad = "NaN" if bool(xp.isnan(out.data).any()) else "Inf"
        inputs_ok = all(t.data.dtype.kind != "f" or bool(xp.isfinite(t.data).all()) for t in inputs)
        where = "from finite inputs" if inputs_ok else "(its inputs were already non-finite)"
        raise AnomalyError(f"{cls.__name__} produced {bad} in its forward output {where}, at {ctx.created_at}")


def _user_frame() -> str:
    """The innermost stack frame outside the engine: the line of user code that made the op."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if "/tinygrad_lite/" not in frame.filename.replace("\\", "/"):
            return f"{frame.filename}:{frame.lineno} ({frame.line})"
    return "<unknown>"
