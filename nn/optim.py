"""Optimizers, learning-rate schedules, gradient clipping and gradient accumulation.

An optimizer holds parameter groups (each a dict: its "params" plus hyperparameters such as
"lr" and "weight_decay") and per-parameter state (momentum buffers, Adam moments). Every group
also has an "lr_scale" (1 unless the group says otherwise): a schedule sets the learning rate
through `set_lr`, which gives each group lr × lr_scale, so groups that must learn at a fixed
multiple of the base rate (LoRA+'s B matrices, say) keep that multiple all along. `step()`
updates every parameter in place under `no_grad()`: the same Parameter objects keep their
identity, and each in-place update bumps the tensor's version counter.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Tensor, threads
from tinygrad_lite.backend import get_backend

from .module import zero_grads

ParamsLike = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    defaults: dict[str, Any]

    def __init__(self, params: ParamsLike, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}  # id(param) -> its buffers
        items = list(params)
        if not items:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = items if isinstance(items[0], dict) else [{"params": items}]
        seen: set[int] = set()
        for g in groups:
            self.add_param_group(g, seen)

    def add_param_group(self, group: dict[str, Any], seen: set[int] | None = None) -> None:
        seen = seen if seen is not None else {id(p) for g in self.param_groups for p in g["params"]}
        unknown = set(group) - set(self.defaults) - {"params", "lr_scale"}
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown option(s) {sorted(unknown)} in a parameter group; "
                             f"known: {sorted([*self.defaults, 'lr_scale'])}")
        scale = group.get("lr_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not 0 <= scale < math.inf:
            raise ValueError(f"{type(self).__name__}: lr_scale must be a finite number >= 0, got {scale!r}")
        params = list(group["params"])
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter of shape {p.shape} appears in two groups")
            seen.add(id(p))
        self.param_groups.append({**self.defaults, "lr_scale": 1.0, **group, "params": params})

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of every parameter (see nn.module.zero_grads): `.grad = None`, PyTorch's
        default, or with set_to_none=False zeros written into the existing `.grad` tensors."""
        zero_grads((p for g in self.param_groups for p in g["params"]), set_to_none)

    def step(self) -> None:
        threads.update()  # once per step: as many threads as cores are idle (tinygrad_lite/threads.py)
        with tg.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self.update(p, p.grad.data, group, self.state.setdefault(id(p), {}))

    def update(self, p: Tensor, grad: Any, group: dict[str, Any], state: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters per group and each parameter's buffers (copied), keyed by the
        parameter's position across the groups, so they can be restored onto a new model."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [{k: v for k, v in g.items() if k != "params"} | {"params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        state = {index[pid]: {k: (v.copy() if hasattr(v, "shape") else v) for k, v in s.items()}  # NumPy or CuPy
                 for pid, s in self.state.items() if pid in index}
        return {"param_groups": groups, "state": state}

    def check_state_dict(self, sd: dict[str, Any]) -> None:
        """Raise ValueError if `sd` does not fit this optimizer's groups and parameters."""
        if not isinstance(sd, dict) or "param_groups" not in sd or "state" not in sd:
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected a dict with 'param_groups' and 'state'")
        groups = sd["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)
        ):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: saved group sizes {[len(g['params']) for g in groups]} "
                f"differ from this optimizer's {[len(g['params']) for g in self.param_groups]}"
            )
        params = [p for g in self.param_groups for p in g["params"]]
        for i, buffers in sd["state"].items():
            i = int(i)
            if not 0 <= i < len(params):
                raise ValueError(f"{type(self).__name__}.load_state_dict: state for parameter {i} of {len(params)}")
            for k, v in buffers.items():
                if hasattr(v, "shape") and v.shape != params[i].shape:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: buffer {k!r} of parameter {i} has shape "
                                     f"{v.shape}, the parameter {params[i].shape}")

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore hyperparameters and buffers; checked first, so a mismatch changes nothing."""
        self.check_state_dict(sd)
        groups = sd["param_groups"]
        params = [p for g in self.param_groups for p in g["params"]]
        for saved, group in zip(groups, self.param_groups):
            # A checkpoint read back from JSON holds lists where the optimizer had tuples (betas):
            # restore the type this optimizer uses, so the state dict round-trips unchanged.
            group.update({k: tuple(v) if isinstance(group.get(k), tuple) and isinstance(v, list) else v
                          for k, v in saved.items() if k != "params"})
        # Buffers go to their parameter's device (a checkpoint holds NumPy arrays, the model may be on a GPU).
        self.state = {id(params[int(i)]): {k: (params[int(i)].xp.array(v, dtype=params[int(i)].dtype)
                                               if hasattr(v, "shape") else v) for k, v in s.items()}
                      for i, s in sd["state"].items()}


class SGD(Optimizer):
    """p -= lr · v, with v = μ·v + (1 - τ)·(g + λ·p) (heavy-ball momentum; τ: dampening, λ: L2 weight
    decay). Nesterov looks ahead: the step uses g + μ·v instead of v (Sutskever et al. 2013).
    The arguments, their order and their defaults are PyTorch's (lr=1e-3)."""

    def __init__(self, params: ParamsLike, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or not 0 <= dampening <= 1:
            raise ValueError(f"SGD: lr={lr}, momentum={momentum} and weight_decay={weight_decay} must be >= 0 "
                             f"and dampening={dampening} in [0, 1]")
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError("SGD: nesterov=True needs momentum > 0 and dampening = 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening, "nesterov": nesterov,
                                  "weight_decay": weight_decay})

    def update(self, p: Tensor, grad: Any, group: dict[str, Any], state: dict[str, Any]) -> None:
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        mu = group["momentum"]
        if mu:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = p.xp.array(grad, dtype=p.dtype)
            else:
                buf = state["momentum_buffer"]
                buf *= mu
                buf += grad if not group.get("dampening") else (1.0 - group["dampening"]) * grad
            buf = state["momentum_buffer"]
            grad = grad + mu * buf if group["nesterov"] else buf
        p.add_(grad, alpha=-group["lr"])


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): per-coordinate steps from running means of g and g²,
        m = β1·m + (1-β1)·g,   v = β2·v + (1-β2)·g²,
        p -= lr · m̂ / (√v̂ + ε)  with the bias corrections m̂ = m/(1-β1ᵗ), v̂ = v/(1-β2ᵗ).
    Its weight_decay adds λ·p to g (L2 regularization, scaled by the adaptive step)."""

    decoupled = False

    def __init__(self, params: ParamsLike, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        checks = (("lr", lr, lr >= 0), ("eps", eps, eps >= 0), ("weight_decay", weight_decay, weight_decay >= 0),
                  ("betas", tuple(betas), all(0.0 <= b < 1.0 for b in betas)))  # NaN fails `>= 0` too
        bad = [f"{name}={value}" for name, value, ok in checks if not ok]
        if bad:
            raise ValueError(f"{type(self).__name__}: {', '.join(bad)}: lr, eps and weight_decay must be >= 0 "
                             "and each beta in [0, 1)")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay})

    def update(self, p: Tensor, grad: Any, group: dict[str, Any], state: dict[str, Any]) -> None:
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = p.xp.zeros(p.shape, dtype=p.dtype)
            state["exp_avg_sq"] = p.xp.zeros(p.shape, dtype=p.dtype)
        kernel = get_backend(p.device).kernel("adam_update", p.dtype) if grad.dtype == p.dtype \
            and grad.flags.c_contiguous and p.data.flags.c_contiguous else None
        if kernel is not None:  # the same update as below, in one compiled pass (Numba CPU or CUDA)
            state["step"] += 1
            p._inplace("Adam.step", lambda d: kernel(
                d, grad, state["exp_avg"], state["exp_avg_sq"], lr=lr, b1=b1, b2=b2, eps=eps, step=state["step"],
                weight_decay=wd, decoupled=self.decoupled))
            return
        if wd and self.decoupled:
            p.mul_(1.0 - lr * wd)  # AdamW: shrink the weight itself, independent of the gradient's scale
        elif wd:
            grad = grad + wd * p.data
        state["step"] += 1
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m *= b1
        m += (1.0 - b1) * grad
        v *= b2
        v += (1.0 - b2) * (grad * grad)
        step_size = lr / (1.0 - b1**t)
        denom = p.xp.sqrt(v / (1.0 - b2**t))
        denom += eps
        p.add_(m / denom, alpha=-step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): p -= lr·λ·p before the Adam
    step, so the decay is the same for every coordinate whatever its gradient history."""

    decoupled = True

    def __init__(self, params: ParamsLike, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


# ------------------------------------------------------------------ schedules
class Constant:
    """lr(step) = lr."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def __call__(self, step: int) -> float:
        return self.lr


class WarmupCosine:
    """Linear warmup from 0 to max_lr over `warmup_steps`, then a half cosine from max_lr down
    to min_lr at `decay_steps`, then min_lr (the schedule of GPT-3 and nanoGPT)."""

    def __init__(self, max_lr: float, warmup_steps: int, decay_steps: int, min_lr: float = 0.0) -> None:
        if not 0 <= warmup_steps <= decay_steps:
            raise ValueError(f"WarmupCosine: need 0 <= warmup_steps ({warmup_steps}) <= decay_steps ({decay_steps})")
        self.max_lr, self.warmup_steps, self.decay_steps, self.min_lr = max_lr, warmup_steps, decay_steps, min_lr

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.max_lr * (step + 1) / (self.warmup_steps + 1)
        if step >= self.decay_steps:
            return self.min_lr
        progress = (step - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.max_lr - self.min_lr)


def set_lr(optimizer: Optimizer, lr: float) -> None:
    """Set each group's learning rate to lr × its "lr_scale" (what a schedule does once per step).

    The scale is what keeps a ratio between groups alive under a schedule: a group built with
    {"lr": 16 * lr0, "lr_scale": 16} stays at 16 times the scheduled rate. Groups without an
    explicit scale (scale 1) all get `lr`, whatever "lr" they were built with."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


# ---------------------------------------------------------- gradients helpers
def clip_grad_norm_(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most max_norm (Pascanu et al.
    2013). Returns the norm before clipping. The direction of the update is unchanged."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(_sum_of_squares(g) for g in grads))
    if not math.isfinite(total):
        raise FloatingPointError(f"clip_grad_norm_: the gradient norm is {total}; a NaN or Inf gradient")
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        with tg.no_grad():
            for g in grads:
                g.mul_(scale)
    return total


def _sum_of_squares(g: Tensor) -> float:
    """Σ g², accumulated in float64: one compiled pass without temporaries where the device has the kernel."""
    kernel = get_backend(g.device).kernel("sum_of_squares", g.dtype)
    return kernel(g.data) if kernel is not None else float((g.data.astype(np.float64) ** 2).sum())


def accumulate_gradients(loss_fn: Callable[[Any], Tensor], micro_batches: Iterable[Any]) -> float:
    """Gradient accumulation: backward each micro-batch's loss divided by their number, so the
    summed `.grad` equals the gradient of the mean loss over the big batch. Returns that mean.
    (Call `zero_grad()` before and `step()` after.)"""
    batches = list(micro_batches)
    if not batches:
        raise ValueError("accumulate_gradients: no micro-batches")
    total = 0.0
    for batch in batches:
        loss = loss_fn(batch)
        (loss * (1.0 / len(batches))).backward()
        total += float(loss.item())
    return total / len(batches)
