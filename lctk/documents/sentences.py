"""Sentences with character offsets, and windows of whole sentences within a token budget.

A sentence ends at `.`, `!` or `?` (plus closing quotes/brackets) followed by whitespace and a
capital letter, digit, quote or bracket — except after common abbreviations and initials — and
at every blank line (paragraphs, headings, list items on their own lines stay separate).
`text[s.start:s.end]` is the sentence, so every kept sentence maps back to its page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ABBREVIATIONS = frozenset(
    "e.g i.e etc vs cf al fig figs eq eqs no nos vol pp ed eds approx dept est inc ltd co corp jr sr dr mr mrs ms "
    "prof st mt gen col lt sgt capt rev resp ca viz sec ch art".split()
)
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")


@dataclass(frozen=True)
class Sentence:
    start: int  # character offsets into the document text; text[start:end] is the sentence
    end: int


def split_sentences(text: str) -> list[Sentence]:
    """Split into sentences (whitespace between them is not part of any sentence)."""
    sentences: list[Sentence] = []
    for start, end in _paragraph_spans(text):
        cursor = start
        for match in _END.finditer(text, start, end):
            if _is_abbreviation(text, match.start()):
                continue
            _append(sentences, text, cursor, match.end())
            cursor = match.end()
        _append(sentences, text, cursor, end)
    return sentences


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _PARAGRAPH.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the `.` at `dot` closes an abbreviation or an initial ("e.g.", "J. Smith")."""
    if text[dot] != ".":
        return False
    word = re.search(r"([A-Za-z][A-Za-z.]*)$", text[max(dot - 12, 0) : dot])
    if not word:
        return False
    token = word.group(1).lower().rstrip(".")
    return token in ABBREVIATIONS or len(token) == 1


def _append(sentences: list[Sentence], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        sentences.append(Sentence(start, end))


@dataclass(frozen=True)
class Window:
    """Consecutive sentences (indexes [first, last)) whose tokens fit the window size."""

    first: int
    last: int
    tokens: int


def pack_windows(
    text: str, sentences: Sequence[Sentence], window_tokens: int, count_tokens: Callable[[Sequence[str]], list[int]],
) -> tuple[list[Sentence], list[Window]]:
    """Pack whole sentences into windows of at most `window_tokens`.

    A sentence longer than the window is first cut into pieces at word boundaries (each piece
    becomes a sentence of its own, offsets kept). Returns the (possibly cut) sentences and the
    windows over them.
    """
    fitted, counts = fit_sentences(text, sentences, window_tokens, count_tokens)
    return fitted, windows_of(counts, window_tokens)


def fit_sentences(
    text: str, sentences: Sequence[Sentence], window_tokens: int, count_tokens: Callable[[Sequence[str]], list[int]],
) -> tuple[list[Sentence], list[int]]:
    """Cut sentences longer than `window_tokens` at word boundaries; return the sentences and their token counts."""
    if window_tokens < 1:
        raise ValueError("window_tokens must be positive")
    counts = count_tokens([text[s.start : s.end] for s in sentences])
    fitted: list[Sentence] = []
    fitted_counts: list[int] = []
    for sentence, count in zip(sentences, counts):
        if count <= window_tokens:
            fitted.append(sentence)
            fitted_counts.append(count)
            continue
        for piece in _cut(text, sentence, count, window_tokens, count_tokens):
            fitted.append(piece)
            fitted_counts.append(count_tokens([text[piece.start : piece.end]])[0])
    return fitted, fitted_counts


def windows_of(counts: Sequence[int], window_tokens: int) -> list[Window]:
    """Consecutive runs of items (token `counts`) of at most `window_tokens` each (an over-long item alone)."""
    windows: list[Window] = []
    first, total = 0, 0
    for index, count in enumerate(counts):
        if index > first and total + count > window_tokens:
            windows.append(Window(first, index, total))
            first, total = index, 0
        total += count
    if len(counts):
        windows.append(Window(first, len(counts), total))
    return windows


def _cut(text, sentence, count, limit, count_tokens) -> list[Sentence]:
    """Cut an over-long sentence at word boundaries into pieces that fit (halving until they do)."""
    words = [m.span() for m in re.finditer(r"\S+", text[sentence.start : sentence.end])]
    per_piece = max(1, int(len(words) * limit / max(count, 1) * 0.9))
    pieces = []
    for i in range(0, len(words), per_piece):
        chunk = words[i : i + per_piece]
        start, end = sentence.start + chunk[0][0], sentence.start + chunk[-1][1]
        if len(chunk) > 1 and count_tokens([text[start:end]])[0] > limit:
            middle = sentence.start + chunk[len(chunk) // 2][0]
            half = count_tokens([text[start:middle]])[0]
            pieces.extend(_cut(text, Sentence(start, middle), half, limit, count_tokens))
            pieces.extend(_cut(text, Sentence(middle, end), count_tokens([text[middle:end]])[0], limit, count_tokens))
        else:
            pieces.append(Sentence(start, end))
    return pieces
