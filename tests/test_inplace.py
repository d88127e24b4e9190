"""In-place arithmetic (`+=`, `-=`, `*=`, `/=`) as in PyTorch: the same tensor object changes, its
version counter moves, and what would silently break the graph is refused with PyTorch's advice."""
from __future__ import annotations

import numpy as np
import pytest

import nn
import tinygrad_lite as tg


def test_augmented_assignment_changes_the_same_tensor_and_bumps_its_version() -> None:
    x = tg.tensor(np.array([1.0, 2.0, 4.0]))
    alias, before = x, x._version
    x += 1.0
    x *= 2.0
    x -= tg.tensor(np.array([1.0, 1.0, 1.0]))
    x /= 2.0
    assert x is alias and x._version == before + 4
    np.testing.assert_allclose(x.numpy(), [1.5, 2.5, 4.5])


def test_a_view_sees_the_update_through_its_base() -> None:
    x = tg.tensor(np.zeros((2, 3)))
    row = x[0]
    x += 1.0
    np.testing.assert_allclose(row.numpy(), [1.0, 1.0, 1.0])


def test_leaf_that_requires_grad_refuses_outside_no_grad_with_pytorchs_message() -> None:
    w = tg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        w -= 0.1
    with tg.no_grad():
        w -= 0.5
    np.testing.assert_allclose(w.numpy(), 0.5)


def test_updates_that_would_lose_gradients_are_refused() -> None:
    a = tg.tensor(np.ones(3), requires_grad=True)
    h = a * 2.0  # part of the recorded graph
    with pytest.raises(RuntimeError, match=r"write it out of place instead \(`x = x \+ y` for `x \+= y`\)"):
        h += 1.0
    c = tg.tensor(np.zeros(3))
    with pytest.raises(RuntimeError, match="the right operand requires grad"):
        c += a
    with tg.no_grad():  # under no_grad nothing is recorded anyway: allowed
        c += a
    np.testing.assert_allclose(c.numpy(), 1.0)


def test_the_pytorch_tutorial_sgd_loop_trains_and_keeps_the_modules_parameters() -> None:
    """`w -= lr * w.grad; w.grad.zero_()` under no_grad: the parameters stay the module's."""
    gen = tg.Generator(0)
    model = nn.Sequential(nn.Linear(3, 8, generator=gen), nn.Tanh(), nn.Linear(8, 1, generator=gen))
    ids = [id(p) for p in model.parameters()]
    x = tg.randn(32, 3, generator=gen)
    y = (x * tg.tensor(np.array([1.0, -2.0, 0.5], dtype=np.float32))).sum(axis=1, keepdims=True)
    losses = []
    for _ in range(200):
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        with tg.no_grad():
            for w in model.parameters():
                w -= 0.05 * w.grad
                w.grad.zero_()
        losses.append(loss.item())
    assert [id(p) for p in model.parameters()] == ids
    assert losses[-1] < 0.1 * losses[0]


def test_an_update_between_forward_and_backward_is_caught() -> None:
    w = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    x = tg.tensor(np.array([3.0, 4.0]), requires_grad=True)
    loss = (x * w).sum()  # Mul saves w for backward
    with tg.no_grad():
        w *= 2.0
    with pytest.raises(RuntimeError, match="modified in place after the forward pass"):
        loss.backward()


def test_in_place_inside_forward_mode_is_refused() -> None:
    def f(x):
        y = x * 1.0
        y *= 3.0
        return y

    with pytest.raises(RuntimeError, match="in-place update inside forward mode"):
        tg.jvp(f, (np.ones(2),), (np.ones(2),))


def test_lora_merge_between_forward_and_backward_is_caught() -> None:
    """Merging writes the base weight in place through the engine: a pending backward that saved it refuses."""
    import lora

    gen = tg.Generator(0)
    model = nn.Sequential(nn.Linear(4, 4, generator=gen))
    lora.apply_lora(model, ["0"], r=2, alpha=2)
    layer = model[0]
    with tg.no_grad():
        layer.adapters[layer.active].B.copy_(np.ones_like(layer.adapters[layer.active].B.numpy()))
    x = tg.tensor(np.ones((2, 4), dtype=np.float32), requires_grad=True)
    loss = model(x).sum()
    layer.merge()
    with pytest.raises(RuntimeError, match="modified in place after the forward pass"):
        loss.backward()
