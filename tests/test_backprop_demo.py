"""The backprop lecture demo on its quick settings: every part produces its tables, figures and
the figures the lecture quotes. No wall-clock time is asserted, only what holds on any machine."""
from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

from tglite.cli import main
from tglite.demos.backprop import BackpropDemoSettings, run_backprop_demo, summary

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("backprop")
    lines: list[str] = []
    result = run_backprop_demo(BackpropDemoSettings.quick(), out, say=lines.append)
    return result, out, lines


def test_settings_live_in_one_dataclass() -> None:
    default, quick = BackpropDemoSettings(), BackpropDemoSettings.quick()
    names = {f.name for f in fields(BackpropDemoSettings)}
    assert {"cost_params", "fd_budget_s", "accuracy_h_points", "jacobian_shapes", "a", "b"} <= names
    assert min(default.cost_params) <= 10 and max(default.cost_params) >= 100_000  # four orders of magnitude
    assert quick.fd_budget_s < default.fd_budget_s and len(quick.jacobian_shapes) <= len(default.jacobian_shapes)
    assert 10_000_000 in default.extrapolate_to


def test_cost_part(demo) -> None:
    result, out, lines = demo
    cost = result.cost
    assert math.isfinite(cost.backprop_constant) and cost.backprop_constant > 0
    measured = [r for r in cost.rows if r.fd_measured]
    assert len(measured) >= 2 and len(measured) < len(cost.rows)  # the budget stops finite differences
    assert cost.fd_stopped_at == cost.rows[len(measured)].params
    # (How the cost grows with P is a timing, which the demo reports but a test must not assert.)
    assert all(r.t_fd > 0 for r in measured) and math.isfinite(cost.fd_slope)
    # ... and they agree with backprop (float64, central differences)
    assert all(r.fd_vs_backprop_error < 1e-6 for r in measured)
    assert all(r.t_fd_extrapolated > 0 for r in cost.rows if not r.fd_measured)
    assert [P for P, _ in cost.extrapolated] == [1_000_000, 10_000_000]
    assert cost.extrapolated[-1][1] > cost.extrapolated[0][1] > 1
    assert cost.week_equivalent_s > 1e3 * 7 * 86400
    # the extrapolation is a band: the fitted exponent and the theoretical 2P forward passes, over the
    # backprop constant of the largest sizes; each bound grows with P (the ratio column never turns down)
    assert [P for P, _ in cost.extrapolated_theory] == [1_000_000, 10_000_000]
    assert all(math.isclose(r, 2 * P / cost.backprop_large) for P, r in cost.extrapolated_theory)
    assert math.isfinite(cost.backprop_large) and cost.backprop_large > 0
    for r in cost.rows:
        if not r.fd_measured:
            assert math.isclose(r.t_fd_theory, 2 * r.params * r.t_forward)
    for kind in ("fitted", "theory"):
        ratios = [cost.fd_over_backprop(P, kind) for P in (1_000_000, 10_000_000)]
        assert ratios[-1] > ratios[-2] > 1
    low, high = cost.band(10_000_000)
    assert low <= high and {low, high} == {cost.extrapolated[-1][1], cost.extrapolated_theory[-1][1]}
    assert "–" in cost.table and "a range from two models" in "\n".join(lines)
    assert "measured" in cost.table and "extrapolated" in cost.table and "10,000,000" in cost.table
    assert any("a week of backprop training would take" in line for line in lines)
    assert any("finite differences stopped after" in line for line in lines)


def test_cost_part_includes_a_small_gpt(demo) -> None:
    gpt = demo[0].cost.gpt
    quick = BackpropDemoSettings.quick()
    assert gpt is not None and gpt.params > 1_000 and gpt.sample == quick.gpt_fd_sample
    assert gpt.fd_vs_backprop_error < 1e-5  # finite differences agree with backprop on the sampled entries
    assert gpt.t_forward > 0 and gpt.t_backprop > 0 and gpt.t_fd_per_param > 0
    assert math.isclose(gpt.t_fd_extrapolated, gpt.t_fd_per_param * gpt.params)
    assert any("a small GPT from nn" in line for line in demo[2])


def test_accuracy_part(demo) -> None:
    acc = demo[0].accuracy
    cases = {(c.dtype, c.scheme): c for c in acc.cases}
    assert set(cases) == {(d, s) for d in ("float64", "float32") for s in ("forward", "central")}
    for c in acc.cases:
        assert len(c.errors) == len(acc.hs)
        assert c.best_error == min(c.errors)
        assert c.errors[0] > c.best_error and c.errors[-1] > c.best_error  # a U: both ends are worse
    # the optimum follows the theory: near sqrt(eps) for forward, eps^(1/3) for central differences
    for c in acc.cases:
        assert 1e-2 < c.best_h / c.theory_h < 1e2, (c.dtype, c.scheme, c.best_h)
    assert cases[("float64", "central")].best_error < cases[("float64", "forward")].best_error
    assert cases[("float64", "central")].best_h > cases[("float64", "forward")].best_h
    assert cases[("float32", "forward")].best_h > cases[("float64", "forward")].best_h
    assert "sqrt(eps)" in acc.table and "eps^(1/3)" in acc.table


def test_forward_vs_reverse_part(demo) -> None:
    jac = demo[0].jacobian
    assert len(jac.rows) == len(BackpropDemoSettings.quick().jacobian_shapes)
    assert all(r.max_difference < 1e-12 for r in jac.rows)  # both modes give the same Jacobian
    assert all(r.t_fwd > 0 and r.t_rev > 0 for r in jac.rows)
    assert "forward mode" in jac.table and "reverse mode" in jac.table


def test_worked_example_part(demo) -> None:
    w = demo[0].worked_example
    assert w.value == 6.0
    assert w.sum_over_paths == {"a": 2.0, "b": 5.0} == w.backprop
    assert len(w.paths["a"]) == 1 and len(w.paths["b"]) == 2
    assert w.numerical["a"] == pytest.approx(2.0, abs=1e-6) and w.numerical["b"] == pytest.approx(5.0, abs=1e-6)
    assert w.reverse_steps[-1].endswith("= 5")
    assert [(k, p) for k, p, _ in w.path_counts] == [(k, 2**k) for k in BackpropDemoSettings.quick().path_depths]
    assert w.dot.startswith("digraph") and "Mul" in w.dot
    assert w.graph is not None and w.graph.item() == 6.0 and w.graph.grad.item() == 1.0  # kept for drawing


def test_files_are_written(demo) -> None:
    result, out, lines = demo
    for plot in (result.cost.plot, result.accuracy.plot, result.jacobian.plot):
        assert plot is not None and plot.parent == out and plot.read_bytes()[:8] == PNG
    assert (out / "backprop_worked_example.dot").read_text().startswith("digraph")
    graph = result.worked_example.graph_file  # the graph as a picture, without Graphviz
    assert graph == out / "backprop_worked_example.png" and graph.read_bytes()[:8] == PNG
    assert result.report.read_text() == "\n".join(lines) + "\n"
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files
    assert "forward passes" in summary(result)


def test_cli_and_tour_registration(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import tglite.demos.backprop as bp
    from tglite.tour import tour_steps

    assert "backprop-vs-numerical" in [s.name for s in tour_steps()]
    # the CLI path, on settings even smaller than quick()
    tiny = replace(BackpropDemoSettings.quick(), cost_params=(10, 100), accuracy_h_points=5,
                   jacobian_shapes=((2, 8), (8, 2)), path_depths=(1,))
    monkeypatch.setattr(bp.BackpropDemoSettings, "quick", classmethod(lambda cls: tiny))
    assert main(["demo", "backprop", "--quick", "--out", str(tmp_path), "--no-progress", "--fd-budget", "1"]) == 0
    out = capsys.readouterr().out
    assert "1. COST OF ONE FULL GRADIENT" in out and "4. THE WORKED EXAMPLE" in out
    assert (tmp_path / "backprop_report.txt").is_file()
    assert main(["demo", "backprop", "--out", str(tmp_path / "backprop_report.txt")]) == 2


# ---------------------------------------------------------------- the best finite-difference step
def test_optimal_step_minimizes_the_error_model() -> None:
    from tglite.demos.backprop import fd_error_model, optimal_step

    rng = np.random.default_rng(0)
    f, d = rng.uniform(0.01, 100, 20) * rng.choice([-1, 1], 20), rng.uniform(0.01, 100, 20) * rng.choice([-1, 1], 20)
    for scheme in ("central", "forward"):
        for eps in (np.finfo(np.float64).eps, np.finfo(np.float32).eps):
            h = optimal_step(f, d, eps, scheme)
            best = fd_error_model(h, f, d, eps, scheme)
            for factor in (0.9, 1.1, 0.5, 2.0):  # any other step has a larger modelled error
                assert np.all(fd_error_model(h * factor, f, d, eps, scheme) > best)
    # the closed forms: (3 eps |f| / |f'''|)^(1/3) and 2 sqrt(eps |f| / |f''|)
    assert math.isclose(optimal_step(2.0, -4.0, 1e-15), (3e-15 * 2 / 4) ** (1 / 3))
    assert math.isclose(optimal_step(2.0, -4.0, 1e-15, "forward"), 2 * (1e-15 * 2 / 4) ** 0.5)
    assert math.isclose(optimal_step(1.0, 1.0), (3 * np.finfo(np.float64).eps) ** (1 / 3))
    assert optimal_step(1.0, 0.0) == math.inf  # no truncation error: no reason to keep h small


def test_optimal_step_lands_on_the_measured_best_step() -> None:
    from tglite.demos.backprop import optimal_step

    # e^x: every derivative is e^x, so the relative error curve is the same at every x; average it
    x = np.linspace(0.5, 1.5, 201)[:, None]
    hs = np.logspace(-9, -2, 57)
    err = (np.abs((np.exp(x + hs) - np.exp(x - hs)) / (2 * hs) - np.exp(x)) / np.exp(x)).mean(axis=0)
    measured = hs[np.argmin(err)]
    assert 1 / 3 < measured / optimal_step(1.0, 1.0) < 3
    assert err.min() < 1e-10


def test_optimal_step_rejects_bad_arguments() -> None:
    from tglite.demos.backprop import fd_error_model, optimal_step

    with pytest.raises(ValueError, match="scheme"):
        optimal_step(1.0, 1.0, scheme="backward")
    with pytest.raises(ValueError, match="eps"):
        optimal_step(1.0, 1.0, eps=0.0)
    with pytest.raises(ValueError, match="positive"):
        fd_error_model(0.0, 1.0, 1.0)
