"""`lctk eval search`: how well search finds code in the user's own repository.

Two task sources:
- docstrings: every Python function whose docstring opens with a summary of 4+ words becomes a
  task: the summary (with the function's own name masked) is the query, the function is the
  target. The repository's Python files are copied with every docstring removed, so the answer
  cannot be read off the target; all functions of the copy are candidates.
- annotations: semble-format queries with relevant files or line ranges (`annotations.py`),
  searched in the repository itself. MRR and R@k grade primary targets 2 and secondary 1;
  NDCG@10 is semble's (`semble_ndcg`), so it compares with semble's published table.

Each task is searched in lexical, dense and hybrid modes over the same index.

semble's protocol (MinishLab/semble, benchmarks/run_benchmark.py): take the top 10 results; a
target (relevant or secondary alike) counts once, at the rank of the first result that covers it:
a result whose path is the target's or ends in "/" + the target's, overlapping its lines if it
has any. Binary NDCG@10 = DCG over those ranks / the DCG of min(10, targets the index holds)
ones; targets the index does not hold leave the ideal. A query whose targets the index holds none
of scores 0 and still counts in the mean, as in semble. Paths are matched as absolute paths under
the index root, as semble matches its chunks' paths, so annotations written relative to the
repository match an index of its package directory (semble's `benchmark_root`).
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from lctk.evaluation.annotations import Annotation, Target
from lctk.evaluation.metrics import binary_ndcg_at, ranking_report
from lctk.retrieval.ranking import Filters
from lctk.sources.walk import printable_path
from lctk.vocabulary import SearchMode, parse_choice

MODES = tuple(m.value for m in (SearchMode.lexical, SearchMode.dense, SearchMode.hybrid))  # report order
MIN_SUMMARY_WORDS = 4
SEMBLE_TOP_K = 10  # semble's benchmarks/run_benchmark.py scores the top 10 results (_DIRECT_TOP_K)

Location = tuple[str, int, int]  # (path, start_line, end_line) of a result; lines 1-based, inclusive


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
                drop.update(range(first.lineno - 1, cast(int, first.end_lineno)))  # set by ast.parse
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
    """Ranked ids and graded relevance: each hit counts for the first target it covers (`target_matches`)."""
    targets = [(t, 2.0) for t in annotation.relevant] + [(t, 1.0) for t in annotation.secondary]
    relevance = {f"t{i}": grade for i, (_, grade) in enumerate(targets)}
    ranked = []
    for hit in hits:
        match = next((f"t{i}" for i, (t, _) in enumerate(targets) if target_matches(t, hit.path, hit.start_line, hit.end_line)), None)
        ranked.append(match or f"{hit.path}:{hit.start_line}")
    return ranked, relevance


def path_matches(path: str, target_path: str) -> bool:
    """semble's rule: the same path, or one that ends in "/" + the target's."""
    return path == target_path or path.endswith("/" + target_path)


def target_matches(target: Target, path: str, start_line: int, end_line: int) -> bool:
    """Whether a result at these lines of `path` covers the target: its file, and its lines if it has any."""
    return path_matches(path, target.path) and _lines_overlap(target, start_line, end_line)


def _lines_overlap(target: Target, start_line: int, end_line: int) -> bool:
    return target.start_line is None or (start_line <= cast(int, target.end_line) and end_line >= target.start_line)  # both lines or neither


def count_indexed(targets: Sequence[Target], indexed: Mapping[str, Sequence[tuple[int, int]]]) -> int:
    """How many targets some indexed span covers (semble's `count_indexed_targets`); `indexed` maps path -> line spans."""
    return sum(
        any(_lines_overlap(t, start, end) for path, spans in indexed.items() if path_matches(path, t.path) for start, end in spans)
        for t in targets
    )


def semble_ndcg(targets: Sequence[Target], ranked: Sequence[Location], indexed_targets: int, k: int = SEMBLE_TOP_K) -> float:
    """semble's binary NDCG@k of one query: each target gains 1 at the rank of the first of the top k
    results that covers it; the ideal holds `indexed_targets` (see `count_indexed`); 0.0 when none."""
    ranks = []
    for target in targets:
        rank = next((i + 1 for i, (path, start, end) in enumerate(ranked[:k]) if target_matches(target, path, start, end)), None)
        if rank is not None:
            ranks.append(rank)
    return binary_ndcg_at(ranks, indexed_targets, k)


def indexed_spans(index, within: str = "") -> dict[str, list[tuple[int, int]]]:
    """Every unit's line span in a loaded index (`IndexData`), by absolute posix path; only under `within` if given."""
    root = index.root.as_posix().rstrip("/")
    spans: dict[str, list[tuple[int, int]]] = {}
    for file_index, (start, end) in zip(index.unit_file.tolist(), index.unit_lines.tolist()):
        path = index.files[file_index].path
        if within and path != within and not path.startswith(within + "/"):
            continue
        spans.setdefault(f"{root}/{printable_path(path)}", []).append((start, end))
    return spans


def evaluate_annotations(
    searcher,
    annotations: Sequence[Annotation],
    modes: Sequence[str] = MODES,
    *,
    within: str = "",
    k: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict]:
    """Search every annotated query in every mode; return {mode: report}.

    A report holds `ranking_report`'s MRR@k and R@1/5/10 (graded targets), semble's NDCG@10
    (`semble_ndcg`, averaged over all queries) and `no_target_in_index`: the queries that score
    0 because the index holds none of their targets. `within` (relative to the index root)
    limits the search and the index to a directory, as semble indexes only `benchmark_root`.
    """
    root = searcher.index.root.as_posix().rstrip("/")
    indexed = indexed_spans(searcher.index, within)
    present = [count_indexed(a.targets, indexed) for a in annotations]
    filters = Filters(paths=(within,) if within else ())
    runs = search_all(searcher, [a.query for a in annotations], modes, k=k, filters=filters, progress=progress)
    reports: dict[str, dict] = {}
    for mode, hit_lists in runs.items():
        absolute = [[replace(hit, path=f"{root}/{hit.path}") for hit in hits] for hits in hit_lists]
        report = ranking_report([annotation_relevance(a, hits) for a, hits in zip(annotations, absolute)], k)
        scores = [semble_ndcg(a.targets, [(h.path, h.start_line, h.end_line) for h in hits], n)
                  for a, hits, n in zip(annotations, absolute, present)]
        report["NDCG@10"] = sum(scores) / len(scores) if scores else 0.0
        report["no_target_in_index"] = sum(n == 0 for n in present)
        reports[mode] = report
    return reports


def evaluate(
    searcher,
    queries: Sequence[str],
    judge: Callable[[int, list], tuple[list[str], dict[str, float]]],
    modes: Sequence[str] = MODES,
    k: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict]:
    """Search every query in every mode; return {mode: ranking_report} (MRR@k, R@1/5/10, NDCG@10).

    `judge(query index, hits)` sees hit paths relative to the index root, whatever the searcher shows.
    """
    runs = search_all(searcher, queries, modes, k=k, progress=progress)
    return {mode: ranking_report([judge(i, hits) for i, hits in enumerate(runs[mode])], k) for mode in modes}


def search_all(
    searcher,
    queries: Sequence[str],
    modes: Sequence[str] = MODES,
    *,
    k: int = 100,
    filters: Filters = Filters(),
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[list]]:
    """Search every query in every mode: {mode: [hits per query]}, hit paths relative to the index root."""
    modes = [parse_choice(SearchMode, m, "mode").value for m in modes]
    runs: dict[str, list[list]] = {mode: [] for mode in modes}
    total, done = len(queries) * len(modes), 0
    prefix = getattr(searcher, "display_prefix", "")
    for query in queries:
        for mode in modes:
            runs[mode].append([_root_relative(hit, prefix) for hit in searcher.search(query, k=k, mode=mode, filters=filters)])
            done += 1
            if progress is not None:
                progress(done, total)
    return runs


def _root_relative(hit, prefix: str):
    return replace(hit, path=hit.path[len(prefix):]) if prefix and hit.path.startswith(prefix) else hit
