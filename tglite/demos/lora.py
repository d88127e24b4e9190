"""The LoRA lecture demo.

    lora-finetune   pretrain a small GPT on Shakespeare's comedies, then adapt it to the tragedies
                    with full fine-tuning and with LoRA r=8 (Hu et al. 2021); prints the val losses,
                    the fraction of parameters trained and checks that merging the adapter into the
                    weights changes no output. About 10 s on an idle laptop CPU. The model is tiny
                    and barely pretrained, so LoRA recovers only part of full fine-tuning's gain
                    here; docs/lora.md has the measured comparison on a larger, better-trained GPT.

The full comparison (ranks, rsLoRA, DoRA, PiSSA, QLoRA, LoRA+) is `tglite lora sweep`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..tour import register


@register("lora-finetune")
def lora_step(out_dir: Path, quick: bool) -> str:
    import lora
    import tinygrad_lite as tg
    from lora import experiments as E

    steps = {"pretrain_steps": "60", "finetune_steps": "20", "eval_iters": "4"} if quick else \
        {"pretrain_steps": "200", "finetune_steps": "80", "eval_iters": "8"}
    config = E.FinetuneConfig.quick().with_overrides(steps | {"methods": "full,lora", "ranks": "8"})
    sweep = E.finetune_sweep(config)
    print(E.results_table(sweep))
    E.plot_finetune(sweep, out_dir / "lora_finetune.png")
    # merge exactness on the fine-tuned adapter: W0 + s·B·A in one matrix gives the same logits
    model = E._copy(sweep["model"])
    targets = config.targets if config.targets == "all-linear" else config.targets.split(",")  # names -> a list
    lora.apply_lora(model, targets, r=8, alpha=config.alpha)
    rng = np.random.default_rng(0)
    with tg.no_grad():
        for _, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(rng.normal(0, 0.05, p.shape))
    idx = rng.integers(0, model.config.vocab_size, (2, config.block_size))
    before = model(idx)[0].numpy()
    lora.merge(model)
    gap = float(np.abs(model(idx)[0].numpy() - before).max())
    print(f"merged vs unmerged logits (float32): max difference {gap:.2e}")
    full, lo = sweep["runs"][0], sweep["runs"][1]
    return (f"val {sweep['base_val_loss']:.3f} -> full {full['val_loss']:.3f}, LoRA r=8 {lo['val_loss']:.3f} "
            f"with {100 * lo['fraction']:.1f}% trainable")
