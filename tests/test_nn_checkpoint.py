"""Checkpoints: bit-exact round trips, validation of damaged files, exact resume."""
import dataclasses
import zipfile

import numpy as np
import pytest

import nn
import tinygrad_lite as tg
from nn.train import CONFIGS, Trainer, load_model

TEXT = "to be or not to be that is the question\n" * 40
CONFIG = CONFIGS["tiny"]


def small_setup(seed: int = 0):
    config = nn.GPTConfig(block_size=6, vocab_size=9, n_layer=1, n_head=2, n_embd=8)
    model = nn.GPT(config, generator=tg.Generator(seed))
    opt = model.configure_optimizers(0.1, 1e-2)
    x = np.random.default_rng(seed).integers(0, 9, (2, 7))
    for _ in range(2):
        opt.zero_grad()
        model(x[:, :-1], x[:, 1:])[1].backward()
        opt.step()
    return model, opt


def test_round_trip_is_bit_exact(tmp_path):
    model, opt = small_setup()
    gen = tg.Generator(3)
    gen.uniform((5,), np.float64)
    tok = nn.CharTokenizer("abcdefghi")
    path = nn.save_checkpoint(tmp_path / "c.npz", model, opt, step=7, config={"a": 1}, tokenizer=tok,
                              generators={"g": gen}, extra={"note": "x"})
    ckpt = nn.load_checkpoint(path)
    assert ckpt.step == 7 and ckpt.config == {"a": 1} and ckpt.extra == {"note": "x"}
    assert ckpt.get_tokenizer().chars == tok.chars
    model2, opt2 = small_setup(seed=1)
    gen2 = tg.Generator(99)
    nn.restore(ckpt, model2, opt2, {"g": gen2})
    for (_, p), (_, q) in zip(model.named_parameters(), model2.named_parameters()):
        assert np.array_equal(p.numpy(), q.numpy()) and p.dtype == q.dtype
    for p, q in zip(model.parameters(), model2.parameters()):
        s1, s2 = opt.state[id(p)], opt2.state[id(q)]
        assert s1["step"] == s2["step"] and np.array_equal(s1["exp_avg_sq"], s2["exp_avg_sq"])
    assert np.array_equal(gen.uniform((4,), np.float64), gen2.uniform((4,), np.float64))
    assert not list(tmp_path.glob(".*.tmp"))


def test_truncated_and_corrupted_files_are_rejected(tmp_path):
    model, opt = small_setup()
    path = nn.save_checkpoint(tmp_path / "c.npz", model, opt)
    data = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(nn.CheckpointError, match="corrupted or truncated"):
        nn.load_checkpoint(tmp_path / "trunc.npz")
    # Flip one byte inside the stored weights: the zip CRC or the checksum must notice.
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("model/transformer.wte.weight.npy")
    corrupt = bytearray(data)
    corrupt[info.header_offset + 200] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(corrupt))
    with pytest.raises(nn.CheckpointError):
        nn.load_checkpoint(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(nn.CheckpointError, match="corrupted"):
        nn.load_checkpoint(tmp_path / "junk.npz")
    with pytest.raises(nn.CheckpointError, match="does not exist"):
        nn.load_checkpoint(tmp_path / "nope.npz")


def test_mismatched_model_changes_nothing(tmp_path):
    model, opt = small_setup()
    path = nn.save_checkpoint(tmp_path / "c.npz", model, opt)
    other = nn.GPT(nn.GPTConfig(block_size=6, vocab_size=9, n_layer=2, n_head=2, n_embd=8))
    other_opt = other.configure_optimizers(0.1, 1e-2)
    before = {k: v.numpy().copy() for k, v in other.state_dict().items()}
    with pytest.raises(nn.CheckpointError, match=r"missing keys.*transformer\.h\.1"):
        nn.restore(nn.load_checkpoint(path), other, other_opt)
    assert all(np.array_equal(v.numpy(), before[k]) for k, v in other.state_dict().items())
    assert other_opt.state == {}
    # The right model with the wrong optimizer: refused before the model is touched.
    same, _ = small_setup(seed=5)
    before = {k: v.numpy().copy() for k, v in same.state_dict().items()}
    with pytest.raises(nn.CheckpointError, match="AdamW, not SGD"):
        nn.restore(nn.load_checkpoint(path), same, nn.SGD(same.parameters()))
    assert all(np.array_equal(v.numpy(), before[k]) for k, v in same.state_dict().items())


def test_resume_gives_the_same_losses(tmp_path):
    config = CONFIG.with_overrides({"dropout": "0.1", "out_dir": str(tmp_path), "max_iters": "8"})
    straight = Trainer(config, text=TEXT)
    losses = [straight.train_step() for _ in range(8)]

    first = Trainer(config, text=TEXT)
    for _ in range(5):
        first.train_step()
    first.save(tmp_path / "mid.npz")
    tg.manual_seed(12345)  # disturb the global RNG: the checkpoint must restore it
    resumed = Trainer(config, text=TEXT)
    resumed.resume(tmp_path / "mid.npz")
    assert resumed.step == 5
    rest = [resumed.train_step() for _ in range(3)]
    assert [h.loss for h in resumed.history] == losses  # bit-identical, not just close
    assert rest == losses[5:]


def test_trainer_run_writes_checkpoint_plot_and_loads(tmp_path):
    config = CONFIG.with_overrides({"out_dir": str(tmp_path), "max_iters": "6", "eval_interval": "3"})
    trainer = Trainer(config, text=TEXT)
    trainer.run(progress=False, log=lambda s: None)
    assert (tmp_path / "ckpt.npz").exists() and (tmp_path / "config.json").exists()
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert [e["step"] for e in trainer.evals] == [3, 6]
    model, tok, cfg = load_model(tmp_path / "ckpt.npz")
    assert cfg["train"]["max_iters"] == 6 and not model.training
    out = model.generate(np.array([tok.encode("to ")]), 5, generator=tg.Generator(0))
    assert len(tok.decode(out.numpy()[0])) == 8


def test_config_overrides():
    c = CONFIG.with_overrides({"n_layer": "3", "bias": "false", "learning_rate": "3e-4"})
    assert c.n_layer == 3 and c.bias is False and c.learning_rate == 3e-4
    with pytest.raises(ValueError, match="unknown setting 'n_layers'"):
        CONFIG.with_overrides({"n_layers": "3"})
    with pytest.raises(ValueError, match="expected int"):
        CONFIG.with_overrides({"n_layer": "three"})
    assert CONFIGS["shakespeare-char-cpu"].n_embd == 128 and CONFIGS["shakespeare-char-cpu"].max_iters == 2000


@dataclasses.dataclass
class _Settings:
    steps: int = 3
    lr: float = 0.1
    name: str = "run"
    fast: bool = False
    seed: int | None = None
    ranks: list[int] = dataclasses.field(default_factory=lambda: [1, 2])


def test_with_overrides_parses_each_field_by_its_annotation():
    """One parser for every config (TrainConfig, lora's FinetuneConfig, ...): nn.with_overrides."""
    s = nn.with_overrides(_Settings(), {"steps": "5", "lr": "3e-4", "name": "a,b", "fast": "true", "seed": "7",
                                        "ranks": "4,8,16"})
    assert s == _Settings(steps=5, lr=3e-4, name="a,b", fast=True, seed=7, ranks=[4, 8, 16])
    assert nn.with_overrides(s, {"seed": "None", "fast": "0", "ranks": ""}) == _Settings(
        5, 3e-4, "a,b", False, None, [])
    for key, text, expected in (("steps", "2.5", "expected int"), ("fast", "yes", "expected bool"),
                                ("seed", "x", r"expected int \| None"), ("ranks", "4,x", r"expected list\[int\]")):
        with pytest.raises(ValueError, match=f"setting {key}={text!r}: {expected}"):
            nn.with_overrides(_Settings(), {key: text})
    with pytest.raises(ValueError, match="unknown setting 'step'; the settings are: fast, lr, name, ranks, seed"):
        nn.with_overrides(_Settings(), {"step": "1"})


@pytest.mark.parametrize("overrides, named", [
    ({"eval_interval": "0"}, "eval_interval=0"), ({"grad_accum": "0"}, "grad_accum=0"),
    ({"dtype": "int32"}, "dtype='int32'"), ({"max_iters": "-3"}, "max_iters=-3"),
    ({"batch_size": "0"}, "batch_size=0"), ({"learning_rate": "-1"}, "learning_rate=-1.0"),
    ({"checkpoint_interval": "-1"}, "checkpoint_interval=-1"), ({"grad_clip": "inf"}, "grad_clip=inf"),
    ({"warmup_iters": "30"}, "warmup_iters=30"), ({"out_dir": ""}, "out_dir=''"),
])
def test_config_checks_every_value_when_made(overrides, named):
    with pytest.raises(ValueError, match=f"TrainConfig: {named}, expected"):
        CONFIG.with_overrides(overrides)
    with pytest.raises(ValueError, match=named):  # the library checks too, not only the CLI's parser
        dataclasses.replace(CONFIG, **{k: type(getattr(CONFIG, k))(v) if v else v for k, v in overrides.items()})


def test_trainer_refuses_a_file_as_out_dir(tmp_path):
    (tmp_path / "f").write_text("x")
    trainer = Trainer(CONFIG.with_overrides({"out_dir": str(tmp_path / "f"), "max_iters": "1"}), text=TEXT)
    with pytest.raises(ValueError, match="out_dir=.*exists and is not a folder"):
        trainer.run(progress=False, log=lambda _: None)


def test_trainer_with_bpe_tokenizer(tmp_path):
    config = CONFIG.with_overrides({"tokenizer": "bpe", "bpe_vocab_size": "262", "out_dir": str(tmp_path)})
    trainer = Trainer(config, text=TEXT)
    assert trainer.tokenizer.vocab_size == 262 and trainer.model.config.vocab_size == 262
    assert len(trainer.train_tokens) < 0.8 * 0.9 * len(TEXT)  # merges shortened the text
    trainer.train_step()
    trainer.save(tmp_path / "c.npz")
    assert isinstance(nn.load_checkpoint(tmp_path / "c.npz").get_tokenizer(), nn.BPETokenizer)
    with pytest.raises(ValueError, match="unknown tokenizer 'word'"):
        Trainer(CONFIG.with_overrides({"tokenizer": "word"}), text=TEXT)


def test_files_that_are_not_checkpoints_are_named_so(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    np.save(tmp_path / "a.npy", np.zeros(2))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    np.savez(tmp_path / "plain.npz", x=np.zeros(2))
    for name in ("notes.txt", "a.npy", "objects.npz", "plain.npz"):
        with pytest.raises(nn.CheckpointError, match="is not a tglite checkpoint") as e:
            nn.load_checkpoint(tmp_path / name)
        assert "allow_pickle" not in str(e.value)  # never suggest loading untrusted pickles
    with pytest.raises(nn.CheckpointError, match="is a folder"):
        nn.load_checkpoint(tmp_path)
