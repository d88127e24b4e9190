"""GPU benchmark: one short script to run when a machine with an NVIDIA GPU is available.

    python benchmarks/gpu.py [--cpu-steps 2] [--gpu-steps 10] [--skip-tests]

1. versions and the GPU;
2. the `gpu` and `cuda_sim` tests, on the device (a pytest subprocess);
3. float32 matmul throughput (TFLOP/s), CuPy on the GPU and NumPy on the CPU: the "peak" that
   the MFU figures below are relative to (measured here, not taken from a data sheet);
4. each Numba CUDA kernel against the same op composed from CuPy calls: time and effective
   bandwidth (bytes the op must read + write, divided by the time), plus the cost of Numba's
   per-launch synchronization on CuPy arrays (see tinygrad_lite/kernels/cuda.py);
5. GPT training throughput (n_layer=8, n_head=8, n_embd=512, block_size=256, batch 32): tokens/s
   and MFU on the GPU and on our CPU path, side by side.

Without a usable GPU it says so and exits with status 0, having run nothing.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine_line  # noqa: E402

import nn  # noqa: E402
import tinygrad_lite as tg  # noqa: E402

CONFIG = dict(n_layer=8, n_head=8, n_embd=512, block_size=256, vocab_size=65, dropout=0.0)
BATCH = 32


def gpu_time(fn: Callable[[], object], repeats: int = 20, warmup: int = 3) -> float:
    """Median seconds per call, timed with CUDA events on the current stream."""
    import cupy

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) / 1e3)
    return statistics.median(times)


def cpu_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ------------------------------------------------------------------ 1. versions
def versions() -> str:
    import cupy
    import numba

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    cc = f"{props['major']}.{props['minor']}"
    mem = props["totalGlobalMem"] / 2**30
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"cupy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
          f"driver {cupy.cuda.runtime.driverGetVersion()}")
    print(f"GPU: {name} (compute capability {cc}, {mem:.0f} GiB, {props['multiProcessorCount']} SMs); "
          f"CPU threads: {os.cpu_count()}")
    return name


# ------------------------------------------------------------------ 2. tests
def run_tests() -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "gpu or cuda_sim", "tests"]
    print("\n$ " + " ".join(cmd[1:]), flush=True)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    tail = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"  {tail}  (exit code {done.returncode})")
    if done.returncode not in (0,):
        print(done.stdout[-3000:])


# ------------------------------------------------------------------ 3. matmul
def matmul_tflops() -> tuple[float, float]:
    import cupy

    n = 8192
    a = cupy.random.standard_normal((n, n), dtype=cupy.float32)
    b = cupy.random.standard_normal((n, n), dtype=cupy.float32)
    gpu = 2 * n**3 / gpu_time(lambda: a @ b, repeats=10) / 1e12
    m = 2048
    ca, cb = np.random.standard_normal((m, m)).astype(np.float32), np.random.standard_normal((m, m)).astype(np.float32)
    cpu = 2 * m**3 / cpu_time(lambda: ca @ cb) / 1e12
    tf32 = os.environ.get("CUPY_TF32", "0")
    print(f"\nmatmul float32: GPU {gpu:.1f} TFLOP/s ({n}x{n}, CUPY_TF32={tf32}); CPU (NumPy) {cpu * 1e3:.0f} "
          f"GFLOP/s ({m}x{m})")
    return gpu, cpu


# ------------------------------------------------------------------ 4. kernels
def kernels_vs_cupy() -> None:
    import cupy
    import cupyx

    from embeddings import word2vec_fast
    from tinygrad_lite import kernels

    K, W = kernels.load("cuda"), word2vec_fast.cuda_kernels()
    rs = cupy.random.RandomState(0)
    f32 = cupy.float32
    rows = []

    def row(name: str, nbytes: int, ours: Callable[[], object], ref: Callable[[], object]) -> None:
        t_ours, t_ref = gpu_time(ours), gpu_time(ref)
        rows.append((name, t_ours, t_ref, nbytes))

    # softmax over attention rows: (B·H·T, T)
    x = rs.standard_normal((BATCH * 8 * 256, 256), dtype=f32)
    g = rs.standard_normal(x.shape, dtype=f32)
    y = K.softmax_forward(x)

    def cp_softmax():
        e = cupy.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    row("softmax fwd (65536x256)", 2 * x.nbytes, lambda: K.softmax_forward(x), cp_softmax)
    row("softmax bwd", 3 * x.nbytes, lambda: K.softmax_backward(y, g),
        lambda: y * (g - (g * y).sum(axis=1, keepdims=True)))

    # layer norm over the residual stream: (B·T, C)
    h = rs.standard_normal((BATCH * 256, 512), dtype=f32)
    gh = rs.standard_normal(h.shape, dtype=f32)
    w, b = rs.standard_normal(512, dtype=f32), rs.standard_normal(512, dtype=f32)
    _, xhat, rstd = K.layer_norm_forward(h, w, b, 1e-5)

    def cp_ln():
        mu = h.mean(axis=1, keepdims=True)
        c = h - mu
        r = 1.0 / cupy.sqrt((c * c).mean(axis=1, keepdims=True) + 1e-5)
        return c * r * w + b

    def cp_ln_bwd():
        gx = gh * w
        dx = rstd * (gx - gx.mean(axis=1, keepdims=True) - xhat * (gx * xhat).mean(axis=1, keepdims=True))
        return dx, (gh * xhat).sum(axis=0), gh.sum(axis=0)

    # forward writes y and x̂ (saved for backward, as the engine's op keeps them); backward reads g and x̂
    row("layernorm fwd (8192x512)", 3 * h.nbytes, lambda: K.layer_norm_forward(h, w, b, 1e-5), cp_ln)
    row("layernorm bwd", 3 * h.nbytes, lambda: K.layer_norm_backward(gh, xhat, rstd, w), cp_ln_bwd)

    # cross-entropy with a BPE-sized vocabulary: (B·T, V)
    logits = rs.standard_normal((BATCH * 256, 8192), dtype=f32)
    target = rs.randint(0, 8192, BATCH * 256).astype(cupy.int64)
    _, lse = K.cross_entropy_forward(logits, target)
    grow = cupy.full(logits.shape[0], 1.0 / logits.shape[0], dtype=f32)
    ar = cupy.arange(logits.shape[0])

    def cp_xent():
        m = logits.max(axis=1, keepdims=True)
        z = m + cupy.log(cupy.exp(logits - m).sum(axis=1, keepdims=True))
        return z[:, 0] - logits[ar, target]

    def cp_xent_bwd():
        p = cupy.exp(logits - lse[:, None])
        p[ar, target] -= 1.0
        return p * grow[:, None]

    row("cross-entropy fwd (8192x8192)", logits.nbytes, lambda: K.cross_entropy_forward(logits, target), cp_xent)
    row("cross-entropy bwd", 2 * logits.nbytes,
        lambda: K.cross_entropy_backward(logits, target, lse, grow), cp_xent_bwd)

    # GELU on the MLP's hidden activations: (B·T, 4C)
    a = rs.standard_normal((BATCH * 256, 2048), dtype=f32)
    from cupyx.scipy.special import erf

    def cp_gelu():
        cdf = 0.5 * (1.0 + erf(a * f32(1.0 / np.sqrt(2.0))))
        return a * cdf, cdf

    row("GELU fwd, x·Φ(x) and Φ(x) (8192x2048)", 3 * a.nbytes, lambda: K.gelu_forward(a), cp_gelu)

    # one AdamW step on 16M parameters (the NumPy-style reference does ~12 passes)
    p_, g_ = rs.standard_normal(1 << 24, dtype=f32), rs.standard_normal(1 << 24, dtype=f32)
    m_, v_ = cupy.zeros_like(p_), cupy.zeros_like(p_)

    def cp_adamw():  # nn.AdamW's reference update (step 1), composed from CuPy calls, in place
        p_[...] *= 1.0 - 1e-3 * 0.1
        m_[...] = 0.9 * m_ + 0.1 * g_
        v_[...] = 0.999 * v_ + 0.001 * (g_ * g_)
        p_[...] -= 1e-3 / 0.1 * m_ / (cupy.sqrt(v_ / 0.001) + 1e-8)

    row("AdamW step (16M params)", 7 * p_.nbytes, lambda: K.adam_update(
        p_, g_, m_, v_, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, step=1, weight_decay=0.1, decoupled=True), cp_adamw)

    # word2vec skip-gram negative sampling: 8192 pairs, 5 negatives, 100k x 128 embeddings
    V, D, P, NEG = 100_000, 128, 8192, 5
    w_in = (rs.standard_normal((V, D), dtype=f32) * 0.01)
    w_out = (rs.standard_normal((V, D), dtype=f32) * 0.01)
    centers, contexts = rs.randint(0, V, P).astype(cupy.int64), rs.randint(0, V, P).astype(cupy.int64)
    negs = rs.randint(0, V, (P, NEG)).astype(cupy.int64)
    labels = cupy.zeros((P, NEG + 1), dtype=f32)
    labels[:, 0] = 1.0

    def cp_sgns():
        targets = cupy.concatenate([contexts[:, None], negs], axis=1)
        hh, u = w_in[centers], w_out[targets]  # (P, D), (P, K+1, D)
        s = cupy.einsum("pd,pkd->pk", hh, u)
        coef = 1.0 / (1.0 + cupy.exp(-s)) - labels
        cupyx.scatter_add(w_out, targets, -0.025 * coef[:, :, None] * hh[:, None, :])
        cupyx.scatter_add(w_in, centers, -0.025 * cupy.einsum("pk,pkd->pd", coef, u))

    sg_bytes = P * (NEG + 2) * D * 4 * 2
    row("word2vec SGNS update (8192 pairs, K=5, D=128)", sg_bytes,
        lambda: W.sgns_update(w_in, w_out, centers, contexts, negs, 0.025), cp_sgns)

    print("\nNumba kernel vs the same op composed from CuPy calls (median of 20, CUDA events)")
    print(f"  {'op':<46}{'numba':>10}{'GB/s':>8}{'cupy':>10}{'GB/s':>8}{'cupy/numba':>12}")
    for name, t1, t2, nbytes in rows:
        print(f"  {name:<46}{t1 * 1e3:>8.3f}ms{nbytes / t1 / 1e9:>8.0f}{t2 * 1e3:>8.3f}ms{nbytes / t2 / 1e9:>8.0f}"
              f"{t2 / t1:>11.2f}x")

    # Launch cost: a tiny softmax, launch-bound. The wrapper launches on CuPy's stream and skips
    # Numba's import-time synchronization; the direct launch passes CuPy arrays as they are.
    small = rs.standard_normal((4, 64), dtype=f32)
    out = cupy.empty_like(small)
    kern = K.KERNELS["softmax_fwd"]

    def direct():
        kern[4, K.THREADS](small, out)

    t_wrap = cpu_time(lambda: [K.softmax_forward(small) for _ in range(200)], repeats=5) / 200
    t_direct = cpu_time(lambda: [direct() for _ in range(200)], repeats=5) / 200
    cupy.cuda.get_current_stream().synchronize()
    print(f"\nlaunch cost (host time per call, tiny input): wrapper (stream passed, sync=False) "
          f"{t_wrap * 1e6:.1f} us; direct launch with CuPy arrays (NUMBA_CUDA_ARRAY_INTERFACE_SYNC="
          f"{os.environ.get('NUMBA_CUDA_ARRAY_INTERFACE_SYNC', '1')}) {t_direct * 1e6:.1f} us")


# ------------------------------------------------------------------ 5. GPT training
def gpt_tokens_per_s(device: str, steps: int, peak_flops: float) -> None:
    config = nn.GPTConfig(**CONFIG)
    model = nn.GPT(config, generator=tg.Generator(0)).to(device)
    opt = model.configure_optimizers(0.1, 3e-4)
    rng = np.random.default_rng(0)
    n_params = sum(p.size for p in model.parameters())
    # Training FLOPs per token (Kaplan et al. 2020; PaLM appendix B): 6 per parameter, plus attention.
    flops_per_token = 6 * n_params + 12 * config.n_layer * config.n_embd * config.block_size

    def step():
        x = rng.integers(0, config.vocab_size, (BATCH, config.block_size + 1))
        opt.zero_grad()
        _, loss = model(x[:, :-1], x[:, 1:])
        loss.backward()
        opt.step()
        return loss.item()  # .item() waits for the device: the step is really done

    step()  # warm-up: allocations, cuBLAS plans, kernel compilation
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    secs = (time.perf_counter() - t0) / steps
    tokens = BATCH * config.block_size / secs
    mfu = tokens * flops_per_token / peak_flops
    print(f"  {device:<5} {tokens:>10,.0f} tokens/s   {secs:7.3f} s/step   MFU {mfu * 100:5.1f}% "
          f"(of the measured matmul rate, {peak_flops / 1e12:.2f} TFLOP/s; {steps} steps, "
          f"{n_params / 1e6:.1f}M params)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-steps", type=int, default=2, help="timed GPT steps on the CPU (slow: seconds each)")
    parser.add_argument("--gpu-steps", type=int, default=10, help="timed GPT steps on the GPU")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the gpu / cuda_sim tests first")
    args = parser.parse_args()
    print(machine_line(), flush=True)

    reason = tg.cuda_unavailable_reason()
    if reason is not None:
        print(f"benchmarks/gpu.py: no usable GPU here ({reason}). Nothing was measured.")
        return 0
    versions()
    if not args.skip_tests:
        run_tests()
    gpu_peak, cpu_peak = matmul_tflops()
    kernels_vs_cupy()
    print(f"\nGPT training, n_layer={CONFIG['n_layer']}, n_embd={CONFIG['n_embd']}, block_size={CONFIG['block_size']}, "
          f"batch {BATCH}, float32")
    gpt_tokens_per_s("cuda", args.gpu_steps, gpu_peak * 1e12)
    gpt_tokens_per_s("cpu", args.cpu_steps, cpu_peak * 1e12)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
