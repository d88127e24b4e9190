"""`tglite tour`: every lecture demo that exists so far, on embedded defaults.

A tour step is a function `step(out_dir: pathlib.Path, quick: bool) -> str` that prints what it
shows, saves its figures under `out_dir` and returns a one-line summary. A demo module registers
its steps with the `@register("name")` decorator; the tour imports the modules listed in
STEP_MODULES, in that order, and runs their steps in the order each module registered them.
To add a lecture's demos to the tour, append its module to STEP_MODULES.
"""
from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# In the order of the course.
STEP_MODULES = [
    "tglite.demos.engine",
    "tglite.demos.backprop",
    "tglite.demos.gpt",
    "tglite.demos.lora",
    "tglite.demos.embeddings",
    "tglite.demos.rl",
]

TourStep = Callable[[Path, bool], str]


@dataclass(frozen=True)
class Step:
    name: str
    module: str
    run: TourStep


_REGISTRY: dict[str, list[Step]] = {}  # module name -> its steps, in registration order


def register(name: str) -> Callable[[TourStep], TourStep]:
    """Decorator: make `fn` a tour step called `name` (registering a name again replaces it)."""

    def deco(fn: TourStep) -> TourStep:
        steps = _REGISTRY.setdefault(fn.__module__, [])
        step = Step(name, fn.__module__, fn)
        names = [s.name for s in steps]
        if name in names:  # e.g. the module was reloaded: replace the step, keep its place
            steps[names.index(name)] = step
        else:
            steps.append(step)
        return fn

    return deco


def tour_steps() -> list[Step]:
    """Every registered step, modules in STEP_MODULES order (importing them registers them)."""
    steps: list[Step] = []
    for module in STEP_MODULES:
        importlib.import_module(module)
        steps.extend(_REGISTRY.get(module, []))
    return steps


def run_tour(out_dir: Path, quick: bool = False, only: list[str] | None = None) -> int:
    """Run the steps (all, or those named in `only`); return 0 when every step succeeded."""
    steps = tour_steps()
    if only:
        unknown = sorted(set(only) - {s.name for s in steps})
        if unknown:
            raise ValueError(f"unknown tour step(s) {unknown}; the steps are {[s.name for s in steps]}")
        steps = [s for s in steps if s.name in only]
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, float, str]] = []
    failed = 0
    for i, step in enumerate(steps, 1):
        print(f"\n=== [{i}/{len(steps)}] {step.name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            line = step.run(out_dir, quick)
        except Exception:  # one broken demo should not hide the others: report it and go on
            traceback.print_exc()
            line = "FAILED (traceback above)"
            failed += 1
        results.append((step.name, time.perf_counter() - t0, line))
    width = max((len(name) for name, _, _ in results), default=4)
    print("\n=== summary ===")
    for name, secs, line in results:
        print(f"{name:<{width}}  {secs:6.1f} s  {line}")
    print(f"files saved under {out_dir.resolve()}")
    if failed:
        print(f"{failed} of {len(results)} steps FAILED")
    return 1 if failed else 0
