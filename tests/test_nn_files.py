"""nn.files: the project's one atomic writer (every checkpoint, cache, report and figure goes through it)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from nn.files import atomic_write, atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tinygrad_lite", "nn", "embeddings", "lora", "rl", "tglite", "benchmarks")


def test_a_write_replaces_the_whole_file_and_creates_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "first, and longer")
    assert atomic_write_text(target, "second") == target
    assert target.read_text() == "second"  # replaced, not overwritten in place: no tail of the old text
    assert atomic_write_bytes(tmp_path / "b.bin", b"\x00\xff").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]  # no temporary file left


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    def write_half_then_fail(f) -> None:  # noqa: ANN001
        f.write(b"half of the new cont")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, write_half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.skipif(os.name != "posix", reason="file modes and the umask are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_a_new_file_gets_the_mode_a_plain_open_would_give(tmp_path: Path, umask: int) -> None:
    # mkstemp makes its temporary file 0600; a checkpoint others should read must not stay private.
    old = os.umask(umask)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        written = atomic_write_text(tmp_path / "atomic.txt", "x")
    finally:
        os.umask(old)
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_there_is_one_atomic_writer() -> None:
    """A second copy (tglite had one) would drift from this one, and only one would be tested."""
    defining = sorted(str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                      if re.search(r"^def atomic_write\w*\(", p.read_text(encoding="utf-8"), re.MULTILINE))
    assert defining == ["nn/files.py"]
