"""`draw_graph`: the computation graph as Graphviz DOT text, for lectures.

Boxes are tensors (label: name, or "leaf" / "const" / "tensor", and shape), ellipses are ops.
Draw before backward: a backward without retain_graph frees the nodes it walked. Render with
`dot -Tpng graph.dot -o graph.png`, or the `graphviz` Python package if installed.
"""
from __future__ import annotations

from .tensor import Tensor


def draw_graph(root: Tensor, show_values: bool = False) -> str:
    """DOT text of everything `root` was computed from (walked iteratively)."""
    lines = ["digraph G {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    seen: set[int] = set()
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        kind = "tensor" if t._ctx is not None else "leaf" if t.requires_grad else "const"
        label = (t.name or kind).replace('"', "'")  # a double quote would end the DOT label early
        label += f"\\nshape {t.shape}"  # shape () too: a scalar loss is worth seeing as one
        if show_values and t.size == 1:
            label += f"\\nvalue {t.item():.4g}"
            if t.grad is not None and t.grad.size == 1:
                label += f"\\ngrad {t.grad.item():.4g}"
        style = ', style=filled, fillcolor="lightblue"' if t.requires_grad and t._ctx is None else ""
        lines.append(f'  t{id(t)} [shape=box, label="{label}"{style}];')
        ctx = t._ctx
        if ctx is not None and ctx.parents is not None:
            lines.append(f'  op{id(ctx)} [shape=ellipse, label="{ctx.name}"];')
            lines.append(f"  op{id(ctx)} -> t{id(t)};")
            for p in ctx.parents:
                lines.append(f"  t{id(p)} -> op{id(ctx)};")
                stack.append(p)
    lines.append("}")
    return "\n".join(lines)
