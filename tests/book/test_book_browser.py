"""The course book, opened in a real headless browser (Chromium, driven by Playwright).

Run after building the book, in its own CI step (.ci/run):

    tglite book build --quick --out _build/book
    TGLITE_BOOK_DIR=_build/book python -m pytest tests/book -m book

Without TGLITE_BOOK_DIR (the main test run) every test here skips. Chromium is Debian's
(/usr/bin/chromium, or TGLITE_CHROMIUM); nothing is downloaded. One screenshot per chapter goes to
$TGLITE_BOOK_DIR/screenshots/ for a person to look at.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.book

BOOK = os.environ.get("TGLITE_BOOK_DIR")
if not BOOK:
    pytest.skip("the book's browser tests run in their own CI step: build the book, then "
                "TGLITE_BOOK_DIR=_build/book python -m pytest tests/book -m book", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api",
                                 reason='the browser tests need the book extra: pip install -e ".[book]"')

HTML = Path(BOOK).resolve() / "html"
SHOTS = Path(BOOK).resolve() / "screenshots"
CHROMIUM = os.environ.get("TGLITE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium on a machine with no network: no background connections, no sandbox (CI runs as root).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LECTURES = ["backprop", "semantic_search", "lora", "process_rewards", "test_time_compute", "grpo"]
GENERATED = {"genindex.html", "search.html", "py-modindex.html"}


def _pages() -> list[Path]:
    return sorted(p for p in HTML.rglob("*.html")
                  if not p.relative_to(HTML).parts[0].startswith("_") and p.name not in GENERATED)


def _notebook_pages() -> list[Path]:
    return sorted((HTML / "notebooks").glob("*.html"))


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package (apt-get install chromium) "
                    f"or set TGLITE_CHROMIUM")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    pg.close()


def _open(page, path: Path) -> None:
    response = page.goto(path.as_uri(), wait_until="load")
    assert response is None or response.ok, f"{path}: HTTP {response.status}"
    # MathJax typesets after load: wait until it has finished (pages without math have it too).
    page.wait_for_function("() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise)")
    page.evaluate("() => window.MathJax && window.MathJax.startup ? window.MathJax.startup.promise : null")


def test_the_book_has_every_part() -> None:
    assert (HTML / "index.html").is_file(), f"no book at {HTML}: run `tglite book build --quick --out {BOOK}`"
    for name in LECTURES:
        assert (HTML / "lectures" / f"{name}.html").is_file(), name
    names = {p.stem for p in _notebook_pages()}
    assert {"02_backprop_vs_numerical", "05_word2vec_and_semantic_search", "06_lora", "08_grpo",
            "07_process_rewards_and_test_time_compute"} <= names
    assert (HTML / "reference" / "api.html").is_file()


def test_the_solutions_are_not_on_the_site() -> None:
    assert not list(HTML.rglob("solutions")), "the instructor notebooks must not be published"
    for nb in (HTML / "_sources" / "notebooks").glob("*.ipynb"):  # the download button's files: the handouts
        assert "# BEGIN SOLUTION" not in nb.read_text(), f"{nb.name}: a solution in a downloadable notebook"
    downloads = list(HTML.rglob("*.ipynb"))
    assert downloads, "the student handouts must be downloadable (.ipynb)"


def test_every_page_loads_without_script_errors(page) -> None:
    for path in _pages():
        _open(page, path)
        assert page.locator("main, article").count() >= 1, f"{path}: no content"
        assert page.title(), f"{path}: no title"
        assert page.errors == [], f"{path}: {page.errors}"


def test_every_chapter_page_loads_and_gets_a_screenshot(page) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(LECTURES, 1):
        _open(page, HTML / "lectures" / f"{name}.html")
        assert page.locator("h1").count() >= 1
        page.screenshot(path=str(SHOTS / f"{i}_{name}.png"))
        assert (SHOTS / f"{i}_{name}.png").stat().st_size > 10_000
    for path in _notebook_pages():
        _open(page, path)
        page.screenshot(path=str(SHOTS / f"notebook_{path.stem}.png"), full_page=False)


# Notebooks that draw no figure: 03 (exercises only) and 09 (kernels; no matplotlib).
NO_FIGURES = {"03_gradient_check_exercises", "09_gpu"}


def test_every_notebook_page_shows_its_figures(page) -> None:
    for path in _notebook_pages():
        _open(page, path)
        images = page.evaluate("""() => Array.from(document.querySelectorAll('article img, main img')).map(
            img => ({src: img.getAttribute('src'), complete: img.complete, w: img.naturalWidth,
                     h: img.naturalHeight}))""")
        broken = [i["src"] for i in images if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
        assert broken == [], f"{path.name}: images that did not decode: {broken}"
        if path.stem not in NO_FIGURES:
            assert len(images) >= 1, f"{path.name}: no figure on the page"


def _ids(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        cache[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors="replace")))
    return cache[path]


def test_no_internal_link_is_broken(page) -> None:
    cache: dict[Path, set[str]] = {}
    broken = []
    for path in _pages():
        _open(page, path)
        hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        for href in hrefs:
            url = urlsplit(href)
            if url.scheme != "file":
                continue  # an external link: not ours to check offline
            target = Path(unquote(url.path))
            if not target.exists():
                broken.append(f"{path.relative_to(HTML)} -> {target}")
            elif url.fragment and target.suffix == ".html" and unquote(url.fragment) not in _ids(target, cache):
                broken.append(f"{path.relative_to(HTML)} -> {target.relative_to(HTML)}#{url.fragment}")
    assert broken == [], f"{len(broken)} broken internal links: {broken[:20]}"


def test_math_renders(page) -> None:
    """Every formula in a page's content (Sphinx's .math elements) holds a MathJax rendering of
    non-zero width, with no MathJax error."""
    rendered = 0
    for path in _pages():
        if 'class="math' not in path.read_text(errors="replace"):
            continue
        _open(page, path)
        widths = page.evaluate("""() => Array.from(document.querySelectorAll('article .math')).map(el => {
            const m = el.querySelector('mjx-container'); return m ? m.getBoundingClientRect().width : -1; })""")
        errors = page.locator("article mjx-merror").count()
        assert errors == 0, f"{path.name}: {errors} formulas MathJax could not typeset"
        missing = sum(w <= 0 for w in widths)
        assert missing == 0, f"{path.name}: {missing} of {len(widths)} formulas not rendered"
        rendered += len(widths)
    assert rendered > 0, "no page of the book has math: the lecture notebooks do"
