"""Optional oracle: adapter files in PEFT's layout against PEFT itself, on a GPT-2 from
transformers (skipped without peft, transformers and torch; tests/test_lora_peft_files.py checks
the round trip without them).

Both directions, for LoRA, rsLoRA, DoRA and PiSSA / OLoRA converted to LoRA: the logits of the
same base + adapter agree to 1e-12 in float64 and to 2e-6 in float32, where PEFT needs float32 (its
PiSSA / OLoRA init refuses float64); the measured differences are ~2e-16 and ~5e-8."""
from __future__ import annotations

import numpy as np
import pytest

import lora
import nn
import tinygrad_lite as tg

peft = pytest.importorskip("peft")  # first: skip before the slow torch import
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.oracle

TOL = 1e-12
TOL32 = 2e-6  # float32 logits of size ~1 through two blocks
CONFIG = nn.GPTConfig(vocab_size=19, n_layer=2, n_head=2, n_embd=12, block_size=10)
IDX = np.array([[1, 5, 7, 2, 18, 0], [4, 4, 9, 11, 8, 6]])


def _ours(model: nn.GPT) -> np.ndarray:
    model.eval()
    with tg.no_grad():
        return model(IDX)[0].numpy()


def _theirs(model: object) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(input_ids=torch.from_numpy(IDX)).logits.numpy()


def _perturb(model: nn.GPT, seed: int) -> None:
    """Stand-in for training: move every adapter parameter (B starts at zero, which would test nothing)."""
    gen = tg.Generator(seed)
    with tg.no_grad():
        for _, p in model.named_parameters():
            if p.requires_grad:
                p.data[...] += gen.normal(p.shape, p.dtype, 0.0, 0.2)


def _adapt(model: nn.GPT, method: str) -> None:
    """Adapters of rank 2, α=6 on the attention, and (but for PiSSA / OLoRA, whose init rewrites the
    base) of rank 3, α=5 on c_fc, so that the file needs rank_pattern and alpha_pattern."""
    lora.apply_lora(model, ["c_attn", "attn.c_proj", "c_fc"], r=2, alpha=6, method=method, generator=tg.Generator(1))
    if method in ("pissa", "olora"):
        return
    for i, block in enumerate(model.transformer.h):
        layer, old = block.mlp.c_fc, block.mlp.c_fc.adapters["default"]
        if method == "dora":
            new: lora.LoRAAdapter = lora.DoRAAdapter(layer.base, 3, 5.0, dtype=old.A.dtype,
                                                     generator=tg.Generator(10 + i))
        else:
            new = lora.LoRAAdapter(layer.in_features, layer.out_features, 3, 5.0, use_rslora=old.use_rslora,
                                   dtype=old.A.dtype, generator=tg.Generator(10 + i))
        new.method = old.method
        layer.adapters["default"] = new


def _hf_base(path) -> object:
    return transformers.GPT2LMHeadModel.from_pretrained(path, dtype=torch.float64)


@pytest.mark.parametrize("method", ["lora", "rslora", "dora", "pissa", "olora"])
def test_our_adapter_loads_into_peft_with_our_logits(tmp_path, method) -> None:
    ours = nn.GPT(CONFIG, dtype="float64", generator=tg.Generator(0))
    nn.export_gpt2(ours, tmp_path / "base")  # the original base (PiSSA / OLoRA rewrite ours below)
    _adapt(ours, method)
    initial = lora.adapter_state_dict(ours)
    _perturb(ours, 2)
    expected = _ours(ours)
    convert = initial if method in ("pissa", "olora") else None
    lora.save_pretrained(ours, tmp_path / "adapter", convert_to_lora=convert)
    theirs = peft.PeftModel.from_pretrained(_hf_base(tmp_path / "base"), tmp_path / "adapter")
    np.testing.assert_allclose(_theirs(theirs), expected, rtol=0, atol=TOL)
    # and PEFT's merged weights are ours merged (fan_in_fan_out: Conv1D weights are (in, out))
    merged = theirs.merge_and_unload()
    if method not in ("pissa", "olora"):  # ours hold the residual base; PEFT's the original
        lora.merge_and_unload(ours)
        np.testing.assert_allclose(merged.transformer.h[1].mlp.c_fc.weight.detach().numpy(),
                                   ours.transformer.h[1].mlp.c_fc.weight.numpy().T, rtol=0, atol=TOL)


def _peft_gpt2(tmp_path, dtype=torch.float64, **lora_kwargs) -> object:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=19, n_positions=10, n_embd=12, n_layer=2, n_head=2,
                                  activation_function="gelu", bos_token_id=None, eos_token_id=None)
    hf = transformers.GPT2LMHeadModel(cfg).to(dtype)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if p.ndim == 1:
                p.normal_(1.0 if ".ln_" in name else 0.0, 0.3)
    hf.save_pretrained(tmp_path / "base", safe_serialization=True)
    config = peft.LoraConfig(r=2, lora_alpha=6, target_modules=["c_attn", "c_fc", "mlp.c_proj"],
                             rank_pattern={"c_fc": 4}, alpha_pattern={"c_fc": 3}, **lora_kwargs)
    return peft.get_peft_model(hf, config)


def _perturb_peft(model: object) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.add_(torch.randn_like(p) * 0.2)


@pytest.mark.parametrize("kwargs", [{}, {"use_rslora": True}, {"use_dora": True}], ids=["lora", "rslora", "dora"])
def test_peft_adapter_loads_here_with_peft_logits(tmp_path, kwargs) -> None:
    theirs = _peft_gpt2(tmp_path, **kwargs)
    _perturb_peft(theirs)
    theirs.save_pretrained(tmp_path / "adapter")
    ours = lora.load_pretrained(nn.import_gpt2(tmp_path / "base"), tmp_path / "adapter")
    layer = ours.transformer.h[0].mlp.c_fc.adapters["default"]
    assert (layer.r, layer.alpha, layer.use_rslora) == (4, 3, bool(kwargs.get("use_rslora")))
    np.testing.assert_allclose(_ours(ours), _theirs(theirs), rtol=0, atol=TOL)


# Only PiSSA: PEFT's OLoRA init (peft 0.21) ignores fan_in_fan_out, so on GPT-2's Conv1D layers it
# builds A and B with swapped shapes and cannot load its own initial adapter. Our OLoRA -> PEFT is tested above.
@pytest.mark.parametrize("init", ["pissa"])
def test_peft_converted_pissa_loads_here_on_the_original_base(tmp_path, init) -> None:
    # PEFT's PiSSA / OLoRA init refuses float64 weights: float32 here, so the tolerance is float32's
    theirs = _peft_gpt2(tmp_path, torch.float32, init_lora_weights=init)  # the base on disk is the original
    theirs.save_pretrained(tmp_path / "initial")  # PEFT's recipe: save the initial adapter first
    _perturb_peft(theirs)
    theirs.save_pretrained(tmp_path / "adapter", path_initial_model_for_weight_conversion=tmp_path / "initial")
    ours = lora.load_pretrained(nn.import_gpt2(tmp_path / "base"), tmp_path / "adapter")
    assert ours.transformer.h[0].mlp.c_fc.adapters["default"].r == 8  # the conversion doubles the rank
    assert ours.transformer.wte.weight.dtype == np.float32
    np.testing.assert_allclose(_ours(ours), _theirs(theirs), rtol=0, atol=TOL32)
