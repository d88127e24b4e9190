"""Helpers for the tests of the course notebooks' graded exercises (tests/test_course_exercises_*.py):
run an instructor notebook's exercise cells here, plant an answer in one solution block, and write
the answer of a student who pasted in the numbers of one input."""
from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

import tinygrad_lite as tg
from tglite import exercises as exercises_module
from tglite.exercises import BEGIN, END, Exercise
from tinygrad_lite.gradcheck import analytical_jacobian


def run_in_process(nb: Any, names: list[str]) -> dict[str, Exercise]:
    """Execute the notebook's setup cell (its first code cell) and the cells of exercises `names` here,
    with no kernel; return their registrations. (The cells' check() lines are swallowed.)"""
    exercises_module.clear_registry()
    namespace: dict[str, Any] = {}
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code_cells[0].source, namespace)
        for cell in code_cells[1:]:
            if any(f'@exercise("{name}"' in cell.source for name in names):
                exec(cell.source, namespace)
    return {name: exercises_module._REGISTRY[name] for name in names}


def replace_block(nb: Any, name: str, block: int, code: str) -> None:
    """Put `code` in place of solution block number `block` (0 = the first) of exercise `name`, at
    the block's indentation. (tglite.exercises.replace_solution replaces the first block only.)"""
    for cell in nb.cells:
        if cell.cell_type == "code" and f'@exercise("{name}"' in cell.source:
            lines = cell.source.split("\n")
            begins = [i for i, line in enumerate(lines) if line.strip().startswith(BEGIN)]
            ends = [i for i, line in enumerate(lines) if line.strip().startswith(END)]
            b, e = begins[block], ends[block]
            indent = lines[b][: len(lines[b]) - len(lines[b].lstrip())]
            body = [indent + line if line else line for line in code.strip("\n").split("\n")]
            cell.source = "\n".join(lines[:b] + body + lines[e + 1:])
            return
    raise KeyError(f"no exercise {name!r} in the notebook")


def pasted_backward(ex: Exercise, seed: int) -> str:
    """A backward rule that only knows the inputs of `Generator(seed)`: it returns Jᵀ·g with each
    differentiable input's Jacobian J (of the reference solution, on those inputs) pasted in as
    numbers, and None for a constant Tensor input."""
    inputs = ex.draw(seed)
    jacobians = iter(analytical_jacobian(ex.call, inputs))
    grads = []
    for x in inputs:
        if isinstance(x, tg.Tensor) and x.requires_grad:
            pasted = f"tg.tensor(np.array({next(jacobians).tolist()!r}))"
            grads.append(f"(g.reshape(1, -1) @ {pasted}).reshape{tuple(x.shape)}")
        elif isinstance(x, tg.Tensor):
            grads.append("None")
    return "return " + ", ".join(grads)


def pasted_value(ex: Exercise, seed: int) -> str:
    """A value exercise's body that returns the reference's output for the inputs of `Generator(seed)`."""
    out = ex.reference(*ex.draw(seed))
    return f"return np.array({np.asarray(out).tolist()!r})"
