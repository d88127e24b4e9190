"""Does LoRA r=8 (under 2% trainable) recover 90% of full fine-tuning on a wider GPT?

    OPENBLAS_NUM_THREADS=1 python benchmarks/lora_model_size.py      (about 20-25 minutes on 2 cores)

On the default model of `tglite lora sweep` (n_embd 128, 0.8M parameters) the best LoRA r=8 under
2% that a search of ~40 settings found recovered 72-75% (benchmarks/lora_lr_sensitivity.py). LoRA's
premise (Hu et al. 2021, after Aghajanyan et al. 2020 on intrinsic dimension) is that the larger
the pretrained model, the fewer directions its adaptation needs; and in a wider model r = 8 is a
smaller fraction, so more layers fit in the budget. This script repeats the experiment at
n_embd 256 (4 layers, 3.2M parameters), everything else as `lora.experiments.FinetuneConfig`:

1. pretrain on the comedies (3000 steps, ~9 minutes here);
2. for each of three fine-tuning seeds (adapter init and batch order; same base): full
   fine-tuning at three learning rates (the optimum must be interior: recovery is measured against
   the *best* full run of the same seed), and LoRA r=8, alpha 16, lr 5e-3, on three placements;
3. print every run's recovery, and the mean over seeds.

The placements were chosen by a search on seed 1337 (listed in docs/lora.md); seeds 7 and 11 are
there to confirm them, since a choice made on one seed's validation loss flatters that seed.

Its numbers are selection data: settings are chosen and reported on the same validation text, and
every seed shares one base model. benchmarks/lora_method.py gives each seed its own base, chooses
on validation and reports on a held-out test split (docs/lora.md has both).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from machine import machine_line

from lora.experiments import FinetuneConfig, evaluate, finetune, load_corpus, pretrain

WIDTH = 256
SEEDS = (1337, 7, 11)
FULL_LRS = (2.5e-4, 3.5e-4, 5e-4)
LORA_LR = 5e-3
PLACEMENTS = {
    "c_attn (all layers)": "c_attn",
    "c_attn + c_fc of layers 0-2": "c_attn,h.0.mlp.c_fc,h.1.mlp.c_fc,h.2.mlp.c_fc",
    "c_fc (all) + MLP c_proj of layers 0-1": "mlp.c_fc,h.0.mlp.c_proj,h.1.mlp.c_proj",
}


def main() -> None:
    print(machine_line(), flush=True)
    c = dataclasses.replace(FinetuneConfig(), n_embd=WIDTH)
    corpus = load_corpus()
    t0 = time.perf_counter()
    model = pretrain(corpus, c)
    base = evaluate(model, corpus.ft_val, c)
    n_params = sum(p.size for p in model.parameters())
    print(f"n_embd {WIDTH}, {c.n_layer} layers, {n_params:,} parameters; pretrained {c.pretrain_steps} steps in "
          f"{time.perf_counter() - t0:.0f} s; tragedies val loss before fine-tuning {base:.4f}")
    recoveries: dict[str, list[float]] = {name: [] for name in PLACEMENTS}
    for seed in SEEDS:
        cs = dataclasses.replace(c, finetune_seed=seed)
        full = [finetune(model, corpus, dataclasses.replace(cs, full_lr=lr), "full") for lr in FULL_LRS]
        vals = [r["val_loss"] for r in full]
        best = min(vals)
        interior = 0 < vals.index(best) < len(vals) - 1
        print(f"seed {seed}: full fine-tuning val " + ", ".join(f"{v:.4f} (lr {lr:g})" for v, lr in zip(vals, FULL_LRS))
              + f"; best {best:.4f}, optimum interior: {interior}")
        for name, targets in PLACEMENTS.items():
            row = finetune(model, corpus, dataclasses.replace(cs, lora_lr=LORA_LR, targets=targets), "lora", 8)
            recovery = (base - row["val_loss"]) / (base - best)
            recoveries[name].append(recovery)
            print(f"  LoRA r=8 {name:<40} trainable {100 * row['fraction']:5.2f}%  val {row['val_loss']:.4f}  "
                  f"recovery {100 * recovery:5.1f}%")
    print("mean recovery over seeds " + ", ".join(str(s) for s in SEEDS) + ":")
    for name, values in recoveries.items():
        print(f"  {name:<40} {100 * np.mean(values):5.1f}%  (per seed: "
              + ", ".join(f"{100 * v:.1f}%" for v in values) + ")")


if __name__ == "__main__":
    main()
