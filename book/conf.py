"""Sphinx configuration of the course book (built by `tglite book build`, see docs/book.md).

The toolchain is Jupyter Book 1's: Sphinx, myst-nb (Markdown pages and notebooks executed at build
time) and sphinx-book-theme; MathJax is served from the build itself (sphinx-mathjax-offline), so the
site works without a network. `tglite book build` copies this folder, docs/ and the student handouts
in notebooks/ into one source folder and runs Sphinx on it; the instructor solutions never go in.
"""
from __future__ import annotations

import os

project = "tinygrad_lite: the course"
author = "the tinygrad_lite authors"
copyright = "2026, the tinygrad_lite authors"

extensions = [
    "myst_nb",  # Markdown (MyST) pages and .ipynb notebooks, executed
    "sphinx.ext.autodoc",  # the API reference, from the docstrings
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 from the build folder, not from a CDN
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 6  # "#some-heading" links inside and across pages, at every level (as GitHub)

# Notebooks: executed at every build, each in a fresh kernel in a temporary folder (their figures go
# into the page, their tglite_out/ folders into the bin). TGLITE_CI=1 in the environment (--quick)
# makes them use their CI settings. A cell that raises stops the build: a broken notebook must not
# publish.
nb_execution_mode = "force"
nb_execution_in_temp = True
nb_execution_timeout = int(os.environ.get("TGLITE_BOOK_CELL_TIMEOUT", "900"))
nb_execution_raise_on_error = True
nb_merge_streams = True

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_typehints = "description"
autodoc_member_order = "bysource"

exclude_patterns = ["_build", "**.ipynb_checkpoints", "docs/img/README.md"]
suppress_warnings = ["myst.header"]  # docs pages start at "#" and some skip a level

html_theme = "sphinx_book_theme"
html_title = "tinygrad_lite: the course"
html_theme_options = {
    "use_download_button": True,  # the student handout (.ipynb) of every notebook page
    "show_toc_level": 2,
}
html_last_updated_fmt = ""


def _docstring_as_text(app, what, name, obj, options, lines):  # noqa: ANN001, ARG001 - Sphinx's hook signature
    """Our docstrings are plain text written for `help()` (formulas like |x|, aligned lists), not
    reStructuredText: show each one as it is written, in a literal block."""
    if lines:
        lines[:] = ["::", ""] + ["    " + line for line in lines] + [""]


def setup(app):  # noqa: ANN001, ANN201 - Sphinx's extension hook
    app.connect("autodoc-process-docstring", _docstring_as_text)
    return {"parallel_read_safe": True}
