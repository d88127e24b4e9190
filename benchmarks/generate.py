"""Generation speed: a batch of 64 sequences sampled in parallel, with and without the KV cache.

Without the cache every new token recomputes the whole context (T positions); with it, each step
feeds only the newest token and attends to the stored keys and values. Both runs sample the
same tokens (same seed), which the script checks.

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
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
