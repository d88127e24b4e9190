"""`tglite tour`: every lecture demo that exists so far, on embedded defaults.

A tour step is a function `step(out_dir: pathlib.Path, quick: bool) -> str` that prints what it
shows, saves its figures in `out_dir` and returns a one-line summary. `out_dir` is the step's own
folder under the tour's --out (named after the step unless it registers another), so no two steps
share a folder, and after each step the tour prints every file it wrote. A demo module registers
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
    folder: str = ""  # the step's folder under the tour's --out; "" means its name

    @property
    def out(self) -> str:
        return self.folder or self.name


_REGISTRY: dict[str, list[Step]] = {}  # module name -> its steps, in registration order


def register(name: str, folder: str = "") -> Callable[[TourStep], TourStep]:
    """Decorator: make `fn` a tour step called `name`, writing to `folder` under the tour's --out
    (default: `name`). Registering a name again replaces the step."""

    def deco(fn: TourStep) -> TourStep:
        steps = _REGISTRY.setdefault(fn.__module__, [])
        step = Step(name, fn.__module__, fn, folder)
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
    results: list[tuple[str, float, str, str]] = []
    failed = 0
    for i, step in enumerate(steps, 1):
        print(f"\n=== [{i}/{len(steps)}] {step.name} ===", flush=True)
        step_dir = out_dir / step.out
        before = _files(step_dir)
        t0 = time.perf_counter()
        try:
            step_dir.mkdir(parents=True, exist_ok=True)
            line = step.run(step_dir, quick)
        except Exception:  # one broken demo should not hide the others: report it and go on
            traceback.print_exc()
            line = "FAILED (traceback above)"
            failed += 1
        seconds = time.perf_counter() - t0
        written = [path for path, stamp in _files(step_dir).items() if before.get(path) != stamp]
        print(f"{step.name} wrote {len(written)} file{'s' * (len(written) != 1)}"
              + "".join(f"\n  {path}" for path in written), flush=True)
        results.append((step.name, seconds, line, f"{step.out}/"))
    width = max((len(name) for name, *_ in results), default=4)
    folder_width = max((len(folder) for *_, folder in results), default=4)
    print("\n=== summary ===")
    for name, secs, line, folder in results:
        print(f"{name:<{width}}  {secs:6.1f} s  {folder:<{folder_width}}  {line}")
    print(f"files saved under {out_dir.resolve()}, one folder per step (listed after each step above)")
    if failed:
        print(f"{failed} of {len(results)} steps FAILED")
    return 1 if failed else 0


def _files(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every file under `folder` with its (modification time, size): what a step changed is what differs."""
    if not folder.is_dir():
        return {}
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*")) if p.is_file()}
