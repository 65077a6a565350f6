"""`lctk eval compress`: does compression keep what a task needs? Two protocols on Python code.

- needle: a function with a docstring summary (5+ words) is the target; its docstring is removed
  from the context and the summary is the query. Retention = the function's `def` line survives.
- dependency: a short function late in a big file (>= 4,000 tokens before it); the context is the
  file up to that function and the query is its first lines. Retention = share of the in-file
  definitions it uses whose signature lines survive compressing that prefix.

Each task is compressed at budgets of (whole context / ratio) by lctk (hybrid candidates, AMI,
coarse + fine), lctk without fine selection, the BM25 cascade (BM25 candidates, AMI), retrieval
order alone (hybrid, plain dense, BM25), tail truncation and random chunk selection, so the
methods are compared on the same tasks in the same run.
"""

from __future__ import annotations

import ast
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from lctk.sources.chunking import chunk_text, text_lines
from lctk.sources.text import SourceText

METHODS = ("lctk", "lctk --no-fine", "bm25+ami", "hybrid", "dense", "bm25", "tail", "random")
# ranked by compress: lctk = hybrid candidates + AMI (+ fine); bm25+ami = the BM25 cascade lctk ran
# before the hybrid retriever; hybrid / dense / bm25 = retrieval order alone, no language model
RANKED = ("lctk", "lctk --no-fine", "bm25+ami", "hybrid", "dense", "bm25")
KINDS = ("needle", "dependency")
MIN_PREFIX_TOKENS = 4000
MAX_FUNCTION_LINES = 50


@dataclass(frozen=True)
class RetentionTask:
    id: str
    kind: str  # needle | dependency
    query: str
    sources: tuple[SourceText, ...]  # the context to compress
    path: str  # the file whose lines are checked
    lines: tuple[int, ...]  # 1-based lines that should survive
    name: str  # the function the task is about


def _parse(source: SourceText):
    try:
        return ast.parse(source.text)
    except (SyntaxError, ValueError, RecursionError):
        return None


def needle_tasks(sources: Sequence[SourceText], count: int, seed: int | str = 0) -> list[RetentionTask]:
    """Up to `count` needle tasks (a fixed random choice for the seed), in file order."""
    found = []
    for index, source in enumerate(sources):
        tree = _parse(source) if source.language == "python" else None
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                summary = doc.strip().split("\n")[0].strip() if doc else ""
                if len(summary.split()) >= 5 and len(node.body) > 1:
                    found.append((index, node.lineno, node.body[0].lineno, node.body[0].end_lineno, summary, node.name))
    random.Random(f"needle-{seed}").shuffle(found)
    tasks = []
    for index, def_line, doc_start, doc_end, summary, name in sorted(found[:count], key=lambda t: (t[0], t[1])):
        lines = sources[index].text.split("\n")
        edited = "\n".join(lines[: doc_start - 1] + lines[doc_end:])  # the docstring's lines removed
        context = tuple(s if i != index else SourceText(s.path, s.language, edited) for i, s in enumerate(sources))
        tasks.append(RetentionTask(f"needle:{sources[index].path}:{def_line}", "needle", summary, context,
                                   sources[index].path, (def_line,), name))
    return tasks


def dependency_tasks(sources: Sequence[SourceText], count_tokens: Callable[[str], int], count: int,
                     seed: int | str = 0) -> list[RetentionTask]:
    """Up to `count` dependency tasks (a fixed random choice for the seed), ordered by id."""
    found = []
    for source in sources:
        tree = _parse(source) if source.language == "python" else None
        if tree is None:
            continue
        lines = source.text.split("\n")
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or cast(int, node.end_lineno) - node.lineno >= MAX_FUNCTION_LINES:
                continue
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            prefix = "\n".join(lines[: start - 1]) + "\n"
            if len(prefix) < MIN_PREFIX_TOKENS * 2.5 or count_tokens(prefix) < MIN_PREFIX_TOKENS:
                continue
            defined: dict[str, int] = {}
            for chunk in chunk_text(prefix, "python"):
                if chunk.name and chunk.kind in ("function", "method", "class", "type"):
                    defined.setdefault(chunk.name.rsplit(".", 1)[-1], chunk.start_line + chunk.signature_lines - 1)
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
                n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            targets = tuple(sorted({defined[name] for name in used if name in defined and name != node.name}))
            if targets:
                query = "\n".join(lines[start - 1 : min(start + 2, cast(int, node.end_lineno))])  # set by ast.parse
                found.append(RetentionTask(f"dependency:{source.path}:{node.lineno}", "dependency", query,
                                           (SourceText(source.path, "python", prefix),), source.path, targets, node.name))
    random.Random(f"dependency-{seed}").shuffle(found)
    return sorted(found[:count], key=lambda t: t.id)


def whole_files(sources: Sequence[SourceText]):
    """The sources as uncompressed output files (to measure the whole context in output tokens)."""
    from lctk.compress.model import CompressedFile, Segment

    out = []
    for s in sources:
        n = len(text_lines(s.text))
        out.append(CompressedFile(s.path, s.language, n, (Segment(1, n, s.text),)))
    return tuple(out)


def kept_lines(result, path: str) -> set[int]:
    for f in result.files:
        if f.path == path:
            return {n for s in f.segments for n in range(s.start_line, s.end_line + 1)}
    return set()


def run_method(method: str, task: RetentionTask, lm, cache, budget: int, candidates: int, retriever=None) -> tuple[set[int], int]:
    """Lines of the task's file that a method keeps within `budget`, and the output tokens it used."""
    from lctk.compress.api import compress
    from lctk.compress.render import render_context

    sources = task.sources
    if method in RANKED:
        from lctk.retrieval.candidates import CandidateRetriever

        if method in ("dense", "hybrid", "lctk", "lctk --no-fine") and retriever is None:
            raise ValueError(f"method {method!r} needs the candidate retriever")
        chosen = {"bm25": None, "bm25+ami": None, "dense": None if retriever is None else CandidateRetriever(
            None, retriever.reranker or retriever.embedder, retriever.cache)}.get(method, retriever)
        scored = method in ("lctk", "lctk --no-fine", "bm25+ami")
        result = compress(sources, lm, query=task.query, budget_tokens=budget, fine=method in ("lctk", "bm25+ami"),
                          candidates=candidates if scored else 0, cache=cache, retriever=chosen)
        return kept_lines(result, task.path), lm.count_tokens(render_context(result.files, "text"))
    if method == "tail":
        keep: set[int] = set()
        used = 0
        for source in reversed(sources):
            lines = source.text.split("\n")
            for number in range(len(lines), 0, -1):
                cost = lm.count_tokens(lines[number - 1] + "\n")
                if used + cost > budget:
                    return keep, used
                used += cost
                if source.path == task.path:
                    keep.add(number)
        return keep, used
    if method != "random":
        raise ValueError(f"unknown method {method!r}")
    units = [(s.path, c) for s in sources for c in chunk_text(s.text, s.language)]
    random.Random(task.id).shuffle(units)
    keep, used = set(), 0
    for path, chunk in units:
        cost = lm.count_tokens(chunk.text)
        if used + cost <= budget:
            used += cost
            if path == task.path:
                keep.update(range(chunk.start_line, chunk.end_line + 1))
    return keep, used


def evaluate_task(task: RetentionTask, lm, cache, ratios: Sequence[float], methods: Sequence[str] = METHODS,
                  candidates: int = 32, retriever=None) -> list[dict]:
    """One row per (method, ratio): retention, budget, output and input tokens, budget violation, seconds."""
    from lctk.compress.render import render_context

    whole = lm.count_tokens(render_context(whole_files(task.sources), "text"))
    rows = []
    for ratio in ratios:
        budget = int(whole // ratio)
        for method in methods:
            started = time.perf_counter()
            keep, used = run_method(method, task, lm, cache, budget, candidates, retriever)
            hits = [line in keep for line in task.lines]
            rows.append({"id": task.id, "kind": task.kind, "method": method, "ratio": ratio,
                         "retention": sum(hits) / len(hits), "budget": budget, "output": used, "input": whole,
                         "violation": used > budget, "seconds": round(time.perf_counter() - started, 3)})
    return rows


def summarize(rows: Sequence[dict]) -> dict:
    """{kind: {method: {ratio: mean retention}}} plus violation counts and mean achieved ratios."""
    groups: dict = defaultdict(list)
    for row in rows:
        groups[(row["kind"], row["method"], row["ratio"])].append(row)
    out: dict = {}
    for (kind, method, ratio), group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][2])):
        entry = out.setdefault(kind, {}).setdefault(method, {"retention": {}, "violations": 0, "achieved": []})
        entry["retention"][ratio] = sum(g["retention"] for g in group) / len(group)
        entry["violations"] += sum(g["violation"] for g in group)
        entry["achieved"] += [g["input"] / max(g["output"], 1) for g in group]
    for kind in out.values():
        for entry in kind.values():
            entry["achieved"] = sum(entry["achieved"]) / len(entry["achieved"]) if entry["achieved"] else 0.0
    return out
