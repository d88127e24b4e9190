"""notebooks/09_gpu.ipynb: committed without outputs, and runs top to bottom with TGLITE_CI=1
(on a CPU-only machine its CUDA kernel runs in the Numba CUDA simulator, in the notebook's kernel)."""
from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "09_gpu.ipynb"


def test_committed_without_outputs() -> None:
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "strip the outputs"


@pytest.mark.slow
def test_runs_with_ci_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGLITE_CI", "1")
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)  # the notebook decides, as a student's would
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "max |kernel - NumPy| =" in text and "rows sum to 1: True" in text
    import tinygrad_lite as tg

    if not tg.cuda_available():
        assert "No GPU is present on this machine" in text and "simulator" in text
