"""GPT training speed: tinygrad_lite vs PyTorch eager on the CPU, side by side.

Both frameworks train the same model (nanoGPT's shakespeare-char CPU size by default) from the
same initial weights on the same batches, with AdamW (decay on matrices only) and gradient
clipping at 1.0. Steps alternate (ours, theirs, ours, ...) so both see the same machine load.
Printed: tokens/s of each, the ratio, model FLOPs utilization against a measured float32 matmul
peak, the loss difference between the two (a check that they compute the same thing), and the
speed and peak resident memory of each framework alone (each in a child process of its own, one
after the other: no second thread pool, but not the same moment of machine load).

    python benchmarks/gpt_train.py                       # 30 timed steps each, 1 thread each
    BENCH_THREADS=2 python benchmarks/gpt_train.py       # 2 BLAS / intra-op threads each
    python benchmarks/gpt_train.py --steps 10 --profile  # also cProfile our step

Threads: both frameworks get BENCH_THREADS threads (default 1). Two thread pools in one process
(OpenBLAS's for NumPy, OpenMP's for PyTorch) spin-wait against each other when steps alternate,
which slows whichever runs second by several times on a 2-core machine; one thread each is the
fair interleaved comparison there.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

THREADS = os.environ.setdefault("BENCH_THREADS", "1")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)  # must happen before NumPy / PyTorch start their pools

import numpy as np  # noqa: E402
from machine import machine_line  # noqa: E402

import nn  # noqa: E402
import tinygrad_lite as tg  # noqa: E402


def torch_gpt(config: nn.GPTConfig, torch):  # noqa: ANN001, ANN201 - an independent PyTorch GPT
    """Our GPT's layout and parameter names (so our state_dict loads), written in PyTorch.
    forward(idx, targets) is the training loss; forward(idx, caches=..., past=...) decodes with a KV
    cache (benchmarks/generate.py): per-layer preallocated (B, n_head, block_size, head_dim) key and
    value buffers, `past` positions already in them, and it returns the last position's logits."""
    tnn, tF = torch.nn, torch.nn.functional
    C, H = config.n_embd, config.n_head

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = tnn.LayerNorm(C), tnn.LayerNorm(C)
            self.attn = tnn.Module()
            self.attn.c_attn, self.attn.c_proj = tnn.Linear(C, 3 * C), tnn.Linear(C, C)
            self.mlp = tnn.Module()
            self.mlp.c_fc, self.mlp.c_proj = tnn.Linear(C, 4 * C), tnn.Linear(4 * C, C)

        def forward(self, x, cache=None, past=0):
            B, T, _ = x.shape
            q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            if cache is not None:
                k_cache, v_cache = cache
                k_cache[:, :, past : past + T] = k  # write the new positions in place
                v_cache[:, :, past : past + T] = v
                k, v = k_cache[:, :, : past + T], v_cache[:, :, : past + T]
            # a whole sequence (training, a prompt at past = 0) is causal; one new query sees every key
            y = tF.scaled_dot_product_attention(q, k, v, is_causal=T > 1).transpose(1, 2).reshape(B, T, C)
            x = x + self.attn.c_proj(y)
            return x + self.mlp.c_proj(tF.gelu(self.mlp.c_fc(self.ln_2(x))))

    class GPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = tnn.ModuleDict({
                "wte": tnn.Embedding(config.vocab_size, C), "wpe": tnn.Embedding(config.block_size, C),
                "h": tnn.ModuleList(Block() for _ in range(config.n_layer)), "ln_f": tnn.LayerNorm(C),
            })
            self.lm_head = tnn.Linear(C, config.vocab_size, bias=False)
            self.lm_head.weight = self.transformer.wte.weight

        def forward(self, idx, targets=None, caches=None, past=0):
            t = self.transformer
            x = t.wte(idx) + t.wpe(torch.arange(past, past + idx.shape[1]))
            for i, block in enumerate(t.h):
                x = block(x, None if caches is None else caches[i], past)
            if targets is None:
                return self.lm_head(t.ln_f(x[:, -1]))
            logits = self.lm_head(t.ln_f(x))
            return tF.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    return GPT()


def matmul_peak_flops(n: int = 1024, repeats: int = 5) -> float:
    """The float32 matmul rate NumPy's BLAS reaches here: the ceiling for MFU."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:  # noqa: ANN001
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def linear_gemm_times(model: nn.GPT, rows: int, torch, repeats: int = 15) -> tuple[float, float | None]:  # noqa: ANN001
    """Seconds for the matrix products of every Linear layer in one training step alone (forward
    y = x·Wᵀ, backward dx = g·W and dW = gᵀ·x; the tied LM head included), in NumPy and in PyTorch,
    interleaved, medians. The same products are in both frameworks' steps; nothing else is."""
    rng = np.random.default_rng(0)
    shapes = [tuple(p.shape) for name, p in model.named_parameters() if p.ndim == 2 and "wpe" not in name]
    mats = [(rng.standard_normal((rows, i), dtype=np.float32), rng.standard_normal((o, i), dtype=np.float32),
             rng.standard_normal((rows, o), dtype=np.float32)) for o, i in shapes]
    tmats = [tuple(torch.from_numpy(a) for a in m) for m in mats] if torch is not None else None

    def products(ms) -> None:  # noqa: ANN001
        for x, w, g in ms:
            x @ w.T, g @ w, g.T @ x

    times_np, times_torch = [], []
    for _ in range(repeats):
        times_np.append(_timed(lambda: products(mats)))
        if tmats is not None:
            times_torch.append(_timed(lambda: products(tmats)))
    return float(np.median(times_np)), (float(np.median(times_torch)) if times_torch else None)


def flops_per_token(model: nn.GPT) -> float:
    """6N for the weights' forward + backward, plus attention's 12·L·C·T (PaLM, appendix B;
    the estimate nanoGPT uses for MFU). N excludes the position embeddings."""
    c = model.config
    n = model.num_parameters() - c.block_size * c.n_embd
    return 6 * n + 12 * c.n_layer * c.n_embd * c.block_size


def build(config: nn.GPTConfig, want_torch: bool):  # noqa: ANN201
    ours = nn.GPT(config, generator=tg.Generator(0))
    ours_opt = ours.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    if not want_torch:
        return ours, ours_opt, None, None, None
    import torch

    torch.set_num_threads(int(THREADS))
    theirs = torch_gpt(config, torch)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
                           | {"lm_head.weight": torch.from_numpy(ours.lm_head.weight.numpy().copy())})
    decay = [p for p in theirs.parameters() if p.dim() >= 2]
    no_decay = [p for p in theirs.parameters() if p.dim() < 2]
    theirs_opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                   lr=1e-3, betas=(0.9, 0.99), foreach=False)
    return ours, ours_opt, theirs, theirs_opt, torch


def ours_step(model, opt, x, y) -> float:  # noqa: ANN001
    opt.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    nn.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def torch_step(model, opt, x, y, torch) -> float:  # noqa: ANN001
    opt.zero_grad(set_to_none=True)
    loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux VmHWM; unlike ru_maxrss it is not inherited
    from the parent that spawned us)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30, help="timed steps per framework")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--vocab-size", type=int, default=65)
    p.add_argument("--profile", action="store_true", help="cProfile 10 of our steps and print the top functions")
    p.add_argument("--only", choices=["ours", "torch"], help=argparse.SUPPRESS)  # child process for memory
    args = p.parse_args()

    config = nn.GPTConfig(block_size=args.block_size, vocab_size=args.vocab_size, n_layer=args.n_layer,
                          n_head=args.n_head, n_embd=args.n_embd)
    have_torch = False
    if args.only != "ours":  # the memory child for ours must not even load torch
        try:
            import torch  # noqa: F401

            have_torch = True
        except ImportError:
            pass
    ours, ours_opt, theirs, theirs_opt, torch = build(config, have_torch)
    gen = tg.Generator(1)
    batches = [np.asarray(gen.integers(0, config.vocab_size, (args.batch_size, config.block_size + 1)))
               for _ in range(args.warmup + args.steps)]
    tokens = args.batch_size * config.block_size

    if args.only:  # child process: one framework alone (no other thread pool): speed, peak RSS, page faults
        import resource

        times = []
        for i, b in enumerate(batches):
            if i == args.warmup:
                faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            if args.only == "ours":
                ours_step(ours, ours_opt, b[:, :-1], b[:, 1:])
            else:
                tb = torch.from_numpy(b)
                torch_step(theirs, theirs_opt, tb[:, :-1], tb[:, 1:], torch)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / args.steps
        print(json.dumps({"peak_rss_mb": peak_rss_mb(), "tok_s": tokens / float(np.median(times)),
                          "faults_per_step": faults}))
        return 0

    print(machine_line())
    print(f"model: {ours.num_parameters():,} parameters (n_layer={config.n_layer}, n_head={config.n_head}, "
          f"n_embd={config.n_embd}, block_size={config.block_size}, vocab={config.vocab_size}); "
          f"batch {args.batch_size} x {config.block_size} = {tokens} tokens/step; float32")
    print(f"numpy {np.__version__}" + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
                                        if torch else ", torch not installed"))
    peak_before = matmul_peak_flops()  # measured before and after; the higher is the ceiling
    times_ours, times_theirs, loss_diff = [], [], []
    for i, b in enumerate(batches):
        t0 = time.perf_counter()
        lo = ours_step(ours, ours_opt, b[:, :-1], b[:, 1:])
        t1 = time.perf_counter()
        if torch is not None:
            tb = torch.from_numpy(b)
            lt = torch_step(theirs, theirs_opt, tb[:, :-1], tb[:, 1:], torch)
            t2 = time.perf_counter()
            loss_diff.append(abs(lo - lt))
        if i >= args.warmup:
            times_ours.append(t1 - t0)
            if torch is not None:
                times_theirs.append(t2 - t1)

    peak = max(peak_before, matmul_peak_flops())
    fpt = flops_per_token(ours)
    tps_ours = tokens / np.median(times_ours)
    print(f"float32 matmul peak (NumPy BLAS, 1024^3): {peak / 1e9:.1f} GFLOP/s; model: {fpt / 1e6:.2f} MFLOP/token")
    print(f"tinygrad_lite: {tps_ours:10,.0f} tok/s  ({np.median(times_ours) * 1e3:.1f} ms/step median)  "
          f"MFU {tps_ours * fpt / peak:.1%}")
    if torch is not None:
        tps_theirs = tokens / np.median(times_theirs)
        print(f"PyTorch eager: {tps_theirs:10,.0f} tok/s  ({np.median(times_theirs) * 1e3:.1f} ms/step median)  "
              f"MFU {tps_theirs * fpt / peak:.1%}")
        print(f"ratio ours / PyTorch: {tps_ours / tps_theirs:.2f}x   "
              f"(max |loss difference| over {len(loss_diff)} steps: {max(loss_diff):.2e})")
    gemm_np, gemm_torch = linear_gemm_times(ours, tokens, torch)
    line = (f"the step's Linear matrix products alone: NumPy {gemm_np * 1e3:.1f} ms; everything else in our "
            f"step: {(np.median(times_ours) - gemm_np) * 1e3:.1f} ms")
    if gemm_torch is not None:
        line += (f"; PyTorch's products {gemm_torch * 1e3:.1f} ms, everything else in its step: "
                 f"{(np.median(times_theirs) - gemm_torch) * 1e3:.1f} ms")
    print(line)
    alone = {}
    for name in ("ours", "torch") if torch is not None else ("ours",):
        child = subprocess.run([sys.executable, __file__, "--only", name, "--steps", str(args.steps),
                                "--batch-size", str(args.batch_size), "--block-size", str(args.block_size),
                                "--n-layer", str(args.n_layer), "--n-head", str(args.n_head),
                                "--n-embd", str(args.n_embd), "--vocab-size", str(args.vocab_size)],
                               capture_output=True, text=True, check=True)
        alone[name] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{name} alone in its own process: {alone[name]['tok_s']:10,.0f} tok/s, "
              f"peak RSS {alone[name]['peak_rss_mb']:.0f} MB, {alone[name]['faults_per_step']:,.0f} page faults/step")
    if "torch" in alone:
        print(f"ratio ours / PyTorch, each alone: {alone['ours']['tok_s'] / alone['torch']['tok_s']:.2f}x")
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for b in batches[:10]:
            ours_step(ours, ours_opt, b[:, :-1], b[:, 1:])
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
