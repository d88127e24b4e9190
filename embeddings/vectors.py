"""Word vectors: lookup, cosine nearest neighbours, and word2vec's text and binary formats.

Both are the C tool's formats, read by gensim's KeyedVectors.load_word2vec_format. Text:

    <number of words> <dimension>
    word v_1 v_2 ... v_dim

Binary: the same header line, then per word its UTF-8 bytes, a space, dim little-endian float32
(4·dim bytes) and a newline.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np


class VectorsFormatError(ValueError):
    """A word2vec text or binary file is malformed (bad header, record, word count or trailing data)."""


class WordVectors:
    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"WordVectors: {len(words)} words but vectors of shape {vectors.shape}")
        self.words = list(words)
        self.vectors = vectors
        self.index = {w: i for i, w in enumerate(self.words)}
        self._unit: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.index[word]]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def unit(self) -> np.ndarray:
        """Rows scaled to unit length (float32; zero rows stay zero)."""
        if self._unit is None:
            v = self.vectors.astype(np.float32)
            n = np.linalg.norm(v, axis=1, keepdims=True)
            self._unit = v / np.where(n == 0, 1, n)
        return self._unit

    def similarity(self, a: str, b: str) -> float:
        u = self.unit()
        return float(u[self.index[a]] @ u[self.index[b]])

    def most_similar(self, word: str | np.ndarray, topn: int = 10,
                     exclude: tuple[str, ...] = ()) -> list[tuple[str, float]]:
        """The topn words by cosine similarity to `word` (a word, excluded from the answer, or a vector)."""
        u = self.unit()
        if isinstance(word, str):
            q, exclude = u[self.index[word]], (*exclude, word)
        else:
            q = np.asarray(word, dtype=np.float32)
            q = q / (np.linalg.norm(q) or 1.0)
        sims = u @ q
        for w in exclude:
            if w in self.index:
                sims[self.index[w]] = -np.inf
        top = np.argpartition(-sims, min(topn, len(sims) - 1))[:topn]
        top = top[np.argsort(-sims[top])]
        return [(self.words[i], float(sims[i])) for i in top]

    def save_word2vec_format(self, path: str | os.PathLike[str], binary: bool | None = None) -> Path:
        """Write word2vec's text or binary format atomically (temporary file, then rename).
        binary=None picks binary for a `.bin` suffix, text otherwise. Text numbers carry 9 significant
        digits, enough for every float32 to read back bit for bit; binary stores little-endian float32."""
        from nn.files import atomic_write_bytes

        binary = _is_binary(path, binary)
        for w in self.words:
            if not w or any(c.isspace() for c in w):
                raise ValueError(f"save_word2vec_format: word {w!r} is empty or contains whitespace, which the "
                                 "word2vec format cannot store")
        rows = np.asarray(self.vectors, dtype=np.float32)
        if not np.isfinite(rows).all():
            bad = self.words[int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])]
            raise ValueError(f"save_word2vec_format: the vector of {bad!r} has a NaN or infinite value")
        parts = [f"{len(self)} {self.dim}\n".encode()]
        if binary:  # as the C tool writes it: "word " + dim float32 + "\n" (gensim reads it with or without "\n")
            data = rows.astype("<f4")
            parts += [w.encode("utf-8") + b" " + row.tobytes() + b"\n" for w, row in zip(self.words, data)]
        else:
            parts += [(w + " " + " ".join(f"{x:.9g}" for x in row) + "\n").encode("utf-8")
                      for w, row in zip(self.words, rows.tolist())]
        return atomic_write_bytes(path, b"".join(parts))

    @classmethod
    def load_word2vec_format(cls, path: str | os.PathLike[str], binary: bool | None = None) -> WordVectors:
        """Read a word2vec text or binary file (binary=None: binary for a `.bin` suffix) as float32,
        checking the header, every line or record, and the word count; VectorsFormatError says where."""
        data = Path(path).read_bytes()
        end = data.find(b"\n")
        header = (data[:end] if end >= 0 else data).decode("utf-8", "replace").split()
        if len(header) != 2 or not all(h.isdecimal() for h in header) or int(header[1]) == 0:
            raise VectorsFormatError(f"{path}: first line must be '<count> <dim>' (dim > 0), got {' '.join(header)!r}")
        n, dim = int(header[0]), int(header[1])
        body = data[end + 1:] if end >= 0 else b""
        binary = _is_binary(path, binary)
        # the smallest record: a 1-byte word, a space and dim floats (4 bytes each, or "0" and a separator)
        if n * (1 + (4 * dim + 1 if binary else 2 * dim)) > len(body):
            raise VectorsFormatError(f"{path}: header says {n} words of dimension {dim}, but only {len(body)} bytes "
                                     "follow (truncated?)")
        words, vectors = (_read_binary if binary else _read_text)(str(path), body, n, dim)
        if len(set(words)) != len(words):
            dup = next(w for w, count in Counter(words).items() if count > 1)
            raise VectorsFormatError(f"{path}: the word {dup!r} appears more than once")
        return cls(words, vectors)


def _is_binary(path: str | os.PathLike[str], binary: bool | None) -> bool:
    return Path(path).suffix.lower() == ".bin" if binary is None else binary


def _read_text(path: str, body: bytes, n: int, dim: int) -> tuple[list[str], np.ndarray]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise VectorsFormatError(f"{path}: not UTF-8 text at byte {e.start} after the header (a binary word2vec "
                                 "file? name it .bin or pass binary=True)") from None
    words, rows = [], np.zeros((n, dim), np.float32)
    lines = text.split("\n")  # not splitlines(): that would also split at the rarer Unicode line breaks
    if lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 2):
        parts = line.rstrip().split(" ")  # the C tool ends each line with a space
        if len(parts) != dim + 1:
            raise VectorsFormatError(f"{path}:{lineno}: expected a word and {dim} numbers, got {len(parts)} fields")
        if len(words) == n:
            raise VectorsFormatError(f"{path}:{lineno}: header says {n} words, the file has more")
        try:
            rows[len(words)] = np.array(parts[1:], dtype=np.float32)
        except ValueError:
            raise VectorsFormatError(f"{path}:{lineno}: the vector of {parts[0]!r} has a field that is not a number"
                                     ) from None
        words.append(parts[0])
    if len(words) != n:
        raise VectorsFormatError(f"{path}: header says {n} words, file has {len(words)} (truncated?)")
    return words, rows


def _read_binary(path: str, body: bytes, n: int, dim: int) -> tuple[list[str], np.ndarray]:
    words, rows, pos, size = [], np.zeros((n, dim), np.float32), 0, 4 * dim
    for i in range(n):
        while pos < len(body) and body[pos:pos + 1] in (b"\n", b"\r"):  # the C tool's "\n" after each record
            pos += 1
        space = body.find(b" ", pos)
        if space < 0 or space + 1 + size > len(body):
            raise VectorsFormatError(f"{path}: header says {n} words, the file ends inside word {i + 1} (truncated?)")
        try:
            word = body[pos:space].decode("utf-8")
        except UnicodeDecodeError:
            raise VectorsFormatError(f"{path}: word {i + 1} at byte {pos} is not UTF-8 (a text file? pass binary=False)"
                                     ) from None
        if not word or any(c.isspace() for c in word):
            raise VectorsFormatError(f"{path}: word {i + 1} at byte {pos} is {word!r}: malformed record")
        words.append(word)
        rows[i] = np.frombuffer(body, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + size
    if body[pos:].strip(b"\r\n"):
        raise VectorsFormatError(f"{path}: {len(body) - pos} bytes after the {n} words the header announces")
    return words, rows
