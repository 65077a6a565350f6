"""Is an answer supported by its evidence? A guard against small answer models that invent.

An answer is supported when its words occur in the evidence in that order (it was copied from
it), or when it adds something to the question and most of what it adds — its content words that
the question does not already hold — occurs in the evidence. An answer that only restates the
question ("The file that holds the copyright is the file.") or whose new words are not in the
evidence is replaced by the refusal, so lctk says the document does not answer
rather than passing an invention on. The bar (`SUPPORTED_SHARE`) was set on the dev questions of
bench/data/ask-questions.jsonl (bench/ask_questions.py): answers to questions the manuals do
not answer were mostly unsupported, right answers almost always supported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from lctk.ask.prior import content_terms
from lctk.sources.lexical import plain_words

SUPPORTED_SHARE = 0.75  # share of the answer's new content words that must occur in the evidence


def supported(answer: str, evidence: Sequence[str], question: str) -> bool:
    """True when the answer is copied from the evidence, or most of its content words beyond the question's are in it."""
    words = " ".join(plain_words(answer))
    if words and f" {words} " in f" {' '.join(plain_words(' '.join(evidence)))} ":
        return True
    asked = set(content_terms(question))
    new = [term for term in content_terms(answer) if term not in asked]
    if not new:
        return False
    known = set(content_terms("\n".join(evidence)))
    return sum(term in known for term in new) / len(new) >= SUPPORTED_SHARE


def first_line(pieces: Iterable[str]) -> Iterator[str]:
    """Pass streamed text through up to the end of its first non-empty line, then stop the stream.

    The answer prompt asks for a few words; what a small model writes after the first line is a
    new example, a restated question or a loop, never more answer.
    """
    started = False
    for piece in pieces:
        text = piece if started else piece.lstrip()
        if not text:
            continue
        started = True
        if "\n" in text:
            head = text.split("\n", 1)[0]
            if head:
                yield head
            close_stream(pieces)
            return
        yield text


def close_stream(pieces) -> None:
    """Stop a generation stream early (generators and streams with `close`), so the model stops too."""
    close = getattr(pieces, "close", None)
    if close is not None:
        close()
