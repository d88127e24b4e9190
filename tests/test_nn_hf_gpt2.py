"""GPT-2 files (nn.export_gpt2 / nn.import_gpt2): round trip, key names and layouts, validation.
Needs only safetensors; tests/test_nn_oracle_transformers.py compares with transformers itself."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import nn
import tinygrad_lite as tg
from nn.hf_gpt2 import CONV1D_MODULES, gpt2_shapes

st = pytest.importorskip("safetensors.numpy")

CONFIG = nn.GPTConfig(vocab_size=13, n_layer=2, n_head=2, n_embd=8, block_size=6, dropout=0.1)
IDX = np.array([[1, 2, 3, 12, 0], [5, 5, 4, 3, 2]])


def _logits(model: nn.GPT) -> np.ndarray:
    model.eval()
    with tg.no_grad():
        return model(IDX)[0].numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_exact(tmp_path, dtype) -> None:
    model = nn.GPT(CONFIG, dtype=dtype, generator=tg.Generator(3))
    nn.export_gpt2(model, tmp_path / "gpt")
    back = nn.import_gpt2(tmp_path / "gpt")
    assert back.config == model.config
    assert back.lm_head.weight is back.transformer.wte.weight  # still tied
    before, after = model.state_dict(), back.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert after[k].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(after[k].numpy(), before[k].numpy(), err_msg=k)
    np.testing.assert_array_equal(_logits(back), _logits(model))
    assert sorted(p.name for p in (tmp_path / "gpt").iterdir()) == ["config.json", "model.safetensors"]  # no temp files


def test_file_has_gpt2_names_layouts_and_config(tmp_path) -> None:
    model = nn.GPT(CONFIG, generator=tg.Generator(0))
    nn.export_gpt2(model, tmp_path)
    saved = st.load_file(str(tmp_path / "model.safetensors"))
    assert {k: v.shape for k, v in saved.items()} == gpt2_shapes(CONFIG)
    assert "lm_head.weight" not in saved  # tied: transformers rebuilds it from wte
    ours = dict(model.named_parameters())
    for k, v in saved.items():
        conv1d = k.endswith(".weight") and any(k.endswith(m + ".weight") for m in CONV1D_MODULES)
        np.testing.assert_array_equal(v, ours[k].numpy().T if conv1d else ours[k].numpy(), err_msg=k)
    # a Conv1D weight is (in, out): c_fc maps n_embd -> 4 n_embd
    assert saved["transformer.h.0.mlp.c_fc.weight"].shape == (8, 32)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"]
    assert (cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["n_positions"], cfg["vocab_size"]) == (8, 2, 2, 6, 13)
    assert cfg["activation_function"] == "gelu" and cfg["layer_norm_epsilon"] == 1e-5
    assert cfg["resid_pdrop"] == cfg["embd_pdrop"] == cfg["attn_pdrop"] == 0.1
    assert cfg["dtype"] == "float32" and cfg["tie_word_embeddings"] is True


def test_gpt2model_keys_and_mask_buffers_are_accepted(tmp_path) -> None:
    """A GPT2Model (no LM head) saves keys without "transformer."; old checkpoints carry attn.bias masks."""
    model = nn.GPT(CONFIG, dtype="float64", generator=tg.Generator(1))
    nn.export_gpt2(model, tmp_path)
    saved = st.load_file(str(tmp_path / "model.safetensors"))
    renamed = {k.removeprefix("transformer."): v for k, v in saved.items()}
    renamed["h.0.attn.bias"] = np.tril(np.ones((1, 1, 6, 6)))
    renamed["lm_head.weight"] = saved["transformer.wte.weight"]
    (tmp_path / "model.safetensors").write_bytes(st.save(renamed))
    np.testing.assert_array_equal(_logits(nn.import_gpt2(tmp_path)), _logits(model))


def test_export_refuses_what_gpt2_cannot_hold(tmp_path) -> None:
    with pytest.raises(ValueError, match="bias"):
        nn.export_gpt2(nn.GPT(nn.GPTConfig(vocab_size=5, n_layer=1, n_head=1, n_embd=4, block_size=4, bias=False)),
                       tmp_path)
    untied = nn.GPT(CONFIG)
    untied.lm_head.weight = nn.Parameter(untied.transformer.wte.weight.numpy().copy())
    with pytest.raises(ValueError, match="tied"):
        nn.export_gpt2(untied, tmp_path)
    with pytest.raises(TypeError, match="nn.GPT"):
        nn.export_gpt2(nn.Linear(2, 2), tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def _exported(tmp_path) -> tuple:
    nn.export_gpt2(nn.GPT(CONFIG, generator=tg.Generator(0)), tmp_path)
    return st.load_file(str(tmp_path / "model.safetensors")), json.loads((tmp_path / "config.json").read_text())


def test_import_names_every_missing_unexpected_and_misshapen_tensor(tmp_path) -> None:
    saved, _ = _exported(tmp_path)
    del saved["transformer.h.1.ln_2.bias"]
    saved["transformer.h.0.attn.c_proj.weight"] = np.zeros((8, 9), np.float32)
    saved["transformer.h.2.ln_1.weight"] = np.ones(8, np.float32)
    (tmp_path / "model.safetensors").write_bytes(st.save(saved))
    with pytest.raises(nn.CheckpointError) as err:
        nn.import_gpt2(tmp_path)
    msg = str(err.value)
    assert "transformer.h.1.ln_2.bias" in msg and "transformer.h.2.ln_1.weight" in msg
    assert "transformer.h.0.attn.c_proj.weight: shape (8, 9)" in msg


def test_import_refuses_an_untied_head_and_integer_weights(tmp_path) -> None:
    saved, _ = _exported(tmp_path)
    saved["lm_head.weight"] = saved["transformer.wte.weight"] + 1
    (tmp_path / "model.safetensors").write_bytes(st.save(saved))
    with pytest.raises(nn.CheckpointError, match="ties the LM head"):
        nn.import_gpt2(tmp_path)
    del saved["lm_head.weight"]
    saved["transformer.ln_f.bias"] = np.zeros(8, np.int32)
    (tmp_path / "model.safetensors").write_bytes(st.save(saved))
    with pytest.raises(nn.CheckpointError, match="dtype int32"):
        nn.import_gpt2(tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"activation_function": "gelu_new"}, "tanh approximation"),
    ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon"),
    ({"n_inner": 24}, "n_inner"),
    ({"attn_pdrop": 0.0}, "one dropout rate"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"model_type": "llama"}, "model_type"),
    ({"n_head": 3}, "divisible"),
])
def test_import_refuses_configs_our_gpt_does_not_compute(tmp_path, change, message) -> None:
    _, cfg = _exported(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(cfg | change))
    with pytest.raises(nn.CheckpointError, match=message):
        nn.import_gpt2(tmp_path)


def test_import_reports_missing_and_corrupted_files(tmp_path) -> None:
    with pytest.raises(nn.CheckpointError, match="config.json"):
        nn.import_gpt2(tmp_path)
    _exported(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(nn.CheckpointError, match="not a readable safetensors file"):
        nn.import_gpt2(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(nn.CheckpointError, match="safe_serialization=True"):
        nn.import_gpt2(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(data)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(nn.CheckpointError, match="not valid JSON"):
        nn.import_gpt2(tmp_path)


def test_hf_module_name_is_the_identity_on_gpt_linears() -> None:
    model = nn.GPT(CONFIG)
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert [nn.hf_module_name(n) for n in linears] == linears
    with pytest.raises(ValueError, match="not a Linear layer"):
        nn.hf_module_name("transformer.h.0.ln_1")


def test_missing_safetensors_names_the_extra(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'pip install -e "\.\[hf\]"'):  # tinygrad_lite.extras.MissingExtraError
        nn.export_gpt2(nn.GPT(CONFIG), tmp_path)
