"""The frozen objects compression works on and returns."""

from __future__ import annotations

from dataclasses import dataclass

from lctk.sources.gitdiff import ChangedFile

KEPT, PARTIAL, DROPPED = "kept", "partial", "dropped"


@dataclass(frozen=True)
class Segment:
    """Lines kept from a file: 1-based inclusive range and their text (elided lines removed)."""

    start_line: int
    end_line: int
    text: str  # may contain elision markers for lines dropped inside a kept function


@dataclass(frozen=True)
class CompressedFile:
    """A file's kept segments in original order."""

    path: str
    language: str | None
    total_lines: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class UnitDecision:
    """What happened to one chunk (for --explain and json)."""

    path: str
    start_line: int
    end_line: int
    kind: str
    symbol: str
    tokens: int
    score: float | None  # AMI (with a query) or the query-free score, + its change tier with a diff; None if never scored
    scored_by: str  # "ami", "bm25" (outside the LM candidates), "references" (no query)
    decision: str  # KEPT, PARTIAL (fine stage dropped some lines) or DROPPED
    kept_tokens: int


@dataclass(frozen=True)
class DiffSection:
    """The diff shown ahead of the code (`--diff`): what changed against `ref`, cut to fit if it had to be."""

    ref: str
    text: str  # the unified diff as shown, whole lines (the truncation marker is the renderer's)
    files: tuple[ChangedFile, ...]  # every changed file (path, old_path, status, added, removed), even if the text was cut
    lines_total: int
    lines_shown: int
    query_from_diff: bool  # no query was given: the diff's changed lines were the query

    @property
    def truncated(self) -> bool:
        return self.lines_shown < self.lines_total


@dataclass(frozen=True)
class CompressResult:
    """Everything a renderer needs, plus the numbers describing the run."""

    files: tuple[CompressedFile, ...]
    units: tuple[UnitDecision, ...]
    query: str | None
    model: str
    backend: str
    output_format: str
    budget_tokens: int
    input_tokens: int
    output_tokens: int
    lm_sequences_scored: int
    lm_cache_hits: int
    lm_tokens_scored: int
    seconds: float
    redactions: tuple = ()  # lctk.sources.secrets.Redaction: secrets replaced before anything read the text
    tree: str | None = None  # the directory tree shown ahead of the code (`--tree`), as rendered lines
    diff: DiffSection | None = None  # the diff shown ahead of the code (`--diff`)
    tokenizer: str = ""  # what counted the budget: o200k_base, cl100k_base, a model alias, a tokenizer.json path

    @property
    def ratio(self) -> float:
        """Input tokens per output token."""
        return self.input_tokens / self.output_tokens if self.output_tokens else 0.0
