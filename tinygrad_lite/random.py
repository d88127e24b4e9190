"""Seeded randomness. Every random number in the project comes from a `Generator` here.

A Generator wraps NumPy's PCG64 bit generator: the same seed gives bit-identical draws on CPU.
`manual_seed(s)` resets the default generator that factories use when none is passed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .backend import get_backend


class Generator:
    """A seeded source of random arrays. `Generator(seed)`; `get_state()` / `set_state()`."""

    def __init__(self, seed: int = 0) -> None:
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> Generator:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
        self.seed = int(seed)
        self.np = np.random.Generator(np.random.PCG64(self.seed))
        return self

    def get_state(self) -> dict[str, Any]:
        return {"seed": self.seed, "bit_generator": self.np.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        self.seed = state["seed"]
        self.np.bit_generator.state = state["bit_generator"]

    # Draws return NumPy arrays; the Tensor factories wrap them. (So a seed gives the same initial
    # weights on every device.)
    def uniform(self, shape: tuple[int, ...], dtype: np.dtype, low: float = 0.0, high: float = 1.0,
                device: str | None = None) -> Any:
        """U[low, high) of `shape`; with `device`, an array on that device (for dropout masks).

        A device with its own generator (the GPU's) draws there, seeded by one 64-bit draw from this
        generator: nothing crosses the bus, and this generator's state stays the only state, so
        manual_seed and set_state cover device draws too. Other devices get the host draw, moved.
        """
        if device is not None:
            backend = get_backend(device)
            if backend.uniform is not None:
                seed = int(self.np.integers(0, 2**63))
                out = backend.uniform(seed, tuple(shape), np.float32 if dtype == np.float16 else dtype)
                return (out * (high - low) + low if low != 0.0 or high != 1.0 else out).astype(dtype, copy=False)
            return backend.xp.asarray(self.uniform(shape, dtype, low, high))
        out = self.np.random(shape, dtype=np.float64 if dtype == np.float16 else dtype)
        if low != 0.0 or high != 1.0:
            out = out * (high - low) + low
        return out.astype(dtype, copy=False)

    def normal(self, shape: tuple[int, ...], dtype: np.dtype, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
        out = self.np.standard_normal(shape, dtype=np.float64 if dtype == np.float16 else dtype)
        if mean != 0.0 or std != 1.0:
            out = out * std + mean
        return out.astype(dtype, copy=False)

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> np.ndarray:
        return self.np.integers(low, high, size=shape, dtype=np.int64)

    def permutation(self, n: int) -> np.ndarray:
        return self.np.permutation(n)


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Reset the default generator to `seed` and return it."""
    return default_generator.manual_seed(seed)
