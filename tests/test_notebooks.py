"""The course notebooks run top to bottom in a fresh kernel with the CI settings (TGLITE_CI=1),
and are committed without outputs. Select them with `pytest -m slow tests/test_notebooks.py`."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = [
    "01_autodiff_from_scratch.ipynb",
    "02_backprop_vs_numerical.ipynb",
    "03_gradient_check_exercises.ipynb",
]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(str(ROOT / "notebooks" / name), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip the outputs"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_ci_settings(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGLITE_CI", "1")  # the kernel inherits the environment
    nb = nbformat.read(str(ROOT / "notebooks" / name), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on the first error
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    if name.startswith("02"):
        assert sorted(p.name for p in (tmp_path / "tglite_out").glob("*.png")) == [
            "backprop_accuracy.png", "backprop_cost.png", "backprop_fwd_vs_rev.png"]
    if name.startswith("03"):
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
        assert "0 not attempted, 0 failed" in text
    assert os.environ["TGLITE_CI"] == "1"
