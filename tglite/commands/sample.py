"""`tglite sample --ckpt PATH --prompt TEXT`: generate text from a trained GPT checkpoint."""
from __future__ import annotations

import argparse

from . import positive_int, print_error


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sample",
        help="generate text from a trained GPT checkpoint",
        description="Load a checkpoint written by `tglite train gpt` and continue a prompt, sampling "
        "all requested samples together as one batch with the KV cache.",
    )
    parser.add_argument("--ckpt", required=True, metavar="PATH", help="checkpoint file (ckpt.npz)")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=300, metavar="N", help="tokens to generate")
    parser.add_argument("--num-samples", type=positive_int, default=1, metavar="N", help="samples, drawn as one batch")
    parser.add_argument("--temperature", type=float, default=0.8, help="divides the logits before sampling")
    parser.add_argument("--top-k", type=positive_int, default=None, metavar="K", help="sample among the K likeliest")
    parser.add_argument("--top-p", type=float, default=None, metavar="P",
                        help="sample among the likeliest tokens whose probabilities sum to P (nucleus)")
    parser.add_argument("--greedy", action="store_true", help="always take the most likely token")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:

    import numpy as np

    import tinygrad_lite as tg
    from nn.train import load_model

    try:
        model, tokenizer, _ = load_model(args.ckpt)
        prompt = tokenizer.encode(args.prompt)
        if not prompt:
            raise ValueError("the prompt encodes to no tokens; give a non-empty --prompt")
        idx = np.tile(np.array(prompt, dtype=np.int64), (args.num_samples, 1))
        out = model.generate(idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                             top_p=args.top_p, greedy=args.greedy, generator=tg.Generator(args.seed))
    except (ValueError, RuntimeError, OSError) as e:
        return print_error("sample", e)
    for i, row in enumerate(out.numpy()):
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        print(tokenizer.decode(row.tolist()))
    return 0
