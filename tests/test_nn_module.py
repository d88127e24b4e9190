"""nn.Module: parameter discovery, containers, modes, freezing, state dicts, repr."""
import numpy as np
import pytest

import nn
import tinygrad_lite as tg


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        g = tg.Generator(0)
        self.fc1 = nn.Linear(3, 4, generator=g)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 2, bias=False, generator=g)
        self.scale = nn.Parameter(tg.ones(2))

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        return self.fc2(self.act(self.fc1(x))) * self.scale


def test_named_parameters_in_assignment_order():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight"]
    assert m.num_parameters() == 2 + 12 + 4 + 8
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())


def test_children_and_modules():
    m = TwoLayer()
    assert [type(c).__name__ for c in m.children()] == ["Linear", "ReLU", "Linear"]
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]


def test_containers_name_their_items():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert seq(tg.ones(5, 2)).shape == (5, 1)
    ml = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1)])
    assert len(ml) == 2 and len(ml.parameters()) == 4
    md = nn.ModuleDict({"a": nn.Linear(1, 2)})
    assert md.a is md["a"] and "a" in md
    assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias"]
    with pytest.raises(AttributeError, match="holds"):
        _ = md.b
    with pytest.raises(TypeError, match="expected a Module"):
        nn.ModuleList([3])


def test_plain_list_of_modules_is_refused():
    m = nn.Module()
    with pytest.raises(TypeError, match="ModuleList"):
        m.layers = [nn.Linear(1, 1)]


def test_shared_parameter_listed_once():
    a = nn.Linear(2, 2)
    b = nn.Linear(2, 2)
    b.weight = a.weight
    seq = nn.Sequential(a, b)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "1.bias"]


def test_train_eval_recursive():
    m = nn.Sequential(nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.5)))
    m.eval()
    assert not any(x.training for x in m.modules())
    x = tg.ones(10)
    assert np.array_equal(m(x).numpy(), x.numpy())  # dropout is the identity in eval mode
    m.train()
    assert all(x.training for x in m.modules())


def test_zero_grad_and_freezing():
    m = TwoLayer()
    m(tg.ones(1, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.fc1.requires_grad_(False)
    assert m.num_parameters(trainable_only=True) == 2 + 8
    m(tg.ones(1, 3)).sum().backward()
    assert m.fc1.weight.grad is None and m.fc2.weight.grad is not None
    assert "trainable" in repr(m)


def test_state_dict_round_trip_and_copy_semantics():
    a, b = TwoLayer(), TwoLayer()
    with tg.no_grad():
        for p in a.parameters():
            p.add_(1.0)
    sd = a.state_dict()
    assert list(sd) == [n for n, _ in a.named_parameters()]
    b.load_state_dict(sd)
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.numpy(), q.numpy())
        assert p.data is not q.data  # loading copies the values
    version = b.fc1.weight._version
    b.load_state_dict({k: v.numpy() for k, v in sd.items()})  # plain arrays work too
    assert b.fc1.weight._version > version  # an in-place update


def test_load_state_dict_names_every_problem_and_changes_nothing():
    m = TwoLayer()
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    sd = {k: v.numpy() + 1 for k, v in m.state_dict().items()}
    del sd["fc1.bias"]
    sd["extra.weight"] = np.zeros(3)
    sd["fc2.weight"] = np.zeros((3, 3))
    with pytest.raises(nn.StateDictError) as info:
        m.load_state_dict(sd)
    msg = str(info.value)
    assert "missing keys (1): ['fc1.bias']" in msg
    assert "unexpected keys (1): ['extra.weight']" in msg
    assert "fc2.weight: given (3, 3), model (2, 4)" in msg
    for k, v in m.state_dict().items():
        assert np.array_equal(v.numpy(), before[k]), k  # nothing half-loaded


def test_load_state_dict_non_strict():
    m = TwoLayer()
    sd = {k: v.numpy() for k, v in m.state_dict().items() if k != "scale"}
    sd["other"] = np.zeros(1)
    result = m.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["scale"] and result.unexpected_keys == ["other"]


def test_to_double_keeps_parameter_identity():
    m = TwoLayer()
    params = m.parameters()
    m.double()
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert all(a is b for a, b in zip(params, m.parameters()))
    with pytest.raises(TypeError, match="floating"):
        m.to(tg.int64)


def test_repr_shows_structure_and_counts():
    text = repr(TwoLayer())
    assert "(fc1): Linear(in_features=3, out_features=4, bias=True)  # 16 params" in text
    assert text.endswith("# 26 params")


def test_parameter_repr_and_copy():
    p = nn.Parameter(np.arange(3.0))
    assert repr(p).startswith("Parameter(") and p.dtype == np.float64 and p.requires_grad
