"""Reverse mode: walk the graph from the output back to the leaves, applying the chain rule.

1. Topologically sort the tensors reachable from the roots through `_ctx.parents` (iteratively,
   with an explicit stack, so a 100,000-op chain does not hit Python's recursion limit).
2. Visit them in reverse order: a tensor's gradient is complete once every op that used it has
   been visited, which the reverse topological order guarantees.
3. At each node, call its Function's `backward(grad)` and add the results into the parents'
   pending gradients. A tensor used twice receives the sum (the multivariate chain rule).
   A node with several outputs (`split`) collects one gradient per output and runs its backward
   once, at the last of its outputs in this order: by then every output's gradient is complete.
"""
from __future__ import annotations

from collections.abc import Sequence

from .grad_mode import STATE, AnomalyError, pause_anomaly, set_grad_enabled
from .tensor import Tensor


class GradientShapeError(RuntimeError):
    """A backward rule returned a gradient whose shape differs from its input's."""

    def __init__(self, op: str, grad_shape: tuple[int, ...], input_shape: tuple[int, ...],
                 tensor: Tensor | None = None) -> None:
        # `tensor` is the input that received the bad gradient (gradcheck uses it to name the input)
        self.op, self.grad_shape, self.input_shape, self.tensor = op, grad_shape, input_shape, tensor
        super().__init__(
            f"{op}.backward returned a gradient of shape {grad_shape} for an input of shape "
            f"{input_shape}; a gradient must have its input's shape (a broadcast input needs its "
            f"gradient summed over the broadcast dimensions)."
        )


def _topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Tensors reachable from `roots` that require grad, each after all of its inputs."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        t, inputs_done = stack.pop()
        if inputs_done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        ctx = t._ctx
        if ctx is None:  # a leaf has no inputs to wait for
            order.append(t)
            continue
        if ctx.parents is None:
            raise RuntimeError(
                f"backward through the graph a second time: the {ctx.name} node that made a tensor "
                f"of shape {t.shape} was already freed by an earlier backward. Pass "
                f"retain_graph=True to the first backward() if you need to call it twice."
            )
        stack.append((t, True))  # comes back off the stack after all of its inputs
        for p in ctx.parents:
            if p.requires_grad and id(p) not in visited:
                stack.append((p, False))
    return order


def _accumulate_into_grad(t: Tensor, g: Tensor, create_graph: bool, stored: set[int]) -> None:
    """t.grad += g. `stored` holds the ids of the arrays already stored as a `.grad` in this pass."""
    if create_graph:  # keep the gradient's own graph, for higher-order derivatives
        t.grad = g if t.grad is None else t.grad + g
    elif t.grad is not None:
        t.grad = Tensor._make(t.grad.data + g.data, False, g.device)
    else:
        # `.grad` must own its memory: a gradient array may also be another tensor's gradient
        # (add hands the same gradient to both inputs), a view of one, a read-only broadcast
        # view, or the caller's own `grad=` array. Fresh arrays (matmul, sum results) are kept
        # as they are; only those that may be shared are copied.
        data = g.data
        if id(data) in stored or data.base is not None or not getattr(data.flags, "writeable", True):
            data = data.copy()
        stored.add(id(data))
        t.grad = Tensor._make(data, False, g.device)


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    targets: Sequence[Tensor] | None = None,
) -> dict[int, Tensor]:
    """The engine behind `Tensor.backward` and `grad`.

    Without `targets`, leaf gradients accumulate into `.grad`. With `targets`, nothing is written
    to `.grad`; the gradients of the targets are returned, keyed by id.
    """
    order = _topological_order(roots)
    pending: dict[int, Tensor] = {}
    for r, g in zip(roots, root_grads):
        pending[id(r)] = pending[id(r)] + g if id(r) in pending else g
    target_ids = None if targets is None else {id(t) for t in targets}
    needed = None if target_ids is None else _depends_on(order, target_ids)
    captured: dict[int, Tensor] = {}
    stored = {id(g.data) for g in root_grads}  # the caller's arrays must not become a .grad as they are
    anomaly = STATE.anomaly
    outputs_to_come = _outputs_in_order(order)  # multi-output nodes: id(ctx) -> outputs not yet visited
    collected: dict[int, list[Tensor | None]] = {}  # multi-output nodes: id(ctx) -> gradient per output

    with set_grad_enabled(create_graph):
        for t in reversed(order):
            g = pending.pop(id(t), None)
            if g is not None and (needed is None or id(t) in needed):
                if t._hooks:
                    for hook in t._hooks:
                        replaced = hook(g)
                        if replaced is not None:
                            g = replaced
                if target_ids is not None:
                    if id(t) in target_ids:
                        captured[id(t)] = g
                elif t._ctx is None or t._retains_grad:
                    _accumulate_into_grad(t, g, create_graph, stored)
            else:
                g = None
            ctx = t._ctx
            if ctx is None:
                continue
            if ctx.multiple_outputs:  # wait for the node's other outputs; then g is the tuple of gradients
                g = _collect(t, g, outputs_to_come, collected)
            if g is None:
                continue
            if needed is not None and not any(id(p) in needed for p in ctx.parents):
                continue  # an input of grad() with no other input above it: stop here
            if create_graph and not ctx.double_backward:
                raise RuntimeError(
                    f"{ctx.name} is a fused op whose backward is not differentiable; "
                    f"create_graph=True (double backward) is not supported through it. Use the "
                    f"composed version of the op for higher-order gradients."
                )
            if anomaly:
                with pause_anomaly():
                    grads = ctx.backward(g)
            else:
                grads = ctx.backward(g)
            if type(grads) is not tuple:
                grads = (grads,)
            for p, pg in zip(ctx.parents, grads):
                if pg is None or not p.requires_grad or (needed is not None and id(p) not in needed):
                    continue
                if pg.data.shape != p.data.shape:
                    raise GradientShapeError(ctx.name, pg.shape, p.shape, p)
                if pg.data.dtype is not p.data.dtype and pg.dtype != p.dtype:  # `is`: the cheap common case
                    pg = pg.astype(p.dtype)
                if anomaly:
                    _check_backward(ctx, pg)
                earlier = pending.get(id(p))  # a tensor used twice gets the sum of both gradients
                pending[id(p)] = pg if earlier is None else earlier + pg
            if not retain_graph:
                ctx.release()
    return captured


def _outputs_in_order(order: list[Tensor]) -> dict[int, int]:
    """For each node with several outputs: how many of its outputs this backward pass visits."""
    counts: dict[int, int] = {}
    for t in order:
        if t._ctx is not None and t._ctx.multiple_outputs:
            counts[id(t._ctx)] = counts.get(id(t._ctx), 0) + 1
    return counts


def _collect(t: Tensor, g: Tensor | None, outputs_to_come: dict[int, int],
             collected: dict[int, list[Tensor | None]]) -> tuple[Tensor | None, ...] | None:
    """Keep output t's gradient g for its multi-output node. Once the node's last output in this pass
    is visited, return the gradients of all its outputs (None where none arrived), or None when no
    output got one (then the node has nothing to pass back)."""
    ctx = t._ctx
    grads = collected.setdefault(id(ctx), [None] * len(ctx.output_index))
    if g is not None:
        grads[ctx.output_index[id(t)]] = g
    outputs_to_come[id(ctx)] -= 1
    if outputs_to_come[id(ctx)]:
        return None
    del collected[id(ctx)]
    return tuple(grads) if any(x is not None for x in grads) else None


def _depends_on(order: list[Tensor], target_ids: set[int]) -> set[int]:
    """The ids of the tensors in `order` that are targets or were computed from one. `grad()` works
    only on these: a gradient never flows past its inputs, so the graph above them (their own
    inputs, and whatever made those) sees no backward call, no hook and no `.grad`."""
    needed = set(target_ids)
    for t in order:  # each tensor comes after its inputs
        if t._ctx is not None and any(id(p) in needed for p in t._ctx.parents):
            needed.add(id(t))
    return needed


def _check_backward(ctx, g: Tensor) -> None:  # type: ignore[no-untyped-def]
    if g.dtype.kind == "f" and not bool(g.xp.isfinite(g.data).all()):
        bad = "NaN" if bool(g.xp.isnan(g.data).any()) else "Inf"
        where = getattr(ctx, "created_at", "<created outside detect_anomaly()>")
        raise AnomalyError(
            f"{ctx.name}.backward produced {bad} in the gradient of one of its inputs. "
            f"The {ctx.name} op was created at {where}"
        )


def backward(root: Tensor, grad: Tensor | None = None, retain_graph: bool = False, create_graph: bool = False) -> None:
    """d(root)/d(leaf), accumulated into every leaf's `.grad` (and retained non-leaves')."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: no input of the computation had "
            "requires_grad=True (or it ran under no_grad())"
        )
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward() on a non-scalar tensor of shape {root.shape} needs grad=, the gradient of "
                f"the final loss with respect to this tensor (a Tensor of shape {root.shape}); "
                f"for example `y.backward(tinygrad_lite.ones_like(y))` gives d(sum(y))/dx"
            )
        grad = Tensor._make(root.xp.ones_like(root.data), False, root.device)
    else:
        grad = _check_grad_output(root, grad, "backward")
    run_backward([root], [grad], retain_graph=retain_graph or create_graph, create_graph=create_graph)


def _check_grad_output(out: Tensor, g: Tensor | object, where: str) -> Tensor:
    if not isinstance(g, Tensor):
        g = out._const(g)
    if g.shape != out.shape:
        raise RuntimeError(f"{where}: grad has shape {g.shape} but the output has shape {out.shape}")
    return g


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Return d(outputs)/d(inputs) (vector-Jacobian products) without touching any `.grad`."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if len(outputs) == 1 or grad_outputs is None else None
    if grad_outputs is None or len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(outputs)} outputs but a different number of grad_outputs")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    root_grads = []
    for o, g in zip(outputs, grad_outputs):
        if not o.requires_grad:
            raise RuntimeError(f"grad: an output of shape {o.shape} does not require grad")
        if g is None:
            if o.data.size != 1:
                raise RuntimeError(f"grad: an output of shape {o.shape} is not a scalar; pass grad_outputs")
            g = Tensor._make(o.xp.ones_like(o.data), False, o.device)
        root_grads.append(_check_grad_output(o, g, "grad"))
    if retain_graph is None:
        retain_graph = create_graph
    captured = run_backward(outputs, root_grads, retain_graph, create_graph, targets=inputs)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                f"pass allow_unused=True to get None for it"
            )
        if g is not None and not create_graph:
            g = g.detach()
        result.append(g)
    return tuple(result)
