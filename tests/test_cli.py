"""The `tglite` front door: each command in process through `tglite.cli.main`, plus one real run
of the installed console script."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tglite import cli, tour


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "gradcheck-demo", "tour"):
        assert command in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "choose a COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["no-such-command"], ["tour", "--no-such-option"],
                                  ["gradcheck-demo", "--seed", "-3"], ["info", "--timeout", "soon"]])
def test_bad_arguments_exit_2_with_a_message(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "tinygrad_lite" in out
    for backend in ("NumPy", "Numba CPU", "CuPy", "Numba CUDA simulator"):
        assert backend in out
    assert "CPU kernels: " in out and "CPU allocator: " in out


def test_info_reports_the_cpu_fast_paths_switched_off(capsys, monkeypatch) -> None:
    from tinygrad_lite import backend

    monkeypatch.setattr(backend, "USE_NUMBA", False)
    assert cli.main(["info"]) == 0
    assert "CPU kernels: off (TGLITE_NUMBA=0)" in capsys.readouterr().out


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    backends = {b["name"]: b for b in facts["backends"]}
    assert backends["NumPy (device 'cpu')"]["status"] == "usable"
    assert "cpu" in facts["devices"]
    for b in backends.values():
        assert b["status"] in ("usable", "unusable", "not installed")
    # What the check says must match what is importable here.
    try:
        import numba  # noqa: F401

        assert backends["Numba CPU (njit)"]["status"] != "not installed"
    except ImportError:
        assert backends["Numba CPU (njit)"]["status"] == "not installed"


def test_gradcheck_demo_passes_and_catches_the_planted_mistake(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gradcheck-demo"]) == 0
    out = capsys.readouterr().out
    assert "gradcheck(loss_fn, all parameters): PASSED" in out
    for name in ("W1", "b1", "W2", "b2"):
        assert name in out
    assert "Diagnosis:" in out
    assert "gradcheck caught the planted mistake (diagnosis: factor)" in out


def test_tour_quick_saves_its_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    out_dir = tmp_path / "out"
    assert cli.main(["tour", "--quick", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "=== summary ===" in out and "FAILED" not in out
    for step, name in (("worked-example", "worked_example.dot"), ("worked-example", "worked_example.png"),
                       ("gradcheck", "gradcheck_report.txt"),
                       ("spirals-mlp", "spirals_loss.png"), ("spirals-mlp", "spirals_boundary.png"),
                       ("gpt-shakespeare", "ckpt.npz"), ("word2vec-shakespeare", "vectors.txt")):
        path = out_dir / step / name
        assert path.is_file() and path.stat().st_size > 0, name
        assert f"\n  {path}\n" in out, f"the tour did not say where {path} went"
    # one folder per step, and nothing outside them
    steps = {s.out.split("/")[0] for s in tour.tour_steps()}
    assert {p.name for p in out_dir.iterdir()} <= steps and not [p for p in out_dir.iterdir() if p.is_file()]
    for png in out_dir.rglob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert not list(out_dir.rglob("*.tmp")), "a temporary file was left behind"
    assert "label=\"b" in (out_dir / "worked-example" / "worked_example.dot").read_text()


def test_tour_list_and_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tour", "--list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names[:3] == ["worked-example", "gradcheck", "spirals-mlp"]
    assert cli.main(["tour", "--only", "worked-example", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "worked-example" / "worked_example.dot").is_file()
    assert (tmp_path / "worked-example" / "worked_example.png").read_bytes()[:4] == b"\x89PNG"  # no Graphviz needed
    assert not (tmp_path / "spirals-mlp").exists()
    assert "worked-example wrote" in (out := capsys.readouterr().out)
    assert f"\n  {tmp_path / 'worked-example' / 'worked_example.dot'}\n" in out
    assert cli.main(["tour", "--only", "no-such-step", "--out", str(tmp_path)]) == 2
    assert "unknown tour step" in capsys.readouterr().err


def test_tour_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert cli.main(["tour", "--out", str(not_a_dir)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_failing_step_is_reported_and_the_tour_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    calls = []

    def broken(out_dir: Path, quick: bool) -> str:
        raise RuntimeError("boom")

    def fine(out_dir: Path, quick: bool) -> str:
        calls.append(quick)
        return "fine"

    monkeypatch.setattr(tour, "tour_steps", lambda: [tour.Step("broken", "t", broken), tour.Step("fine", "t", fine)])
    assert tour.run_tour(tmp_path, quick=True) == 1
    captured = capsys.readouterr()
    assert calls == [True]
    assert "RuntimeError: boom" in captured.err
    assert "1 of 2 steps FAILED" in captured.out


def test_steps_follow_step_modules_then_registration_order(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = tour.tour_steps()
    assert [s.name for s in steps][:3] == ["worked-example", "gradcheck", "spirals-mlp"]
    assert [s.module for s in steps] == sorted((s.module for s in steps), key=tour.STEP_MODULES.index)

    # A module registers steps as it is imported; registering a name again replaces that step in place.
    monkeypatch.setattr(tour, "_REGISTRY", {})
    monkeypatch.setattr(tour, "STEP_MODULES", [__name__])

    def a1(out_dir: Path, quick: bool) -> str:
        return "a1"

    def b(out_dir: Path, quick: bool) -> str:
        return "b"

    def a2(out_dir: Path, quick: bool) -> str:
        return "a2"

    tour.register("a")(a1)
    tour.register("b")(b)
    tour.register("a")(a2)
    assert [(s.name, s.run) for s in tour.tour_steps()] == [("a", a2), ("b", b)]


def _console_script() -> str:
    # The script pip installed next to this interpreter, else whatever `tglite` is on PATH.
    candidate = Path(sys.executable).parent / ("tglite.exe" if os.name == "nt" else "tglite")
    found = str(candidate) if candidate.exists() else shutil.which("tglite")
    if found is None:
        pytest.fail('the `tglite` console script is not installed: run  pip install -e ".[test]"')
    return found


def test_console_script_runs_in_a_real_process(tmp_path: Path) -> None:
    done = subprocess.run([_console_script(), "gradcheck-demo"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "diagnosis: factor" in done.stdout
    version = subprocess.run([_console_script(), "--version"], capture_output=True, text=True, timeout=300)
    assert version.returncode == 0 and version.stdout.startswith("tglite ")
