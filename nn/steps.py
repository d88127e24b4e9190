"""The two reusable pieces of every training loop: one optimizer step, and an evaluation.

    loss = train_step(model, optimizer, [(x, y)], grad_clip=1.0)     # language modelling
    loss = train_step(rm, optimizer, [batch], loss_fn=my_loss)        # anything else
    val = evaluate(model, val_batches)

`Trainer` (GPT on text), the rl package's supervised fine-tuning, reward models and GRPO all take
their steps through here, so gradient accumulation, clipping and the eval-mode bookkeeping are
written once.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import tinygrad_lite as tg
from tinygrad_lite import Tensor

from .module import Module
from .optim import clip_grad_norm_

LossFn = Callable[[Module, Any], Tensor]


def lm_loss(model: Module, batch: Any) -> Tensor:
    """The language-modelling loss: batch = (inputs, targets), and the model returns (logits, loss)."""
    x, y = batch
    return model(x, y)[1]


def train_step(model: Module, optimizer: Any, micro_batches: Sequence[Any], loss_fn: LossFn = lm_loss,
               grad_clip: float = 0.0) -> float:
    """One optimizer step over gradient-accumulated micro-batches; returns their mean loss.

    Each micro-batch's loss is scaled by 1/n before backward, so the accumulated gradient is the
    gradient of the mean loss, as if the n micro-batches were one batch of equal-sized parts.
    A model with `no_sync()` (nn.distributed.DistributedDataParallel) communicates only in the
    last micro-batch's backward: the earlier ones accumulate locally."""
    n = len(micro_batches)
    if n == 0:
        raise ValueError("train_step: need at least one micro-batch")
    model.train()
    optimizer.zero_grad()
    total = 0.0
    no_sync = getattr(model, "no_sync", None)
    for i, batch in enumerate(micro_batches):
        with no_sync() if no_sync is not None and i < n - 1 else contextlib.nullcontext():
            loss = loss_fn(model, batch)
            (loss * (1.0 / n)).backward()
        total += loss.item()
    if grad_clip > 0:
        clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    return total / n


def evaluate(model: Module, batches: Iterable[Any], loss_fn: LossFn = lm_loss) -> float:
    """Mean loss over batches, in eval mode (no dropout) and without building a graph; the
    model's training mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with tg.no_grad():
            losses = [loss_fn(model, b).item() for b in batches]
    finally:
        model.train(was_training)
    if not losses:
        raise ValueError("evaluate: no batches")
    return sum(losses) / len(losses)
