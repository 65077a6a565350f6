"""Long-context tasks made from any haystack text: needle, passkey, multi-needle, thread.

Lengths are counted in the tokens of the model that will read the document; needles are put
between sentences of the haystack, at the share of its tokens given by `depth` (0 = first,
1 = last). Everything is deterministic for a seed.

- needle: one fact ("The special magic number for Quito is 7301946."), one question.
- passkey: digits hidden in repeated filler sentences (the haystack text is not used).
- multi-needle: several facts about one key, spread from `depth` to the end; the question asks
  for all of them (score = share found).
- thread: a chain of variable assignments (VAR B = VAR A, ...) from `depth` on, in the spirit of
  RULER's variable tracking and Needle Threading; the question asks for every variable that
  holds the first value (score = share of names found).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lctk.documents.sentences import split_sentences
from lctk.errors import InputError, UsageError

KINDS = ("needle", "passkey", "multi-needle", "thread")
KEYS = ("Lisbon", "Nairobi", "Osaka", "Quito", "Tromso", "Hanoi", "Perth", "Cusco", "Tbilisi", "Dakar",
        "Oslo", "Lima", "Accra", "Bergen", "Kyoto", "Porto", "Riga", "Sucre", "Turku", "Zagreb")
FILLER = ("The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again.")


@dataclass(frozen=True)
class Task:
    kind: str
    length: int  # requested length in model tokens
    depth: float  # where the (first) needle goes, 0..1
    document: str
    question: str
    expected: tuple[str, ...]  # values an answer must contain
    needles: tuple[tuple[int, int], ...]  # character spans of the inserted needles in `document`
    tokens: int  # haystack tokens actually used (whole sentences: >= length)


class _Sentences:
    """Sentences of a text with token counts (counted once, as needed); `repeat` cycles them."""

    def __init__(self, text: str, count_tokens: Callable[[str], int], repeat: bool = False):
        self.text, self.count_tokens, self.repeat = text, count_tokens, repeat
        self.sentences = split_sentences(text)
        if not self.sentences:
            raise InputError("the haystack has no sentences")
        self.counts: list[int] = []

    def _count(self, index: int) -> int:
        base = index % len(self.sentences) if self.repeat else index
        while len(self.counts) <= base:
            sentence = self.sentences[len(self.counts)]
            self.counts.append(self.count_tokens(self.text[sentence.start : sentence.end] + " "))
        return self.counts[base]

    def span(self, length: int) -> tuple[int, list[int]]:
        """Number of leading sentences that hold at least `length` tokens, and their counts."""
        counts: list[int] = []
        total = 0
        while total < length:
            if not self.repeat and len(counts) == len(self.sentences):
                raise InputError(f"the haystack holds only {total:,} tokens; {length:,} were asked for")
            counts.append(self._count(len(counts)))
            total += counts[-1]
        return len(counts), counts

    def build(self, length: int, needles: Sequence[tuple[float, str]]) -> tuple[str, tuple, int]:
        """Insert needles (depth, sentence) at sentence boundaries; return (document, spans, tokens).

        The haystack keeps its own text and whitespace; a needle goes right before the sentence at
        its boundary, followed by a space (at the very end: after a space). Filler sentences are
        joined by single spaces.
        """
        end, counts = self.span(length)
        total = sum(counts)
        placed = sorted(((_boundary(counts, depth, total), order, needle) for order, (depth, needle) in enumerate(needles)))
        if self.repeat:
            filler = [self.text[s.start : s.end] for s in self.sentences]
            pieces: list[tuple[str, bool]] = [(filler[i % len(filler)], False) for i in range(end)]
            for shift, (cut, _, needle) in enumerate(placed):
                pieces.insert(cut + shift, (needle, True))
            spans, position = [], 0
            for piece, is_needle in pieces:
                if is_needle:
                    spans.append((position, position + len(piece)))
                position += len(piece) + 1
            return " ".join(piece for piece, _ in pieces), tuple(spans), total
        stop = self.sentences[end - 1].end
        parts, spans, at, position = [], [], 0, 0
        for cut, _, needle in placed:
            offset = self.sentences[cut].start if cut < end else stop
            parts.append(self.text[at:offset])
            position += offset - at
            if cut >= end:  # after the last sentence
                parts.append(" ")
                position += 1
            spans.append((position, position + len(needle)))
            parts.append(needle if cut >= end else needle + " ")
            position += len(needle) + (0 if cut >= end else 1)
            at = offset
        parts.append(self.text[at:stop])
        return "".join(parts), tuple(spans), total


class Haystack:
    """Tasks made from one haystack text (passkey tasks use filler sentences instead)."""

    def __init__(self, text: str, count_tokens: Callable[[str], int]):
        if not text.strip():
            raise InputError("the haystack has no text")
        self._text = _Sentences(text, count_tokens)
        self._filler = _Sentences(" ".join(FILLER), count_tokens, repeat=True)

    def task(self, kind: str, length: int, depth: float, seed: int = 0, needles: int = 3, hops: int = 4) -> Task:
        """Make one task of `kind` at `length` tokens with its (first) needle at `depth`."""
        if kind not in KINDS:
            raise InputError(f"unknown task {kind!r}; use one of {', '.join(KINDS)}")
        if not 0.0 <= depth <= 1.0:
            raise InputError(f"depth {depth} is outside 0..1")
        if length <= 0:
            raise InputError("length must be positive")
        rng = random.Random(f"{kind}-{length}-{depth}-{seed}")
        expected: tuple[str, ...]
        if kind == "passkey":
            value = str(rng.randrange(10000, 99999))
            source = self._filler
            placed = [(depth, f"The pass key is {value}. Remember it. {value} is the pass key.")]
            question, expected = "What is the pass key?", (value,)
        elif kind == "needle":
            key, value = rng.choice(KEYS), str(rng.randrange(1000000, 9999999))
            source = self._text
            placed = [(depth, f"The special magic number for {key} is {value}.")]
            question, expected = f"What is the special magic number for {key}?", (value,)
        elif kind == "multi-needle":
            key = rng.choice(KEYS)
            values = [str(rng.randrange(1000000, 9999999)) for _ in range(max(1, needles))]
            source = self._text
            placed = [(_spread(depth, i, len(values)), f"One of the special magic numbers for {key} is {v}.")
                      for i, v in enumerate(values)]
            question, expected = f"What are all the special magic numbers for {key}?", tuple(values)
        else:  # thread
            names = _names(rng, max(2, hops + 1))
            value = str(rng.randrange(10000, 99999))
            chain = [f"VAR {names[0]} = {value}."] + [f"VAR {b} = VAR {a}." for a, b in zip(names, names[1:])]
            source = self._text
            placed = [(_spread(depth, i, len(chain)), line) for i, line in enumerate(chain)]
            question = f"Which variables are assigned the value {value}, directly or through other variables? List them all."
            expected = tuple(names)
        document, spans, tokens = source.build(length, placed)
        return Task(kind, length, depth, document, question, expected, spans, tokens)


def depths(count: int) -> list[float]:
    """`count` depths evenly from 0 to 1 (one depth: the middle)."""
    if count < 1:
        raise InputError("depths must be at least 1")
    return [round(i / (count - 1), 4) for i in range(count)] if count > 1 else [0.5]


def _boundary(counts: Sequence[int], depth: float, total: int) -> int:
    """Index of the sentence before which a needle goes so that `depth` of the tokens precede it."""
    target, seen = depth * total, 0
    for index, count in enumerate(counts):
        if seen >= target:
            return index
        seen += count
    return len(counts)


def _spread(depth: float, index: int, count: int) -> float:
    """Needle `index` of `count`: the first at `depth`, the rest evenly to the end, in order."""
    return depth + (1.0 - depth) * index / count


def _names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = "".join(rng.choice(string.ascii_uppercase) for _ in range(5))
        if name not in names:
            names.append(name)
    return names


def parse_lengths(text: str) -> list[int]:
    """'4k,8k,16000' -> [4096, 8192, 16000]."""
    lengths = []
    for piece in text.split(","):
        piece = piece.strip().lower()
        try:
            value = int(float(piece[:-1]) * 1024) if piece.endswith("k") else int(piece)
        except ValueError:
            raise UsageError(f"--lengths: {piece!r} is not a token count (use e.g. 4k,8k,16000)") from None
        if value < 64:
            raise UsageError(f"--lengths: {piece!r} is too short (64 tokens at least)")
        lengths.append(value)
    if not lengths:
        raise UsageError("--lengths is empty")
    return lengths
