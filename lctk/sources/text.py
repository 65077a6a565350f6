"""The text of one input file, as read: what compress and eval take as input."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceText:
    """One input file's text, as read."""

    path: str  # as shown to the user
    language: str | None
    text: str
