"""Our engine against other autodiff frameworks: the same three workloads, the same weights, one core.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/peers.py           # 2-3 minutes
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/peers.py --quick   # about 1 minute

Workloads, each one forward + backward (the loss and the gradient of every parameter; no optimizer):
    gpt    nn.GPT in the `shakespeare-char-small` size (2 layers, 2 heads, n_embd 64, block 32), batch 16
    mlp    4 layers (512 -> 512 -> 512 -> 512 -> 10, ReLU) on 256 rows, softmax cross-entropy
    chain  1,000 elementwise ops (mul, add, tanh, sin in turn) on a tiny (8,) tensor: per-op bookkeeping

Peers, whichever are installed: PyTorch eager, JAX (jit, and eager: the same function not jitted),
HIPS autograd, MyGrad and DeZero. Every framework starts from the same NumPy arrays (our GPT's
initial weights, one generator's MLP weights and batches), all in float32. Before timing, each
one's loss and gradient norm are checked against ours; a difference beyond float32 rounding stops
the run. The frameworks then take turns, in a rotating order, and we report each one's median
step time and its ratio to ours.

One core: the thread variables below are set before any framework loads, and the process is pinned
to one CPU. The pin is for JAX: its XLA runtime (0.10) ignores the thread settings usually given for
it (XLA_FLAGS=--xla_cpu_multi_thread_eigen=false still kept two cores busy during a jitted 1024^3
matmul here: CPU time 1.9x wall time); pinned, it is 1.0x. The pin holds for every framework alike.

Each peer's model is written below in that framework's own terms: PyTorch with torch.nn.functional,
the NumPy-like ones (JAX, autograd, MyGrad) as one function over their NumPy namespace.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy, PyTorch or Numba start their thread pools
os.environ.setdefault("JAX_PLATFORMS", "cpu")
CORE = min(os.sched_getaffinity(0))
os.sched_setaffinity(0, {CORE})  # every thread of this process, XLA's included, runs on this one CPU

import argparse  # noqa: E402
import importlib.metadata  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from machine import machine_line  # noqa: E402

import nn  # noqa: E402
import tinygrad_lite as tg  # noqa: E402
import tinygrad_lite.functional as F  # noqa: E402

GPT_CONFIG = nn.GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=32, vocab_size=65)
GPT_BATCH = 16
MLP_SIZES, MLP_BATCH = (512, 512, 512, 512, 10), 256
CHAIN_LEN = 1000
LOSS_RTOL, GRAD_RTOL = 1e-5, 1e-4  # float32: every framework rounds differently, by a few ulp per op
f32 = np.float32

# A step takes the parameters as a dict name -> array (the framework's own array type) and returns
# (loss, gradients in the same order as the parameters); `Workload.data` holds the NumPy originals.


class Workload:
    def __init__(self, name: str, title: str, params: dict[str, np.ndarray], inputs: tuple[np.ndarray, ...]) -> None:
        self.name, self.title, self.params, self.inputs = name, title, params, inputs


def make_workloads() -> dict[str, Workload]:
    gpt = nn.GPT(GPT_CONFIG, generator=tg.Generator(0))
    c = GPT_CONFIG
    tokens = np.random.default_rng(1).integers(0, c.vocab_size, (GPT_BATCH, c.block_size + 1))
    rng = np.random.default_rng(0)
    mlp = {}
    for i, (n_in, n_out) in enumerate(zip(MLP_SIZES, MLP_SIZES[1:])):
        mlp[f"w{i}"] = rng.standard_normal((n_in, n_out), dtype=f32) / f32(math.sqrt(n_in))
        mlp[f"b{i}"] = rng.standard_normal(n_out, dtype=f32) * f32(0.1)
    x = rng.standard_normal((MLP_BATCH, MLP_SIZES[0]), dtype=f32)
    labels = rng.integers(0, MLP_SIZES[-1], MLP_BATCH)
    return {
        "gpt": Workload("gpt", f"GPT (nn.GPT: {c.n_layer} layers, {c.n_head} heads, n_embd {c.n_embd}, block "
                               f"{c.block_size}, vocab {c.vocab_size}; batch {GPT_BATCH}; float32)",
                        {name: p.numpy().copy() for name, p in gpt.named_parameters()},
                        (tokens[:, :-1], tokens[:, 1:])),
        "mlp": Workload("mlp", f"MLP ({' -> '.join(map(str, MLP_SIZES))}, ReLU; batch {MLP_BATCH}; cross-entropy; "
                               "float32)", mlp, (x, labels)),
        "chain": Workload("chain", f"chain of {CHAIN_LEN} elementwise ops on shape (8,) (float32)",
                          {"x": np.linspace(-1, 1, 8, dtype=f32)}, ()),
    }


# ------------------------------------------------------------------------------------------ ours
def ours(w: Workload) -> Callable[[], tuple]:
    if w.name == "gpt":
        model = nn.GPT(GPT_CONFIG)
        model.load_state_dict({name: tg.Tensor(a) for name, a in w.params.items()})
        params = list(model.parameters())
        idx, targets = w.inputs

        def step() -> tuple:
            for p in params:
                p.grad = None
            _, loss = model(idx, targets)
            loss.backward()
            return loss.item(), [p.grad.data for p in params]

        return step
    params = {name: tg.Tensor(a, requires_grad=True) for name, a in w.params.items()}
    if w.name == "mlp":
        x, labels = tg.Tensor(w.inputs[0]), w.inputs[1]
        n_layers = len(MLP_SIZES) - 1

        def loss_fn() -> tg.Tensor:
            h = x
            for i in range(n_layers):
                h = h @ params[f"w{i}"] + params[f"b{i}"]
                if i < n_layers - 1:
                    h = h.relu()
            return F.cross_entropy(h, labels)
    else:
        def loss_fn() -> tg.Tensor:
            y = params["x"]
            for i in range(CHAIN_LEN):
                k = i % 4
                y = y * 0.999 if k == 0 else y + 0.01 if k == 1 else y.tanh() if k == 2 else y.sin()
            return y.sum()

    def step() -> tuple:
        for p in params.values():
            p.grad = None
        loss = loss_fn()
        loss.backward()
        return loss.item(), [p.grad.data for p in params.values()]

    return step


# ------------------------------------------------------------------------------------------ PyTorch
def torch_peer(w: Workload) -> Callable[[], tuple]:
    import torch
    import torch.nn.functional as tF

    torch.set_num_threads(1)
    params = {name: torch.tensor(a, requires_grad=True) for name, a in w.params.items()}
    inputs = [torch.from_numpy(np.ascontiguousarray(a)) for a in w.inputs]

    def gpt_loss(p: dict, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        c = GPT_CONFIG
        B, T = idx.shape
        x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
        for i in range(c.n_layer):
            q = {k[len(f"transformer.h.{i}."):]: v for k, v in p.items() if k.startswith(f"transformer.h.{i}.")}
            h = tF.layer_norm(x, (c.n_embd,), q["ln_1.weight"], q["ln_1.bias"])
            qkv = tF.linear(h, q["attn.c_attn.weight"], q["attn.c_attn.bias"])
            heads = [t.view(B, T, c.n_head, -1).transpose(1, 2) for t in qkv.split(c.n_embd, dim=2)]
            y = tF.scaled_dot_product_attention(*heads, is_causal=True).transpose(1, 2).reshape(B, T, c.n_embd)
            x = x + tF.linear(y, q["attn.c_proj.weight"], q["attn.c_proj.bias"])
            h = tF.layer_norm(x, (c.n_embd,), q["ln_2.weight"], q["ln_2.bias"])
            h = tF.gelu(tF.linear(h, q["mlp.c_fc.weight"], q["mlp.c_fc.bias"]))
            x = x + tF.linear(h, q["mlp.c_proj.weight"], q["mlp.c_proj.bias"])
        x = tF.layer_norm(x, (c.n_embd,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
        logits = x @ p["transformer.wte.weight"].T  # the LM head is the token embedding (weight tying)
        return tF.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1))

    def mlp_loss(p: dict, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        n_layers = len(MLP_SIZES) - 1
        for i in range(n_layers):
            x = x @ p[f"w{i}"] + p[f"b{i}"]
            if i < n_layers - 1:
                x = torch.relu(x)
        return tF.cross_entropy(x, labels)

    def chain_loss(p: dict) -> torch.Tensor:
        y = p["x"]
        for i in range(CHAIN_LEN):
            k = i % 4
            y = y * 0.999 if k == 0 else y + 0.01 if k == 1 else y.tanh() if k == 2 else y.sin()
        return y.sum()

    loss_fn = {"gpt": gpt_loss, "mlp": mlp_loss, "chain": chain_loss}[w.name]

    def step() -> tuple:
        loss = loss_fn(params, *inputs)
        grads = torch.autograd.grad(loss, list(params.values()))
        return loss.item(), [g.numpy() for g in grads]

    return step


# ------------------------------------------------------- JAX, HIPS autograd, MyGrad: one NumPy-like model
def numpy_like_loss(xp, erf, name: str) -> Callable:  # noqa: ANN001
    """The workload's loss as a function (params, *inputs) over the NumPy namespace `xp` of a
    framework (jax.numpy, autograd.numpy, mygrad): the same code differentiated three ways."""
    c = GPT_CONFIG

    def layer_norm(x, weight, bias):  # noqa: ANN001, ANN202 - eps 1e-5, as nn.LayerNorm's
        centered = x - xp.mean(x, axis=-1, keepdims=True)
        return centered / xp.sqrt(xp.mean(centered * centered, axis=-1, keepdims=True) + f32(1e-5)) * weight + bias

    def cross_entropy(logits, labels):  # noqa: ANN001, ANN202
        z = logits - xp.max(logits, axis=-1, keepdims=True)
        log_probs = z - xp.log(xp.sum(xp.exp(z), axis=-1, keepdims=True))
        return -xp.mean(log_probs[np.arange(labels.shape[0]), labels])

    causal = np.triu(np.full((c.block_size, c.block_size), -1e9, dtype=f32), k=1)  # added to masked scores

    def gpt_loss(p, idx, targets):  # noqa: ANN001, ANN202
        B, T = idx.shape
        C, H = c.n_embd, c.n_head
        x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
        for i in range(c.n_layer):
            q = {k[len(f"transformer.h.{i}."):]: v for k, v in p.items() if k.startswith(f"transformer.h.{i}.")}
            h = layer_norm(x, q["ln_1.weight"], q["ln_1.bias"])
            qkv = h @ q["attn.c_attn.weight"].T + q["attn.c_attn.bias"]
            qh, kh, vh = (xp.swapaxes(xp.reshape(qkv[..., j * C:(j + 1) * C], (B, T, H, C // H)), 1, 2)
                          for j in range(3))
            scores = qh @ xp.swapaxes(kh, 2, 3) * f32(1 / math.sqrt(C // H)) + causal[:T, :T]
            e = xp.exp(scores - xp.max(scores, axis=-1, keepdims=True))
            y = xp.reshape(xp.swapaxes(e / xp.sum(e, axis=-1, keepdims=True) @ vh, 1, 2), (B, T, C))
            x = x + y @ q["attn.c_proj.weight"].T + q["attn.c_proj.bias"]
            h = layer_norm(x, q["ln_2.weight"], q["ln_2.bias"]) @ q["mlp.c_fc.weight"].T + q["mlp.c_fc.bias"]
            h = f32(0.5) * h * (f32(1) + erf(h * f32(1 / math.sqrt(2))))  # GELU, exact (erf) form
            x = x + h @ q["mlp.c_proj.weight"].T + q["mlp.c_proj.bias"]
        x = layer_norm(x, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
        logits = x @ p["transformer.wte.weight"].T
        return cross_entropy(xp.reshape(logits, (B * T, c.vocab_size)), targets.reshape(-1))

    def mlp_loss(p, x, labels):  # noqa: ANN001, ANN202
        n_layers = len(MLP_SIZES) - 1
        for i in range(n_layers):
            x = x @ p[f"w{i}"] + p[f"b{i}"]
            if i < n_layers - 1:
                x = xp.maximum(x, f32(0))
        return cross_entropy(x, labels)

    def chain_loss(p):  # noqa: ANN001, ANN202
        y = p["x"]
        for i in range(CHAIN_LEN):
            k = i % 4
            y = y * f32(0.999) if k == 0 else y + f32(0.01) if k == 1 else xp.tanh(y) if k == 2 else xp.sin(y)
        return xp.sum(y)

    return {"gpt": gpt_loss, "mlp": mlp_loss, "chain": chain_loss}[name]


def jax_peer(w: Workload, jit: bool) -> Callable[[], tuple]:
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import erf

    loss_and_grads = jax.value_and_grad(numpy_like_loss(jnp, erf, w.name))
    if jit:
        loss_and_grads = jax.jit(loss_and_grads)
    params = {name: jnp.asarray(a) for name, a in w.params.items()}
    inputs = [jnp.asarray(a) for a in w.inputs]

    def step() -> tuple:
        loss, grads = jax.block_until_ready(loss_and_grads(params, *inputs))
        return float(loss), [np.asarray(grads[name]) for name in params]

    return step


def autograd_peer(w: Workload) -> Callable[[], tuple]:
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import erf

    loss_and_grads = autograd.value_and_grad(numpy_like_loss(anp, erf, w.name))

    def step() -> tuple:
        loss, grads = loss_and_grads(w.params, *w.inputs)
        return float(loss), [grads[name] for name in w.params]

    return step


def mygrad_peer(w: Workload) -> Callable[[], tuple]:
    import mygrad as mg
    import scipy.special
    from mygrad.operation_base import Operation

    class Erf(Operation):  # MyGrad has no erf; a new op is a forward and the derivative 2/√π·exp(-x²)
        def __call__(self, a):  # noqa: ANN001, ANN204
            self.variables = (a,)
            return scipy.special.erf(a.data)

        def backward_var(self, grad, index, **kwargs):  # noqa: ANN001, ANN201
            (a,) = self.variables
            return grad * f32(2 / math.sqrt(math.pi)) * np.exp(-a.data * a.data)

    loss_fn = numpy_like_loss(mg, lambda x: mg.Tensor._op(Erf, x), w.name)
    params = {name: mg.tensor(a) for name, a in w.params.items()}

    def step() -> tuple:
        loss = loss_fn(params, *w.inputs)
        loss.backward()
        return loss.item(), [p.grad for p in params.values()]

    return step


# ------------------------------------------------------------------------------------------ the run
PEERS: dict[str, tuple[str, Callable[[Workload], Callable[[], tuple]]]] = {
    "torch eager": ("torch", torch_peer),
    "jax jit": ("jax", lambda w: jax_peer(w, jit=True)),
    "jax eager": ("jax", lambda w: jax_peer(w, jit=False)),
    "autograd": ("autograd", autograd_peer),
    "mygrad": ("mygrad", mygrad_peer),
    "dezero": ("dezero", None),
}


def available_peers() -> tuple[dict, list[str]]:
    """The peers that import, and one line per framework: its version, or why it is left out."""
    found, lines, tried = {}, [], {}
    for label, (module, make) in PEERS.items():
        if module not in tried:
            try:
                __import__(module)
                tried[module] = None
            except Exception as e:  # noqa: BLE001 - DeZero raises AttributeError on NumPy 2 (it uses np.int)
                tried[module] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            version = importlib.metadata.version(module) if tried[module] is None else None
            lines.append(f"  {module:<9} " + (version if tried[module] is None else f"not importable: {tried[module]}"))
        if tried[module] is None:
            if make is None:
                lines[-1] += " (imports, but this script has no DeZero model yet)"
            else:
                found[label] = make
    return found, lines


def timed_round(steps: dict[str, Callable[[], tuple]], repeats: int) -> dict[str, float]:
    """Median seconds per step; the frameworks take turns in a rotating order (A B C, B C A, ...)."""
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def grad_norm(grads: list) -> float:
    return math.sqrt(sum(float(np.sum(np.asarray(g, dtype=np.float64) ** 2)) for g in grads))


def run_workload(w: Workload, peers: dict, repeats: int) -> None:
    steps = {"ours": ours(w)}
    steps.update({label: make(w) for label, make in peers.items()})
    first, warmup = {}, {}
    for name, step in steps.items():  # the first call compiles (JAX, Numba) and fills caches: not timed
        t0 = time.perf_counter()
        first[name] = step()
        warmup[name] = time.perf_counter() - t0
    loss_ours, norm_ours = first["ours"][0], grad_norm(first["ours"][1])
    checks = {}
    for name, (loss, grads) in first.items():
        wrong = sorted({str(np.asarray(g).dtype) for g in grads} - {"float32"})
        if wrong:  # a peer that silently computed in float64 would not be doing the same work
            raise SystemExit(f"peers.py: {name} returned {', '.join(wrong)} gradients on {w.name}, not float32")
        dloss, dnorm = abs(loss - loss_ours), abs(grad_norm(grads) - norm_ours) / norm_ours
        checks[name] = (dloss, dnorm)
        if dloss > LOSS_RTOL * max(1.0, abs(loss_ours)) or dnorm > GRAD_RTOL:
            raise SystemExit(f"peers.py: {name} disagrees with ours on {w.name}: loss {loss!r} vs {loss_ours!r} "
                             f"(difference {dloss:.2e}), gradient norm differs by {dnorm:.2e} relative "
                             f"(tolerances {LOSS_RTOL:g} relative on the loss, {GRAD_RTOL:g} on the norm)")
    med = timed_round(steps, repeats)
    print(f"\n{w.title}, forward + backward; median of {repeats}; loss {loss_ours:.6f}, gradient norm {norm_ours:.6g}")
    print(f"  {'framework':<12}{'ms/step':>10}{'time / ours':>13}{'|loss - ours|':>15}{'grad norm rel. diff':>21}"
          f"{'first call':>12}")
    for name, t in med.items():
        dloss, dnorm = checks[name]
        print(f"  {name:<12}{t * 1e3:10.3f}{t / med['ours']:12.2f}x{dloss:15.1e}{dnorm:21.1e}{warmup[name]:11.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about 3 minutes)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per framework and workload")
    parser.add_argument("--only", choices=["gpt", "mlp", "chain"], action="append", help="run these workloads")
    args = parser.parse_args()
    print(machine_line())
    print(f"one core: this process is pinned to CPU {CORE}; OPENBLAS/OMP/MKL/NUMBA_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}; torch.set_num_threads(1)")
    peers, lines = available_peers()
    print(f"frameworks: tinygrad_lite {tg.__version__} (ours), numpy {np.__version__}")
    print("\n".join(lines))
    workloads = make_workloads()
    counts = {"gpt": 7, "mlp": 5, "chain": 5} if args.quick else {"gpt": 61, "mlp": 31, "chain": 31}
    for name in args.only or list(workloads):
        run_workload(workloads[name], peers, args.repeats or counts[name])
    print("\ntime / ours: above 1 the peer is slower than us, below 1 faster. |loss - ours| and the gradient "
          "norm's relative difference are from each framework's first step, before timing.")


if __name__ == "__main__":
    main()
