"""Is an answer supported by its evidence? A guard against small answer models that invent.

An answer is supported when it adds something to the question and most of what it adds — its
content words that the question does not already hold — occurs in the evidence. An answer that
only restates the question ("The file that holds the copyright is the file.") or whose new words
are not in the evidence is replaced by the refusal, so lctk says the document does not answer
rather than passing an invention on. The bar (`SUPPORTED_SHARE`) was set on the dev questions of
bench/data/ask-questions.jsonl (bench/ask_questions.py): answers to questions the manuals do
not answer were mostly unsupported, right answers almost always supported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from lctk.retrieval.prior import content_terms

SUPPORTED_SHARE = 0.75  # share of the answer's new content words that must occur in the evidence


def supported(answer: str, evidence: Sequence[str], question: str) -> bool:
    """True when the answer's content words beyond the question's are mostly found in the evidence."""
    asked = set(content_terms(question))
    new = [term for term in content_terms(answer) if term not in asked]
    if not new:
        return False
    known = set(content_terms("\n".join(evidence)))
    return sum(term in known for term in new) / len(new) >= SUPPORTED_SHARE


def until_repeated_line(pieces: Iterable[str]) -> Iterator[str]:
    """Pass streamed text through line by line, ending it before a line that repeats an earlier one.

    Small models loop ("1.3.1\n2.3.1\n..." or one sentence over and over); stopping at the first
    repeat also stops the generation. A line is held until it is complete.
    """
    seen: set[str] = set()
    held = ""
    for piece in pieces:
        held += piece
        while "\n" in held:
            line, held = held.split("\n", 1)
            key = line.strip()
            if key and key in seen:
                _close(pieces)
                return
            if key:
                seen.add(key)
            yield line + "\n"
    if held and held.strip() not in seen:
        yield held


def _close(pieces) -> None:
    close = getattr(pieces, "close", None)
    if close is not None:
        close()
