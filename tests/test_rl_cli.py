"""`tglite rl` in process through `tglite.cli.main`, its figures (rl/plots.py) and the two rl tour steps.

Bad input: exit code 2, one line on stderr that names the bad value, no traceback, nothing written.
Happy paths run on tiny settings (a one-layer policy, a few problems, one or two steps) and the
shipped models, whatever their quality: they check that files are written and resumable, not how
well the models do.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

import nn  # noqa: E402
from rl import plots  # noqa: E402
from tglite import cli  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `tglite rl ARGV`; argparse's errors exit through SystemExit, ours return the code."""
    try:
        code = cli.main(["rl", *argv])
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_png(path: Path) -> None:
    assert path.is_file() and path.read_bytes()[:8] == PNG, path
    assert not list(path.parent.glob("*.tmp")), "a temporary file was left behind"


# ----------------------------------------------------------------------------- bad input
# (arguments, a text the one-line error must contain); {missing}, {text} and {existing} are filled in.
BAD_INPUTS = [
    (["train-policy", "--preset", "huge"], "'huge'"),
    (["train-policy", "--preset", "tiny", "n_layers=2"], "'n_layers'"),
    (["train-policy", "--preset", "tiny", "max_iters=abc"], "max_iters='abc'"),
    (["train-policy", "--preset", "tiny", "max_iters=-3"], "-3"),
    (["train-policy", "--preset", "tiny", "levels=1,9"], "9"),
    (["train-policy", "--preset", "tiny", "learning_rate=0"], "learning_rate"),
    (["train-policy", "--preset", "tiny", "oops"], "'oops'"),
    (["train-policy", "--preset", "tiny", "--out", "{existing}"], "--force"),
    (["train-policy", "--preset", "tiny", "--out", "{text}"], "notes.txt"),
    (["train-policy", "--resume", "--out", "{missing_dir}"], "ckpt.npz"),
    (["train-policy", "--resume", "--force", "--preset", "tiny"], "--force"),
    (["train-rm", "--policy", "{missing}"], "missing.npz"),
    (["train-rm", "--policy", "{text}"], "notes.txt"),
    (["train-rm", "--policy", "prm"], "'prm'"),
    (["train-rm", "steps=0"], "steps"),
    (["train-rm", "rollouts=many"], "rollouts='many'"),
    (["train-rm", "--out", "{existing}"], "--force"),
    (["search", "--level", "9"], "9"),
    (["search", "--n", "-4"], "-4"),
    (["search", "--n", "0"], "0"),
    (["search", "--method", "bogus"], "'bogus'"),
    (["search", "--problems", "500"], "500"),
    (["evaluate", "--levels", "1,9"], "1,9"),
    (["evaluate", "--levels", "one"], "one"),
    (["evaluate", "--problems", "0"], "0"),
    (["evaluate", "--problems", "201"], "201"),
    (["evaluate", "--samples", "-1"], "-1"),
    (["evaluate", "--policy", "no-such-model"], "no-such-model"),
    (["search", "--seed", "-1"], "-1"),
    (["search", "--method", "beam", "--n", "6", "--beam-width", "4"], "--n 6"),
    (["search", "--method", "dvts", "--verifier", "orm"], "--verifier orm"),
    (["search", "--prm", "orm"], "--prm 'orm'"),
    (["search", "--policy", "{text}"], "notes.txt"),
    (["search", "--verifier", "orm", "--orm", "{missing}"], "missing.npz"),
    (["claims", "levels=7"], "7"),
    (["claims", "--quick", "ns=1,2,64"], "64"),
    (["claims", "search_settings=beam"], "search_settings='beam'"),
    (["claims", "--large", "{missing}"], "missing.npz"),
    (["claims", "--orm", "prm"], "--orm 'prm'"),
    (["claims", "--out", "{existing}"], "--force"),
    (["grpo", "grpo.num_generations=1"], "num_generations"),
    (["grpo", "grpo.bogus=1"], "'grpo.bogus'"),
    (["grpo", "grpo.loss_type=ppo"], "'ppo'"),
    (["grpo", "learning_rate=fast"], "learning_rate='fast'"),
    (["grpo", "steps=-1"], "-1"),
    (["grpo", "--policy", "{text}"], "notes.txt"),
    (["grpo", "--policy", "orm"], "'orm'"),
    (["grpo", "--resume", "--out", "{missing_dir}"], "ckpt.npz"),
    (["grpo", "--out", "{existing}"], "--force"),
    (["grpo", "process_rewards=custom"], "choose checker or prm"),
    (["grpo", "process_rewards=gold"], "'gold' is not one of none, checker, prm, custom"),
    (["bogus-subcommand"], "'bogus-subcommand'"),
]


@pytest.mark.parametrize("argv, expected", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv: list[str], expected: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    fixtures = tmp_path / "fixtures"
    (fixtures / "existing").mkdir(parents=True)
    (fixtures / "existing" / "keep.txt").write_text("from a previous run")
    (fixtures / "notes.txt").write_text("not a checkpoint\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the default --out folders are relative: they would appear here
    names = {"missing": fixtures / "missing.npz", "text": fixtures / "notes.txt", "existing": fixtures / "existing",
             "missing_dir": fixtures / "no-run"}
    argv = [a.format(**names) for a in argv]
    before = files_under(fixtures)

    code, out, err = call(argv, capsys)

    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err, err
    assert "Traceback" not in out + err
    assert files_under(work) == [] and files_under(fixtures) == before


def test_help_shows_every_subcommand_and_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(["--help"], capsys)
    assert code == 0
    for name in ("train-policy", "train-rm", "search", "claims", "grpo"):
        assert name in out
    code, out, _ = call(["search", "--help"], capsys)
    assert code == 0 and "(default: policy-small)" in out and "(default: weighted)" in out


def test_settings_lists_keys_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(["grpo", "--settings"], capsys)
    assert code == 0 and "grpo.num_generations=8" in out and "levels=1,2" in out
    code, out, _ = call(["claims", "--quick", "--settings"], capsys)
    assert code == 0 and "search_settings=beam:4:2,dvts:4:2" in out
    code, out, _ = call(["train-policy", "--preset", "tiny", "--settings"], capsys)
    assert code == 0 and "max_iters=20" in out


# ----------------------------------------------------------------------------- happy paths
TINY_POLICY = ["--preset", "tiny", "--no-progress", "max_iters=4", "eval_interval=2", "levels=1,2"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C; kill or a batch system
def test_train_policy_interrupt_resume_and_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], signum: int) -> None:
    from rl import PolicyRun

    out = tmp_path / "policy"
    real_step = PolicyRun.train_step

    def step_then_ctrl_c(self: Any) -> float:
        loss = real_step(self)
        if self.step == 2:
            signal.raise_signal(signum)  # as if Ctrl-C (or kill) came during step 2
        return loss

    with monkeypatch.context() as m:
        m.setattr(PolicyRun, "train_step", step_then_ctrl_c)
        code, _, err = call(["train-policy", *TINY_POLICY, "--out", str(out)], capsys)
    assert code == 130
    assert "interrupted at step 2 of 4" in err and "--resume" in err
    assert nn.load_checkpoint(out / "ckpt.npz").step == 2
    assert_png(out / "sft_curve.png")

    code, out_text, _ = call(["train-policy", "--out", str(out), "--resume", "--no-progress"], capsys)
    assert code == 0
    assert "resumed" in out_text and "at step 2 of 4" in out_text and "sft_curve.png" in out_text
    ckpt = nn.load_checkpoint(out / "ckpt.npz")
    assert ckpt.step == 4 and [e["step"] for e in ckpt.extra["evals"]] == [2, 4]
    assert {"step_00002.npz", "step_00004.npz", "policy_config.json", "sft_curve.png"} <= set(files_under(out))

    # --force starts afresh and removes the previous run's snapshots
    code, _, _ = call(["train-policy", *TINY_POLICY, "max_iters=2", "--out", str(out), "--force"], capsys)
    assert code == 0
    assert "step_00004.npz" not in files_under(out) and nn.load_checkpoint(out / "ckpt.npz").step == 2


def test_train_rm_then_search_with_its_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rl import load_reward_model

    out = tmp_path / "rm"
    code, text, _ = call(["train-rm", "--out", str(out), "--no-progress", "train_problems=2", "samples_per_problem=1",
                          "rollouts=1", "heldout_per_level=1", "steps=1", "batch_size=2", "levels=1"], capsys)
    assert code == 0, text
    for name in ("orm", "prm-true", "prm-mc-hard", "prm-mc-soft"):
        assert name in text and (out / f"{name}.npz").is_file()
    assert load_reward_model(out / "prm-true.npz").kind == "prm"
    report = json.loads((out / "reward_report.json").read_text())
    assert set(report["models"]) == {"orm", "prm-true", "prm-mc-hard", "prm-mc-soft"}
    assert_png(out / "aggregation_bias.png")

    code, text, _ = call(["search", "--level", "1", "--problems", "2", "--n", "2", "--method", "best_of_n",
                          "--verifier", "orm", "--orm", str(out / "orm.npz"), "--prm", str(out / "prm-true.npz")],
                         capsys)
    assert code == 0 and "best-of-N (ORM), N=2: accuracy" in text and "FLOPs per problem" in text


@pytest.mark.parametrize("method", ["weighted", "majority", "beam"])
def test_search_with_the_shipped_models(method: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = call(["search", "--level", "2", "--problems", "2", "--n", "2", "--beam-width", "2",
                            "--method", method], capsys)
    assert code == 0, err
    assert "the first 2 test problems" in text and ": accuracy " in text and "greedy decoding: accuracy" in text
    assert "FLOPs per problem" in text


def test_evaluate_prints_greedy_accuracy_and_pass_at_k(capsys: pytest.CaptureFixture[str]) -> None:
    code, text, err = call(["evaluate", "--levels", "1,2", "--problems", "2", "--samples", "2"], capsys)
    assert code == 0, err
    assert "level 1: greedy accuracy" in text and "pass@2" in text and "mean over levels" in text


def test_claims_on_tiny_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "claims"
    code, text, err = call(["claims", "--quick", "--out", str(out), "--no-progress", "levels=1",
                            "problems_per_level=2", "n_max=2", "ns=1,2", "seeds=1", "search_problems_per_level=1",
                            "search_settings=beam:2:2"], capsys)
    assert code == 0, err
    assert "measured:" in text and "Coverage" in text
    results = json.loads((out / "compute_claims.json").read_text())
    assert list(results["levels"]) == ["1"] and results["config"]["ns"] == [1, 2]
    assert "| claim | measured here | holds? | note |" in (out / "claims.md").read_text()
    for name in ("coverage.png", "accuracy_vs_flops.png", "accuracy_vs_flops_no_verifier.png"):
        assert_png(out / name)


GRPO_TINY = ["--no-progress", "steps=1", "prompts_per_step=2", "grpo.num_generations=2", "eval_problems=2",
             "eval_interval=1", "levels=1"]


def test_grpo_writes_log_plot_checkpoint_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grpo"
    code, text, err = call(["grpo", "--out", str(out), *GRPO_TINY], capsys)
    assert code == 0, err
    assert "held-out greedy accuracy: step 0" in text and "grpo_log.csv" in text
    assert (out / "grpo_log.csv").read_text().startswith("step,")
    assert_png(out / "grpo.png")
    assert nn.load_checkpoint(out / "ckpt.npz").step == 1

    code, _, err = call(["grpo", "--out", str(out), "--resume", "--no-progress", "levels=1,2"], capsys)
    assert code == 2 and "only steps=... may change" in err
    code, text, _ = call(["grpo", "--out", str(out), "--resume", "--no-progress", "steps=2"], capsys)
    assert code == 0 and "at step 1 of 2" in text
    assert nn.load_checkpoint(out / "ckpt.npz").step == 2

    code, _, err = call(["grpo", "--lora", "--out", str(tmp_path / "lora"), *GRPO_TINY, "lora_r=2"], capsys)
    assert code == 0, err
    assert nn.load_checkpoint(tmp_path / "lora" / "ckpt.npz").config["grpo_trainer"]["use_lora"] is True


def test_tour_steps_save_their_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tour", "--quick", "--only", "best-of-n", "--only", "grpo", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "FAILED" not in text and "weighted best-of-N, PRM (min)" in text and "held-out greedy accuracy" in text
    assert_png(tmp_path / "rl" / "best_of_n.png")
    assert_png(tmp_path / "rl" / "grpo" / "grpo.png")
    assert (tmp_path / "rl" / "grpo" / "grpo_log.csv").is_file()


# ----------------------------------------------------------------------------- figures
def assert_figure(fig: Any, path: Path) -> None:
    assert_png(path)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes
    for ax in axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), ax
    assert fig.legends or all(ax.get_legend() is not None for ax in axes)


def _curve(offset: float) -> dict[str, Any]:
    return {"ns": [1, 2, 4], "mean": [0.2 + offset, 0.3 + offset, 0.4 + offset], "stderr": [0.05, 0.04, 0.03],
            "flops": [1e7, 2e7, 4e7]}


def test_plots_draw_and_save(tmp_path: Path) -> None:
    evals = [{"step": s, "val_loss": 2.0 / s, "accuracy": {"1": s / 4, "2": s / 8}, "mean_accuracy": s / 6}
             for s in (1, 2, 3, 4)]
    assert_figure(plots.plot_sft_curves({"small": evals, "large": evals}, tmp_path / "sft.png"), tmp_path / "sft.png")

    level = {"coverage": {"k": [1, 2, 4], "pass_at_k": [0.3, 0.5, 0.7], "predicted": [0.3, 0.49, 0.66]},
             "curves": {"majority vote": _curve(0.0), "weighted best-of-N, PRM (min)": _curve(0.1)},
             "curves_without_verifier_flops": {"majority vote": _curve(0.0)},
             "search": {"beam N=4": {"accuracy": 0.5, "flops": 5e7}},
             "greedy_small": {"accuracy": 0.25, "flops": 1e7}, "greedy_large": {"accuracy": 0.45, "flops": 9e7}}
    levels = {"1": level, "2": level}
    assert_figure(plots.plot_coverage(levels, tmp_path / "cov.png"), tmp_path / "cov.png")
    assert_figure(plots.plot_accuracy_vs_flops(levels, tmp_path / "acc.png"), tmp_path / "acc.png")
    fig = plots.plot_accuracy_vs_flops(levels, tmp_path / "acc_nv.png", without_verifier=True)
    assert_figure(fig, tmp_path / "acc_nv.png")
    assert "beam N=4 (PRM-guided; verifier counted)" in [t.get_text() for t in fig.legends[0].get_texts()]

    rows = [{"lines": 3, "solutions": 5, "min": 0.9, "prod": 0.8, "last": 0.95},
            {"lines": 4, "solutions": 2, "min": 0.85, "prod": 0.6, "last": 0.9}]
    assert_figure(plots.plot_aggregation_bias(rows, tmp_path / "agg.png"), tmp_path / "agg.png")

    rng = np.random.default_rng(0)
    values = {k: rng.normal(0.1, 0.2, 200) for k in ("k1", "k2", "k3")}
    assert_figure(plots.plot_kl_estimators(values, 0.1, tmp_path / "kl.png"), tmp_path / "kl.png")
    assert plots.plot_kl_estimators(values, None).axes  # no path: a figure, nothing saved
    logs = [{"step": 0, "accuracy_mean": 0.3}] + [
        {"step": s, "reward": 0.1 + s / 100, "kl": s / 1000, "completion_length_wrong": 30 + s % 3,
         **({"accuracy_mean": 0.3 + s / 100} if s % 5 == 0 else {})} for s in range(1, 11)]
    assert_figure(plots.plot_grpo_runs({"a": logs, "b": logs[:6]}, tmp_path / "grpo.png", window=3),
                  tmp_path / "grpo.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc.png", "acc_nv.png", "agg.png", "cov.png", "grpo.png",
                                                          "kl.png", "sft.png"]


def test_moving_mean_by_hand() -> None:
    from rl.plots import _moving_mean

    np.testing.assert_allclose(_moving_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(_moving_mean(np.array([2.0, 4.0]), 5), [2.0, 3.0])


def test_parser_constants_match_rl_and_the_parser_imports_no_rl() -> None:
    import subprocess
    import sys

    import rl
    from tglite.commands import rl as command

    assert command.LEVELS == tuple(rl.LEVELS)
    assert len(rl.test_set(1)) == command.TEST_SET_SIZE
    check = ("import sys; from tglite import cli; cli.build_parser(); "
             "print(sorted({'rl', 'matplotlib'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
