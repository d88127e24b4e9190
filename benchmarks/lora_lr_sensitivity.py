"""How much of LoRA's gap to full fine-tuning is the learning rate?

    OPENBLAS_NUM_THREADS=1 python benchmarks/lora_lr_sensitivity.py      (about 7 minutes on 2 cores)

Pretrains the comedies model of `tglite lora sweep` once (lora.experiments defaults), then fine-tunes
it on the tragedies with full fine-tuning and with LoRA r=8 at three learning rates each, and reports
every run's recovery against the best full fine-tuning run.
"""
from __future__ import annotations

import dataclasses
import time

from lora.experiments import FinetuneConfig, evaluate, finetune, load_corpus, pretrain

FULL_LRS = (5e-4, 1e-3, 2e-3)
LORA_LRS = (1e-2, 2e-2, 4e-2)


def main() -> None:
    c = FinetuneConfig()
    corpus = load_corpus()
    t0 = time.perf_counter()
    model = pretrain(corpus, c)
    base = evaluate(model, corpus.ft_val, c)
    print(f"pretrained in {time.perf_counter() - t0:.0f} s; tragedies val loss before fine-tuning {base:.4f}")
    runs = []
    for lr in FULL_LRS:
        runs.append(("full", lr, finetune(model, corpus, dataclasses.replace(c, full_lr=lr), "full")))
    for lr in LORA_LRS:
        runs.append(("lora r=8", lr, finetune(model, corpus, dataclasses.replace(c, lora_lr=lr), "lora", 8)))
    best_full = min(r["val_loss"] for m, _, r in runs if m == "full")
    for method, lr, r in runs:
        recovery = (base - r["val_loss"]) / (base - best_full)
        print(f"{method:<9} lr {lr:<7g} val {r['val_loss']:.4f}  trainable {100 * r['fraction']:.2f}%  "
              f"recovery vs the best full run {recovery:.3f}")


if __name__ == "__main__":
    main()
