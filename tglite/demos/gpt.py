"""The transformer lecture demo: train a small character-level GPT on Shakespeare, then sample.

    gpt-shakespeare   a 2-layer GPT (nn.train's "shakespeare-char-small" config, fewer steps)
                      learns to write play-like text in under a minute on a laptop CPU; prints
                      the losses and two samples, saves the loss curve and a checkpoint.

The full-size run is `tglite train gpt --config shakespeare-char-cpu` (nanoGPT's CPU setting).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import tinygrad_lite as tg
from nn.files import atomic_write_text

from ..tour import register


@register("gpt-shakespeare")
def gpt_step(out_dir: Path, quick: bool) -> str:
    from nn.train import CONFIGS, Trainer

    steps = 40 if quick else 300
    config = CONFIGS["shakespeare-char-small"].with_overrides({
        "max_iters": str(steps), "lr_decay_iters": str(steps), "eval_interval": str(steps // 5),
        "eval_iters": "5", "out_dir": str(out_dir),
    })
    trainer = Trainer(config)
    trainer.run(progress=True)
    first, last = trainer.evals[0], trainer.evals[-1]
    print(f"a uniform guess over {trainer.tokenizer.vocab_size} characters scores "
          f"ln({trainer.tokenizer.vocab_size}) = {math.log(trainer.tokenizer.vocab_size):.2f}")
    prompt = np.array([trainer.tokenizer.encode("ROMEO:\n")] * 2)
    out = trainer.model.generate(prompt, 200, temperature=0.8, top_k=20, generator=tg.Generator(0))
    samples = [trainer.tokenizer.decode(row.tolist()) for row in out.numpy()]
    for i, s in enumerate(samples, 1):
        print(f"--- sample {i} (temperature 0.8, top-k 20) ---\n{s}")
    atomic_write_text(out_dir / "samples.txt", "\n\n".join(samples) + "\n")
    tok_s = trainer.tokens_per_step * len(trainer.history) / sum(h.seconds for h in trainer.history)
    return (f"val loss {first['val']:.2f} (step {first['step']}) -> {last['val']:.2f} (step {last['step']}), "
            f"{tok_s:,.0f} tok/s")
