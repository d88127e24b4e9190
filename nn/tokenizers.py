"""Tokenizers: text <-> integer ids.

`CharTokenizer`: one id per distinct character of the training text (nanoGPT's shakespeare_char).
`BPETokenizer`: byte-level byte-pair encoding (Sennrich et al. 2016; byte-level as in GPT-2).
It starts from the 256 byte values, so *any* string can be encoded, and repeatedly merges the
most frequent adjacent pair of ids into a new id. Text is first split into chunks (words with
their leading space, runs of digits, punctuation, whitespace) and merges never cross a chunk,
so a token never glues the end of one word to the start of the next.

Both save to JSON (atomically) and validate what they load.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .files import atomic_write_text

# Chunks: an optional space + letters, an optional space + digits, an optional space +
# other symbols, then whitespace runs. Stdlib `re`: [^\W\d_] is "a letter" in any script.
SPLIT_PATTERN = r" ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+|_+"


class TokenizerError(ValueError):
    """A tokenizer file is missing, corrupted or of the wrong kind."""


def _to_bytes(text: str) -> bytes:
    # surrogatepass: lone surrogates (legal in a Python str, illegal in UTF-8) still round-trip.
    return text.encode("utf-8", errors="surrogatepass")


def _from_bytes(data: bytes) -> str:
    try:
        return data.decode("utf-8", errors="surrogatepass")
    except UnicodeDecodeError:  # a slice of a sequence can cut a character in half
        return data.decode("utf-8", errors="replace")


class Tokenizer:
    """Common interface: encode, decode, vocab_size, to_dict / from_dict, save / load."""

    kind = ""

    @property
    def vocab_size(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=True))

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Tokenizer:
        kinds = {"char": CharTokenizer, "bpe": BPETokenizer}
        kind = d.get("kind") if isinstance(d, dict) else None
        if kind not in kinds:
            raise TokenizerError(f"tokenizer: unknown kind {kind!r}; expected one of {sorted(kinds)}")
        return kinds[kind]._from_dict(d)

    @staticmethod
    def load(path: str | Path) -> Tokenizer:
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TokenizerError(f"tokenizer file {str(path)!r} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TokenizerError(f"tokenizer file {str(path)!r} is not valid JSON (truncated or corrupted?): "
                                 f"{e}") from e
        return Tokenizer.from_dict(d)

    def _check_ids(self, ids: list[int]) -> None:
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"{type(self).__name__}.decode: ids {bad[:5]} are outside [0, {self.vocab_size})")


class CharTokenizer(Tokenizer):
    """Each distinct character is a token; ids follow the sorted order of the characters."""

    kind = "char"

    def __init__(self, chars: Iterable[str]) -> None:
        self.chars = sorted(set(chars))
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("CharTokenizer: every vocabulary entry must be a single character")
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError as e:
            raise ValueError(f"CharTokenizer.encode: character {e.args[0]!r} is not in the vocabulary "
                             f"of {self.vocab_size} characters") from None

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        self._check_ids(ids)
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": 1, "chars": "".join(self.chars)}

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> CharTokenizer:
        chars = d.get("chars")
        if not isinstance(chars, str) or len(set(chars)) != len(chars):
            raise TokenizerError("char tokenizer: 'chars' must be a string of distinct characters")
        return cls(chars)


class BPETokenizer(Tokenizer):
    """Byte-level BPE. `merges[i] = (a, b)` made id 256 + i from the pair (a, b)."""

    kind = "bpe"

    def __init__(self, merges: Iterable[tuple[int, int]] = (), pattern: str = SPLIT_PATTERN) -> None:
        self.merges = [(int(a), int(b)) for a, b in merges]
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self.ranks = {pair: 256 + i for i, pair in enumerate(self.merges)}  # pair -> new id
        # The bytes behind every id, built up merge by merge.
        self.vocab = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = SPLIT_PATTERN) -> BPETokenizer:
        """Learn vocab_size - 256 merges from text. Each chunk is counted once with its
        frequency, so repeated words cost nothing extra."""
        if vocab_size < 256:
            raise ValueError(f"BPETokenizer.train: vocab_size must be >= 256 (the bytes), got {vocab_size}")
        chunk_counts = Counter(re.findall(pattern, text))
        words = [list(_to_bytes(w)) for w in chunk_counts]
        freqs = list(chunk_counts.values())
        merges: list[tuple[int, int]] = []
        for new_id in range(256, vocab_size):
            pairs: Counter[tuple[int, int]] = Counter()
            for w, f in zip(words, freqs):
                for pair in zip(w, w[1:]):
                    pairs[pair] += f
            if not pairs:
                break  # every chunk is a single token already
            # The most frequent pair; ties go to the smallest pair, so training is deterministic.
            best = min(pairs, key=lambda p: (-pairs[p], p))
            merges.append(best)
            words = [_merge(w, best, new_id) for w in words]
        return cls(merges, pattern)

    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = self._cache.get(chunk)
        if ids is not None:
            return ids
        ids = list(_to_bytes(chunk))
        while len(ids) >= 2:
            # Apply the earliest-learned merge present: the order training applied them in.
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, 1 << 62))
            if pair not in self.ranks:
                break
            ids = _merge(ids, pair, self.ranks[pair])
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        for chunk in self._regex.findall(text):
            out.extend(self._encode_chunk(chunk))
        return out

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        self._check_ids(ids)
        return _from_bytes(b"".join(self.vocab[i] for i in ids))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": 1, "pattern": self.pattern, "merges": [list(m) for m in self.merges]}

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> BPETokenizer:
        merges, pattern = d.get("merges"), d.get("pattern")
        if not isinstance(pattern, str):
            raise TokenizerError("bpe tokenizer: 'pattern' must be a string")
        try:
            re.compile(pattern)
        except re.error as e:
            raise TokenizerError(f"bpe tokenizer: 'pattern' is not a valid regular expression: {e}") from e
        if not isinstance(merges, list):
            raise TokenizerError("bpe tokenizer: 'merges' must be a list of [a, b] pairs")
        for i, m in enumerate(merges):
            # Merge i makes id 256 + i, so it may only use ids that already exist.
            ok = (isinstance(m, list) and len(m) == 2 and all(isinstance(v, int) and 0 <= v < 256 + i for v in m))
            if not ok:
                raise TokenizerError(f"bpe tokenizer: merge {i} is {m!r}; expected [a, b] with ids below {256 + i}")
        return cls([tuple(m) for m in merges], pattern)


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair`, left to right, by `new_id`."""
    out, i, n = [], 0, len(ids)
    a, b = pair
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
