"""Benchmark `compress` on pinned real PyPI packages: needle retention, dependency retention,
budget violations, achieved ratios and timings, against BM25, tail truncation and random baselines.

Usage: python bench/compress.py [--needles-per-package 15] [--dependency-tasks 40] [--report]
Per-task results are appended to bench/.data/compress-results.jsonl, so an interrupted run resumes;
--report only prints the tables from what is there; a full run writes its section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import write_section  # noqa: E402

from lctk.compress.api import compress  # noqa: E402
from lctk.compress.cache import ScoreCache  # noqa: E402
from lctk.compress.model import SourceText  # noqa: E402
from lctk.compress.render import render_context  # noqa: E402
from lctk.sources.chunking import chunk_text, text_lines  # noqa: E402

DATA = ROOT / "bench" / ".data"
RESULTS = DATA / "compress-results.jsonl"
PACKAGES = {  # pinned sdists: name -> (requirement, package directory inside the sdist)
    "requests": ("requests==2.32.3", "requests-2.32.3/src/requests"),
    "packaging": ("packaging==24.1", "packaging-24.1/src/packaging"),
    "toolz": ("toolz==1.0.0", "toolz-1.0.0/toolz"),
    "attrs": ("attrs==24.2.0", "attrs-24.2.0/src/attr"),
}
RATIOS = (2, 4, 8)
CANDIDATES = 32  # LM-scored chunks per task (the CLI default is 64; halved to fit the CPU budget)
METHODS = ("lctk", "lctk --no-fine", "bm25", "tail", "random")
MIN_PREFIX_TOKENS = 4000
MAX_FUNCTION_LINES = 50


def fetch(requirement: str, inner: str) -> Path:
    """Download and unpack a pinned sdist once; return its package directory."""
    target = DATA / inner
    if target.is_dir():
        return target
    DATA.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", requirement, "-d", str(DATA)], check=True)
    name, version = requirement.split("==")
    archive = next(DATA.glob(f"{name.replace('-', '?')}-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(DATA, filter="data")
    return target


def package_sources(root: Path, package: str) -> list[SourceText]:
    files = sorted(p for p in root.rglob("*.py") if "tests" not in p.parts)
    return [SourceText(f"{package}/{p.relative_to(root).as_posix()}", "python", p.read_text(encoding="utf-8")) for p in files]


def kept_lines(result, path: str) -> set[int]:
    for f in result.files:
        if f.path == path:
            return {n for s in f.segments for n in range(s.start_line, s.end_line + 1)}
    return set()


# --- tasks ---------------------------------------------------------------------------------
def needle_tasks(package: str, sources: list[SourceText], count: int) -> list[dict]:
    """Functions with a docstring summary; the docstring is removed from the context."""
    found = []
    for index, source in enumerate(sources):
        for node in ast.walk(ast.parse(source.text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                summary = doc.strip().split("\n")[0].strip() if doc else ""
                if len(summary.split()) >= 5 and len(node.body) > 1:
                    found.append((index, node.lineno, node.body[0].lineno, node.body[0].end_lineno, summary, node.name))
    random.Random(f"needle-{package}").shuffle(found)
    tasks = []
    for index, def_line, doc_start, doc_end, summary, name in sorted(found[:count], key=lambda t: (t[0], t[1])):
        lines = sources[index].text.split("\n")
        edited = "\n".join(lines[: doc_start - 1] + lines[doc_end:])  # docstring lines removed
        context = [s if i != index else SourceText(s.path, s.language, edited) for i, s in enumerate(sources)]
        tasks.append({"id": f"needle:{sources[index].path}:{def_line}", "kind": "needle", "package": package, "query": summary,
                      "sources": context, "path": sources[index].path, "lines": [def_line], "name": name})
    return tasks


def dependency_tasks(package: str, sources: list[SourceText], lm, count: int) -> list[dict]:
    """Functions late in big files that use definitions from the prefix before them."""
    found = []
    for source in sources:
        tree = ast.parse(source.text)
        lines = source.text.split("\n")
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.end_lineno - node.lineno >= MAX_FUNCTION_LINES:
                continue
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            prefix = "\n".join(lines[: start - 1]) + "\n"
            if len(prefix) < MIN_PREFIX_TOKENS * 2.5 or lm.count_tokens(prefix) < MIN_PREFIX_TOKENS:
                continue
            defined = {}
            for chunk in chunk_text(prefix, "python"):
                if chunk.name and chunk.kind in ("function", "method", "class", "type"):
                    defined.setdefault(chunk.name.rsplit(".", 1)[-1], chunk.start_line + chunk.signature_lines - 1)
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            targets = sorted({defined[name] for name in used if name in defined and name != node.name})
            if targets:
                query = "\n".join(lines[start - 1 : min(start + 2, node.end_lineno)])
                found.append({"id": f"dependency:{source.path}:{node.lineno}", "kind": "dependency", "package": package,
                              "query": query, "sources": [SourceText(source.path, "python", prefix)], "path": source.path,
                              "lines": targets, "name": node.name})
    random.Random(f"dependency-{package}").shuffle(found)
    return sorted(found[:count], key=lambda t: t["id"])


# --- methods -------------------------------------------------------------------------------
def run_method(method: str, task: dict, lm, cache, budget: int) -> tuple[set[int], int]:
    """Lines of the task's file kept by a method, and the output tokens it used."""
    sources = task["sources"]
    if method in ("lctk", "lctk --no-fine", "bm25"):
        result = compress(
            sources, lm, query=task["query"], budget_tokens=budget, fine=(method == "lctk"),
            candidates=0 if method == "bm25" else CANDIDATES, cache=cache,
        )
        return kept_lines(result, task["path"]), lm.count_tokens(render_context(result.files, "text"))
    if method == "tail":
        keep, used = set(), 0
        for source in reversed(sources):
            lines = source.text.split("\n")
            for number in range(len(lines), 0, -1):
                cost = lm.count_tokens(lines[number - 1] + "\n")
                if used + cost > budget:
                    return keep, used
                used += cost
                if source.path == task["path"]:
                    keep.add(number)
        return keep, used
    units = [(s.path, c) for s in sources for c in chunk_text(s.text, s.language)]
    random.Random(task["id"]).shuffle(units)
    keep, used = set(), 0
    for path, chunk in units:
        cost = lm.count_tokens(chunk.text)
        if used + cost <= budget:
            used += cost
            if path == task["path"]:
                keep.update(range(chunk.start_line, chunk.end_line + 1))
    return keep, used


def evaluate(task: dict, lm, cache) -> list[dict]:
    whole = lm.count_tokens(render_context(_whole_files(task["sources"]), "text"))
    rows = []
    for ratio in RATIOS:
        budget = whole // ratio
        for method in METHODS:
            started = time.perf_counter()
            keep, used = run_method(method, task, lm, cache, budget)
            hit = [line in keep for line in task["lines"]]
            rows.append({"id": task["id"], "kind": task["kind"], "package": task["package"], "method": method, "ratio": ratio,
                         "retention": float(np.mean(hit)), "budget": budget, "output": used, "input": whole,
                         "violation": used > budget, "seconds": time.perf_counter() - started})
    return rows


def _whole_files(sources):
    from lctk.compress.model import CompressedFile, Segment

    out = []
    for s in sources:
        n = len(text_lines(s.text))
        out.append(CompressedFile(s.path, s.language, n, (Segment(1, n, s.text),)))
    return tuple(out)


def cascade_recall(tasks: list[dict]) -> dict[int, float]:
    """Share of needle tasks whose function is among the BM25 top-K chunks (K = 16, 32, 64)."""
    from lctk.retrieval.lexical import BM25, identifier_tokens

    recall = defaultdict(list)
    for task in tasks:
        if task["kind"] != "needle":
            continue
        chunks = [(s.path, c) for s in task["sources"] for c in chunk_text(s.text, s.language)]
        scores = BM25([identifier_tokens(p + " " + c.text) for p, c in chunks]).scores(identifier_tokens(task["query"]))
        order = sorted(range(len(chunks)), key=lambda i: (-scores[i], chunks[i][0], chunks[i][1].start_line))
        target = next(i for i, (p, c) in enumerate(chunks) if p == task["path"] and c.start_line <= task["lines"][0] <= c.end_line)
        rank = order.index(target)
        for k in (16, 32, 64):
            recall[k].append(rank < k)
    return {k: float(np.mean(v)) for k, v in recall.items()}


def timings(task: dict, lm) -> dict:
    """Cold run (empty cache), warm re-run with another budget, LM scoring vs a bare forward pass."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = ScoreCache(Path(tmp) / "scores.sqlite")
        whole = lm.count_tokens(render_context(_whole_files(task["sources"]), "text"))
        started = time.perf_counter()
        cold = compress(task["sources"], lm, query=task["query"], budget_tokens=whole // 4, candidates=CANDIDATES, cache=cache)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        compress(task["sources"], lm, query=task["query"], budget_tokens=whole // 8, candidates=CANDIDATES, cache=cache)
        warm_s = time.perf_counter() - started
    ids = lm.tokenize(task["sources"][0].text)[:2000]
    started = time.perf_counter()
    lm.token_logprobs(ids)
    scoring_tps = len(ids) / (time.perf_counter() - started)
    lm._llm.reset()
    started = time.perf_counter()
    lm._llm.eval(ids)  # bare forward pass: logits of the last token only
    bare_tps = len(ids) / (time.perf_counter() - started)
    lm._llm.reset()
    return {"cold_s": cold_s, "warm_s": warm_s, "cold_lm_tokens": cold.lm_tokens_scored, "scoring_tps": scoring_tps, "bare_tps": bare_tps}


def report(rows: list[dict], recall: dict, timing: dict | None) -> str:
    lines = []
    by = defaultdict(list)
    for r in rows:
        by[(r["kind"], r["method"], r["ratio"])].append(r)
    tasks = {kind: len({r["id"] for r in rows if r["kind"] == kind}) for kind in ("needle", "dependency")}
    packages = sorted({r["package"] for r in rows})
    lines.append(f"Packages: {', '.join(PACKAGES[p][0] for p in packages)}. Tasks: {tasks['needle']} needle, {tasks['dependency']} dependency. "
                 f"LM: default scoring model on its default backend, {CANDIDATES} LM-scored candidates per task.")
    for kind, title in (("needle", "Needle retention (function found by its docstring summary; docstring removed)"),
                        ("dependency", "Dependency retention (share of in-file definitions a function uses that survive compressing the prefix)")):
        lines += ["", f"### {title}", "", "| method | " + " | ".join(f"{r}x" for r in RATIOS) + " | budget violations | mean achieved ratio |", "|---|" + "---|" * (len(RATIOS) + 2)]
        for method in METHODS:
            cells, violations, achieved = [], 0, []
            for ratio in RATIOS:
                group = by[(kind, method, ratio)]
                cells.append(f"{100 * np.mean([g['retention'] for g in group]):.1f}%" if group else "-")
                violations += sum(g["violation"] for g in group)
                achieved += [g["input"] / max(g["output"], 1) for g in group]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {violations} | {np.mean(achieved):.2f}x |" if achieved else f"| {method} | - |")
        lines.append("| whole file (no compression) | " + " | ".join("100.0%" for _ in RATIOS) + " | (ignores the budget) | 1.00x |")
    lines += ["", "### Cascade recall (needle chunk among the BM25 top-K that the LM scores)", "", "| K | recall |", "|---|---|"]
    lines += [f"| {k} | {100 * v:.1f}% |" for k, v in sorted(recall.items())]
    if timing:
        lines += ["", "### Time (one needle task, whole package as context)", "",
                  f"- cold run (empty score cache, 4x): {timing['cold_s']:.1f} s, {timing['cold_lm_tokens']:,} LM tokens scored",
                  f"- warm re-run with a new budget (8x): {timing['warm_s']:.2f} s (no LM call)",
                  f"- LM log-prob scoring {timing['scoring_tps']:.0f} tok/s vs a bare forward pass {timing['bare_tps']:.0f} tok/s of the same model and tokens"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--needles-per-package", type=int, default=15)
    parser.add_argument("--dependency-tasks", type=int, default=40)
    parser.add_argument("--report", action="store_true", help="only print the tables from saved results")
    args = parser.parse_args()
    from lctk.models.loader import load_language_model

    lm, _ = load_language_model("smollm2-135m", "score", "auto")
    tasks = []
    per_package_dependency = max(1, args.dependency_tasks // len(PACKAGES))
    for package, (requirement, inner) in PACKAGES.items():
        sources = package_sources(fetch(requirement, inner), package)
        tasks += needle_tasks(package, sources, args.needles_per_package)
        tasks += dependency_tasks(package, sources, lm, per_package_dependency)
    done = {}
    if RESULTS.exists():
        for line in RESULTS.read_text().splitlines():
            row = json.loads(line)
            done.setdefault(row["id"], []).append(row)
    if not args.report:
        cache = ScoreCache(DATA / "scores.sqlite")
        for number, task in enumerate(tasks, 1):
            if task["id"] in done:
                continue
            started = time.perf_counter()
            rows = evaluate(task, lm, cache)
            with open(RESULTS, "a") as out:
                out.write("".join(json.dumps(r) + "\n" for r in rows))
            done[task["id"]] = rows
            print(f"[{number}/{len(tasks)}] {task['id']} {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    rows = [r for task in tasks for r in done.get(task["id"], [])]
    timing = None if args.report else timings(next(t for t in tasks if t["kind"] == "needle"), lm)
    table = report(rows, cascade_recall(tasks), timing)
    print(table)
    if not args.report:  # --report has no timings: never let it overwrite a full section
        write_section(ROOT / "BENCHMARKS.md", "compress", "## compress — `python bench/compress.py`\n\n" + table)


if __name__ == "__main__":
    main()
