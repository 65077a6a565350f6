"""Render search hits: grep-like lines, code with context, file lists, JSON and JSON Lines.

JSON Lines: one object per hit with keys rank, path, start_line, end_line, score, symbol, kind,
language, dense, lexical, block_start_line, block_end_line (and code, with --context: start_line,
lines, stale, and redacted — [{line, kind}] for secrets replaced by [REDACTED:kind] in those lines).
JSON: {"query", "mode", "root", "index": {"files", "units", "blocks", "model"}, "results": [...]}, plus
"repository": {"url", "ref", "commit"} when PATH was a repository URL (paths are then from its root).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from lctk.sources.chunking import text_lines


def render_hits(hits: Sequence, opened, query: str, mode: str, fmt: str, context: int | None, files_only: bool, k: int,
                redact: bool = True, repository: dict | None = None) -> str:
    if files_only:
        seen: list[str] = []
        for hit in hits:
            if hit.path not in seen:
                seen.append(hit.path)
        seen = seen[:k]
        if fmt == "text":
            return "".join(f"{path}\n" for path in seen)
        rows: list[dict] = [{"rank": i + 1, "path": path} for i, path in enumerate(seen)]
        return _json(rows, opened, query, mode, fmt, repository)
    rows = []
    for hit in hits:
        row = asdict(hit)
        if context is not None:
            row["code"] = _code(opened, hit, context, redact)
        rows.append(row)
    if fmt != "text":
        return _json(rows, opened, query, mode, fmt, repository)
    out = []
    for row in rows:
        symbol = row["symbol"] or ""
        out.append(f"{row['path']}:{row['start_line']}-{row['end_line']}  {row['score']:.3f}  {symbol}".rstrip() + "\n")
        if context is not None:
            out.append(_numbered(row["code"]) + "\n")
    return "".join(out)


def _json(rows, opened, query, mode, fmt, repository: dict | None = None) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    data = opened.data
    payload = {
        "query": query, "mode": mode, "root": str(opened.target.root),
        "index": {"files": len(data.files), "units": data.n_units, "blocks": len(data.block_lines), "model": data.meta.get("model")},
        "results": rows,
    }
    if repository is not None:
        payload["repository"] = repository
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def _code(opened, hit, context: int, redact: bool = True) -> dict:
    """The best block's lines with `context` lines around it, from the file as indexed.

    Secrets in those lines are replaced (unless `redact` is off) and listed under "redacted".
    """
    searcher = opened.searcher
    file_index = searcher.file_index_of(hit.path)
    text = None if file_index is None else searcher.file_text(file_index) if redact else searcher.raw_file_text(file_index)
    if text is None:
        return {"start_line": hit.block_start_line, "lines": [], "stale": True, "redacted": []}
    lines = text_lines(text)
    first = max(hit.block_start_line - context, 1)
    last = min(hit.block_end_line + context, len(lines))
    shown = [{"line": r.line, "kind": r.kind} for r in searcher.redactions(file_index, first, last)] if redact else []
    return {"start_line": first, "lines": lines[first - 1 : last], "stale": False, "redacted": shown}


def _numbered(code: dict) -> str:
    if code.get("stale"):
        return "    (file changed since it was indexed; run `lctk index`)\n"
    width = len(str(code["start_line"] + len(code["lines"])))
    return "".join(f"  {code['start_line'] + i:>{width}} | {line}\n" for i, line in enumerate(code["lines"]))
