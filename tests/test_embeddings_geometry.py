"""Geometry diagnostics (anisotropy, rogue dimensions, hubness, concentration) and their remedies."""
from __future__ import annotations

import numpy as np

from embeddings.geometry import (
    anisotropy,
    concentration,
    concentration_vs_dimension,
    dimension_contributions,
    hubness,
    k_occurrence,
    rogue_share,
    skewness,
)
from embeddings.remedies import (
    all_but_the_top,
    center,
    csls_neighbours,
    csls_scores,
    whiten,
    whitening_sample_study,
)


def _cone(n=600, d=40, seed=0):
    """Isotropic noise plus a large shared offset concentrated in dimension 0: a narrow cone."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, 0] += 8.0
    return X


def test_anisotropy_and_centering():
    X = _cone()
    a = anisotropy(X)
    assert a.mean_cosine > 0.55 and a.mean_vector_norm > 0.75
    c = anisotropy(center(X))
    assert abs(c.mean_cosine) < 0.02 and c.mean_vector_norm < 0.15
    iso = anisotropy(np.random.default_rng(1).normal(size=(600, 40)))
    assert abs(iso.mean_cosine) < 0.02


def test_rogue_dimension_found_and_removed():
    X = _cone()
    contrib = dimension_contributions(X)
    assert contrib.argmax() == 0 and contrib[0] > 0.9 * contrib.sum()
    np.testing.assert_allclose(contrib.sum(), anisotropy(X).mean_cosine, atol=1e-6)  # same pairs
    assert rogue_share(X, top=1) > 0.8
    assert rogue_share(all_but_the_top(X, 1), top=1) < 0.2


def test_all_but_the_top_removes_top_directions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 20)) * np.linspace(5, 1, 20)
    Y = all_but_the_top(X, 3)
    np.testing.assert_allclose(Y.mean(axis=0), 0, atol=1e-9)
    s = np.linalg.svd(Y, compute_uv=False)
    assert s[-3:].max() < 1e-8 * s[0]  # rank dropped by 3
    # the default D is dim / 100 (at least 1)
    assert np.linalg.matrix_rank(all_but_the_top(X)) == 19


def test_k_occurrence_and_hubness():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 50))
    n_k = k_occurrence(X, k=5)
    assert n_k.sum() == 400 * 5
    assert skewness(np.array([1.0, 1, 1, 10])) > 1 and skewness(np.ones(5)) == 0
    h_high = hubness(X, k=5)
    h_low = hubness(rng.normal(size=(400, 2)), k=5)
    assert h_high.skewness > h_low.skewness  # hubness grows with the dimension


def test_csls_reduces_hubness():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 50))
    before = hubness(X, k=5)
    after = hubness(None, k=5, neighbours=csls_neighbours(X, k=5))
    assert after.skewness < before.skewness and after.max_k_occurrence < before.max_k_occurrence
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = U @ U.T
    r = np.sort(cos, axis=1)[:, -4:].mean(axis=1)  # each point's mean cosine to its 4 nearest (itself included)
    S = csls_scores(X, X, k=4)
    np.testing.assert_allclose(S[2, 7], 2 * cos[2, 7] - r[2] - r[7], atol=1e-5)


def test_whitening_needs_many_samples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 20)) @ rng.normal(size=(20, 20))
    W = whiten(X)
    np.testing.assert_allclose(np.cov(W, rowvar=False), np.eye(20), atol=1e-3)
    err = whitening_sample_study(X, ratios=(0.5, 1, 2, 10, 50))
    assert err[0.5] > 10 * err[50] and err[2] > err[10] > err[50] and err[50] < 0.3


def test_distance_concentration_grows_with_dimension():
    c = concentration_vs_dimension([2, 20, 200], n=300)
    assert c[2] > c[20] > c[200]
    assert concentration(np.array([[0.0, 0], [1, 0], [3, 0]]), n_queries=1, seed=0) > 0
