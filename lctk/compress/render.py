"""Render a compression result as text, xml, markdown or json; same result, same bytes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from lctk.compress.model import CompressedFile, CompressResult, DiffSection
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


def diff_title(diff: DiffSection) -> str:
    """The diff section's heading: "git diff HEAD (2 files changed, +5 -1)"."""
    n = len(diff.files)
    added, removed = sum(f.added for f in diff.files), sum(f.removed for f in diff.files)
    return f"git diff {diff.ref} ({n} file{'' if n == 1 else 's'} changed, +{added} -{removed})"


def diff_body(diff: DiffSection) -> str:
    """The diff as shown, with a marker line when it was cut to fit the budget."""
    if not diff.truncated:
        return diff.text
    return diff.text + f"[… diff truncated: {diff.lines_shown} of {diff.lines_total} lines shown; the budget holds no more]\n"


def _fenced(body: str, info: str = "") -> str:
    """A Markdown code block around `body` (which ends with a newline); a longer fence when it holds one."""
    fence = "````" if "```" in body else "```"
    return f"{fence}{info}\n{body}{fence}\n"


def render_header(tree: str | None, diff: DiffSection | None, output_format: str) -> str:
    """The sections ahead of the code: the directory tree (`tree`, rendered lines) and the diff."""
    parts = []
    if tree is not None:
        if output_format == "xml":
            parts.append(f"<directory_tree>\n{escape(tree)}</directory_tree>\n")
        elif output_format == "markdown":
            parts.append(f"## Directory tree\n\n{_fenced(tree)}\n")
        else:
            parts.append(f"==> directory tree <==\n{tree}\n")
    if diff is not None and diff.lines_total:
        body = diff_body(diff)
        if output_format == "xml":
            attributes = f"ref={quoteattr(diff.ref)} files=\"{len(diff.files)}\" truncated=\"{str(diff.truncated).lower()}\""
            parts.append(f"<diff {attributes}>\n{escape(body)}</diff>\n")
        elif output_format == "markdown":
            parts.append(f"## {diff_title(diff)}\n\n{_fenced(body, 'diff')}\n")
        else:
            parts.append(f"==> {diff_title(diff)} <==\n{body}\n")
    return "".join(parts)


def render_context(
    files: tuple[CompressedFile, ...], output_format: str, tree: str | None = None, diff: DiffSection | None = None,
) -> str:
    """The compressed context itself (what is counted against the budget), the tree and diff first."""
    kept = [f for f in files if f.segments]
    header = render_header(tree, diff, output_format)
    if output_format == "xml":
        parts = ["<context>\n", header]
        for f in kept:
            parts.append(f"<file path={quoteattr(f.path)} lines={quoteattr(_ranges(f))}>\n{escape(file_body(f))}</file>\n")
        parts.append("</context>\n")
        return "".join(parts)
    if output_format == "markdown":
        parts = [header]
        for f in kept:
            lang = _FENCE_LANGUAGE.get(f.language, f.language or "")
            parts.append(f"## {f.path} (lines {_ranges(f)} of {f.total_lines})\n\n{_fenced(file_body(f), lang)}\n")
        return "".join(parts)
    parts = [header]
    for f in kept:  # text, also the `text` field of json
        parts.append(f"==> {f.path} (lines {_ranges(f)} of {f.total_lines}) <==\n{file_body(f)}\n")
    return "".join(parts)


def budgeted_context(
    files: tuple[CompressedFile, ...], output_format: str, tree: str | None = None, diff: DiffSection | None = None,
) -> str:
    """The part of the output the budget counts: the context itself (json carries it as `text`)."""
    return render_context(files, "text" if output_format == "json" else output_format, tree, diff)


def render(result: CompressResult, skipped: Sequence = (), repository: dict | None = None) -> str:
    """The full stdout payload for the result's format (json also lists skipped files).

    `repository` ({url, ref, commit}) names the remote repository the inputs came from (json only).
    """
    if result.output_format != "json":
        return render_context(result.files, result.output_format, result.tree, result.diff)
    payload = {
        "text": budgeted_context(result.files, "json", result.tree, result.diff),
        "query": result.query,
        "model": result.model,
        "tokenizer": result.tokenizer,
        "backend": result.backend,
        "tokens": {"budget": result.budget_tokens, "input": result.input_tokens, "output": result.output_tokens},
        "ratio": round(result.ratio, 3),
        "files": [{"path": f.path, "language": f.language, "lines": f.total_lines, "kept": _ranges(f)} for f in result.files],
        "units": [dataclasses.asdict(u) for u in result.units],
        "skipped": [{"path": item.display_path, "reason": item.reason} for item in skipped],
        "redactions": [{"path": r.path, "line": r.line, "kind": r.kind} for r in result.redactions],
        "tree": result.tree,
        "diff": _diff_json(result.diff),
        "repository": repository,
        "scoring": {
            "lm_sequences": result.lm_sequences_scored, "cache_hits": result.lm_cache_hits,
            "lm_tokens": result.lm_tokens_scored, "seconds": round(result.seconds, 3),
        },
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def _diff_json(diff: DiffSection | None) -> dict | None:
    if diff is None:
        return None
    return {
        "ref": diff.ref,
        "files": [{"path": f.path, "old_path": f.old_path, "status": f.status, "added": f.added, "removed": f.removed,
                   "binary": f.binary} for f in diff.files],
        "added": sum(f.added for f in diff.files), "removed": sum(f.removed for f in diff.files),
        "lines": diff.lines_total, "lines_shown": diff.lines_shown, "truncated": diff.truncated,
        "query_from_diff": diff.query_from_diff,
    }


def explain_table(result: CompressResult) -> str:
    """One line per unit: path:lines kind symbol tokens score decision (for --explain on stderr)."""
    lines = ["path:lines\tkind\tsymbol\ttokens\tkept\tscore\tby\tdecision"]
    for u in result.units:
        score = "-" if u.score is None else f"{u.score:.3f}"
        lines.append(f"{u.path}:{u.start_line}-{u.end_line}\t{u.kind}\t{u.symbol or '-'}\t{u.tokens}\t{u.kept_tokens}\t{score}\t{u.scored_by}\t{u.decision}")
    return "\n".join(lines) + "\n"


def summary_line(result: CompressResult, files: int) -> str:
    """One line on what a compress run did: tokens in and out, budget, ratio, files, LM work."""
    return (f"{result.input_tokens:,} -> {result.output_tokens:,} tokens (budget {result.budget_tokens:,}, "
            f"{result.ratio:.1f}x) from {files} files; scored {result.lm_sequences_scored} chunks, "
            f"{result.lm_cache_hits} from cache")
