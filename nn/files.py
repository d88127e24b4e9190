"""Atomic file writes: every file the project saves (checkpoints, tokenizers, caches, reports,
figures) goes through here.

The data goes to a temporary file in the target's folder, is flushed to disk, and is then renamed
over the target with `os.replace`, which is atomic on POSIX and Windows: a reader (or a crash
half-way) sees either the old complete file or the new complete file, never a partial one. The
temporary file must live in the same folder, because a rename across file systems is a copy, and a
copy is not atomic.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call `write(f)` on a temporary binary file next to `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _new_file_mode())  # mkstemp makes it private (0600); give the usual rw-r--r--
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        # Leave no half-written temporary file behind, whatever went wrong (even Ctrl-C).
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _new_file_mode() -> int:
    """The mode `open(path, "w")` would give a new file: 0o666 less the process's umask."""
    umask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
