"""`lctk eval search`: how well search finds code in the user's own repository.

Two task sources:
- docstrings: every Python function whose docstring opens with a summary of 4+ words becomes a
  task: the summary (with the function's own name masked) is the query, the function is the
  target. The repository's Python files are copied with every docstring removed, so the answer
  cannot be read off the target; all functions of the copy are candidates.
- annotations: semble-format queries with relevant files or line ranges (`annotations.py`),
  searched in the repository itself; primary targets count as grade 2, secondary as grade 1.

Each task is searched in lexical, dense and hybrid modes over the same index.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lctk.errors import InputError
from lctk.evaluation.annotations import Annotation
from lctk.evaluation.metrics import ranking_report

MODES = ("lexical", "dense", "hybrid")
MIN_SUMMARY_WORDS = 4


@dataclass(frozen=True)
class DocstringTask:
    query: str
    path: str  # posix, relative to the corpus root
    symbol: str  # the function's name (methods: its bare name)
    line: int  # 1-based first line of the function in the corpus copy


def docstring_summary(node) -> str | None:
    """The first sentence of a docstring's first paragraph, if it has 4+ words."""
    doc = ast.get_docstring(node)
    if not doc:
        return None
    summary = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    summary = re.split(r"(?<=[.!?])\s", summary)[0].rstrip(".").strip()
    return summary if len(summary.split()) >= MIN_SUMMARY_WORDS else None


def mask_identifier(query: str, name: str) -> str:
    """Hide the target's own name in its query: `parse_header`, `parseHeader` and 'parse header'."""
    parts = [p for p in re.split(r"_+|(?<=[a-z0-9])(?=[A-Z])", name) if p]
    patterns = [re.escape(name)]
    if len(parts) > 1:
        patterns.append(r"[\s_-]*".join(re.escape(p) for p in parts))
    masked = re.sub(r"(?i)(?<![\w])(" + "|".join(patterns) + r")(?![\w])", "it", query)
    return re.sub(r"\s+", " ", masked).strip()


def build_docstring_corpus(files: Sequence[tuple[Path, str]], corpus: Path) -> list[DocstringTask]:
    """Copy Python files (absolute path, relative path) into `corpus` without docstrings; return the tasks."""
    tasks: list[DocstringTask] = []
    for source, relative in files:
        try:
            text = source.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError):
            continue  # not parseable Python: no tasks from it, and not a candidate either
        lines = text.split("\n")
        drop: set[int] = set()
        found: list[tuple[str, str, int]] = []
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) or not node.body:
                continue
            first = node.body[0]
            if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
                continue
            if len(node.body) > 1 or isinstance(node, ast.Module):  # a body of only a docstring keeps it (stays valid)
                drop.update(range(first.lineno - 1, first.end_lineno))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (summary := docstring_summary(node)):
                found.append((mask_identifier(summary, node.name), node.name, node.lineno))
        kept = [line for i, line in enumerate(lines) if i not in drop]
        target = corpus / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(kept), encoding="utf-8")
        for query, name, lineno in found:
            new_line = lineno - sum(1 for i in drop if i < lineno - 1)
            tasks.append(DocstringTask(query, relative, name, new_line))
    return tasks


def sample(tasks: Sequence, limit: int | None, seed: int) -> list:
    """A fixed random subset in the original order (all tasks when limit is None or larger)."""
    if limit is None or limit >= len(tasks):
        return list(tasks)
    chosen = sorted(random.Random(seed).sample(range(len(tasks)), limit))
    return [tasks[i] for i in chosen]


def docstring_relevance(task: DocstringTask, hits) -> tuple[list[str], dict[str, float]]:
    """Ranked ids and relevance for one docstring task: the hit naming the target function."""
    ranked = []
    for hit in hits:
        symbol = hit.symbol.rsplit(".", 1)[-1]
        ranked.append(f"{hit.path}:{symbol}:{hit.start_line}" if not (hit.path == task.path and symbol == task.symbol)
                      else "target")
    return ranked, {"target": 1.0}


def annotation_relevance(annotation: Annotation, hits) -> tuple[list[str], dict[str, float]]:
    """Ranked ids and graded relevance: each hit counts for the first target it overlaps."""
    targets = [(t, 2.0) for t in annotation.relevant] + [(t, 1.0) for t in annotation.secondary]
    relevance = {f"t{i}": grade for i, (_, grade) in enumerate(targets)}
    ranked = []
    for hit in hits:
        match = next((f"t{i}" for i, (t, _) in enumerate(targets) if t.overlaps(hit.path, hit.start_line, hit.end_line)), None)
        ranked.append(match or f"{hit.path}:{hit.start_line}")
    return ranked, relevance


def evaluate(
    searcher,
    queries: Sequence[str],
    judge: Callable[[int, tuple], tuple[list[str], dict[str, float]]],
    modes: Sequence[str] = MODES,
    k: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict]:
    """Search every query in every mode; return {mode: ranking_report} (MRR@k, R@1/5/10, NDCG@10).

    `judge(query index, hits)` sees hit paths relative to the index root, whatever the searcher shows.
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise InputError(f"unknown mode {unknown[0]!r}; use {', '.join(MODES)}")
    runs: dict[str, list] = {mode: [] for mode in modes}
    total, done = len(queries) * len(modes), 0
    prefix = getattr(searcher, "display_prefix", "")
    for index, query in enumerate(queries):
        for mode in modes:
            hits = [_root_relative(hit, prefix) for hit in searcher.search(query, k=k, mode=mode)]
            runs[mode].append(judge(index, hits))
            done += 1
            if progress is not None:
                progress(done, total)
    return {mode: ranking_report(runs[mode], k) for mode in modes}


def _root_relative(hit, prefix: str):
    return replace(hit, path=hit.path[len(prefix):]) if prefix and hit.path.startswith(prefix) else hit
