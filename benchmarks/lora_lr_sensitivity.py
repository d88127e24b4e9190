"""How close does LoRA r=8 (under 2% of the parameters trainable) get to full fine-tuning?

    OPENBLAS_NUM_THREADS=1 python benchmarks/lora_lr_sensitivity.py      (about 7 minutes on 2 shared cores)

Pretrains the comedies model of `tglite lora sweep` once (lora.experiments defaults, ~4 minutes),
then fine-tunes it on the tragedies (200 steps each):

1. full fine-tuning at learning rates 1e-4 ... 1e-3, to bracket its optimum (the recovery of an
   adapter is measured against the *best* full run; a mistuned full run would inflate it);
2. LoRA r=8 on `c_attn` (the sweep's default, 1.98% trainable) at learning rates 2e-3 ... 2e-2;
3. LoRA r=8 on the MLP's first Linear of layers 0-2 (1.86% trainable), the best allocation of the
   r=8 / 2% budget we found (docs/lora.md lists every allocation tried);
4. because (1)-(3) select on the validation split, the best settings again with another fine-tuning
   seed (adapter init and batch order; same base model).

Recovery = (base - val) / (base - best full val), per seed. The issue's target is >= 90%.
"""
from __future__ import annotations

import dataclasses
import time

from machine import machine_line

from lora.experiments import FinetuneConfig, evaluate, finetune, load_corpus, pretrain

FULL_LRS = (1e-4, 2.5e-4, 3.5e-4, 5e-4, 7e-4, 1e-3)
LORA_LRS = (2e-3, 5e-3, 1e-2, 2e-2)
MLP_TARGETS = "h.0.mlp.c_fc,h.1.mlp.c_fc,h.2.mlp.c_fc"
MLP_LRS = (5e-3, 1e-2, 2e-2)
SECOND_SEED = 7


def main() -> None:
    print(machine_line(), flush=True)
    c = FinetuneConfig()
    corpus = load_corpus()
    t0 = time.perf_counter()
    model = pretrain(corpus, c)
    base = evaluate(model, corpus.ft_val, c)
    print(f"pretrained {c.pretrain_steps} steps in {time.perf_counter() - t0:.0f} s; tragedies val loss before "
          f"fine-tuning {base:.4f}; {c.finetune_steps} fine-tuning steps per run")

    def run(label: str, method: str, **changes: object) -> dict:
        row = finetune(model, corpus, dataclasses.replace(c, **changes), method, None if method == "full" else 8)
        row["label"] = label
        return row

    def report(title: str, rows: list[dict], best_full: float) -> None:
        print(title)
        for r in rows:
            recovery = (base - r["val_loss"]) / (base - best_full)
            print(f"  {r['label']:<44} val {r['val_loss']:.4f}  trainable {100 * r['fraction']:5.2f}%  "
                  f"recovery {100 * recovery:5.1f}%")

    full = [run(f"full lr {lr:g}", "full", full_lr=lr) for lr in FULL_LRS]
    best = min(full, key=lambda r: r["val_loss"])
    i = full.index(best)
    bracketed = 0 < i < len(full) - 1
    print(f"best full fine-tuning: {best['label']} (val {best['val_loss']:.4f}); optimum bracketed: {bracketed}")
    lora_rows = [run(f"LoRA r=8 c_attn lr {lr:g}", "lora", lora_lr=lr) for lr in LORA_LRS]
    lora_rows += [run(f"LoRA r=8 c_fc of h.0-2 lr {lr:g}", "lora", lora_lr=lr, targets=MLP_TARGETS) for lr in MLP_LRS]
    report(f"seed {c.seed} (recovery against the best full run):", full + lora_rows, best["val_loss"])

    best_lora = min((r for r in lora_rows if "c_attn" in r["label"]), key=lambda r: r["val_loss"])
    best_mlp = min((r for r in lora_rows if "c_fc" in r["label"]), key=lambda r: r["val_loss"])
    lrs = FULL_LRS[max(0, i - 1):i + 2]
    second = [run(f"full lr {lr:g}", "full", full_lr=lr, finetune_seed=SECOND_SEED) for lr in lrs]
    lora_lr = LORA_LRS[lora_rows.index(best_lora)]
    mlp_lr = MLP_LRS[lora_rows.index(best_mlp) - len(LORA_LRS)]
    second += [run(f"LoRA r=8 c_attn lr {lora_lr:g}", "lora", lora_lr=lora_lr, finetune_seed=SECOND_SEED),
               run(f"LoRA r=8 c_fc of h.0-2 lr {mlp_lr:g}", "lora", lora_lr=mlp_lr, targets=MLP_TARGETS,
                   finetune_seed=SECOND_SEED)]
    best2 = min((r for r in second if r["method"] == "full"), key=lambda r: r["val_loss"])
    report(f"fine-tuning seed {SECOND_SEED}, same base (recovery against the best full run of this seed, "
           f"{best2['label']}):", second, best2["val_loss"])


if __name__ == "__main__":
    main()
