"""The PEFT-style API of lora: LoraConfig, target_modules / layers_to_transform / rank_pattern rules,
bias, modules_to_save, delete_adapter, unload, add_weighted_adapter and mixed adapters per batch row."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lora
import nn
import tinygrad_lite as tg
from lora.targets import layer_index, pattern_value

CFG = nn.GPTConfig(vocab_size=20, n_layer=3, n_head=2, n_embd=8, block_size=8)
LINEARS = [f"transformer.h.{i}.{part}" for i in range(3)
           for part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]


def gpt(seed: int = 0) -> nn.GPT:
    return nn.GPT(CFG, dtype="float64", generator=tg.Generator(seed))


def tokens(rows: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CFG.vocab_size, (rows, 8))


def randomize(model: nn.Module, name: str, seed: int = 1) -> None:
    """Random values for adapter `name`'s parameters (B = 0 would make every comparison trivial)."""
    rng = np.random.default_rng(seed)
    for k, p in model.named_parameters():
        if f".adapters.{name}." in k or f".modules_to_save.{name}." in k:
            p.data[...] = rng.normal(0, 0.3, p.shape)


def adapted(model: nn.Module) -> list[str]:
    return [n for n, _ in lora.lora_layers(model)]


def logits(model: nn.Module, idx: np.ndarray) -> np.ndarray:
    return model(idx)[0].numpy()


# ------------------------------------------------------------------ LoraConfig
def test_lora_config_defaults_and_validation() -> None:
    c = lora.LoraConfig()
    assert (c.r, c.lora_alpha, c.target_modules, c.bias, c.method) == (8, 8.0, "all-linear", "none", "lora")
    assert lora.LoraConfig(use_dora=True).method == "dora" and lora.LoraConfig(method="dora").use_dora
    assert lora.LoraConfig(method="rslora").use_rslora
    assert lora.LoraConfig(target_modules=("c_attn", "c_fc")).target_modules == ["c_attn", "c_fc"]
    assert lora.LoraConfig.from_keywords(["c_attn"], r=4).lora_alpha == 16.0  # the short form's default
    bad = [
        ({"bias": "some"}, "bias must be one of"),
        ({"method": "nope"}, "unknown method"),
        ({"r": 0}, "positive int"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"init": "zeros"}, "init must be"),
        ({"use_dora": True, "method": "vera"}, "contradicts"),
        ({"target_modules": "c_attn", "layers_to_transform": [0]}, "need target_modules as a list"),
        ({"target_modules": ["c_attn"], "layers_pattern": "h"}, "layers_to_transform is not"),
        ({"target_modules": ["c_attn"], "layers_to_transform": [-1]}, "ints >= 0"),
        ({"target_modules": "*.c_attn"}, "not a valid regular expression"),
        ({"rank_pattern": {"c_attn": 0}}, "positive int"),
        ({"alpha_pattern": {"c_attn": float("nan")}}, "finite number"),
        ({"rank_pattern": {"c_attn": 2}, "method": "vera"}, "VeRA"),
        ({"target_modules": []}, "empty"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            lora.LoraConfig(**kwargs)
    with pytest.raises(TypeError, match="list of module names"):
        lora.LoraConfig(modules_to_save="lm_head")


def test_config_form_equals_keyword_form() -> None:
    a, b = gpt(), gpt()
    lora.apply_lora(a, ["c_attn", "c_fc"], r=2, alpha=4, generator=tg.Generator(5))
    lora.apply_lora(b, lora.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn", "c_fc"]),
                    generator=tg.Generator(5))
    assert lora.adapter_config(a) == lora.adapter_config(b)
    sa, sb = lora.adapter_state_dict(a), lora.adapter_state_dict(b)
    assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert lora.peft_configs(b)["default"].target_modules == ["c_attn", "c_fc"]
    with pytest.raises(TypeError, match="LoraConfig and the keywords"):
        lora.apply_lora(gpt(), lora.LoraConfig(), r=4)
    assert adapted(lora.apply_lora(gpt(), target_modules=["c_fc"], r=2)) == [n for n in LINEARS if "c_fc" in n]
    with pytest.raises(TypeError, match="given twice"):
        lora.apply_lora(gpt(), ["c_attn"], target_modules=["c_fc"])
    with pytest.raises(TypeError, match="goes in a LoraConfig"):
        lora.apply_lora(gpt(), ["c_attn"], lora_alpha=4)  # the short form keeps its own names
    with pytest.raises(ValueError, match="identifier other than"):
        lora.apply_lora(gpt(), ["c_attn"], adapter_name="__base__")
    with pytest.raises(ValueError, match="already"):
        lora.apply_lora(a, ["c_proj"], r=2)  # "default" exists


# ------------------------------------------------------------- which modules
def test_target_modules_list_regex_and_all_linear() -> None:
    assert lora.find_targets(gpt(), ["c_attn"]) == [n for n in LINEARS if n.endswith("c_attn")]
    assert lora.find_targets(gpt(), ["mlp.c_proj", "transformer.h.0.attn.c_proj"]) == [
        "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_proj", "transformer.h.1.mlp.c_proj",
        "transformer.h.2.mlp.c_proj"]
    # a string is a regex matched against the whole name
    assert lora.find_targets(gpt(), r"transformer\.h\.[12]\.attn\.c_.*") == [
        n for n in LINEARS if ".attn." in n and ".h.0." not in n]
    assert lora.find_targets(gpt(), "transformer.h.*.attn.c_proj") == [n for n in LINEARS if n.endswith("attn.c_proj")]
    assert lora.find_targets(gpt()) == LINEARS  # all-linear: every Linear but the LM head
    with pytest.raises(ValueError, match=r"pass the list \['c_attn'\]"):
        lora.find_targets(gpt(), "c_attn")  # a suffix as a string: a clear error, not a silent other meaning
    with pytest.raises(ValueError, match="names, not patterns"):
        lora.find_targets(gpt(), ["transformer.h.*.attn.c_proj"])
    with pytest.raises(ValueError, match="special only as a plain string"):
        lora.find_targets(gpt(), ["all-linear"])
    with pytest.raises(ValueError, match="not Linear layers"):
        lora.find_targets(gpt(), ["attn"])  # the attention module itself
    with pytest.raises(ValueError, match="not Linear layers"):
        lora.find_targets(gpt(), r"transformer\.h\.0\.attn\..*")  # its dropouts too, as in PEFT
    with pytest.raises(ValueError, match="match no Linear"):
        lora.find_targets(gpt(), ["q_proj"])


def test_exclude_modules_list_and_regex() -> None:
    config = lora.LoraConfig(exclude_modules=["c_fc"])
    assert lora.find_targets(gpt(), config) == [n for n in LINEARS if not n.endswith("c_fc")]
    config = lora.LoraConfig(target_modules=["c_proj"], exclude_modules=r".*\.h\.0\..*")
    assert lora.find_targets(gpt(), config) == [n for n in LINEARS if n.endswith("c_proj") and ".h.0." not in n]


def test_layer_index_rule() -> None:
    assert layer_index("transformer.h.2.mlp.c_fc") == 2
    assert layer_index("model.layers.1.experts.0.w1") == 1  # the first index, not the expert's
    assert layer_index("h.1.mlp") is None  # PEFT needs a segment before the layer list
    assert layer_index("transformer.h.2.mlp.c_fc", "h") == 2
    assert layer_index("transformer.h.2.mlp.c_fc", "blocks") is None


def test_layers_to_transform() -> None:
    names = lora.find_targets(gpt(), lora.LoraConfig(target_modules=["c_attn", "c_fc"], layers_to_transform=[0, 2]))
    assert names == ["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_fc",
                     "transformer.h.2.attn.c_attn", "transformer.h.2.mlp.c_fc"]
    config = lora.LoraConfig(target_modules=["c_attn"], layers_to_transform=1, layers_pattern="h")
    assert lora.find_targets(gpt(), config) == ["transformer.h.1.attn.c_attn"]
    config = lora.LoraConfig(target_modules=["c_attn"], layers_to_transform=1, layers_pattern="blocks")
    with pytest.raises(ValueError, match="no Linear layer to adapt"):
        lora.apply_lora(gpt(), config)
    # a full name is taken as it is (PEFT applies the layer filter to suffix matches only)
    config = lora.LoraConfig(target_modules=["transformer.h.0.mlp.c_fc", "c_attn"], layers_to_transform=[2])
    assert lora.find_targets(gpt(), config) == ["transformer.h.0.mlp.c_fc", "transformer.h.2.attn.c_attn"]


def test_rank_and_alpha_pattern() -> None:
    assert pattern_value({"c_proj": 4}, "transformer.h.0.attn.c_proj", 8) == 4
    assert pattern_value({"proj": 4}, "transformer.h.0.attn.c_proj", 8) == 8  # keys start at a dot
    assert pattern_value({r"h\.1\.attn\.c_proj": 2, "c_proj": 4}, "transformer.h.1.attn.c_proj", 8) == 2  # first wins
    m = gpt()
    config = lora.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn", "c_proj"],
                             rank_pattern={r"h\.1\.attn\.c_attn": 5, "mlp.c_proj": 3}, alpha_pattern={"c_proj": 9})
    lora.apply_lora(m, config)
    got = {n: (layer.adapters["default"].r, layer.adapters["default"].alpha) for n, layer in lora.lora_layers(m)}
    for n, (r, alpha) in got.items():
        want_r = 5 if n == "transformer.h.1.attn.c_attn" else 3 if n.endswith("mlp.c_proj") else 2
        assert (r, alpha) == (want_r, 9.0 if n.endswith("c_proj") else 4.0), n
        assert dict(lora.lora_layers(m))[n].adapters["default"].A.shape[0] == want_r
    assert lora.lora_layers(m)[0][1].adapters["default"].scale == 2.0
    with pytest.raises(ValueError, match="rank_pattern keys"):
        lora.apply_lora(gpt(), lora.LoraConfig(target_modules=["c_attn"], rank_pattern={"c_fc": 3}))


# ---------------------------------------------------------------------- bias
@pytest.mark.parametrize("bias", ["none", "all", "lora_only"])
def test_bias_options(bias: str, tmp_path: Path) -> None:
    m = gpt()
    lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_attn"], bias=bias))
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    adapters = {n for n in trainable if ".adapters." in n}
    biases = trainable - adapters
    all_biases = {n for n, _ in m.named_parameters() if n.endswith(".bias") and ".adapters." not in n}
    expected = {"none": set(), "all": all_biases,
                "lora_only": {f"transformer.h.{i}.attn.c_attn.base.bias" for i in range(3)}}[bias]
    assert biases == expected and len(adapters) == 6
    assert set(lora.adapter_state_dict(m)) == trainable  # the trained biases travel with the adapter
    # training moves exactly these biases
    before = {n: p.numpy().copy() for n, p in m.named_parameters()}
    opt = nn.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    idx = tokens()
    _, loss = m(idx, idx)
    loss.backward()
    opt.step()
    moved = {n for n, p in m.named_parameters() if not np.array_equal(p.numpy(), before[n])}
    assert moved - adapters == expected
    # and they load back
    path = lora.save_adapter(tmp_path / "a.npz", m)
    fresh = gpt()
    lora.apply_lora(fresh, lora.LoraConfig(r=2, target_modules=["c_attn"], bias=bias))
    lora.load_adapter(path, fresh)
    np.testing.assert_array_equal(logits(fresh, idx), logits(m, idx))


# ------------------------------------------------------------ modules_to_save
def test_modules_to_save_copies_per_adapter(tmp_path: Path) -> None:
    m = gpt()
    idx = tokens()
    y_base = logits(m, idx)
    lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_attn"], modules_to_save=["ln_f"]), adapter_name="a")
    wrapper = m.transformer.ln_f
    assert isinstance(wrapper, lora.ModulesToSave) and list(wrapper.modules_to_save.keys()) == ["a"]
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert {"transformer.ln_f.modules_to_save.a.weight", "transformer.ln_f.modules_to_save.a.bias"} <= trainable
    assert not any(".original_module." in n for n in trainable)
    np.testing.assert_array_equal(logits(m, idx), y_base)  # the copy starts equal to the original
    randomize(m, "a")
    y_a = logits(m, idx)
    lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_fc"]), adapter_name="b")  # no copy: original
    randomize(m, "b", seed=2)
    y_b = logits(m, idx)
    with lora.disable_adapter(m):
        np.testing.assert_array_equal(logits(m, idx), y_base)
    lora.set_adapter(m, "a")
    np.testing.assert_array_equal(logits(m, idx), y_a)
    assert abs(y_a - y_b).max() > 1e-3
    state = lora.adapter_state_dict(m, "a")
    assert "transformer.ln_f.modules_to_save.a.weight" in state
    path = lora.save_adapter(tmp_path / "a.npz", m, "a")
    fresh = gpt()
    lora.apply_lora(fresh, lora.LoraConfig(r=2, target_modules=["c_attn"], modules_to_save=["ln_f"]),
                    adapter_name="x")
    lora.load_adapter(path, fresh, name="x")
    np.testing.assert_array_equal(logits(fresh, idx), y_a)
    plain = lora.merge_and_unload(m)  # keeps the active adapter's trained copy
    assert isinstance(plain.transformer.ln_f, nn.LayerNorm)
    np.testing.assert_allclose(logits(plain, idx), y_a, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="modules_to_save entries"):
        lora.apply_lora(gpt(), lora.LoraConfig(target_modules=["c_attn"], modules_to_save=["nothing"]))


def test_modules_to_save_is_not_also_adapted() -> None:
    m = gpt()
    lora.apply_lora(m, lora.LoraConfig(r=2, modules_to_save=["transformer.h.0.mlp.c_fc"]))
    assert "transformer.h.0.mlp.c_fc" not in adapted(m) and len(adapted(m)) == len(LINEARS) - 1
    assert isinstance(m.transformer.h[0].mlp.c_fc, lora.ModulesToSave)
    m = gpt()  # a saved block: nothing inside it is adapted (PEFT's rule), and it is copied whole
    lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_fc"], modules_to_save=["h.1.mlp"]))
    assert adapted(m) == ["transformer.h.0.mlp.c_fc", "transformer.h.2.mlp.c_fc"]
    assert isinstance(m.transformer.h[1].mlp, lora.ModulesToSave)
    with pytest.raises(ValueError, match="hold adapted layers"):  # an adapted layer cannot be saved whole
        lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_proj"], modules_to_save=["h.0.mlp"]),
                        adapter_name="b")


# ------------------------------------------------- delete_adapter and unload
def test_delete_adapter() -> None:
    m = gpt()
    idx = tokens()
    y_base = logits(m, idx)
    lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_attn"], modules_to_save=["ln_f"]), adapter_name="a")
    randomize(m, "a")
    y_a = logits(m, idx)
    lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_fc"]), adapter_name="b")
    randomize(m, "b", seed=2)
    lora.delete_adapter(m, "b")  # the active one: the first remaining adapter takes over
    assert lora.adapter_names(m) == ["a"] and not any(".adapters.b." in n for n, _ in m.named_parameters())
    np.testing.assert_array_equal(logits(m, idx), y_a)
    assert all(".adapters.a." in n or ".modules_to_save.a." in n for n, p in m.named_parameters() if p.requires_grad)
    with pytest.raises(KeyError, match="no adapter named"):
        lora.delete_adapter(m, "b")
    lora.merge(m)
    with pytest.raises(RuntimeError, match="unmerge"):
        lora.delete_adapter(m, "a")
    lora.unmerge(m)
    lora.delete_adapter(m, "a")
    assert lora.adapter_names(m) == [] and not any(p.requires_grad for p in m.parameters())
    assert list(m.transformer.ln_f.modules_to_save.keys()) == []
    np.testing.assert_allclose(logits(m, idx), y_base, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["lora", "dora", "qlora"])
def test_unload_gives_the_base_model_back(method: str) -> None:
    m = gpt()
    idx = tokens()
    lora.apply_lora(m, lora.LoraConfig(r=2, method=method, modules_to_save=["ln_f"]))
    with lora.disable_adapter(m):
        y_base = logits(m, idx)  # for qlora: the NF4 base
    randomize(m, "default")
    assert abs(logits(m, idx) - y_base).max() > 1e-3
    if method != "qlora":
        lora.merge(m)  # unload unmerges first
    plain = lora.unload(m)
    assert plain is m and not lora.lora_layers(m) and not lora.saved_modules(m) and not lora.peft_configs(m)
    np.testing.assert_allclose(logits(m, idx), y_base, rtol=0, atol=1e-12)
    assert all(p.requires_grad for p in m.parameters())
    if method != "qlora":
        assert set(dict(m.named_parameters())) == set(dict(gpt().named_parameters()))
        assert isinstance(m.transformer.h[0].attn.c_attn, nn.Linear)
    else:
        assert isinstance(m.transformer.h[0].attn.c_attn, lora.NF4Linear)  # unload does not dequantize


# ------------------------------------------------------ add_weighted_adapter
def two_adapters(r_b: int = 2) -> nn.GPT:
    m = gpt()
    lora.apply_lora(m, lora.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn", "c_fc"]), adapter_name="a")
    randomize(m, "a", seed=1)
    lora.apply_lora(m, lora.LoraConfig(r=r_b, lora_alpha=3, target_modules=["c_attn"]), adapter_name="b")
    randomize(m, "b", seed=2)
    return m


def delta(layer: lora.LoRALinear, name: str) -> np.ndarray:
    with tg.no_grad():
        return layer.adapters[name].delta_weight().numpy()


@pytest.mark.parametrize("how", ["cat", "svd"])
def test_weighted_cat_and_svd_are_the_weighted_sum(how: str) -> None:
    m = two_adapters(r_b=3)
    lora.add_weighted_adapter(m, ["a", "b"], [0.7, -1.3], "ab", combination_type=how, svd_rank=5)
    for name, layer in lora.lora_layers(m):
        expected = 0.7 * delta(layer, "a") + (-1.3 * delta(layer, "b") if "b" in layer.adapters else 0.0)
        np.testing.assert_allclose(delta(layer, "ab"), expected, rtol=0, atol=1e-12)
        ab = layer.adapters["ab"]
        assert ab.scale == 1.0 and ab.r == (5 if "b" in layer.adapters or how == "svd" else 2), name
    # not active, frozen; set_adapter runs it
    assert all(layer.active == "b" or layer.active is None for _, layer in lora.lora_layers(m))
    assert not any(".adapters.ab." in n for n, p in m.named_parameters() if p.requires_grad)
    lora.set_adapter(m, "ab")
    assert any(".adapters.ab." in n for n, p in m.named_parameters() if p.requires_grad)


def test_weighted_svd_truncates_to_the_best_rank_k() -> None:
    m = two_adapters(r_b=3)
    lora.add_weighted_adapter(m, ["a", "b"], [1.0, 1.0], "ab", combination_type="svd")  # rank max(2, 3) = 3
    layer = lora.lora_layers(m)[0][1]
    full = delta(layer, "a") + delta(layer, "b")
    u, s, vt = np.linalg.svd(full)
    np.testing.assert_allclose(delta(layer, "ab"), (u[:, :3] * s[:3]) @ vt[:3], atol=1e-12)
    assert np.linalg.norm(delta(layer, "ab") - full) > 1e-6  # rank 5 cut to 3: not exact


def test_weighted_linear_is_peft_formula() -> None:
    m = two_adapters(r_b=2)
    w = [0.5, -2.0]
    lora.add_weighted_adapter(m, ["a", "b"], w, "lin", combination_type="linear")
    layer = lora.lora_layers(m)[0][1]
    a, b = layer.adapters["a"], layer.adapters["b"]
    ca, cb = w[0] * a.scale, w[1] * b.scale
    big_a = np.sign(ca) * np.sqrt(abs(ca)) * a.A.numpy() + np.sign(cb) * np.sqrt(abs(cb)) * b.A.numpy()
    big_b = np.sqrt(abs(ca)) * a.B.numpy() + np.sqrt(abs(cb)) * b.B.numpy()
    np.testing.assert_allclose(delta(layer, "lin"), big_b @ big_a, atol=1e-12)
    assert np.linalg.norm(delta(layer, "lin") - (w[0] * delta(layer, "a") + w[1] * delta(layer, "b"))) > 1e-3
    lora.add_weighted_adapter(m, ["a"], [-0.4], "one", combination_type="linear")  # one adapter: exact
    np.testing.assert_allclose(delta(layer, "one"), -0.4 * delta(layer, "a"), atol=1e-12)


def test_weighted_adapter_errors() -> None:
    m = two_adapters(r_b=3)
    with pytest.raises(ValueError, match="equal ranks"):
        lora.add_weighted_adapter(m, ["a", "b"], [1, 1], "x", combination_type="linear")
    with pytest.raises(KeyError, match="no adapter named"):
        lora.add_weighted_adapter(m, ["a", "z"], [1, 1], "x")
    with pytest.raises(ValueError, match="one weight per adapter"):
        lora.add_weighted_adapter(m, ["a", "b"], [1], "x")
    with pytest.raises(ValueError, match="exists already"):
        lora.add_weighted_adapter(m, ["a", "b"], [1, 1], "a")
    with pytest.raises(ValueError, match="svd_rank"):
        lora.add_weighted_adapter(m, ["a", "b"], [1, 1], "x", svd_rank=0)
    with pytest.raises(ValueError, match="combination_type"):
        lora.add_weighted_adapter(m, ["a", "b"], [1, 1], "x", combination_type="ties")
    lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_attn"], method="dora"), adapter_name="d")
    with pytest.raises(ValueError, match="only plain LoRA"):
        lora.add_weighted_adapter(m, ["a", "d"], [1, 1], "x", combination_type="cat")
    assert "x" not in lora.adapter_names(m)


# ------------------------------------------------------- mixed batch per row
@pytest.mark.parametrize("method", ["lora", "dora"])
def test_adapter_per_row_equals_each_adapter_alone(method: str) -> None:
    m = gpt()
    lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_attn", "c_fc"], method=method,
                                       modules_to_save=["ln_f"]), adapter_name="a")
    randomize(m, "a", seed=1)
    lora.apply_lora(m, lora.LoraConfig(r=3, target_modules=["c_attn", "c_proj"], method=method), adapter_name="b")
    randomize(m, "b", seed=2)
    m.eval()
    names = ["b", "a", "__base__", "a", "b"]
    idx = tokens(rows=5)
    alone = {}
    for name in ("a", "b"):
        lora.set_adapter(m, name)
        alone[name] = logits(m, idx)
    with lora.disable_adapter(m):
        alone["__base__"] = logits(m, idx)
    lora.set_adapter(m, "a")
    with lora.adapter_per_row(m, names):
        mixed = logits(m, idx)
    for i, name in enumerate(names):
        np.testing.assert_allclose(mixed[i], alone[name][i], rtol=0, atol=1e-12)
    assert abs(alone["a"] - alone["b"]).max() > 1e-3 and abs(alone["a"] - alone["__base__"]).max() > 1e-3
    np.testing.assert_array_equal(logits(m, idx), alone["a"])  # the context is undone
    assert all(layer.row_adapters is None for _, layer in lora.lora_layers(m))


def test_adapter_per_row_errors() -> None:
    m = gpt()
    lora.apply_lora(m, lora.LoraConfig(r=2, target_modules=["c_attn"]), adapter_name="a")
    with pytest.raises(RuntimeError, match="training mode"):
        with lora.adapter_per_row(m, ["a", "a"]):
            pass
    m.eval()
    with pytest.raises(KeyError, match="no adapter named"):
        with lora.adapter_per_row(m, ["a", "zz"]):
            pass
    with pytest.raises(ValueError, match="3 adapter names for a batch of 2 rows"):
        with lora.adapter_per_row(m, ["a", "__base__", "a"]):
            m(tokens(rows=2))
    assert all(layer.row_adapters is None for _, layer in lora.lora_layers(m))
    with pytest.raises(TypeError, match="one adapter name per row"):
        with lora.adapter_per_row(m, "a"):
            pass
    lora.merge(m)
    with pytest.raises(RuntimeError, match="unmerge"):
        with lora.adapter_per_row(m, ["a", "a"]):
            pass


def test_adapter_per_row_gradcheck() -> None:
    base = nn.Linear(4, 3, dtype="float64", generator=tg.Generator(0))
    layer = lora.LoRALinear(base)
    for k, name in enumerate(("a", "b")):
        layer.add_adapter(name, lora.LoRAAdapter(4, 3, r=2, alpha=3, init="random", dtype="float64",
                                                 generator=tg.Generator(k + 1)))
    layer.eval()
    a, b = layer.adapters["a"], layer.adapters["b"]
    x = tg.randn(4, 4, dtype="float64", requires_grad=True)
    with lora.adapter_per_row(layer, ["b", "__base__", "a", "b"]):
        assert tg.gradcheck(lambda x, *params: layer(x), [x, a.A, a.B, b.A, b.B])
        y = layer(x)
    y.sum().backward()  # row 1 (base) gives the adapters no gradient; rows 0, 3 reach only b
    xs = x.numpy()
    np.testing.assert_allclose(b.B.grad.numpy(), b.scale * np.outer(np.ones(3), (xs[[0, 3]] @ b.A.numpy().T).sum(0)),
                               rtol=1e-12)
