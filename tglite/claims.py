"""The "claims against measurements" table that ends every lecture notebook.

A lecture makes claims ("backprop is millions of times faster", "king - man + woman = queen"); the
notebook measures each one in the same run and says whether it holds here, and why not where it does
not. An honest "does not hold here" is a result too.

    claims = ClaimsTable()
    claims.add("LoRA r=8 recovers >= 90% of full fine-tuning's gain", f"{recovery:.0%}", recovery >= 0.9,
               "CI settings: 40 steps")
    claims      # the last expression of a cell: Jupyter shows it as a Markdown table

The rows have the format of `rl.claims` (claim, measured, holds, note), so the rl notebooks' own
tables render the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ClaimsTable:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, claim: str, measured: str, holds: bool | None, note: str = "") -> None:
        """One row. `holds` is True or False when computed from the measurement in the same row, and
        None for a comparison to read rather than a yes/no."""
        if holds is not None and not isinstance(holds, bool):
            holds = bool(holds)  # a NumPy bool from a comparison
        self.rows.append({"claim": claim, "measured": measured, "holds": holds, "note": note})

    def markdown(self) -> str:
        from rl.claims import claims_markdown

        return claims_markdown(self.rows)

    def _repr_markdown_(self) -> str:  # Jupyter's rich display
        return self.markdown()

    def __str__(self) -> str:
        return self.markdown()
