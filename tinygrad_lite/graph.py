"""The computation graph, for lectures: as a picture (matplotlib) or as Graphviz DOT text.

- `plot_dag(root, parents, label)` draws any graph of nodes: the engine's tensors, or the scalar
  values of a forty-line engine written in a notebook. One box per node, one arrow per edge, from
  each input to the value computed from it. Columns are the distance from the output (the longest
  path), so every arrow points right and the output is the rightmost box.
- `plot_graph(root)` is `plot_dag` for a Tensor: name, op, shape (and value and gradient).
- `draw_graph(root)` returns the same graph as DOT text, for Graphviz users.

matplotlib is imported inside the plotting functions only: the engine imports and runs without it.
The pictures need no Graphviz program. Draw before backward, or backward with retain_graph=True:
a backward without it frees the nodes it walked.
"""
from __future__ import annotations

import functools
import io
import textwrap
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from .extras import require
from .tensor import Tensor

Parents = Callable[[Any], Sequence[Any]]

# Box colours for the kinds of node; a kind not listed here gets the next colour of _PALETTE.
KIND_COLORS = {
    "input (requires grad)": "#cfe6ff",
    "constant": "#e8e8e8",
    "computed by an op": "#fff4cc",
    "output": "#d5f0d5",
}
_PALETTE = ("#cfe6ff", "#fff4cc", "#d5f0d5", "#f6d6e6", "#e8e8e8", "#e3dcf7")
_FONT_SIZE = 8.0  # points; the box sizes below assume a monospace font of this size
_CHAR_W = 0.61 * _FONT_SIZE / 72  # inches per character (DejaVu Sans Mono advances 0.602 em)
_LINE_H = 1.3 * _FONT_SIZE / 72  # inches per line
_PAD = 0.07  # inches between the text and its box
_COL_GAP = 0.75  # inches between two columns of boxes: room for the arrows and their labels
_ROW_GAP = 0.22  # inches between two boxes of one column
_MAX_LINE = 36  # characters; a longer label line is cut with "…"
_TEXT_W = 0.6 * _FONT_SIZE / 72  # inches per character of legend text (a generous average, proportional font)
_TITLE_W = 0.6 * (_FONT_SIZE + 3) / 72  # the same for the title
_TITLE_LINE_H = 1.3 * (_FONT_SIZE + 3) / 72
_LEGEND_ROW_H = 0.2  # inches per legend row


# ------------------------------------------------------------------------ layout
@dataclass
class DagLayout:
    """Where `plot_dag` puts every node: the nodes (root first), the edges (parent index, child index),
    one per entry of `parents(child)`, so x * x has two, and each node's column and row."""

    nodes: list[Any]
    edges: list[tuple[int, int]]
    column: list[int]  # 0 = the leftmost column; the root is in the last one
    row: list[int]  # 0 = the top of its column
    depth: list[int]  # the longest path from the node to the root, in edges

    @property
    def columns(self) -> int:
        return max(self.column) + 1


def topological_order(root: Any, parents: Parents) -> list[Any]:
    """Every node reachable from `root` through `parents`, each after all of its parents (the root
    last). Iterative depth-first search: a chain far deeper than Python's recursion limit is fine.
    Nodes are told apart by identity (`id`), so they need not be hashable."""
    order: list[Any] = []
    seen: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in reversed(list(parents(node))))  # the first parent is visited first
    return order


def dag_layout(root: Any, parents: Parents, max_nodes: int = 200) -> DagLayout:
    """The layered layout of the graph above `root`: column = longest distance to the root, and
    inside each column an order that keeps arrows short (a few barycentre sweeps, the classic
    heuristic of Sugiyama, Tagawa & Toda, 1981)."""
    order = topological_order(root, parents)  # parents first, root last
    if len(order) > max_nodes:
        raise ValueError(f"plot_dag: the graph has {len(order)} nodes, more than max_nodes={max_nodes}; a picture "
                         f"stays readable up to about 30. Draw a smaller expression, or pass a larger max_nodes")
    nodes = order[::-1]  # root first
    index = {id(n): i for i, n in enumerate(nodes)}
    edges = [(index[id(p)], i) for i, n in enumerate(nodes) for p in parents(n)]
    depth = [0] * len(nodes)
    for i in range(len(nodes)):  # consumers before their parents: each depth is final when it is used
        for p in parents(nodes[i]):
            depth[index[id(p)]] = max(depth[index[id(p)]], depth[i] + 1)
    top = max(depth)
    column = [top - d for d in depth]
    members: list[list[int]] = [[] for _ in range(top + 1)]
    for i in range(len(nodes)):  # start from the order of discovery from the root
        members[column[i]].append(i)
    children: list[list[int]] = [[] for _ in nodes]
    parent_list: list[list[int]] = [[] for _ in nodes]
    for p, c in edges:
        children[p].append(c)
        parent_list[c].append(p)

    def place() -> list[float]:  # each node's height in its column, in [0, 1]
        pos = [0.0] * len(nodes)
        for col in members:
            for r, i in enumerate(col):
                pos[i] = (r + 0.5) / len(col)
        return pos

    for sweep in range(4):  # right to left by the children's positions, then left to right by the parents'
        cols = range(top - 1, -1, -1) if sweep % 2 == 0 else range(1, top + 1)
        for col in cols:
            pos = place()
            neighbours = children if sweep % 2 == 0 else parent_list

            def key(i: int, pos: list[float] = pos, neighbours: list[list[int]] = neighbours) -> float:
                near = neighbours[i]
                return sum(pos[j] for j in near) / len(near) if near else pos[i]

            members[col].sort(key=key)  # stable: ties keep their order
    row = [0] * len(nodes)
    for col in members:
        for r, i in enumerate(col):
            row[i] = r
    return DagLayout(nodes, edges, column, row, depth)


# ------------------------------------------------------------------------ drawing
@functools.cache
def _figure_class() -> type:
    """A matplotlib Figure that Jupyter shows inline (as PNG) without pyplot: display(fig), or fig as
    the last line of a cell. Made on first use, so the engine imports without matplotlib."""
    figure = require("matplotlib.figure", "course", "plotting a graph",
                     hint="Without it, tinygrad_lite.draw_graph gives the graph as DOT text.")

    class GraphFigure(figure.Figure):
        """A matplotlib Figure with a PNG representation for Jupyter."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=100)  # sized to its contents: no "tight" pass needed
            return buffer.getvalue()

    return GraphFigure


def _lines(text: str) -> list[str]:
    lines = str(text).split("\n") or [""]
    return [line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…" for line in lines]


_BENDS = (0.0, 0.3, -0.3, 0.5, -0.5, 0.75, -0.75, 1.0, -1.0)  # arc3 bends tried, the straightest first


def _point(start: tuple[float, float], end: tuple[float, float], rad: float, t: float) -> tuple[float, float]:
    """The point at t in [0, 1] of matplotlib's arc3 connection from start to end: a quadratic Bézier
    whose control point is the chord's middle moved by rad·(dy, -dx)."""
    (x0, y0), (x1, y1) = start, end
    cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
    return ((1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t * t * x1,
            (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t * t * y1)


def _curve(start: tuple[float, float], end: tuple[float, float], rad: float,
           samples: int = 24) -> list[tuple[float, float]]:
    return [_point(start, end, rad, k / (samples - 1)) for k in range(samples)]


def _route(start: tuple[float, float], end: tuple[float, float],
           boxes: Sequence[tuple[float, float, float, float]], taken: Sequence[float]) -> float:
    """The straightest bend whose curve crosses the fewest boxes (not a bend an earlier arrow between
    the same two nodes took: x * x gets two distinct arrows). An arrow that skips a column would
    otherwise run hidden under the boxes it passes."""
    gap = 0.04

    def hits(rad: float) -> int:
        return sum(any(x0 - gap <= x <= x1 + gap and y0 - gap <= y <= y1 + gap for x0, y0, x1, y1 in boxes)
                   for x, y in _curve(start, end, rad))

    # a second arrow between the same two boxes bends well away from the first, so their labels stay apart
    free = [r for r in _BENDS if all(abs(r - t) > 1e-9 for t in taken) and (not taken or abs(r) >= 0.5)] or [0.0]
    return min(free, key=lambda r: (hits(r), abs(r)))


def plot_dag(root: Any, parents: Parents, label: Callable[[Any], str], *,
             kind: Callable[[Any], Hashable] | None = None, edge_label: Callable[[Any, int], str] | None = None,
             title: str = "Computation graph", colors: dict[Any, str] | None = None, max_nodes: int = 200) -> Any:
    """A picture of the graph above `root`, as a matplotlib Figure (`fig.savefig(...)`, or `display(fig)`
    in Jupyter).

    parents(node): the nodes `node` was computed from, in order (empty for an input); a node used twice
        is listed twice and gets two arrows.
    label(node): the text in its box (several lines with "\\n").
    kind(node): optional; colours the boxes by kind, and the legend names the kinds.
    edge_label(node, k): optional; text on the arrow from the k-th parent of `node` (a local derivative).
    colors: optional kind -> colour, over KIND_COLORS.
    """
    figure_class = _figure_class()  # first: without matplotlib, its error says what to install
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    layout = dag_layout(root, parents, max_nodes)
    n = len(layout.nodes)
    texts = [_lines(label(node)) for node in layout.nodes]
    widths = [max(len(line) for line in t) * _CHAR_W + 2 * _PAD for t in texts]
    heights = [len(t) * _LINE_H + 2 * _PAD for t in texts]
    col_w = [0.0] * layout.columns
    for i in range(n):
        col_w[layout.column[i]] = max(col_w[layout.column[i]], widths[i])
    x_col, x = [], 0.0
    for w in col_w:  # column centres, in inches from the left edge
        x_col.append(x + w / 2)
        x += w + _COL_GAP
    total_w = x - _COL_GAP
    pitch = max(heights) + _ROW_GAP
    per_col = [0] * layout.columns
    for c in layout.column:
        per_col[c] += 1
    total_h = max(per_col) * pitch
    xs = [x_col[layout.column[i]] for i in range(n)]
    # rows centred in each column; y grows upwards in matplotlib, so row 0 is the top
    ys = [total_h / 2 - (layout.row[i] - (per_col[layout.column[i]] - 1) / 2) * pitch for i in range(n)]

    kinds = [kind(node) for node in layout.nodes] if kind is not None else [None] * n
    palette = {**KIND_COLORS, **(colors or {})}
    fill: dict[Any, str] = {}
    for k in kinds:
        if k not in fill:
            spare = [c for c in _PALETTE if c not in fill.values()] or list(_PALETTE)
            fill[k] = palette.get(k, spare[0]) if k is not None else "white"

    # Route every arrow before drawing: straight when nothing is in the way, else bent around the boxes.
    boxes = [(xs[i] - widths[i] / 2, ys[i] - heights[i] / 2, xs[i] + widths[i] / 2, ys[i] + heights[i] / 2)
             for i in range(n)]
    routes: list[tuple[tuple[float, float], tuple[float, float], float]] = []
    used: dict[tuple[int, int], list[float]] = {}
    low, high = 0.0, total_h
    for p, c in layout.edges:
        start, end = (xs[p] + widths[p] / 2, ys[p]), (xs[c] - widths[c] / 2, ys[c])
        others = [b for i, b in enumerate(boxes) if i not in (p, c)]
        rad = _route(start, end, others, used.setdefault((p, c), []))
        used[(p, c)].append(rad)
        routes.append((start, end, rad))
        curve = _curve(start, end, rad)
        low, high = min(low, *(y for _, y in curve)), max(high, *(y for _, y in curve))

    # Handles of the legend first: the figure is sized to hold the graph, its title, the x axis and the
    # legend, so that saving needs no "tight" bounding box (which draws everything twice).
    handles = [Patch(facecolor=fill[k], edgecolor="#333333", label=str(k)) for k in fill if k is not None]
    handles.append(Line2D([], [], color="#555555", marker=">", markersize=5, linewidth=0.9,
                          label="arrow: an input → the value computed from it"))
    if edge_label is not None:
        handles.append(Patch(facecolor="white", edgecolor="none", label="red number: the local derivative "
                                                                        "∂(output)/∂(input) on that arrow"))
    margin = 0.15
    graph_w, graph_h = total_w + 2 * margin, high - low + 2 * margin
    ncol = 2 if len(handles) > 2 and graph_w >= 7.0 else 1
    rows = -(-len(handles) // ncol)
    per_col = [max(len(str(h.get_label())) for h in handles[j * rows:(j + 1) * rows]) for j in range(ncol)]
    legend_w = sum(0.5 + _TEXT_W * w for w in per_col) + 0.2
    fig_w = max(graph_w, legend_w, 3.0)
    title_lines = textwrap.wrap(title, max(20, int((fig_w - 0.2) / _TITLE_W))) or [""]
    top_h = 0.2 + _TITLE_LINE_H * len(title_lines)  # the title above the graph
    bottom_h = 0.55 + rows * _LEGEND_ROW_H + 0.1  # tick labels and the x label (0.55 in), then the legend
    fig_h = top_h + graph_h + bottom_h
    fig = figure_class(figsize=(fig_w, fig_h))
    # One data unit = one inch inside the axes: the boxes fit their text.
    ax = fig.add_axes(((fig_w - graph_w) / 2 / fig_w, bottom_h / fig_h, graph_w / fig_w, graph_h / fig_h))
    ax.set_xlim(-margin, total_w + margin)
    ax.set_ylim(low - margin, high + margin)
    ax.set_aspect("equal")
    for i in range(n):
        box = FancyBboxPatch((xs[i] - widths[i] / 2, ys[i] - heights[i] / 2), widths[i], heights[i],
                             boxstyle="round,pad=0,rounding_size=0.05", facecolor=fill[kinds[i]],
                             edgecolor="#333333", linewidth=0.9, zorder=3, gid="node")
        ax.add_patch(box)
        ax.text(xs[i], ys[i], "\n".join(texts[i]), ha="center", va="center", fontsize=_FONT_SIZE,
                family="monospace", zorder=4, linespacing=1.15)
    slot = [0] * n  # which of its parents' edges this is, for edge_label
    for (_, c), (start, end, rad) in zip(layout.edges, routes):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, shrinkA=1, shrinkB=1,
                                     connectionstyle=f"arc3,rad={rad}", color="#555555", linewidth=0.9,
                                     zorder=2, gid="edge"))
        if edge_label is not None:
            text = edge_label(layout.nodes[c], slot[c])
            if text:
                # straight: near the head, where arrows into one box are apart; bent: mid-curve, off the chord
                mx, my = _point(start, end, rad, 0.72 if rad == 0 else 0.5)
                ax.text(mx, my, text, ha="center", va="center", fontsize=_FONT_SIZE - 1, color="#8a1c1c",
                        zorder=5, bbox={"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": "none",
                                        "alpha": 0.9})
        slot[c] += 1
    # The x axis counts columns: the distance from the output, in ops.
    ax.set_xticks(x_col)
    top = layout.columns - 1
    ax.set_xticklabels([f"{top - j}" + (" (output)" if j == top else "") for j in range(layout.columns)],
                       fontsize=_FONT_SIZE)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel("distance from the output (ops along the longest path)", fontsize=_FONT_SIZE + 1)
    ax.set_title("\n".join(title_lines), fontsize=_FONT_SIZE + 3, pad=8)
    # the legend's top edge 0.55 in below the axes, centred on the figure (in figure coordinates)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, (bottom_h - 0.55) / fig_h),
              bbox_transform=fig.transFigure, ncol=ncol, fontsize=_FONT_SIZE, frameon=False)
    return fig


def _tensor_parents(t: Tensor) -> tuple[Tensor, ...]:
    ctx = t._ctx
    return tuple(ctx.parents) if ctx is not None and ctx.parents is not None else ()


def _tensor_kind(t: Tensor) -> str:
    if t._ctx is not None:
        return "computed by an op"
    return "input (requires grad)" if t.requires_grad else "constant"


def _tensor_label(t: Tensor, show_values: bool) -> str:
    lines = [t.name or {"computed by an op": "tensor", "constant": "const"}.get(_tensor_kind(t), "leaf")]
    if t._ctx is not None:
        lines.append(f"op {t._ctx.name}")
    lines.append(f"shape {tuple(t.shape)}")
    if show_values and t.size == 1:
        lines.append(f"value {t.item():.4g}")
        if t.grad is not None and t.grad.size == 1:
            lines.append(f"grad {t.grad.item():.4g}")
    return "\n".join(lines)


def plot_graph(root: Tensor, show_values: bool = False, title: str | None = None, max_nodes: int = 200) -> Any:
    """A picture of everything `root` was computed from (a matplotlib Figure): one box per tensor
    (its name, the op that made it, its shape; with show_values, the value and gradient of each
    one-element tensor) and an arrow from every input of an op to its output."""
    if not isinstance(root, Tensor):
        raise TypeError(f"plot_graph: root must be a Tensor, got {type(root).__name__}; for other node "
                        f"types use plot_dag(root, parents, label)")

    def kind(t: Tensor) -> str:
        return "output" if t is root else _tensor_kind(t)

    return plot_dag(root, _tensor_parents, lambda t: _tensor_label(t, show_values), kind=kind,
                    title=title or f"Computation graph of {root.name or 'the output'}", max_nodes=max_nodes)


# ------------------------------------------------------------------------ DOT text
def draw_graph(root: Tensor, show_values: bool = False) -> str:
    """DOT text of everything `root` was computed from (walked iteratively). Boxes are tensors
    (label: name, or "leaf" / "const" / "tensor", and shape), ellipses are ops. Render it with
    Graphviz (`dot -Tpng graph.dot -o graph.png`) if you have it; `plot_graph` needs no Graphviz."""
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
