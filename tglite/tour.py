"""`tglite tour`: every lecture demo that exists so far, on embedded defaults.

A tour step is a function `step(out_dir: pathlib.Path, quick: bool) -> str` returning a one-line
summary; it saves its figures under `out_dir`. Later layers append their steps to TOUR_STEPS.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

TourStep = Callable[[Path, bool], str]

TOUR_STEPS: list[tuple[str, TourStep]] = []


def register(name: str) -> Callable[[TourStep], TourStep]:
    def deco(fn: TourStep) -> TourStep:
        TOUR_STEPS.append((name, fn))
        return fn

    return deco


def run_tour(out_dir: Path, quick: bool = False) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = []
    for name, step in TOUR_STEPS:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        line = step(out_dir, quick)
        summary.append((name, time.perf_counter() - t0, line))
    print("\n=== summary ===")
    for name, secs, line in summary:
        print(f"{name:<28} {secs:7.1f} s  {line}")
    print(f"figures saved under {out_dir.resolve()}")
    return 0
