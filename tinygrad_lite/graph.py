"""`draw_graph`: the computation graph as Graphviz DOT text, for lectures.

Boxes are tensors (label: name or "tensor", shape), ellipses are ops. Render with
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
        label = t.name or ("leaf" if t._ctx is None else "tensor")
        label += f"\\nshape {t.shape}" if t.ndim else ""
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
