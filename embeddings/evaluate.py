"""Evaluation of word vectors: analogies (3CosAdd, 3CosMul), word similarity (Spearman), neighbours.

Analogy "a : a* :: b : ?" (a line "Athens Greece Baghdad Iraq" asks for Iraq). With unit vectors
and cos(x, y) = x·y:

    3CosAdd (Mikolov et al. 2013):       argmax_x  cos(x, a*) - cos(x, a) + cos(x, b)
    3CosMul (Levy & Goldberg 2014):      argmax_x  cos'(x, a*) · cos'(x, b) / (cos'(x, a) + ε)
                                         with cos' = (cos + 1) / 2 in [0, 1], ε = 0.001

The three query words are excluded from the candidates by default, as in every published
evaluation; `exclude_query=False` shows why: the answer is then very often one of the query words
(usually b itself; "man : king :: woman : ?" returns king).

The evaluation data are the standard files shipped in gensim's test data (gensim is the source of
the files only): questions-words.txt (Mikolov et al. 2013), wordsim353.tsv (Finkelstein et al.
2002), simlex999.txt (Hill et al. 2015).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinygrad_lite.extras import package_dir

from .vectors import WordVectors


def gensim_test_data(name: str) -> Path:
    """Path of a file in gensim's test data (gensim/test/test_data/NAME); MissingExtraError without gensim."""
    gensim = package_dir("gensim", "embeddings", f"the evaluation file {name} (in gensim's test data)")
    path = gensim / "test" / "test_data" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed gensim package")
    return path


def read_analogies(path: str | os.PathLike[str] | None = None) -> dict[str, list[tuple[str, str, str, str]]]:
    """Sections of questions-words.txt ("capital-common-countries", ...) -> lowercase 4-tuples."""
    path = path or gensim_test_data("questions-words.txt")
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            current = line[1:].strip()
            sections[current] = []
        elif line.strip():
            if current is None:
                raise ValueError(f"{path}: a question before the first ': section' line")
            a, a_star, b, b_star = line.lower().split()
            sections[current].append((a, a_star, b, b_star))
    return sections


def read_similarity(path: str | os.PathLike[str]) -> list[tuple[str, str, float]]:
    """Tab-separated "word1 word2 score" lines ('#' lines are comments)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        w1, w2, score = line.split("\t")[:3]
        out.append((w1.lower(), w2.lower(), float(score)))
    return out


def analogy_scores(unit: np.ndarray, a: int, a_star: int, b: int, method: str = "3cosadd") -> np.ndarray:
    """The score of every word as the answer (higher is better); `unit`: unit-length rows."""
    ca, cas, cb = unit @ unit[a], unit @ unit[a_star], unit @ unit[b]
    if method == "3cosadd":
        return cas - ca + cb
    if method == "3cosmul":
        return ((cas + 1) / 2) * ((cb + 1) / 2) / ((ca + 1) / 2 + 1e-3)
    raise ValueError(f"analogy_scores: method must be '3cosadd' or '3cosmul', got {method!r}")


def solve_analogy(kv: WordVectors, a: str, a_star: str, b: str, method: str = "3cosadd",
                  exclude_query: bool = True, topn: int = 1) -> list[tuple[str, float]]:
    """a : a_star :: b : ?  -> the topn answers with their scores."""
    u = kv.unit()
    ia, ias, ib = kv.index[a], kv.index[a_star], kv.index[b]
    s = analogy_scores(u, ia, ias, ib, method)
    if exclude_query:
        s[[ia, ias, ib]] = -np.inf
    top = np.argsort(-s)[:topn]
    return [(kv.words[i], float(s[i])) for i in top]


@dataclass
class AnalogyResult:
    method: str
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (correct, in-vocab total)
    skipped: int = 0  # questions with a word outside the vocabulary

    @property
    def correct(self) -> int:
        return sum(c for c, _ in self.sections.values())

    @property
    def total(self) -> int:
        return sum(t for _, t in self.sections.values())

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def table(self) -> str:
        rows = [f"{'section':32s} {'correct':>8s} {'of':>6s} {'acc %':>7s}"]
        for name, (c, t) in self.sections.items():
            rows.append(f"{name:32s} {c:8d} {t:6d} {100 * c / t if t else 0:7.1f}")
        rows.append(f"{'all (' + self.method + ')':32s} {self.correct:8d} {self.total:6d} {100 * self.accuracy:7.1f}"
                    f"   ({self.skipped} questions skipped: a word not in the vocabulary)")
        return "\n".join(rows)


def evaluate_analogies(kv: WordVectors, sections: dict[str, list[tuple[str, str, str, str]]] | None = None,
                       method: str = "3cosadd", exclude_query: bool = True, batch: int = 512) -> AnalogyResult:
    """Accuracy over the questions whose four words are all in the vocabulary, by section."""
    sections = read_analogies() if sections is None else sections
    u = kv.unit()
    result = AnalogyResult(method)
    for name, questions in sections.items():
        qs = [q for q in questions if all(w in kv.index for w in q)]
        result.skipped += len(questions) - len(qs)
        if not qs:
            continue
        idx = np.array([[kv.index[w] for w in q] for q in qs])
        correct = 0
        for i in range(0, len(idx), batch):
            q = idx[i:i + batch]
            ca, cas, cb = u[q[:, 0]] @ u.T, u[q[:, 1]] @ u.T, u[q[:, 2]] @ u.T   # (n, V) each
            if method == "3cosadd":
                s = cas - ca + cb
            elif method == "3cosmul":
                s = ((cas + 1) / 2) * ((cb + 1) / 2) / ((ca + 1) / 2 + 1e-3)
            else:
                raise ValueError(f"evaluate_analogies: method must be '3cosadd' or '3cosmul', got {method!r}")
            if exclude_query:
                rows = np.arange(len(q))[:, None]
                s[rows, q[:, :3]] = -np.inf
            correct += int((s.argmax(axis=1) == q[:, 3]).sum())
        result.sections[name] = (correct, len(qs))
    return result


def query_word_hits(kv: WordVectors, sections: dict[str, list[tuple[str, str, str, str]]] | None = None,
                    method: str = "3cosadd") -> dict[str, int]:
    """Without excluding the query words: how often the top answer is a, a* or b (and how often right)."""
    sections = read_analogies() if sections is None else sections
    counts = {"a": 0, "a*": 0, "b": 0, "correct": 0, "other": 0}
    for qs in sections.values():
        for q in qs:
            if not all(w in kv.index for w in q):
                continue
            best = solve_analogy(kv, q[0], q[1], q[2], method, exclude_query=False)[0][0]
            key = {q[0]: "a", q[1]: "a*", q[2]: "b", q[3]: "correct"}.get(best, "other")
            counts[key] += 1
    return counts


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties) = Pearson correlation of the ranks."""
    def ranks(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        # average the ranks of tied values
        _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return sums[inv] / counts[inv]
    return pearson(ranks(x), ranks(y))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    d = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / d) if d else 0.0


@dataclass
class SimilarityResult:
    name: str
    spearman: float
    pairs: int      # pairs with both words in the vocabulary
    skipped: int


def evaluate_similarity(kv: WordVectors, name: str = "wordsim353.tsv",
                        pairs: list[tuple[str, str, float]] | None = None) -> SimilarityResult:
    """Spearman correlation between cosine similarity and human ratings, over in-vocabulary pairs.
    `name`: a file in gensim's test data ("wordsim353.tsv" or "simlex999.txt") unless `pairs` is given."""
    pairs = read_similarity(gensim_test_data(name)) if pairs is None else pairs
    inv = [(a, b, s) for a, b, s in pairs if a in kv.index and b in kv.index]
    if len(inv) < 2:
        return SimilarityResult(name, float("nan"), len(inv), len(pairs) - len(inv))
    model = [kv.similarity(a, b) for a, b, _ in inv]
    return SimilarityResult(name, spearman(np.array(model), np.array([s for _, _, s in inv])), len(inv),
                            len(pairs) - len(inv))
