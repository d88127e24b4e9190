"""`tglite book build`: what goes into the course website (the browser checks are in tests/book)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tglite.book import BookError, repo_root, stage_sources
from tglite.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_staging_takes_the_handouts_and_never_the_solutions(tmp_path: Path) -> None:
    src = stage_sources(ROOT, tmp_path / "src")
    staged = sorted(p.name for p in (src / "notebooks").glob("*.ipynb"))
    assert staged == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert not (src / "notebooks" / "solutions").exists()
    assert not [p for p in src.rglob("*.ipynb") if "# BEGIN SOLUTION" in p.read_text()]
    assert (src / "conf.py").is_file() and (src / "docs" / "engine.md").is_file()


def test_every_page_and_notebook_is_in_the_book(tmp_path: Path) -> None:
    """Every docs page and every handout is listed in some toctree (no orphan, no missing page)."""
    src = stage_sources(ROOT, tmp_path / "src")
    listed = set()
    for page in src.rglob("*.md"):
        for block in re.findall(r"```\{toctree\}(.*?)```", page.read_text(), flags=re.S):
            for line in block.splitlines():
                line = line.strip()
                if line and not line.startswith(":"):
                    listed.add((page.parent / line).resolve().relative_to(src.resolve()).as_posix())
    pages = {p.relative_to(src).with_suffix("").as_posix() for p in src.rglob("*.md") if p.name != "index.md"}
    pages |= {p.relative_to(src).with_suffix("").as_posix() for p in (src / "notebooks").glob("*.ipynb")}
    pages -= {"docs/img/README"}
    assert pages - listed == set(), "add these to a toctree in book/"
    assert listed - pages == set(), "these toctree entries have no page"


def test_repo_root_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert repo_root(ROOT / "docs") == ROOT
    with pytest.raises(BookError, match="book is missing"):
        stage_sources(tmp_path, tmp_path / "out")


def test_build_refuses_an_out_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert main(["book", "build", "--out", str(tmp_path / "f")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
