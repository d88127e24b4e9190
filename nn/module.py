"""`Module` and `Parameter`: how a model keeps track of its weights.

A Module is a plain Python object. Its parameters are the `Parameter` attributes it holds, and
its sub-modules are the `Module` attributes it holds; both are found by walking `vars(self)` in
the order they were assigned, so `parameters()` needs no registration step. Containers
(`Sequential`, `ModuleList`, `ModuleDict`) hold modules in a list or dict and name them by
position or key. The dotted names (`h.0.attn.c_attn.weight`) are the keys of `state_dict()`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Tensor


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module (requires grad unless frozen)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


def zero_grads(params: Iterable[Tensor], set_to_none: bool = True) -> None:
    """What `zero_grad` does, for a Module and an optimizer alike. set_to_none=True (PyTorch's
    default): `.grad = None`, which frees the memory, and the next backward writes new gradients.
    set_to_none=False: fill each existing `.grad` with zeros in place (the same tensor objects)."""
    with tg.no_grad():
        for p in params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()


class StateDictError(KeyError):
    """`load_state_dict` found keys or shapes that do not match the model."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


class LoadResult(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model: subclasses set attributes in `__init__` and
    write `forward`; calling the module calls `forward`."""

    training: bool = True

    def __setattr__(self, name: str, value: Any) -> None:
        # A plain list of layers would be invisible to parameters(): say so at once.
        if isinstance(value, (list, tuple)) and any(isinstance(v, (Module, Parameter)) for v in value):
            raise TypeError(
                f"{type(self).__name__}.{name}: a plain {type(value).__name__} of modules or parameters is not "
                f"tracked by parameters() or state_dict(); wrap it in nn.ModuleList (or nn.ModuleDict)"
            )
        object.__setattr__(self, name, value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------- the tree
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every module below it, depth first, each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{n}" if name else n, c) for n, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def _own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield name, value

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs. A parameter shared by two modules (weight tying)
        appears once, under the first name it is reached by."""
        seen: set[int] = set()
        for mod_name, m in self.named_modules():
            for name, p in m._own_parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---------------------------------------------------------- modes and grads
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active); `eval()` switches it off. Applies to every sub-module."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (see `zero_grads`)."""
        zero_grads(self.parameters(), set_to_none)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter of this module."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, dtype: Any = None, device: str | None = None) -> Module:
        """Convert every parameter in place (the same Parameter objects, so optimizers built
        before still point at them). Floating dtypes only: `model.to(tg.float64)`. A device name
        alone moves the parameters: `model.to("cuda")`, `model.to("cpu")`."""
        if isinstance(dtype, str) and dtype in tg.available_devices():
            dtype, device = None, dtype
        if dtype is not None and not tg.dtypes.is_floating(tg.dtypes.to_dtype(dtype)):
            raise TypeError(f"Module.to: parameters must stay floating point, got dtype {dtype}")
        for p in self.parameters():
            data = p.data
            if device is not None and device != p.device:
                data = tg.get_backend(device).xp.asarray(tg.get_backend(p.device).to_numpy(data))
                p.device = device
            if dtype is not None:
                data = data.astype(tg.dtypes.to_dtype(dtype))
            p.data = data  # new memory (another dtype or device): a graph that saved p must not use it
            p._shared_counter()[0] += 1
            p.grad = None
        return self

    def cuda(self) -> Module:
        return self.to(device="cuda")

    def cpu(self) -> Module:
        return self.to(device="cpu")

    def double(self) -> Module:
        return self.to(tg.float64)

    def float(self) -> Module:
        return self.to(tg.float32)

    # ------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Tensor]:
        """name -> the parameter's values (detached tensors sharing the parameter's memory:
        copy them, e.g. with `.numpy().copy()`, to keep a snapshot)."""
        return {name: p.detach() for name, p in self.named_parameters()}

    def check_state_dict(self, state: dict[str, Any], strict: bool = True) -> LoadResult:
        """Raise StateDictError naming every missing, unexpected and wrongly shaped key (missing
        and unexpected keys only when strict); change nothing."""
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        wrong_shape = []
        for k, p in params.items():
            if k in state:
                shape = tuple(np.shape(state[k].data if isinstance(state[k], Tensor) else state[k]))
                if shape != p.shape:
                    wrong_shape.append(f"{k}: given {shape}, model {p.shape}")
        if wrong_shape or (strict and (missing or unexpected)):
            lines = [f"load_state_dict: the state dict does not match this {type(self).__name__}"]
            if missing:
                lines.append(f"  missing keys ({len(missing)}): {missing}")
            if unexpected:
                lines.append(f"  unexpected keys ({len(unexpected)}): {unexpected}")
            if wrong_shape:
                lines.append(f"  wrongly shaped ({len(wrong_shape)}): {wrong_shape}")
            raise StateDictError("\n".join(lines))
        return LoadResult(missing, unexpected)

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> LoadResult:
        """Copy values into the parameters. Everything is checked before anything is copied,
        so a mismatch leaves the model untouched. strict=True: the keys must match exactly."""
        result = self.check_state_dict(state, strict)
        with tg.no_grad():
            for k, p in self.named_parameters():
                if k in state:
                    value = state[k].data if isinstance(state[k], Tensor) else state[k]
                    p.copy_(p.xp.asarray(value, dtype=p.dtype))
        return result

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """The constructor arguments worth showing, e.g. `in_features=4, out_features=2`."""
        return ""

    def _repr_lines(self) -> list[str]:
        kids = list(self.named_children())
        count = self.num_parameters()
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not kids:
            return [f"{head})" + (f"  # {count:,} params" if count else "")]
        lines = [head + ("" if not self.extra_repr() else ",")]
        for name, child in kids:
            sub = child._repr_lines()
            lines.append(f"  ({name}): {sub[0]}")
            lines.extend("  " + s for s in sub[1:])
        lines.append(f")  # {count:,} params")
        return lines

    def __repr__(self) -> str:
        lines = self._repr_lines()
        trainable = self.num_parameters(trainable_only=True)
        total = self.num_parameters()
        if trainable != total:
            lines[-1] += f" ({trainable:,} trainable)"
        return "\n".join(lines)


# ------------------------------------------------------------------- containers
class ModuleList(Module):
    """A list of modules whose parameters the parent module can see (named "0", "1", ...)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        self._items: list[Module] = []
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: expected a Module, got {type(module).__name__}")
        self._items.append(module)
        return self

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, m in enumerate(self._items):
            yield str(i), m

    def __getitem__(self, i: int) -> Module:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)


class Sequential(ModuleList):
    """Modules applied one after the other: `Sequential(a, b)(x) == b(a(x))`."""

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def forward(self, x: Any) -> Any:
        for m in self._items:
            x = m(x)
        return x


class ModuleDict(Module):
    """A dict of modules, named by their keys (nanoGPT keeps its `transformer` parts in one)."""

    def __init__(self, modules: dict[str, Module] | None = None) -> None:
        self._items: dict[str, Module] = {}
        for k, m in (modules or {}).items():
            self[k] = m

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict[{key!r}]: expected a Module, got {type(module).__name__}")
        if not key.isidentifier():
            raise ValueError(f"ModuleDict: keys must be identifiers (they become state_dict names), got {key!r}")
        self._items[key] = module

    def __getitem__(self, key: str) -> Module:
        return self._items[key]

    def __getattr__(self, key: str) -> Module:
        # Only called when normal lookup fails: lets `transformer.wte` read like an attribute.
        items = self.__dict__.get("_items", {})
        if key in items:
            return items[key]
        raise AttributeError(f"ModuleDict has no module {key!r}; it holds {list(items)}")

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> Iterable[str]:
        return self._items.keys()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._items.items()

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._items.items()
