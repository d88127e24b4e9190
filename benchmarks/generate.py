"""Generation speed: a batch of 64 sequences sampled in parallel, with and without the KV cache;
then the batched decoder at batch 1, 16 and 64, with the preallocated cache against the old
concatenating one.

Without the cache every new token recomputes the whole context (T positions); with it, each step
feeds only the newest token and attends to the stored keys and values. Both runs sample the
same tokens (same seed), which the script checks.

The second part times the decode loop alone (the same fed tokens, no sampling) on a ~0.2M-parameter
GPT: `nn.KVCache` writes each new key and value into preallocated buffers, the baseline (the cache
as it was before, kept here only for the comparison) concatenates the whole history at every
token. It also times `nn.Decoder` on ragged prompts (left padding, a key-padding mask and per-row
positions), and checks that the two caches give the same logits.

    python benchmarks/generate.py                 # nanoGPT's shakespeare-char CPU model size
    python benchmarks/generate.py --new-tokens 60 --prompt-len 4
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ.get("BENCH_THREADS", "1"))

import numpy as np  # noqa: E402

import nn  # noqa: E402
import tinygrad_lite as tg  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--prompt-len", type=int, default=4)
    p.add_argument("--new-tokens", type=int, default=60, help="kept below block_size - prompt_len by default, "
                   "so the cache never has to be rebuilt")
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--vocab-size", type=int, default=65)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    config = nn.GPTConfig(block_size=args.block_size, vocab_size=args.vocab_size, n_layer=args.n_layer,
                          n_head=args.n_head, n_embd=args.n_embd)
    model = nn.GPT(config, generator=tg.Generator(0)).eval()
    prompt = np.asarray(tg.Generator(1).integers(0, config.vocab_size, (args.batch, args.prompt_len)))
    print(f"model: {model.num_parameters():,} parameters, block_size {config.block_size}; batch {args.batch}, "
          f"prompt {args.prompt_len} tokens, {args.new_tokens} new tokens each; float32, "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    results = {}
    for _ in range(args.repeats):  # interleaved, best of `repeats` for each
        for use_cache in (True, False):
            t = time.perf_counter()
            out = model.generate(prompt, args.new_tokens, top_k=10, use_cache=use_cache, generator=tg.Generator(2))
            secs = time.perf_counter() - t
            best = results.get(use_cache)
            if best is None or secs < best[0]:
                results[use_cache] = (secs, out.numpy())
    same = np.array_equal(results[True][1], results[False][1])
    new = args.batch * args.new_tokens
    for use_cache in (True, False):
        secs = results[use_cache][0]
        print(f"{'with KV cache' if use_cache else 'no cache     '}: {secs:7.3f} s   {new / secs:10,.0f} new tok/s")
    print(f"speedup from the cache: {results[False][0] / results[True][0]:.1f}x; identical samples: {same}")
    agree = decoder_benchmark(args)
    return 0 if same and agree else 1


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
    dec = nn.Decoder(model, prompts)
    for t in range(fed.shape[1]):
        dec.append(fed[:, t])
    return dec.logits


def decoder_benchmark(args: argparse.Namespace) -> bool:
    config = nn.GPTConfig(block_size=args.block_size, vocab_size=args.vocab_size, n_layer=4, n_head=4, n_embd=64)
    model = nn.GPT(config, generator=tg.Generator(0)).eval()
    print(f"\ndecode loop: model {model.num_parameters():,} parameters (n_layer 4, n_embd 64), prompt "
          f"{args.prompt_len} tokens, {args.new_tokens} fed tokens per row; best of {args.repeats}")
    agree = True
    for batch in (1, 16, 64):
        rng = np.random.default_rng(batch)
        prompt = rng.integers(0, config.vocab_size, (batch, args.prompt_len))
        fed = rng.integers(0, config.vocab_size, (batch, args.new_tokens))
        ragged = [row[: 1 + i % args.prompt_len].tolist() for i, row in enumerate(prompt)]  # lengths 1 ... prompt_len
        best: dict[str, tuple[float, np.ndarray]] = {}
        for _ in range(args.repeats):  # interleaved
            for name in ("concat", "prealloc", "Decoder"):
                t = time.perf_counter()
                if name == "Decoder":
                    out = decoder_loop(model, ragged, fed)
                else:
                    cache = ConcatKVCache(config.n_layer) if name == "concat" else nn.KVCache(config.n_layer,
                                                                                              config.block_size)
                    out = decode_loop(model, prompt, fed, cache)
                secs = time.perf_counter() - t
                if name not in best or secs < best[name][0]:
                    best[name] = (secs, out)
        same = np.allclose(best["concat"][1], best["prealloc"][1], rtol=1e-5, atol=1e-6)
        agree &= same
        rate = {name: batch * args.new_tokens / secs for name, (secs, _) in best.items()}
        print(f"batch {batch:3d}: concat {rate['concat']:9,.0f} tok/s   prealloc {rate['prealloc']:9,.0f} tok/s "
              f"({rate['prealloc'] / rate['concat']:.2f}x)   Decoder, ragged prompts {rate['Decoder']:9,.0f} tok/s "
              f"({rate['Decoder'] / rate['concat']:.2f}x); same logits: {same}")
    return agree


if __name__ == "__main__":
    sys.exit(main())
