"""Serving several adapters in one batch: each row of the batch picks its adapter.

    with lora.adapter_per_row(model, ["default", "other", "__base__"]):
        logits, _ = model(idx)                       # idx has 3 rows

Row i of the output is what the model gives for row i with adapter names[i] active alone
("__base__": no adapter, as inside disable_adapter). Each adapted layer (and each saved module)
splits its input rows by adapter, runs every group once, and puts the rows back in order, so the
base matmul is done once per row and each adapter only sees its own rows. PEFT offers the same as
`model(x, adapter_names=[...])`; our modules' forward takes no such argument, hence the context.

It refuses training mode, as PEFT does: dropout would draw different masks than each adapter's
own run, and a gradient step on a mixed batch is rarely what one means. It is differentiable
(gradient-checked), e.g. to compare adapters' sensitivities in one pass.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from nn import Module

from .adapter import BASE
from .apply import adapter_names, lora_layers, saved_modules


@contextlib.contextmanager
def adapter_per_row(model: Module, names: Sequence[str]) -> Iterator[Module]:
    """Inside the block, row i of every batch `model` sees uses adapter names[i] ("__base__" = none)."""
    if isinstance(names, str):
        raise TypeError(f"adapter_per_row: names must be a list with one adapter name per row, got {names!r}")
    names = list(names)
    known = adapter_names(model)
    unknown = sorted({n for n in names if n != BASE and n not in known})
    if unknown:
        raise KeyError(f"adapter_per_row: no adapter named {unknown}; the model has {known} (and {BASE!r})")
    if any(m.training for m in model.modules()):
        raise RuntimeError("adapter_per_row: the model is in training mode; call model.eval() first (dropout "
                           "would not match each adapter's own run)")
    layers = [layer for _, layer in lora_layers(model)]
    merged = [n for n, layer in lora_layers(model) if layer.merged is not None]
    if merged:
        raise RuntimeError(f"adapter_per_row: {merged} hold a merged adapter; unmerge(model) first")
    wrappers = layers + [w for _, w in saved_modules(model)]
    for layer in wrappers:
        layer.row_adapters = names
    try:
        yield model
    finally:
        for layer in wrappers:
            layer.row_adapters = None
