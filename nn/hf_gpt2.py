"""Our GPT in Hugging Face's GPT-2 format: `model.safetensors` + `config.json`, both ways.

    nn.export_gpt2(model, "gpt2-out")          # transformers.GPT2LMHeadModel.from_pretrained("gpt2-out") loads it
    model = nn.import_gpt2("gpt2-out")         # and a GPT2LMHeadModel.save_pretrained(...) folder loads here

Our GPT is laid out like GPT-2 (Radford et al. 2019), and our parameter names are GPT-2's names
in `transformers`: `transformer.h.{i}.attn.c_attn.weight` is the same tensor in both, so the
module-name map is the identity (`hf_module_name`). Differences, and how each is handled:

  * GPT-2's "Conv1D" layers (c_attn, c_proj, c_fc) store their weight as (in, out), the transpose
    of a Linear's (out, in): those four weights are transposed on the way out and back in.
  * The MLP's GELU: ours is the exact one, x·Φ(x) with the error function; the released GPT-2
    uses the tanh approximation ("gelu_new"). We write activation_function="gelu" (exact), which
    transformers supports, and refuse to import a tanh-GELU model (the two differ by up to
    4.7e-4 per activation, at x ≈ ±2.7) rather than silently compute another function.
  * LayerNorm eps 1e-5, learned absolute positions, pre-LayerNorm blocks, biases everywhere,
    1/√head_dim attention scaling, a final LayerNorm, and an LM head tied to the token embedding:
    the same in both. A GPT without biases (GPTConfig(bias=False)) has no GPT-2 equivalent and
    is refused.
  * Dropout: ours has one rate at GPT-2's three places (after the embeddings, on the attention
    weights, after each residual projection); it is written as embd_pdrop = attn_pdrop =
    resid_pdrop, and a file whose three rates differ is refused.

Files are written atomically (`atomic_write_bytes`) and validated when read: every missing,
unexpected or wrongly shaped tensor is named before anything is built.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite.extras import require

from .checkpoint import CheckpointError
from .files import atomic_write_bytes, atomic_write_text
from .gpt import GPT, GPTConfig
from .layers import LayerNorm

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# GPT-2's Conv1D layers: weight stored (in, out), the transpose of our Linear's (out, in).
CONV1D_MODULES = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
# The GELUs transformers computes exactly (with erf); "gelu_new" and friends use the tanh approximation.
EXACT_GELU = ("gelu", "gelu_python")
LAYER_NORM_EPS = 1e-5
# Buffers that old GPT-2 checkpoints carry (the causal mask): not weights, skipped on import.
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def require_safetensors() -> ModuleType:
    """`safetensors.numpy`, or a MissingExtraError saying which extra installs it."""
    return require("safetensors.numpy", "hf", "reading and writing safetensors files")


def hf_module_name(name: str) -> str:
    """Our dotted module name -> the same module's name in transformers' GPT2LMHeadModel.

    The two coincide (`transformer.h.0.attn.c_attn` in both); the function exists so that code
    converting names (the PEFT adapter files) says so in one place and fails on a name that is
    not a GPT-2 Linear."""
    parts = name.split(".")
    if name == "lm_head" or (len(parts) == 5 and parts[:2] == ["transformer", "h"] and parts[2].isdigit()
                             and ".".join(parts[3:]) in CONV1D_MODULES):
        return name
    raise ValueError(f"hf_module_name: {name!r} is not a Linear layer of our GPT (transformer.h.<i>.attn.c_attn, "
                     f"...attn.c_proj, ...mlp.c_fc, ...mlp.c_proj, or lm_head)")


def is_conv1d(name: str) -> bool:
    """Whether the HF GPT-2 module (or its parameter) `name` is a Conv1D, whose weight is stored transposed."""
    module = name.removesuffix(".weight").removesuffix(".bias")
    return any(module.endswith("." + m) for m in CONV1D_MODULES)


def gpt2_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    """HF GPT-2 key -> shape as stored in model.safetensors (Conv1D weights as (in, out))."""
    d, v = config.n_embd, config.vocab_size
    shapes: dict[str, tuple[int, ...]] = {"transformer.wte.weight": (v, d),
                                           "transformer.wpe.weight": (config.block_size, d)}
    for i in range(config.n_layer):
        p = f"transformer.h.{i}."
        shapes |= {p + "ln_1.weight": (d,), p + "ln_1.bias": (d,),
                   p + "attn.c_attn.weight": (d, 3 * d), p + "attn.c_attn.bias": (3 * d,),
                   p + "attn.c_proj.weight": (d, d), p + "attn.c_proj.bias": (d,),
                   p + "ln_2.weight": (d,), p + "ln_2.bias": (d,),
                   p + "mlp.c_fc.weight": (d, 4 * d), p + "mlp.c_fc.bias": (4 * d,),
                   p + "mlp.c_proj.weight": (4 * d, d), p + "mlp.c_proj.bias": (d,)}
    shapes |= {"transformer.ln_f.weight": (d,), "transformer.ln_f.bias": (d,)}
    return shapes


def gpt2_config(config: GPTConfig, dtype: Any = "float32") -> dict[str, Any]:
    """The transformers GPT2Config (as a dict for config.json) that computes what `config` does."""
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_embd": config.n_embd,
        "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
        "activation_function": "gelu",  # exact (erf) GELU, like ours; GPT-2's own is "gelu_new" (tanh)
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
        "add_cross_attention": False, "tie_word_embeddings": True, "initializer_range": 0.02,
        "bos_token_id": None, "eos_token_id": None, "pad_token_id": None,  # our tokenizers have no such ids
        "dtype": str(np.dtype(dtype)), "use_cache": True,
    }


def _check_exportable(model: GPT) -> None:
    if not isinstance(model, GPT):
        raise TypeError(f"export_gpt2: expected an nn.GPT, got {type(model).__name__}")
    c = model.config
    if not c.bias:
        raise ValueError("export_gpt2: GPT-2 has biases in every Linear and LayerNorm; a GPTConfig(bias=False) "
                         "model has no GPT-2 equivalent")
    if model.lm_head.weight is not model.transformer.wte.weight:
        raise ValueError("export_gpt2: GPT-2's LM head is tied to the token embedding; this model's is not")
    eps = sorted({m.eps for m in model.modules() if isinstance(m, LayerNorm)})
    if eps != [LAYER_NORM_EPS]:
        raise ValueError(f"export_gpt2: GPT-2's LayerNorms use eps={LAYER_NORM_EPS}; this model's use {eps}")


def gpt2_state_dict(model: GPT) -> dict[str, np.ndarray]:
    """The model's weights under HF GPT-2 names and layouts (Conv1D weights transposed), as NumPy arrays."""
    _check_exportable(model)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    expected = gpt2_shapes(model.config)
    unexpected = sorted(set(state) - set(expected))
    if unexpected:  # e.g. LoRA layers: their weights live under .base / .adapters
        raise ValueError(f"export_gpt2: the model has parameters a GPT-2 does not: {unexpected[:6]}"
                         f"{' ...' if len(unexpected) > 6 else ''}. An adapted model: export "
                         "lora.merge_and_unload(model) (the fine-tuned weights), or the base before adding adapters")
    out = {}
    for k in expected:  # GPT-2's key order
        a = state[k]
        out[k] = np.ascontiguousarray(a.T if is_conv1d(k) and k.endswith(".weight") else a)
    return out


def export_gpt2(model: GPT, directory: str | os.PathLike[str]) -> Path:
    """Write `model` as a transformers GPT-2 checkpoint: `directory`/model.safetensors (HF key names,
    the model's dtype, float32 or float64) and `directory`/config.json. Returns the folder."""
    st = require_safetensors()
    state = gpt2_state_dict(model)
    dtypes = {a.dtype for a in state.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        raise ValueError(f"export_gpt2: expected one float32 or float64 dtype, "
                         f"the model has {sorted(map(str, dtypes))}")
    directory = Path(directory)
    if directory.is_file():
        raise ValueError(f"export_gpt2: {str(directory)!r} is a file; give a folder")
    # {"format": "pt"}: the marker transformers expects on a safetensors file in PyTorch's layout.
    atomic_write_bytes(directory / WEIGHTS_NAME, st.save(state, metadata={"format": "pt"}))
    config = gpt2_config(model.config, next(iter(dtypes)))
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return directory


# --------------------------------------------------------------------------------------- import
def gpt_config_from_hf(hf: dict[str, Any]) -> GPTConfig:
    """Our GPTConfig for a transformers GPT-2 config.json dict; refuses what our GPT cannot compute."""
    def get(key: str, default: Any = None) -> Any:
        return hf.get(key, default)

    problems = []
    if get("model_type", "gpt2") != "gpt2":
        problems.append(f"model_type is {get('model_type')!r}, not 'gpt2'")
    if get("activation_function", "gelu_new") not in EXACT_GELU:
        problems.append(f"activation_function is {get('activation_function', 'gelu_new')!r}: our GPT computes the "
                        f"exact GELU ({' or '.join(map(repr, EXACT_GELU))}), not the tanh approximation")
    if get("layer_norm_epsilon", LAYER_NORM_EPS) != LAYER_NORM_EPS:
        problems.append(f"layer_norm_epsilon is {get('layer_norm_epsilon')}, ours is {LAYER_NORM_EPS}")
    n_embd = get("n_embd", 768)
    if get("n_inner") not in (None, 4 * n_embd):
        problems.append(f"n_inner is {get('n_inner')}, our MLP has 4 * n_embd = {4 * n_embd}")
    for key, ours in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                      ("add_cross_attention", False), ("tie_word_embeddings", True)):
        if bool(get(key, ours)) != ours:
            problems.append(f"{key} is {get(key)!r}; our GPT has {ours}")
    rates = {get(k, 0.1) for k in ("embd_pdrop", "attn_pdrop", "resid_pdrop")}
    if len(rates) != 1:
        problems.append(f"embd_pdrop, attn_pdrop, resid_pdrop differ ({sorted(rates)}); our GPT has one dropout rate")
    if problems:
        raise CheckpointError("import_gpt2: this GPT-2 config describes a model our GPT does not compute:\n  "
                              + "\n  ".join(problems))
    try:
        return GPTConfig(block_size=get("n_positions", 1024), vocab_size=get("vocab_size", 50257),
                         n_layer=get("n_layer", 12), n_head=get("n_head", 12), n_embd=n_embd,
                         dropout=float(rates.pop()), bias=True)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"import_gpt2: bad config.json: {e}") from e


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as NumPy arrays, with a CheckpointError for a bad file."""
    st = require_safetensors()
    if not path.is_file():
        raise CheckpointError(f"{str(path)!r} does not exist")
    try:
        return dict(st.load(path.read_bytes()))
    except Exception as e:  # safetensors raises its own SafetensorError, or TypeError for bfloat16
        hint = " (bfloat16 has no NumPy dtype: save the model in float32)" if "bf16" in str(e).lower() else ""
        raise CheckpointError(f"{str(path)!r} is not a readable safetensors file "
                              f"({type(e).__name__}: {e}){hint}") from e


def import_gpt2(directory: str | os.PathLike[str], dtype: Any = None) -> GPT:
    """Build our GPT from a transformers GPT-2 folder (config.json + model.safetensors, as written by
    `GPT2LMHeadModel.save_pretrained(d, safe_serialization=True)` or `export_gpt2`). dtype: float32
    or float64; default the file's (float16 files become float32)."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not config_path.is_file():
        raise CheckpointError(f"import_gpt2: {str(config_path)!r} does not exist")
    if not weights_path.is_file():
        other = [p.name for p in directory.glob("*") if p.suffix in (".bin", ".json") and p.name != CONFIG_NAME]
        raise CheckpointError(f"import_gpt2: {str(weights_path)!r} does not exist (found {other}); one unsharded "
                              "model.safetensors is needed: save_pretrained(d, safe_serialization=True)")
    try:
        hf = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"import_gpt2: {str(config_path)!r} is not valid JSON ({e})") from e
    config = gpt_config_from_hf(hf)
    raw = read_safetensors(weights_path)
    # A GPT2Model (no LM head) saves its keys without the "transformer." prefix: accept both.
    state = {(k if k.startswith(("transformer.", "lm_head.")) else "transformer." + k): v for k, v in raw.items()}
    state = {k: v for k, v in state.items() if not k.endswith(_IGNORED_SUFFIXES)}
    head = state.pop("lm_head.weight", None)
    expected = gpt2_shapes(config)
    problems = []
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing ({len(missing)}): {missing}")
    if unexpected:
        problems.append(f"unexpected ({len(unexpected)}): {unexpected}")
    for k in sorted(set(expected) & set(state)):
        if state[k].shape != expected[k]:
            problems.append(f"{k}: shape {state[k].shape}, config.json implies {expected[k]}")
        if state[k].dtype.kind != "f":
            problems.append(f"{k}: dtype {state[k].dtype}, expected a float dtype")
    if head is not None and not problems and (head.shape != state["transformer.wte.weight"].shape
                                              or not np.array_equal(head, state["transformer.wte.weight"])):
        problems.append("lm_head.weight differs from transformer.wte.weight: our GPT ties the LM head to the embedding")
    if problems:
        raise CheckpointError(f"import_gpt2: {str(weights_path)!r} does not fit a GPT-2 with this config.json:\n  "
                              + "\n  ".join(problems))
    if dtype is None:
        kinds = {a.dtype for a in state.values()}
        dtype = np.float64 if kinds == {np.dtype(np.float64)} else np.float32
    dtype = tg.dtypes.to_dtype(dtype)
    ours = {k: (v.T if is_conv1d(k) and k.endswith(".weight") else v).astype(dtype) for k, v in state.items()}
    model = GPT(config, dtype=dtype, generator=tg.Generator(0))  # a private generator: the global one is untouched
    model.load_state_dict(ours, strict=True)
    return model
