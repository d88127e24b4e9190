"""Sampling speed: `nn.generate` against a PyTorch KV-cache sampling loop, on the same weights.

Both sample a batch of continuations of the same prompts with temperature, top-k and top-p, and
return the log-probability of every sampled token, as rl/ does. Ours is `model.generate(...,
return_logprobs=True)` (an `nn.Decoder` with a preallocated KV cache, one sampling step per token);
theirs is written here: an independent PyTorch GPT with our weights copied in, a preallocated
cache per layer, `torch.inference_mode`, and the same sampling math (temperature, top-k, then
top-p on the renormalized distribution, log-softmax, one uniform draw per row inverted through
the CDF). The two alternate within one process (ours, theirs, ours, ...), and the best of the
repeats of each is reported, with the ratio.

Checks, per model: greedy decoding gives the same tokens in both, and the log-probabilities of
our sampled tokens under PyTorch's filtered distributions agree with ours.

    python benchmarks/generate.py               # batches 1, 16, 64, 256; GPTs of ~0.2M, ~1M, ~3M parameters
    python benchmarks/generate.py --quick       # fewer repeats and tokens: about 3 minutes
    BENCH_THREADS=2 python benchmarks/generate.py
    python benchmarks/generate.py --cache-study # also: cache vs none, preallocated vs concatenating cache

Threads: both frameworks get BENCH_THREADS threads (default 1), as in gpt_train.py: two thread
pools in one process spin-wait against each other when runs alternate.

--cache-study adds what the KV cache buys (ours with and without it), and the decode loop alone
with the preallocated cache against the concatenating one it replaced (kept here as the baseline),
and through `nn.Decoder` on ragged prompts.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

THREADS = os.environ.setdefault("BENCH_THREADS", "1")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)  # must happen before NumPy / PyTorch start their pools

import numpy as np  # noqa: E402
from gpt_train import torch_gpt  # noqa: E402 - the one PyTorch GPT of the benchmarks
from machine import machine_line  # noqa: E402

import nn  # noqa: E402
import tinygrad_lite as tg  # noqa: E402

SIZES = {  # name -> (n_layer, n_head, n_embd); block_size 64, vocabulary 65 (shakespeare-char)
    "0.2M": (4, 4, 64),
    "1M": (5, 4, 128),
    "3M": (4, 8, 256),
}
SAMPLING = {"temperature": 0.8, "top_k": 20, "top_p": 0.95}


# ---------------------------------------------------------------------------------------- PyTorch
def torch_sample(logits, temperature, top_k, top_p, greedy, forced, torch):  # noqa: ANN001, ANN201
    """(B, V) float32 logits -> (tokens, their log-probabilities), the math of nn.generate's: temperature,
    top-k (ties with the k-th kept), log-softmax, top-p on the sorted probabilities (a token stays
    while the mass ahead of it is below top_p), log-softmax again, inverse-CDF draw. forced: take
    these tokens instead of drawing (to score our samples under PyTorch's distributions)."""
    if greedy:
        logp = torch.log_softmax(logits, dim=-1)
        tokens = logp.argmax(dim=-1) if forced is None else forced
        return tokens, logp.gather(1, tokens[:, None])[:, 0]
    x = logits / temperature
    if top_k is not None and top_k < x.shape[-1]:
        x = x.masked_fill(x < torch.topk(x, top_k, dim=-1).values[:, -1:], -float("inf"))
    logp = torch.log_softmax(x, dim=-1)
    if top_p is not None:
        sorted_logp, order = torch.sort(logp, dim=-1, descending=True, stable=True)
        p = sorted_logp.exp()
        drop = torch.empty_like(p, dtype=torch.bool).scatter_(1, order, (p.cumsum(dim=-1) - p) >= top_p)
        logp = torch.log_softmax(logp.masked_fill(drop, -float("inf")), dim=-1)
    if forced is None:
        cdf = logp.exp().cumsum(dim=-1)
        u = torch.rand(cdf.shape[0], 1)
        tokens = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=cdf.shape[-1] - 1)[:, 0]
    else:
        tokens = forced
    return tokens, logp.gather(1, tokens[:, None])[:, 0]


def torch_generate(model, config, prompt, n, torch, greedy=False, forced=None, temperature=1.0,  # noqa: ANN001, ANN201
                   top_k=None, top_p=None):
    """(B, T) prompt -> ((B, T + n) tokens, (B, n) log-probabilities), with a preallocated cache."""
    B, T = prompt.shape
    hd = config.n_embd // config.n_head
    with torch.inference_mode():
        caches = [(torch.empty(B, config.n_head, config.block_size, hd), torch.empty(B, config.n_head,
                   config.block_size, hd)) for _ in range(config.n_layer)]
        out = torch.empty(B, T + n, dtype=torch.long)
        out[:, :T] = torch.from_numpy(prompt)
        logprobs = torch.empty(B, n)
        logits = model(out[:, :T], caches=caches)
        for t in range(n):
            tokens, lp = torch_sample(logits, temperature, top_k, top_p, greedy,
                                      None if forced is None else forced[:, t], torch)
            out[:, T + t], logprobs[:, t] = tokens, lp
            if t < n - 1:
                logits = model(out[:, T + t : T + t + 1], caches=caches, past=T + t)
    return out.numpy(), logprobs.numpy()


def build_torch(ours: nn.GPT, torch):  # noqa: ANN001, ANN201
    theirs = torch_gpt(ours.config, torch).eval()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
                           | {"lm_head.weight": torch.from_numpy(ours.lm_head.weight.numpy().copy())})
    return theirs


# ---------------------------------------------------------------------------------------- comparison
def check(ours: nn.GPT, theirs, prompt: np.ndarray, n: int, torch) -> str:  # noqa: ANN001
    """Greedy tokens in both; our sampled tokens scored under PyTorch's filtered distributions."""
    g_ours, g_lp = ours.generate(prompt, n, greedy=True, return_logprobs=True)
    g_theirs, g_lp_theirs = torch_generate(theirs, ours.config, prompt, n, torch, greedy=True)
    same = np.array_equal(g_ours.numpy(), g_theirs)
    s_ours, s_lp = ours.generate(prompt, n, return_logprobs=True, generator=tg.Generator(5), **SAMPLING)
    forced = torch.from_numpy(s_ours.numpy()[:, prompt.shape[1]:])
    _, s_lp_theirs = torch_generate(theirs, ours.config, prompt, n, torch, forced=forced, **SAMPLING)
    excluded = int(np.isinf(s_lp_theirs).sum())  # our token outside PyTorch's top-k / top-p set
    finite = np.isfinite(s_lp_theirs)
    return (f"greedy tokens identical: {same} (max |log p diff| {np.abs(g_lp.numpy() - g_lp_theirs).max():.1e}); "
            f"our sampled tokens under PyTorch's filters: max |log p diff| "
            f"{np.abs(s_lp.numpy()[finite] - s_lp_theirs[finite]).max():.1e}, excluded by PyTorch {excluded}")


def compare(size: str, batches: list[int], args: argparse.Namespace, torch) -> list[tuple]:  # noqa: ANN001
    n_layer, n_head, n_embd = SIZES[size]
    config = nn.GPTConfig(block_size=64, vocab_size=65, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    ours = nn.GPT(config, generator=tg.Generator(0)).eval()
    theirs = build_torch(ours, torch) if torch is not None else None
    print(f"\nGPT {size}: {ours.num_parameters():,} parameters (n_layer {n_layer}, n_head {n_head}, n_embd {n_embd}, "
          f"block_size 64, vocab 65)")
    if torch is not None:
        prompt = np.asarray(tg.Generator(1).integers(0, 65, (16, args.prompt_len)))
        print(f"  check at batch 16, {args.new_tokens} tokens: {check(ours, theirs, prompt, args.new_tokens, torch)}")
    rows = []
    for batch in batches:
        prompt = np.asarray(tg.Generator(1).integers(0, 65, (batch, args.prompt_len)))
        best = {"ours": np.inf, "torch": np.inf}
        for rep in range(args.repeats + 1):  # the first round warms up and is not counted
            for who in ("ours", "torch") if torch is not None else ("ours",):
                t0 = time.perf_counter()
                if who == "ours":
                    ours.generate(prompt, args.new_tokens, return_logprobs=True, generator=tg.Generator(rep),
                                  **SAMPLING)
                else:
                    torch.manual_seed(rep)
                    torch_generate(theirs, config, prompt, args.new_tokens, torch, **SAMPLING)
                if rep > 0:
                    best[who] = min(best[who], time.perf_counter() - t0)
        rate = {who: batch * args.new_tokens / secs for who, secs in best.items()}
        line = f"  batch {batch:3d}: ours {rate['ours']:9,.0f} tok/s"
        if torch is not None:
            ratio = rate["ours"] / rate["torch"]
            target = 1.0 if batch == 1 else 1.5
            line += (f"   PyTorch {rate['torch']:9,.0f} tok/s   ours/PyTorch {ratio:5.2f}x "
                     f"(target >= {target}: {'met' if ratio >= target else 'not met'})")
            rows.append((size, batch, ratio, ratio >= target))
        print(line, flush=True)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 repeats, 30 new tokens: about 3 minutes")
    p.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    p.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64, 256])
    p.add_argument("--prompt-len", type=int, default=4)
    p.add_argument("--new-tokens", type=int, default=None, help="per row (default 60; 30 with --quick)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs of each (default 3; 2 with --quick)")
    p.add_argument("--cache-study", action="store_true", help="also time ours with and without the KV cache, "
                   "and the preallocated cache against a concatenating one")
    args = p.parse_args()
    args.new_tokens = args.new_tokens or (30 if args.quick else 60)
    args.repeats = args.repeats or (2 if args.quick else 3)
    if args.prompt_len + args.new_tokens > 64:
        p.error(f"--prompt-len + --new-tokens must be <= block_size 64, got {args.prompt_len + args.new_tokens}")

    print(machine_line())
    try:
        import torch

        torch.set_num_threads(int(THREADS))
        versions = f"torch {torch.__version__} ({torch.get_num_threads()} thread(s))"
    except ImportError:
        torch, versions = None, "torch is not installed (pip install torch): timing ours only"
    print(f"numpy {np.__version__}, {versions}; float32 models; prompts of {args.prompt_len} tokens, "
          f"{args.new_tokens} new tokens per row; temperature {SAMPLING['temperature']}, top_k {SAMPLING['top_k']}, "
          f"top_p {SAMPLING['top_p']}, log-probs returned; best of {args.repeats} alternating runs")
    rows = []
    for size in args.sizes:
        rows += compare(size, args.batches, args, torch)
    if rows:
        print("\ntargets (ours/PyTorch >= 1.0 at batch 1, >= 1.5 at batch >= 16): "
              + ", ".join(f"{s} b{b} {'met' if ok else 'NOT met'}" for s, b, _, ok in rows))
    if args.cache_study:
        cache_study(args)
    return 0


# ---------------------------------------------------------------------------------------- cache study
def cache_study(args: argparse.Namespace) -> None:
    """Ours with and without the KV cache (batch 64, ~0.8M parameters); then the decode loop alone
    with the preallocated cache against the concatenating one (~0.2M parameters)."""
    config = nn.GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128)
    model = nn.GPT(config, generator=tg.Generator(0)).eval()
    prompt = np.asarray(tg.Generator(1).integers(0, 65, (64, args.prompt_len)))
    best: dict[bool, tuple[float, np.ndarray]] = {}
    for _ in range(args.repeats):
        for use_cache in (True, False):
            t = time.perf_counter()
            out = model.generate(prompt, args.new_tokens, top_k=10, use_cache=use_cache, generator=tg.Generator(2))
            secs = time.perf_counter() - t
            if use_cache not in best or secs < best[use_cache][0]:
                best[use_cache] = (secs, out.numpy())
    print(f"\ncache study: ours, {model.num_parameters():,} parameters, batch 64, top_k 10, best of {args.repeats}")
    for use_cache in (True, False):
        name = "with KV cache" if use_cache else "no cache     "
        print(f"  {name}: {64 * args.new_tokens / best[use_cache][0]:9,.0f} tok/s")
    print(f"  speedup from the cache: {best[False][0] / best[True][0]:.1f}x; identical samples: "
          f"{np.array_equal(best[True][1], best[False][1])}")
    decoder_benchmark(args)


class ConcatLayerKV:
    """The baseline: the cache before preallocation, which concatenated the whole history at every
    token (tg.cat copies all cached positions, so a generation copies O(T²) values)."""

    def __init__(self) -> None:
        self.k: tg.Tensor | None = None
        self.v: tg.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: tg.Tensor, v: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
        if self.k is not None:
            k, v = tg.cat([self.k, k], axis=2), tg.cat([self.v, v], axis=2)
        self.k, self.v = k.detach(), v.detach()
        return k, v


class ConcatKVCache:
    def __init__(self, n_layer: int) -> None:
        self.layers = [ConcatLayerKV() for _ in range(n_layer)]

    @property
    def length(self) -> int:
        return self.layers[0].length

    def __getitem__(self, i: int) -> ConcatLayerKV:
        return self.layers[i]


def decode_loop(model: nn.GPT, prompt: np.ndarray, fed: np.ndarray, cache: object) -> np.ndarray:
    """Prefill, then feed fed[:, t] one step at a time; returns the last step's logits."""
    with tg.no_grad():
        logits, _ = model(prompt, cache=cache)
        for t in range(fed.shape[1]):
            logits, _ = model(fed[:, t : t + 1], cache=cache)
    return logits.numpy()[:, -1]


def decoder_loop(model: nn.GPT, prompts: list[list[int]], fed: np.ndarray) -> np.ndarray:
    """The same through nn.Decoder (rl's path): left padding, a key-padding mask, per-row positions."""
    dec = nn.Decoder(model, prompts)
    for t in range(fed.shape[1]):
        dec.append(fed[:, t])
    return dec.logits


def decoder_benchmark(args: argparse.Namespace) -> None:
    config = nn.GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=64)
    model = nn.GPT(config, generator=tg.Generator(0)).eval()
    print(f"decode loop alone: {model.num_parameters():,} parameters, {args.new_tokens} fed tokens per row; "
          f"best of {args.repeats}")
    for batch in (1, 16, 64):
        rng = np.random.default_rng(batch)
        prompt = rng.integers(0, 65, (batch, args.prompt_len))
        fed = rng.integers(0, 65, (batch, args.new_tokens))
        ragged = [row[: 1 + i % args.prompt_len].tolist() for i, row in enumerate(prompt)]  # lengths 1 ... prompt_len
        best: dict[str, tuple[float, np.ndarray]] = {}
        for _ in range(args.repeats):  # interleaved
            for name in ("concat", "prealloc", "Decoder"):
                t = time.perf_counter()
                if name == "Decoder":
                    out = decoder_loop(model, ragged, fed)
                else:
                    out = decode_loop(model, prompt, fed, ConcatKVCache(4) if name == "concat" else nn.KVCache(4, 64))
                secs = time.perf_counter() - t
                if name not in best or secs < best[name][0]:
                    best[name] = (secs, out)
        same = np.allclose(best["concat"][1], best["prealloc"][1], rtol=1e-5, atol=1e-6)
        rate = {name: batch * args.new_tokens / secs for name, (secs, _) in best.items()}
        print(f"  batch {batch:3d}: concat {rate['concat']:9,.0f} tok/s   prealloc {rate['prealloc']:9,.0f} tok/s "
              f"({rate['prealloc'] / rate['concat']:.2f}x)   Decoder, ragged prompts {rate['Decoder']:9,.0f} tok/s "
              f"({rate['Decoder'] / rate['concat']:.2f}x); same logits: {same}")


if __name__ == "__main__":
    sys.exit(main())
