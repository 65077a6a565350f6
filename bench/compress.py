"""Benchmark `compress` on pinned real PyPI packages: needle retention, dependency retention,
budget violations, achieved ratios and timings, against BM25, tail truncation and random baselines.

Usage: python bench/compress.py [--needles-per-package 15] [--dependency-tasks 40] [--report]
Per-task results are appended to bench/.data/compress-results.jsonl, so an interrupted run resumes;
--report only prints the tables from what is there; a full run writes its section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
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
from lctk.evaluation.compress_eval import (  # noqa: E402  (the protocols live in lctk, shared with `lctk eval compress`)
    dependency_tasks,
    evaluate_task,
    needle_tasks,
    whole_files,
)
from lctk.sources.chunking import chunk_text  # noqa: E402

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


def cascade_recall(tasks: list[dict]) -> dict[int, float]:
    """Share of needle tasks whose function is among the BM25 top-K chunks (K = 16, 32, 64)."""
    from lctk.retrieval.lexical import BM25, identifier_tokens

    recall = defaultdict(list)
    for task in tasks:
        if task.kind != "needle":
            continue
        chunks = [(s.path, c) for s in task.sources for c in chunk_text(s.text, s.language)]
        scores = BM25([identifier_tokens(p + " " + c.text) for p, c in chunks]).scores(identifier_tokens(task.query))
        order = sorted(range(len(chunks)), key=lambda i: (-scores[i], chunks[i][0], chunks[i][1].start_line))
        target = next(i for i, (p, c) in enumerate(chunks) if p == task.path and c.start_line <= task.lines[0] <= c.end_line)
        rank = order.index(target)
        for k in (16, 32, 64):
            recall[k].append(rank < k)
    return {k: float(np.mean(v)) for k, v in recall.items()}


def timings(task: dict, lm) -> dict:
    """Cold run (empty cache), warm re-run with another budget, LM scoring vs a bare forward pass."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = ScoreCache(Path(tmp) / "scores.sqlite")
        whole = lm.count_tokens(render_context(whole_files(task.sources), "text"))
        started = time.perf_counter()
        cold = compress(task.sources, lm, query=task.query, budget_tokens=whole // 4, candidates=CANDIDATES, cache=cache)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        compress(task.sources, lm, query=task.query, budget_tokens=whole // 8, candidates=CANDIDATES, cache=cache)
        warm_s = time.perf_counter() - started
    ids = lm.tokenize(task.sources[0].text)[:2000]
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
    tasks, package_of = [], {}
    per_package_dependency = max(1, args.dependency_tasks // len(PACKAGES))
    for package, (requirement, inner) in PACKAGES.items():
        sources = package_sources(fetch(requirement, inner), package)
        made = needle_tasks(sources, args.needles_per_package, seed=package)
        made += dependency_tasks(sources, lm.count_tokens, per_package_dependency, seed=package)
        tasks += made
        package_of.update((task.id, package) for task in made)
    done = {}
    if RESULTS.exists():
        for line in RESULTS.read_text().splitlines():
            row = json.loads(line)
            done.setdefault(row["id"], []).append(row)
    if not args.report:
        cache = ScoreCache(DATA / "scores.sqlite")
        for number, task in enumerate(tasks, 1):
            if task.id in done:
                continue
            started = time.perf_counter()
            rows = [{**row, "package": package_of[task.id]} for row in evaluate_task(task, lm, cache, RATIOS, METHODS, CANDIDATES)]
            with open(RESULTS, "a") as out:
                out.write("".join(json.dumps(r) + "\n" for r in rows))
            done[task.id] = rows
            print(f"[{number}/{len(tasks)}] {task.id} {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    rows = [r for task in tasks for r in done.get(task.id, [])]
    timing = None if args.report else timings(next(t for t in tasks if t.kind == "needle"), lm)
    table = report(rows, cascade_recall(tasks), timing)
    print(table)
    if not args.report:  # --report has no timings: never let it overwrite a full section
        write_section(ROOT / "BENCHMARKS.md", "compress", "## compress — `python bench/compress.py`\n\n" + table)


if __name__ == "__main__":
    main()
