"""Render a compression result as text, xml, markdown or json; same result, same bytes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from lctk.compress.model import CompressedFile, CompressResult
from lctk.sources.languages import LANGUAGES

_FENCE_LANGUAGE = {"cpp": "cpp", "tsx": "tsx", None: ""}


def comment_prefix(language: str | None) -> str:
    """The line-comment syntax of a language ("" when unknown)."""
    spec = LANGUAGES.get(language or "")
    return spec.line_comment if spec else ""


def elision_marker(language: str | None, indent: str, first_line: int, last_line: int) -> str:
    """One line standing for dropped lines, in the language's comment syntax."""
    count = last_line - first_line + 1
    noun = "line" if count == 1 else "lines"
    body = f"… {count} {noun} elided ({first_line}-{last_line})" if count > 1 else f"… 1 line elided ({first_line})"
    prefix = comment_prefix(language)
    return f"{indent}{prefix} {body}\n" if prefix else f"{indent}[{body}]\n"


def file_body(file: CompressedFile) -> str:
    """A file's kept segments with a marker for each dropped run between and around them."""
    out, line = [], 1
    for segment in file.segments:
        if segment.start_line > line:
            out.append(elision_marker(file.language, "", line, segment.start_line - 1))
        text = segment.text if segment.text.endswith("\n") else segment.text + "\n"
        out.append(text)
        line = segment.end_line + 1
    if line <= file.total_lines and file.segments:
        out.append(elision_marker(file.language, "", line, file.total_lines))
    return "".join(out)


def _ranges(file: CompressedFile) -> str:
    return ",".join(f"{s.start_line}-{s.end_line}" for s in file.segments)


def render_context(files: tuple[CompressedFile, ...], output_format: str) -> str:
    """The compressed context itself (what is counted against the budget)."""
    kept = [f for f in files if f.segments]
    if output_format == "xml":
        parts = ["<context>\n"]
        for f in kept:
            parts.append(f"<file path={quoteattr(f.path)} lines={quoteattr(_ranges(f))}>\n{escape(file_body(f))}</file>\n")
        parts.append("</context>\n")
        return "".join(parts)
    if output_format == "markdown":
        parts = []
        for f in kept:
            fence = "````" if "```" in file_body(f) else "```"
            lang = _FENCE_LANGUAGE.get(f.language, f.language or "")
            parts.append(f"## {f.path} (lines {_ranges(f)} of {f.total_lines})\n\n{fence}{lang}\n{file_body(f)}{fence}\n\n")
        return "".join(parts)
    parts = []
    for f in kept:  # text, also the `text` field of json
        parts.append(f"==> {f.path} (lines {_ranges(f)} of {f.total_lines}) <==\n{file_body(f)}\n")
    return "".join(parts)


def budgeted_context(files: tuple[CompressedFile, ...], output_format: str) -> str:
    """The part of the output the budget counts: the context itself (json carries it as `text`)."""
    return render_context(files, "text" if output_format == "json" else output_format)


def render(result: CompressResult, skipped: Sequence = ()) -> str:
    """The full stdout payload for the result's format (json also lists skipped files)."""
    if result.output_format != "json":
        return render_context(result.files, result.output_format)
    payload = {
        "text": budgeted_context(result.files, "json"),
        "query": result.query,
        "model": result.model,
        "backend": result.backend,
        "tokens": {"budget": result.budget_tokens, "input": result.input_tokens, "output": result.output_tokens},
        "ratio": round(result.ratio, 3),
        "files": [{"path": f.path, "language": f.language, "lines": f.total_lines, "kept": _ranges(f)} for f in result.files],
        "units": [dataclasses.asdict(u) for u in result.units],
        "skipped": [{"path": item.display_path, "reason": item.reason} for item in skipped],
        "redactions": [{"path": r.path, "line": r.line, "kind": r.kind} for r in result.redactions],
        "scoring": {
            "lm_sequences": result.lm_sequences_scored, "cache_hits": result.lm_cache_hits,
            "lm_tokens": result.lm_tokens_scored, "seconds": round(result.seconds, 3),
        },
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def explain_table(result: CompressResult) -> str:
    """One line per unit: path:lines kind symbol tokens score decision (for --explain on stderr)."""
    lines = ["path:lines\tkind\tsymbol\ttokens\tkept\tscore\tby\tdecision"]
    for u in result.units:
        score = "-" if u.score is None else f"{u.score:.3f}"
        lines.append(f"{u.path}:{u.start_line}-{u.end_line}\t{u.kind}\t{u.symbol or '-'}\t{u.tokens}\t{u.kept_tokens}\t{score}\t{u.scored_by}\t{u.decision}")
    return "\n".join(lines) + "\n"
