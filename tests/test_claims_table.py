"""The claims table that ends every lecture notebook: one Markdown row per claim, with its verdict."""
from __future__ import annotations

import numpy as np

from tglite.claims import ClaimsTable


def test_rows_render_as_a_markdown_table_with_verdicts() -> None:
    t = ClaimsTable()
    t.add("backprop is faster", "1.2e6x", np.bool_(True), "P = 1e5")
    t.add("queen comes first", "daughter", False, "Shakespeare is small")
    t.add("compare", "3 vs 4", None)
    text = t._repr_markdown_()
    lines = text.splitlines()
    assert lines[0] == "| claim | measured here | holds? | note |" and len(lines) == 5
    assert "| backprop is faster | 1.2e6x | yes | P = 1e5 |" in lines
    assert "| queen comes first | daughter | **no** | Shakespeare is small |" in lines
    assert "see numbers" in lines[4] and str(t) == text
    assert t.rows[0]["holds"] is True  # a NumPy bool is stored as a bool
