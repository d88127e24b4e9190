"""The course book: docs/*.md and the executed student handouts as one website (Sphinx + myst-nb).

`build_book` copies the book's own pages (book/: the configuration, the front page, one page per
lecture, the API reference), docs/ and the handouts in notebooks/ into one source folder, then runs
Sphinx on it. The notebooks are executed during the build (myst-nb), in fresh kernels; `quick` sets
TGLITE_CI=1 so that they use their CI settings. The instructor notebooks (notebooks/solutions/) are
never copied: the site must not hold the solutions.

    result = build_book(repo_root(), Path("_build/book"), quick=True)
    result.index        # _build/book/html/index.html
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tinygrad_lite.extras import require

BOOK_PACKAGES = ("sphinx", "myst_nb", "sphinx_book_theme")


class BookError(RuntimeError):
    """The book could not be built: a missing source folder, or Sphinx reported an error."""


@dataclass
class BookResult:
    html: Path  # the site's folder (open index.html)
    seconds: float
    warnings: list[str]  # Sphinx's warnings, one line each

    @property
    def index(self) -> Path:
        return self.html / "index.html"


def repo_root(start: Path | None = None) -> Path:
    """The repository folder holding book/, docs/ and notebooks/: `start` (default: the current
    folder) or one of its parents, else the one this package was installed from (an editable
    install). The book is built from a clone, not from an installed wheel."""
    candidates = [start or Path.cwd()]
    candidates += list(candidates[0].resolve().parents)
    candidates.append(Path(__file__).resolve().parent.parent)
    for folder in candidates:
        if all((folder / name).is_dir() for name in ("book", "docs", "notebooks")):
            return folder
    raise BookError("no book/, docs/ and notebooks/ here or above, and tglite was not installed from a clone: "
                    "run `tglite book build` from a clone of the repository")


def stage_sources(root: Path, dest: Path) -> Path:
    """Copy the book's sources into `dest` (replaced): book/*, docs/ (pages and images) and the
    student handouts notebooks/*.ipynb. Never notebooks/solutions/."""
    for name in ("book", "docs", "notebooks"):
        if not (root / name).is_dir():
            raise BookError(f"{root / name} is missing: the book is built from a clone of the repository")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(root / "book", dest, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "docs", dest / "docs")
    (dest / "notebooks").mkdir()
    for nb in sorted((root / "notebooks").glob("*.ipynb")):  # the handouts only (not the solutions folder)
        shutil.copy2(nb, dest / "notebooks" / nb.name)
    return dest


def build_book(root: Path, out: Path, quick: bool = False, jobs: int = 1) -> BookResult:
    """Build the site into out/html (sources staged in out/src). `quick`: the notebooks run with
    their CI settings (TGLITE_CI=1). Raises BookError when Sphinx fails (a notebook cell raised,
    a page is broken)."""
    for package in BOOK_PACKAGES:
        require(package, "book", "tglite book build")
    from sphinx.cmd.build import build_main

    out = out.resolve()
    src = stage_sources(root, out / "src")
    html = out / "html"
    log = out / "sphinx-warnings.log"
    old = os.environ.get("TGLITE_CI")
    if quick:
        os.environ["TGLITE_CI"] = "1"  # the notebook kernels inherit the environment
    t0 = time.perf_counter()
    try:
        status = build_main(["-b", "html", "-q", "-j", str(jobs), "-w", str(log), "-d", str(out / "doctrees"),
                             str(src), str(html)])
    finally:
        if old is None:
            os.environ.pop("TGLITE_CI", None)
        else:
            os.environ["TGLITE_CI"] = old
    seconds = time.perf_counter() - t0
    warnings = [line for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    if status != 0:
        raise BookError(f"Sphinx failed (exit code {status}); see {log}" + (f": {warnings[-1]}" if warnings else ""))
    return BookResult(html, seconds, warnings)
