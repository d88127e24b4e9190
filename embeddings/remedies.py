"""Remedies for the geometry problems in geometry.py, each a plain function on a matrix of vectors.

* Mean-centering: subtract the mean vector; removes the common direction behind anisotropy.
* All-but-the-top (Mu & Viswanath 2018): centre, then remove the projections on the top D
  principal components (they suggest D ≈ dim / 100); those directions carry frequency, not meaning.
* Whitening: centre and rotate/scale so the covariance is the identity, W = E Λ^{-1/2} from the
  eigendecomposition of the covariance of a fitting sample. The estimate needs many more samples
  than dimensions: with n ≲ d the sample covariance is singular or nearly so, and its smallest
  eigenvalues (which whitening divides by) are pure noise (see `whitening_sample_study`).
* CSLS (Conneau et al. 2018, cross-domain similarity local scaling): penalise hubs,

      CSLS(x, y) = 2 cos(x, y) - r(x) - r(y),   r(z) = mean cosine of z to its k nearest neighbours

  A hub is close to many points, so its r is large and its CSLS scores drop.
"""
from __future__ import annotations

import numpy as np

from .search import normalize


def _rng(seed: int) -> np.random.Generator:
    """The engine's seeded generator (PCG64), as a NumPy Generator: the project's one source of randomness."""
    from tinygrad_lite import Generator

    return Generator(seed).np


def center(X: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    return X - (X.mean(axis=0) if mean is None else mean)


def principal_components(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues descending, components as rows) of the covariance of X."""
    Xc = center(X).astype(np.float64)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    return s**2 / max(1, len(X) - 1), vt


def all_but_the_top(X: np.ndarray, D: int | None = None) -> np.ndarray:
    """Centre and remove the top D principal directions (default D = max(1, dim // 100))."""
    D = max(1, X.shape[1] // 100) if D is None else D
    Xc = center(X).astype(np.float64)
    _, top = principal_components(X)
    top = top[:D]
    return (Xc - (Xc @ top.T) @ top).astype(X.dtype)


def fit_whitening(X: np.ndarray, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """(mean, W) such that (Y - mean) @ W has identity covariance on X."""
    mean = X.mean(axis=0)
    cov = np.cov((X - mean).astype(np.float64), rowvar=False)
    lam, E = np.linalg.eigh(cov)
    return mean, E / np.sqrt(np.maximum(lam, 0) + eps)


def whiten(X: np.ndarray, fit_on: np.ndarray | None = None, eps: float = 1e-8) -> np.ndarray:
    mean, W = fit_whitening(X if fit_on is None else fit_on, eps)
    return ((X - mean) @ W).astype(np.float64)


def whitening_sample_study(X: np.ndarray, ratios: tuple[float, ...] = (0.5, 1, 2, 10, 50), seed: int = 0,
                           eps: float = 1e-8) -> dict[float, float]:
    """Fit whitening on n = ratio x dim random rows, apply it to held-out rows, and measure how far
    their covariance is from the identity: ||C - I||_F / sqrt(dim) (0 = perfectly white).
    Ratios needing more rows than available (minus a held-out half) are skipped."""
    rng = _rng(seed)
    perm = rng.permutation(len(X))
    held, pool = X[perm[: len(X) // 2]], X[perm[len(X) // 2:]]
    d = X.shape[1]
    out = {}
    for r in ratios:
        n = int(r * d)
        if n > len(pool) or n < 2:
            continue
        mean, W = fit_whitening(pool[:n], eps)
        Y = (held - mean) @ W
        C = np.cov(Y, rowvar=False)
        out[r] = float(np.linalg.norm(C - np.eye(d)) / np.sqrt(d))
    return out


def csls_scores(queries: np.ndarray, targets: np.ndarray, k: int = 10,
                r_targets: np.ndarray | None = None, exclude_self: bool = False) -> np.ndarray:
    """CSLS matrix (Q, T). With exclude_self (queries == targets), a point is not its own neighbour."""
    q, t = normalize(queries), normalize(targets)
    S = q @ t.T
    if exclude_self:
        np.fill_diagonal(S, -np.inf)
    r_q = np.sort(S, axis=1)[:, -k:].mean(axis=1)
    if r_targets is None:
        St = t @ t.T if exclude_self else S.T
        if exclude_self:
            np.fill_diagonal(St, -np.inf)
        r_targets = np.sort(St, axis=1)[:, -k:].mean(axis=1)
    out = 2 * S - r_q[:, None] - r_targets[None, :]
    return out


def csls_neighbours(X: np.ndarray, k: int = 10, k_csls: int = 10) -> np.ndarray:
    """Each row's k nearest other rows under CSLS (for hubness measurements); O(N^2) memory."""
    C = csls_scores(X, X, k_csls, exclude_self=True)
    part = np.argpartition(-C, k - 1, axis=1)[:, :k]
    return np.take_along_axis(part, np.argsort(-np.take_along_axis(C, part, axis=1), axis=1), axis=1)
