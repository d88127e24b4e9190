"""`modules_to_save`: modules that an adapter trains in full instead of through a low-rank change.

A new task often needs a new head, or a LayerNorm retuned, next to the LoRA adapters. PEFT's
answer, kept here: the module is wrapped, the frozen original stays, and every adapter that
names it gets its own trainable copy (made from the original), switched with set_adapter like
the adapters themselves and saved with them. The names in a state dict are PEFT's:

    lm_head.original_module.weight          the original (frozen)
    lm_head.modules_to_save.<adapter>.weight the copy adapter <adapter> trains

A copy has its own weights: a copied LM head whose weight was tied to the embedding is no
longer tied (the original still is).
"""
from __future__ import annotations

import copy
from typing import Any

from nn import Module, ModuleDict

from .adapter import forward_per_row


class ModulesToSave(Module):
    """The original module plus one trainable copy per adapter; forward uses the active copy, or
    the original when no copy is active, or inside disable_adapter."""

    def __init__(self, original: Module) -> None:
        self.original_module = original
        self.modules_to_save = ModuleDict()
        self.active: str | None = None
        self.disabled = False
        self.row_adapters: list[str] | None = None  # one adapter name per batch row (lora.adapter_per_row)

    def add_copy(self, name: str) -> None:
        if name in self.modules_to_save:
            raise ValueError(f"ModulesToSave: adapter {name!r} has a copy already")
        self.modules_to_save[name] = copy.deepcopy(self.original_module)

    def delete_copy(self, name: str) -> None:
        self.modules_to_save = ModuleDict({k: m for k, m in self.modules_to_save.items() if k != name})
        if self.active == name:
            self.active = None

    def module_for(self, name: str | None) -> Module:
        """The copy of adapter `name`, or the original for None / an adapter without a copy here."""
        return self.modules_to_save[name] if name is not None and name in self.modules_to_save else self.original_module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.disabled:
            return self.original_module(*args, **kwargs)
        if self.row_adapters is not None:
            x, rest = args[0], args[1:]
            return forward_per_row(x, self.row_adapters, lambda name, xs: self.module_for(name)(xs, *rest, **kwargs))
        return self.module_for(self.active)(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"copies={list(self.modules_to_save.keys())}, active={self.active!r}"
