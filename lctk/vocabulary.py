"""Every closed set of choices, once: the library validates with these and the CLI offers them.

Each is a `str` Enum, so a member compares equal to its value; `parse_choice` turns a user's
string into a member or raises one InputError that names the choices (a typo never falls back).
Code past the boundary passes `.value` on: f-strings of a str Enum print `Class.member`.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from lctk.errors import InputError, LctkError

__all__ = ["Aggregation", "Backend", "CandidateSource", "CompressFormat", "Fusion", "SearchMode", "parse_choice"]


class SearchMode(str, Enum):
    """How search scores units: dense + BM25 fused, embeddings only, or BM25 only."""

    hybrid = "hybrid"
    dense = "dense"
    lexical = "lexical"


class Fusion(str, Enum):
    """How hybrid search fuses its dense and lexical scores."""

    blend = "blend"  # min-max normalised weighted sum
    rrf = "rrf"  # reciprocal-rank fusion


class Aggregation(str, Enum):
    """How an index pools block vectors into a unit vector."""

    mean = "mean"
    max = "max"
    attention = "attention"


class Backend(str, Enum):
    """Inference backend; auto picks per operation by measured speed on this hardware."""

    auto = "auto"
    torch = "torch"
    llama = "llama"
    openai = "openai"  # an OpenAI-compatible server (lctk.models.openai_backend); auto picks it when a base URL is set


class CompressFormat(str, Enum):
    """Output formats of compress (json's `text` field is what the budget counts)."""

    text = "text"
    xml = "xml"
    markdown = "markdown"
    json = "json"


class CandidateSource(str, Enum):
    """How compress picks the chunks its language model scores."""

    hybrid = "hybrid"  # BM25 + embeddings, as search
    bm25 = "bm25"  # no embedder


E = TypeVar("E", bound=Enum)


def parse_choice(kind: type[E], value: str | E, what: str, error: type[LctkError] = InputError) -> E:
    """The member of `kind` named `value` (case-insensitive), or an InputError listing the choices."""
    if isinstance(value, kind):
        return value
    for member in kind:
        if isinstance(value, str) and member.value == value.strip().lower():
            return member
    raise error(f"unknown {what} {value!r}; use one of: {', '.join(m.value for m in kind)}")
