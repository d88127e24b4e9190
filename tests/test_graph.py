"""Computation graphs drawn as pictures (tinygrad_lite.plot_dag / plot_graph): one box per node, one arrow
per edge, a layered layout whose arrows all point from an input to its output, for the engine's tensors
and for any node class. No Graphviz program is involved; matplotlib draws everything."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite.graph import dag_layout, topological_order

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


class Node:
    """A node class the engine knows nothing about (and cannot hash: the layout must go by identity)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str, *inputs: Node) -> None:
        self.name, self.inputs = name, inputs

    def __eq__(self, other: object) -> bool:
        raise AssertionError("the layout must not compare nodes")


def _inputs(n: Node) -> tuple[Node, ...]:
    return n.inputs


def _patches(fig, gid: str) -> list:
    (ax,) = fig.axes
    return [p for p in ax.patches if p.get_gid() == gid]


def _worked_example() -> tuple[tg.Tensor, list[tg.Tensor]]:
    a = tg.tensor(2.0, dtype=tg.float64, requires_grad=True)
    b = tg.tensor(1.0, dtype=tg.float64, requires_grad=True)
    c, d = a + b, b + 1.0
    e = c * d
    a.name, b.name, c.name, d.name, e.name = "a", "b", "c", "d", "e"
    return e, [a, b, c, d, e]


def test_a_tensor_graph_has_one_box_per_tensor_and_one_arrow_per_edge() -> None:
    e, named = _worked_example()
    fig = tg.plot_graph(e, show_values=True, title="e = (a + b)(b + 1)")
    # a, b, the constant 1, c, d, e; edges: a->c, b->c, b->d, 1->d, c->e, d->e
    assert len(_patches(fig, "node")) == 6 and len(_patches(fig, "edge")) == 6
    (ax,) = fig.axes
    assert ax.get_title() == "e = (a + b)(b + 1)"
    texts = [t.get_text() for t in ax.texts]
    for t in named:
        assert any(text.split("\n")[0] == t.name for text in texts), t.name
    assert any("op Mul" in text and "value 6" in text for text in texts)
    assert any(text.startswith("const") for text in texts)
    assert "distance from the output" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"output", "input (requires grad)", "constant", "computed by an op"} <= set(legend)


def test_a_custom_node_class_is_drawn_through_two_callables() -> None:
    x = Node("x")
    y = Node("y")
    sq = Node("x*x", x, x)  # x used twice: two arrows
    out = Node("out", sq, y)
    fig = tg.plot_dag(out, _inputs, lambda n: n.name, edge_label=lambda n, k: f"{n.name}:{k}", title="custom")
    assert len(_patches(fig, "node")) == 4 and len(_patches(fig, "edge")) == 4
    (ax,) = fig.axes
    assert ax.get_title() == "custom"
    labels = {t.get_text() for t in ax.texts}
    assert {"x*x:0", "x*x:1", "out:0", "out:1"} <= labels  # one label per edge, in parents' order
    # the two arrows x -> x*x are told apart: different bends
    bends = {p.get_connectionstyle().rad for p in _patches(fig, "edge")}
    assert len(bends) >= 2


def test_layout_columns_follow_the_longest_path_and_every_arrow_points_right() -> None:
    x = Node("x")
    c = Node("c", x)
    d = Node("d", c, c)
    e = Node("e", c, d)  # c feeds e directly and through d
    layout = dag_layout(e, _inputs)
    names = [n.name for n in layout.nodes]
    assert names[0] == "e" and sorted(names) == ["c", "d", "e", "x"]
    depth = dict(zip(names, layout.depth))
    assert depth == {"e": 0, "d": 1, "c": 2, "x": 3}  # c's longest path to e goes through d
    assert layout.columns == 4 and layout.column[0] == 3
    assert len(layout.edges) == 5
    assert all(layout.column[p] < layout.column[ch] for p, ch in layout.edges)


def test_an_arrow_that_skips_a_column_bends_around_the_boxes_in_between() -> None:
    x = Node("x")
    c = Node("c", x)
    d = Node("d", c)
    e = Node("e", c, d)  # c -> e skips d's column, and d sits on the straight line
    fig = tg.plot_dag(e, _inputs, lambda n: n.name)
    arrows = _patches(fig, "edge")
    assert sorted(round(abs(p.get_connectionstyle().rad), 2) for p in arrows)[-1] > 0  # one arrow is bent
    assert sum(p.get_connectionstyle().rad == 0 for p in arrows) == 3  # the others are straight


def test_thirty_nodes_are_laid_out_without_overlapping_boxes() -> None:
    gen = tg.Generator(0)
    x = tg.randn(4, 3, dtype=tg.float64, generator=gen, requires_grad=True)
    h = x
    for _ in range(5):  # five layers of a little MLP: 30 tensors
        w = tg.randn(3, 3, dtype=tg.float64, generator=gen, requires_grad=True)
        b = tg.randn(3, dtype=tg.float64, generator=gen, requires_grad=True)
        h = (h @ w + b).tanh()
    loss = (h * h).mean()
    n_nodes = len(topological_order(loss, lambda t: t._ctx.parents if t._ctx is not None else ()))
    assert 25 <= n_nodes <= 40
    fig = tg.plot_graph(loss, title="five layers")
    boxes = [p.get_bbox() for p in _patches(fig, "node")]
    assert len(boxes) == n_nodes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0, "two boxes overlap"


def test_the_figure_shows_inline_and_saves_as_png(tmp_path) -> None:
    e, _ = _worked_example()
    fig = tg.plot_graph(e)
    assert fig._repr_png_()[:8] == PNG  # Jupyter shows it without pyplot
    fig.savefig(tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG


def test_topological_order_is_iterative_and_puts_parents_first() -> None:
    x = Node("x")
    y = x
    for i in range(20_000):  # far deeper than Python's recursion limit
        y = Node(f"n{i}", y)
    order = topological_order(y, _inputs)
    assert order[0] is x and order[-1] is y and len(order) == 20_001


def test_bad_input_gets_a_clear_error() -> None:
    with pytest.raises(TypeError, match="plot_dag"):
        tg.plot_graph(Node("x"))  # type: ignore[arg-type]
    x = Node("x")
    y = x
    for i in range(50):
        y = Node(f"n{i}", y)
    with pytest.raises(ValueError, match="max_nodes"):
        tg.plot_dag(y, _inputs, lambda n: n.name, max_nodes=20)


def test_a_freed_graph_draws_only_its_root() -> None:
    # backward without retain_graph frees the graph: the picture says so by having one box
    a = tg.tensor(np.ones(3), requires_grad=True)
    e = (a * 2.0).sum()
    e.backward()
    assert len(_patches(tg.plot_graph(e), "node")) == 1


def test_the_engine_imports_and_exports_dot_without_matplotlib() -> None:
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # any import of matplotlib now fails\n"
        "import tinygrad_lite as tg\n"
        "a = tg.tensor(2.0, requires_grad=True)\n"
        "assert tg.draw_graph(a * a).startswith('digraph')\n"
        "try:\n"
        "    tg.plot_graph(a * a)\n"
        "except ImportError as e:\n"
        "    assert 'pip install -e \".[course]\"' in str(e) and 'draw_graph' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('plot_graph worked without matplotlib')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
