"""Metrics for test-time search: pass@k / coverage, and error bars over seeds.

* pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", the Codex paper):
  draw n samples of a problem, c of them correct. The chance that k samples drawn *without
  replacement* from those n contain at least one correct one is

      pass@k = 1 - C(n - c, k) / C(n, k)
             = 1 - Π_{i = n-c+1}^{n} (1 - k / i)          (the product form; 1 when n - c < k)

  It is an unbiased estimate of the true pass@k. The binomial coefficients overflow (or lose all
  precision in floats) for n in the hundreds; the product has only factors in [0, 1] and does not.
* Coverage (Brown et al. 2024, "Large Language Monkeys"): the fraction of problems solved by at
  least one of k samples, i.e. pass@k averaged over problems.
* If each sample of a problem were an independent coin with success probability p, the chance that
  k samples contain a correct one would be 1 - (1 - p)^k. `predicted_coverage` plugs in p̂ = c / n
  so a notebook can check the claim "pass@k follows 1 - (1 - p)^k per problem" against the measured
  curve. The two differ a little even when the claim holds: the prediction samples with replacement,
  pass@k without, so pass@k >= the prediction, with equality at k = 1.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int | np.ndarray, c: int | np.ndarray, k: int) -> float | np.ndarray:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), computed as a stable product.

    `n` and `c` broadcast against each other (one entry per problem); returns a float for scalar
    inputs and an array otherwise.
    """
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n), np.asarray(c))
    for name, arr in (("n", n_arr), ("c", c_arr)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"pass_at_k: {name} must hold integers, got dtype {arr.dtype}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"pass_at_k: k must be an int, got {k!r}")
    if n_arr.size and (c_arr.min() < 0 or (c_arr > n_arr).any()):
        bad = int(np.flatnonzero((c_arr < 0) | (c_arr > n_arr))[0])
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n_arr.flat[bad]}, c={c_arr.flat[bad]}")
    if n_arr.size and (k < 1 or k > n_arr.min()):
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got k={k} with n={int(n_arr.min())}")
    if n_arr.size == 0:
        return np.zeros(n_arr.shape)
    # i runs over 1..max(n); factor (1 - k/i) counts only for n - c < i <= n, every other factor is 1.
    i = np.arange(1, int(n_arr.max()) + 1, dtype=np.float64)
    lo, hi = (n_arr - c_arr)[..., None], n_arr[..., None]
    factors = np.where((i > lo) & (i <= hi), 1.0 - k / i, 1.0)
    out = np.where(n_arr - c_arr < k, 1.0, 1.0 - factors.prod(axis=-1))
    return float(out) if out.ndim == 0 else out


def _check_correct(correct: np.ndarray | Sequence[Sequence[bool]], ks: Sequence[int], who: str) -> np.ndarray:
    arr = np.asarray(correct)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{who}: correct must be a (problems, samples) array with samples >= 1, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        raise TypeError(f"{who}: correct must be a bool array, got dtype {arr.dtype}")
    for k in ks:
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= arr.shape[1]:
            raise ValueError(f"{who}: every k must be an int in [1, {arr.shape[1]}] (the number of samples), got {k!r}")
    return arr


def coverage_curve(correct: np.ndarray | Sequence[Sequence[bool]], ks: Sequence[int],
                   per_problem: bool = False) -> np.ndarray:
    """Coverage at each k: pass@k with n = samples per problem, c = correct samples, averaged over problems.

    `correct` is a bool array (P, N). Returns shape (len(ks),), or (P, len(ks)) with `per_problem=True`.
    """
    arr = _check_correct(correct, ks, "coverage_curve")
    n = np.full(arr.shape[0], arr.shape[1])
    c = arr.sum(axis=1)
    table = np.stack([pass_at_k(n, c, int(k)) for k in ks], axis=1)
    return table if per_problem else table.mean(axis=0)


def predicted_coverage(correct: np.ndarray | Sequence[Sequence[bool]], ks: Sequence[int],
                       per_problem: bool = False) -> np.ndarray:
    """The independent-samples prediction 1 - (1 - p̂)^k per problem, p̂ = c / N, averaged over problems.

    Same shapes as `coverage_curve`, so the two can be drawn on one plot.
    """
    arr = _check_correct(correct, ks, "predicted_coverage")
    p_hat = arr.mean(axis=1)
    table = np.stack([1.0 - (1.0 - p_hat) ** int(k) for k in ks], axis=1)
    return table if per_problem else table.mean(axis=0)


def mean_and_stderr(values: np.ndarray | Sequence[float], axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std, stderr) along `axis` (one entry per seed): std with ddof=1, stderr = std / sqrt(#seeds).

    With a single seed no spread can be measured; std and stderr are then reported as 0, not NaN.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[axis] == 0:
        raise ValueError(f"mean_and_stderr: need at least one value along axis {axis}, got shape {arr.shape}")
    count = arr.shape[axis]
    mean = arr.mean(axis=axis)
    std = arr.std(axis=axis, ddof=1) if count > 1 else np.zeros_like(mean)
    return mean, std, std / np.sqrt(count)
