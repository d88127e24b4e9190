"""The docs cannot drift from the code: every ```python block in README.md and docs/*.md runs here.

The rules, for whoever writes docs:
- The python blocks of one file run in order, in one shared namespace (like notebook cells), in
  a fresh temporary working directory.
- A block right after the line `<!-- no-test -->` is not run (install commands, sketches).
- A block right after the line `<!-- output -->` is an expected output: it must equal what the
  python block before it printed (trailing spaces and blank lines at the ends are ignored).
"""
from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NO_TEST = "<!-- no-test -->"
OUTPUT = "<!-- output -->"
FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")


@dataclass
class Block:
    lang: str
    code: str
    line: int  # 1-based line number of the opening fence
    marker: str  # the last non-blank line before the fence


def parse_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with the line that precedes each one."""
    lines = text.splitlines()
    blocks: list[Block] = []
    previous = ""
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"code block opened at line {i + 1} is never closed")
        blocks.append(Block(m.group(1).lower(), "\n".join(lines[i + 1:end]) + "\n", i + 1, previous))
        previous = ""
        i = end + 1
    return blocks


def _normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def section(text: str, title: str) -> str:
    """The body of the `## title` section of a Markdown text."""
    m = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert m, f"no '## {title}' section"
    return m.group(1)


def quickstart_commands() -> list[str]:
    body = section((ROOT / "README.md").read_text(encoding="utf-8"), "Quickstart")
    commands = []
    for block in parse_blocks(body):
        if block.lang in ("bash", "sh", "shell", "console"):
            commands += [ln.strip() for ln in block.code.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return commands


# ------------------------------------------------------------------ the tests
@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_code_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    printed: str | None = None
    for block in parse_blocks(path.read_text(encoding="utf-8")):
        if block.marker == OUTPUT:
            assert printed is not None, f"{path.name}:{block.line}: an output block with no python block before it"
            assert _normalize(printed) == _normalize(block.code), (
                f"{path.name}:{block.line}: the output shown in the docs differs from what the code printed.\n"
                f"--- printed ---\n{printed}--- in the docs ---\n{block.code}"
            )
            printed = None
        elif block.lang == "python" and block.marker != NO_TEST:
            # Pad with newlines so a traceback's line numbers are the line numbers in the .md file.
            code = compile("\n" * block.line + block.code, str(path), "exec")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(code, namespace)
            printed = out.getvalue()


def test_docs_have_tested_blocks() -> None:
    # Guard against the runner silently testing nothing (a renamed fence, a broken parser).
    blocks = parse_blocks((ROOT / "docs" / "engine.md").read_text(encoding="utf-8"))
    assert sum(b.lang == "python" and b.marker != NO_TEST for b in blocks) >= 5
    assert sum(b.marker == OUTPUT for b in blocks) >= 5


def test_parse_blocks_markers() -> None:
    text = "intro\n<!-- no-test -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n<!-- output -->\n```text\n2\n```\n"
    blocks = parse_blocks(text)
    assert [(b.lang, b.marker) for b in blocks] == [("python", NO_TEST), ("python", ""), ("text", OUTPUT)]
    assert blocks[1].code == "y = 2\n" and blocks[1].line == 7
    with pytest.raises(ValueError, match="never closed"):
        parse_blocks("```python\nx = 1\n")


def test_readme_quickstart_is_two_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    install_and_tour, install_and_test = commands
    assert ".[course]" in install_and_tour and "tglite tour" in install_and_tour
    assert ".[test]" in install_and_test and "pytest" in install_and_test


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = quickstart_commands()[1]
    assert f"TEST_COMMAND='{test_command}'" in ci
    assert "set -euo pipefail" in ci


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # web links and anchors are not checked here
        assert (path.parent / target.split("#")[0]).exists(), f"{path.name}: broken link {target!r}"
