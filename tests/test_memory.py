"""The graph is freed after backward: a long training loop neither grows memory nor keeps graph nodes.

Graph nodes are counted as live `Function` instances found by the garbage collector; memory is
measured with tracemalloc (Python and NumPy allocations alike).
"""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import Function, Tensor


def live_functions() -> int:
    # type() rather than isinstance(): isinstance on a dead weakref.proxy (other libraries, e.g.
    # torch in the oracle tests, leave some in gc's list) raises ReferenceError.
    return sum(issubclass(type(o), Function) for o in gc.get_objects())


def make_mlp(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(8, 16), (16,), (16, 1), (1,)]
    params = [Tensor((rng.standard_normal(s) * 0.3).astype(np.float32), requires_grad=True) for s in shapes]
    x = Tensor(rng.standard_normal((32, 8)).astype(np.float32))
    y = Tensor(np.sin(x.numpy().sum(axis=1, keepdims=True)))
    return params, x, y


def train(steps, checkpoints, leak=False):
    """SGD on a small MLP; at each checkpoint step records (current, peak since last, live Functions)."""
    (w1, b1, w2, b2), x, y = params, *_ = make_mlp()
    kept = []
    stats, losses = {}, []
    tracemalloc.start()
    try:
        for step in range(1, steps + 1):
            hidden = (x @ w1 + b1).tanh()
            loss = ((hidden @ w2 + b2 - y) ** 2).mean()
            loss.backward(retain_graph=leak)
            if leak:
                kept.append(loss)  # the planted leak: every step's graph stays reachable
            with tg.no_grad():
                for p in params:
                    p.sub_(p.grad * 0.1)
            for p in params:
                p.zero_grad_()
            if step in (1, steps):
                losses.append(loss.item())
            if step in checkpoints:
                # A full collection also empties CPython's free lists (tuples, floats, ...), which
                # otherwise keep filling up for a few hundred steps and look like slow growth.
                gc.collect()
                current, peak = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                stats[step] = (current, peak, live_functions())
    finally:
        tracemalloc.stop()
    return stats, losses


# Leaking one step's graph (9 nodes, activations of 32x16 floats) costs several KB per step, so 900
# leaked steps would be megabytes. Even keeping one released node per step (~160 bytes) adds ~145 KB
# and fails; without a leak the measured growth is well under 1 KB.
BOUND = 64 * 1024


def test_training_loop_does_not_grow_memory_or_graph():
    stats, losses = train(1000, checkpoints={10, 100, 1000})
    assert losses[-1] < 0.5 * losses[0]  # it does train
    cur100, _, nodes100 = stats[100]
    cur1000, peak1000, nodes1000 = stats[1000]
    _, peak100, _ = stats[100]  # the peak over steps 11..100 (one graph alive at a time)
    assert cur1000 - cur100 < BOUND, f"memory grew by {cur1000 - cur100} bytes over 900 steps"
    assert peak1000 - peak100 < BOUND, f"peak grew from {peak100} to {peak1000} bytes"
    # only the last step's loss (with its already released node) may still be alive
    assert nodes1000 == nodes100 <= 2


def test_the_memory_check_can_fail():
    # The same loop with retain_graph=True and every loss kept alive: the checks above must see it.
    stats, _ = train(300, checkpoints={100, 300}, leak=True)
    assert stats[300][0] - stats[100][0] > 10 * BOUND
    assert stats[300][2] - stats[100][2] >= 200 * 5


def test_intermediates_are_freed_by_backward_unless_retained():
    for retain in (False, True):
        x = Tensor(np.ones(4), requires_grad=True)
        h = x.exp()
        node = weakref.ref(h._ctx)
        loss = (h * 2.0).sum()
        alive = weakref.ref(h)
        del h
        assert alive() is not None  # the graph holds it until backward
        loss.backward(retain_graph=retain)
        assert (alive() is not None) == retain
        assert (node() is not None) == retain
        del loss


@pytest.mark.parametrize("create_graph", [False, True])
def test_graph_is_freed_by_reference_counting_alone(create_graph):
    # No reference cycles between tensors and nodes: with the cyclic collector off, the graph
    # (and, for create_graph, the graph of the gradient) disappears as soon as it is dropped.
    x = Tensor(np.linspace(-1, 1, 5), requires_grad=True)
    gc.collect()
    before = live_functions()
    gc.disable()
    try:
        for _ in range(5):
            loss = (x.tanh() * x.exp()).sum()
            loss.backward(create_graph=create_graph)
            x.zero_grad_()
            del loss
        assert live_functions() == before
    finally:
        gc.enable()
