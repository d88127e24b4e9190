"""Training a GPT on text: named configurations and a small, resumable training loop.

    trainer = Trainer(CONFIGS["shakespeare-char-cpu"])
    trainer.run()               # progress bar, val loss every eval_interval, checkpoints, loss curve

Everything random comes from seeded generators that are saved in each checkpoint (the batch
sampler, and the default generator that dropout draws from), so training N steps, saving and
resuming for M more gives exactly the losses of N + M steps in one go.

Under `mpiexec -n N` (pass `comm=nn.distributed.get_communicator()`), batch_size is the global
batch: every rank draws the same global batch from the shared batch generator and trains on its
own 1/N of the rows, through DistributedDataParallel. Only rank 0 logs and writes files. Because
the batch generator is shared, a checkpoint resumes with any N that divides batch_size.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Generator
from tinygrad_lite.extras import require

from .checkpoint import load_checkpoint, restore, save_checkpoint
from .data import get_batch, shakespeare_text
from .distributed import Communicator, DistributedDataParallel, LocalCommunicator, rank_seed, shard_rows
from .files import atomic_write, atomic_write_text
from .gpt import GPT, GPTConfig
from .optim import WarmupCosine, set_lr
from .steps import evaluate, train_step
from .tokenizers import BPETokenizer, CharTokenizer, Tokenizer


@dataclass
class TrainConfig:
    # data and tokenizer
    dataset: str = "shakespeare"  # the only built-in corpus; Trainer(text=...) trains on any string
    tokenizer: str = "char"  # "char" or "bpe"
    bpe_vocab_size: int = 512
    bpe_train_chars: int = 1_000_000  # BPE merges are learned on this prefix of the training text
    # model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = True
    dtype: str = "float32"
    # optimization (AdamW, linear warmup then cosine decay to min_lr)
    batch_size: int = 12
    grad_accum: int = 1
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 disables clipping
    # evaluation, checkpoints, output
    eval_interval: int = 250
    eval_iters: int = 20
    checkpoint_interval: int = 500  # 0: only at the end
    out_dir: str = "out/shakespeare-char-cpu"
    seed: int = 1337

    def __post_init__(self) -> None:
        """Check every value when the config is made (or changed with dataclasses.replace), so a bad
        one fails with its name before any text is read, any model built or any file written."""
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise ValueError(f"TrainConfig: {name}={getattr(self, name)!r}, expected {allowed}")

        def is_int(x: Any) -> bool:
            return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

        def is_number(x: Any) -> bool:
            return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and math.isfinite(x)

        if self.tokenizer not in ("char", "bpe"):
            raise ValueError(f"TrainConfig: unknown tokenizer {self.tokenizer!r}; use 'char' or 'bpe'")
        need(self.dtype in ("float32", "float64"), "dtype", "'float32' or 'float64' (training needs floats)")
        need(isinstance(self.bias, bool), "bias", "true or false")
        need(isinstance(self.out_dir, str) and self.out_dir != "", "out_dir", "a folder name")
        for name in ("bpe_train_chars", "batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "an integer >= 1")
        for name in ("warmup_iters", "lr_decay_iters", "checkpoint_interval", "seed"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 0, name, "an integer >= 0")
        need(is_int(self.bpe_vocab_size) and self.bpe_vocab_size >= 256, "bpe_vocab_size",
             "an integer >= 256 (the 256 bytes, then one token per merge)")
        need(self.warmup_iters <= self.lr_decay_iters, "warmup_iters",
             f"at most lr_decay_iters={self.lr_decay_iters} (the warmup comes before the decay)")
        need(is_number(self.learning_rate) and self.learning_rate > 0, "learning_rate", "a number > 0")
        for name in ("min_lr", "weight_decay", "grad_clip"):
            need(is_number(getattr(self, name)) and getattr(self, name) >= 0, name, "a number >= 0")
        for name in ("beta1", "beta2"):
            need(is_number(getattr(self, name)) and 0 <= getattr(self, name) < 1, name, "a number in [0, 1)")
        self.model_config(vocab_size=1)  # GPTConfig checks the model's shape and dropout

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(block_size=self.block_size, vocab_size=vocab_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd, dropout=self.dropout, bias=self.bias)

    def with_overrides(self, overrides: dict[str, str]) -> TrainConfig:
        """A copy with `key=value` strings applied, each converted to the field's type."""
        return with_overrides(self, overrides)


Config = TypeVar("Config")


def with_overrides(config: Config, overrides: dict[str, str]) -> Config:
    """A copy of the dataclass `config` with `key=value` strings (from a command line) applied, each
    parsed as its field's annotated type: int, float, str, bool (true/false/1/0), `X | None` ("none"
    gives None) or list[X] (comma-separated). The config's own checks then run on the new values."""
    hints = typing.get_type_hints(type(config))
    names = sorted(f.name for f in dataclasses.fields(config))
    changes: dict[str, Any] = {}
    for key, text in overrides.items():
        if key not in names:
            raise ValueError(f"unknown setting {key!r}; the settings are: {', '.join(names)}")
        try:
            changes[key] = _parse_setting(text, hints[key])
        except ValueError:
            expected = str(hints[key]) if typing.get_args(hints[key]) else hints[key].__name__
            raise ValueError(f"setting {key}={text!r}: expected {expected}") from None
    return dataclasses.replace(config, **changes)


def _parse_setting(text: str, kind: Any) -> Any:
    args = typing.get_args(kind)
    if type(None) in args:  # X | None
        if text.lower() == "none":
            return None
        (kind,) = [a for a in args if a is not type(None)]
    if typing.get_origin(kind) is list:
        return [_parse_setting(item, typing.get_args(kind)[0]) for item in text.split(",") if item]
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(text)
        return text.lower() in ("true", "1")
    return kind(text)


# nanoGPT's "shakespeare_char" recipe scaled for a laptop CPU, as its README gives it:
# n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0, lr 1e-3 with 100
# warmup steps and cosine decay to 1e-4 over 2000 iterations, beta2=0.99, eval_iters=20.
CONFIGS: dict[str, TrainConfig] = {
    "shakespeare-char-cpu": TrainConfig(),
    "shakespeare-bpe-cpu": TrainConfig(tokenizer="bpe", bpe_vocab_size=512, out_dir="out/shakespeare-bpe-cpu"),
    # A few-minute model for a first look, and a seconds-long one for tests and the tour.
    "shakespeare-char-small": TrainConfig(n_layer=2, n_head=2, n_embd=64, block_size=32, batch_size=16,
                                          max_iters=500, lr_decay_iters=500, warmup_iters=20, eval_interval=100,
                                          checkpoint_interval=0, out_dir="out/shakespeare-char-small"),
    "tiny": TrainConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_iters=20,
                        lr_decay_iters=20, warmup_iters=2, eval_interval=10, eval_iters=2, checkpoint_interval=0,
                        out_dir="out/tiny"),
}


def get_config(name: str) -> TrainConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name]


@dataclass
class StepLog:
    step: int
    loss: float
    lr: float
    seconds: float


class Trainer:
    """Owns the tokenizer, data, model, optimizer and generators of one training run."""

    def __init__(self, config: TrainConfig, text: str | None = None, tokenizer: Tokenizer | None = None,
                 comm: Communicator | None = None) -> None:
        self.config = c = config
        self.comm = comm if comm is not None else LocalCommunicator()
        if c.batch_size % self.comm.world_size:
            raise ValueError(f"TrainConfig: batch_size={c.batch_size} is the global batch, split over "
                             f"{self.comm.world_size} ranks: it must be a multiple of {self.comm.world_size}")
        self.rows = shard_rows(c.batch_size, self.comm)  # this rank's rows of each global batch
        if text is None:
            if c.dataset != "shakespeare":
                raise ValueError(f"unknown dataset {c.dataset!r}; the built-in one is 'shakespeare'")
            text = shakespeare_text()
        n_train = int(len(text) * 0.9)  # the first 90% of the text trains, the rest validates
        if tokenizer is None:
            if c.tokenizer == "char":
                tokenizer = CharTokenizer.train(text)  # every character of the corpus, val included
            elif c.tokenizer == "bpe":
                tokenizer = BPETokenizer.train(text[: min(n_train, c.bpe_train_chars)], c.bpe_vocab_size)
            else:
                raise ValueError(f"unknown tokenizer {c.tokenizer!r}; use 'char' or 'bpe'")
        self.tokenizer = tokenizer
        # Split the text (not the tokens) at 90%, so both tokenizers see the same validation text.
        self.train_tokens = np.array(tokenizer.encode(text[:n_train]), dtype=np.int64)
        self.val_tokens = np.array(tokenizer.encode(text[n_train:]), dtype=np.int64)
        tg.manual_seed(rank_seed(c.seed, self.comm.rank))  # the default generator: dropout masks, one per rank
        self.model = GPT(c.model_config(tokenizer.vocab_size), dtype=c.dtype, generator=Generator(c.seed))
        # With several ranks, the steps go through DDP (rank 0's weights, averaged gradients).
        self.step_model = self.model if self.comm.world_size == 1 else DistributedDataParallel(self.model, self.comm)
        self.optimizer = self.model.configure_optimizers(c.weight_decay, c.learning_rate, (c.beta1, c.beta2))
        self.schedule = WarmupCosine(c.learning_rate, c.warmup_iters, c.lr_decay_iters, c.min_lr)
        self.batch_generator = Generator(c.seed + 1)
        self.step = 0
        self.history: list[StepLog] = []
        self.evals: list[dict[str, float]] = []

    @property
    def tokens_per_step(self) -> int:
        c = self.config
        return c.batch_size * c.block_size * c.grad_accum

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.comm.rank == 0

    def generators(self) -> dict[str, Generator]:
        return {"batches": self.batch_generator, "default": tg.default_generator}

    def _my_rows(self, batch: tuple[tg.Tensor, tg.Tensor]) -> tuple[tg.Tensor, tg.Tensor]:
        if self.comm.world_size == 1:
            return batch
        x, y = batch
        return tg.Tensor(x.data[self.rows]), tg.Tensor(y.data[self.rows])

    def _mean_over_ranks(self, value: float) -> float:
        if self.comm.world_size == 1:
            return value
        return float(self.comm.all_reduce(np.array([value]))[0]) / self.comm.world_size

    def train_step(self) -> float:
        """One optimizer step (grad_accum micro-batches); returns the mean loss."""
        c = self.config
        t0 = time.perf_counter()
        lr = self.schedule(self.step)
        set_lr(self.optimizer, lr)
        batches = [self._my_rows(get_batch(self.train_tokens, c.batch_size, c.block_size, self.batch_generator))
                   for _ in range(c.grad_accum)]
        mean = self._mean_over_ranks(train_step(self.step_model, self.optimizer, batches, grad_clip=c.grad_clip))
        self.step += 1
        self.history.append(StepLog(self.step, mean, lr, time.perf_counter() - t0))
        return mean

    def estimate_loss(self) -> dict[str, float]:
        """Mean loss over eval_iters batches of each split. A fresh generator with a fixed seed
        picks the batches, so every evaluation sees the same ones and training's RNG is untouched."""
        c = self.config
        out = {}
        for name, tokens in (("train", self.train_tokens), ("val", self.val_tokens)):
            gen = Generator(c.seed + 2)
            out[name] = self._mean_over_ranks(evaluate(self.model, (
                self._my_rows(get_batch(tokens, c.batch_size, c.block_size, gen)) for _ in range(c.eval_iters))))
        self.model.train()
        self.evals.append({"step": self.step, **out})
        return out

    # --------------------------------------------------------------- checkpoints
    def save(self, path: str | Path) -> Path:
        """Write a checkpoint (rank 0 only; every rank must call it, to gather the ranks' generators)."""
        extra: dict[str, Any] = {"history": [dataclasses.astuple(h) for h in self.history], "evals": self.evals}
        if self.comm.world_size > 1:  # each rank's dropout stream, so a resume with the same N is exact
            extra["rank_rng"] = self.comm.all_gather_object(tg.default_generator.get_state())
        config = {"train": dataclasses.asdict(self.config), "model": self.model.config.to_dict()}
        if not self.is_main:
            return Path(path)
        return save_checkpoint(path, self.model, self.optimizer, self.step, config, self.tokenizer,
                               self.generators(), extra)

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint of the same model configuration."""
        ckpt = load_checkpoint(path)
        restore(ckpt, self.model, self.optimizer, self.generators())
        rank_rng = ckpt.extra.get("rank_rng")
        # The default generator (dropout) differs per rank; restore() gave every rank rank 0's. With the
        # number of ranks the run had, each takes its own saved state; with another number, the ranks
        # other than 0 start fresh streams from (seed + step, rank).
        if rank_rng is not None and len(rank_rng) == self.comm.world_size:
            tg.default_generator.set_state(rank_rng[self.comm.rank])
        elif self.comm.rank != 0:
            tg.manual_seed(rank_seed(self.config.seed + ckpt.step, self.comm.rank))
        self.step = ckpt.step
        self.history = [StepLog(*h) for h in ckpt.extra.get("history", [])]
        self.evals = list(ckpt.extra.get("evals", []))

    # ---------------------------------------------------------------- the loop
    def run(self, progress: bool = True, log: Callable[[str], None] = print) -> list[StepLog]:
        """Train until max_iters, evaluating, checkpointing and plotting along the way."""
        c = self.config
        out = Path(c.out_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"Trainer.run: out_dir={str(out)!r} exists and is not a folder")
        if not self.is_main:  # the other ranks compute and communicate; rank 0 speaks and writes
            progress, log = False, _silent
        else:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "config.json", json.dumps(dataclasses.asdict(c), indent=2))
        log(f"model: {self.model.num_parameters():,} parameters; vocab {self.tokenizer.vocab_size}; "
            f"{len(self.train_tokens):,} train / {len(self.val_tokens):,} val tokens; "
            f"{self.tokens_per_step} tokens per step"
            + (f" over {self.comm.world_size} ranks" if self.comm.world_size > 1 else ""))
        bar = None
        if progress:
            tqdm = require("tqdm", "course", "the training progress bar", hint="Or pass progress=False.").tqdm
            bar = tqdm(total=c.max_iters, initial=self.step, desc="train", dynamic_ncols=True, mininterval=0.5)
        try:
            while self.step < c.max_iters:
                loss = self.train_step()
                last = self.history[-1]
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{last.lr:.2e}",
                                    tok_s=f"{self.tokens_per_step / max(last.seconds, 1e-9):,.0f}")
                if self.step % c.eval_interval == 0 or self.step == c.max_iters:
                    ev = self.estimate_loss()
                    msg = f"step {self.step}: train loss {ev['train']:.4f}, val loss {ev['val']:.4f}"
                    (bar.write if bar is not None else log)(msg)
                    if self.is_main:
                        self.plot(out / "loss.png")
                if c.checkpoint_interval and self.step % c.checkpoint_interval == 0 and self.step < c.max_iters:
                    path = self.save(out / "ckpt.npz")
                    (bar.write if bar is not None else log)(f"step {self.step}: checkpoint saved to {path}")
        finally:
            if bar is not None:
                bar.close()
        self.save(out / "ckpt.npz")
        if self.is_main:
            self.plot(out / "loss.png")
        return self.history

    def plot(self, path: str | Path) -> Path | None:
        """The loss curve (per-step training loss, and the evaluations) as a PNG. (In data-parallel
        training only rank 0 calls it: see train.)"""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            return None  # plots are optional: training never fails for want of matplotlib
        fig = Figure(figsize=(7, 4.5))
        ax = fig.add_subplot()
        if self.history:
            ax.plot([h.step for h in self.history], [h.loss for h in self.history], lw=0.8, alpha=0.6,
                    label="train (each step's batch)")
        if self.evals:
            steps = [e["step"] for e in self.evals]
            # markers only where an evaluation ran: the lines between them are not measurements
            n = f"{len(steps)} evaluation{'s' if len(steps) != 1 else ''}, markers"
            ax.plot(steps, [e["train"] for e in self.evals], "o-", label=f"train split ({n})")
            ax.plot(steps, [e["val"] for e in self.evals], "s-", label=f"val split ({n})")
        ax.axhline(math.log(self.tokenizer.vocab_size), color="gray", ls=":", label="uniform guess: ln(vocab)")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats / token)")
        ax.set_title(f"GPT {self.config.n_layer}x{self.config.n_embd}, {self.config.tokenizer} tokens")
        ax.legend()
        ax.grid(alpha=0.3)
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))


def _silent(message: str) -> None:
    """The log of the ranks other than 0."""


def load_model(path: str | Path) -> tuple[GPT, Tokenizer, dict[str, Any]]:
    """A trained model (in eval mode), its tokenizer and its config, from a training checkpoint."""
    ckpt = load_checkpoint(path)
    if "model" not in ckpt.config or ckpt.tokenizer is None:
        raise ValueError(f"checkpoint {str(path)!r} has no model config or tokenizer; was it written by Trainer?")
    dtype = ckpt.config.get("train", {}).get("dtype", "float32")
    model = GPT(GPTConfig.from_dict(ckpt.config["model"]), dtype=dtype)
    restore(ckpt, model)
    tokenizer = ckpt.get_tokenizer()
    assert tokenizer is not None
    return model.eval(), tokenizer, ckpt.config
