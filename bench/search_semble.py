"""Benchmark `search` on semble's annotated queries (semble's protocol) and its query speed,
before and after `lctk index --warm`, beside semble's published numbers.

Usage: python bench/search_semble.py [--no-speed]
Sources: the PyPI sdists of pydantic 2.11.7 and model2vec 0.8.2 (the earliest model2vec release
holding every annotated path), copied to a temporary directory so every index starts cold. The
speed part indexes pip 24.2 (411 files, ~131k lines). semble itself is not run here: its models
come from the Hugging Face hub, which this machine cannot reach; its numbers are its published ones
(../shared/data/semble/README.md). Writes the `search-semble` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from compress import fetch  # noqa: E402
from report import write_section  # noqa: E402

from lctk.evaluation.annotations import read_annotations  # noqa: E402
from lctk.evaluation.search_eval import evaluate_annotations  # noqa: E402
from lctk.retrieval.api import CodeIndex  # noqa: E402
from lctk.retrieval.ranking import COLD_BLOCKS  # noqa: E402

ANNOTATIONS = ROOT.parent / "shared" / "data" / "semble"
REPOS = {  # name -> (requirement, package directory inside the sdist, semble's published NDCG@10)
    "pydantic": ("pydantic==2.11.7", "pydantic-2.11.7/pydantic", 0.792),
    "model2vec": ("model2vec==0.8.2", "model2vec-0.8.2/model2vec", 0.693),
}
SPEED_REPO = ("pip==24.2", "pip-24.2/src/pip")
SPEED_QUERIES = (
    "install a package from a local directory", "show the metadata of an installed distribution",
    "check for a newer pip release", "build an isolated environment for a PEP 517 build",
    "parse a direct URL reference", "split a requirement into extras", "decide whether a link is yanked",
    "walk the files of an installed record", "choose the best candidate among versions",
    "print a deprecation warning", "handle keyboard interrupt during download",
    "authenticate against an index with keyring", "match a wheel filename tag",
    "compile python files after install", "expand environment variables in a requirements file",
)
LCTK = str(Path(sys.executable).with_name("lctk"))


class Timed:
    """A searcher wrapper that records each query's seconds (and can force search arguments: rerank, cold_blocks)."""

    def __init__(self, searcher, **forced):
        self.searcher, self.forced, self.times = searcher, forced, []
        self.index, self.display_prefix = searcher.index, searcher.display_prefix

    def search(self, query, **kwargs):
        kwargs.update(self.forced)
        started = time.perf_counter()
        hits = self.searcher.search(query, **kwargs)
        self.times.append(time.perf_counter() - started)
        return hits


def plain_dense(index, items, within: str, full) -> float:
    """Baseline: the full MiniLM over every unit's whole text (no blocks, no BM25), semble's NDCG@10."""
    import numpy as np

    from lctk.evaluation.search_eval import count_indexed, indexed_spans, semble_ndcg

    root = index.root.as_posix().rstrip("/")
    rows, texts, lines_of = [], [], {}
    for file_index, (start, end) in zip(index.unit_file.tolist(), index.unit_lines.tolist()):
        path = index.files[file_index].path
        if within and path != within and not path.startswith(within + "/"):
            continue
        if path not in lines_of:
            lines_of[path] = (index.root / path).read_text(encoding="utf-8", errors="replace").split("\n")
        rows.append((f"{root}/{path}", start, end))
        texts.append("\n".join(lines_of[path][start - 1 : end]))
    vectors = np.asarray(full.embed(texts), dtype=np.float32)
    queries = np.asarray(full.embed([a.query for a in items]), dtype=np.float32)
    spans = indexed_spans(index, within)
    scores = []
    for item, cos in zip(items, queries @ vectors.T):
        top = np.argsort(-cos, kind="stable")[:10]
        scores.append(semble_ndcg(item.targets, [rows[i] for i in top], count_indexed(item.targets, spans)))
    return sum(scores) / len(scores)


def p50_ms(times: list[float]) -> float:
    return round(1000 * statistics.median(times), 1)


def annotated(work: Path) -> list[dict]:
    rows = []
    for name, (requirement, inner, published) in REPOS.items():
        source = fetch(requirement, inner)
        target = work / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lctk"))
        started = time.perf_counter()
        opened = CodeIndex.open(target)
        index_s = time.perf_counter() - started
        items = read_annotations(ANNOTATIONS / f"{name}.json")
        row = {"repo": name, "queries": len(items), "semble": published, "index_s": round(index_s, 1)}
        static = Timed(opened.searcher, rerank=0)
        report = evaluate_annotations(static, items, ("lexical", "hybrid"), within=opened.target.within)
        row["lexical"], row["static"] = report["lexical"]["NDCG@10"], report["hybrid"]["NDCG@10"]
        row["plain_dense"] = plain_dense(opened.data, items, opened.target.within, opened.searcher.reranker)
        row["static_p50_ms"] = p50_ms(static.times[len(items):])  # the hybrid half
        cold = Timed(opened.searcher)
        row["default"] = evaluate_annotations(cold, items, ("hybrid",), within=opened.target.within)["hybrid"]["NDCG@10"]
        row["cold_p50_ms"] = p50_ms(cold.times)
        # the baseline: before cold queries had a budget, each embedded every candidate's blocks (a fresh copy: cold again)
        before = work / "unbounded" / name  # the same directory name: annotated paths start with it
        shutil.copytree(source, before, ignore=shutil.ignore_patterns(".lctk"))
        unbounded_index = CodeIndex.open(before)
        unbounded = Timed(unbounded_index.searcher, cold_blocks=None)
        row["unbounded"] = evaluate_annotations(unbounded, items, ("hybrid",), within=unbounded_index.target.within)["hybrid"]["NDCG@10"]
        row["unbounded_p50_ms"], row["unbounded_max_ms"] = p50_ms(unbounded.times), round(1000 * max(unbounded.times))
        row["cold_max_ms"] = round(1000 * max(cold.times))
        started = time.perf_counter()
        row["blocks"], _ = opened.searcher.warm()
        row["warm_s"] = round(time.perf_counter() - started, 1)
        fresh = CodeIndex.open(target, refresh=False)  # a new process's view: nothing in memory
        warm = Timed(fresh.searcher)
        row["warm_ndcg"] = evaluate_annotations(warm, items, ("hybrid",), within=fresh.target.within)["hybrid"]["NDCG@10"]
        row["warm_p50_ms"] = p50_ms(warm.times)
        row["warm_p95_ms"] = round(1000 * sorted(warm.times)[int(0.95 * (len(warm.times) - 1))], 1)
        rows.append(row)
        print(row, flush=True)
    return rows


def cli_seconds(*args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([LCTK, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"lctk {' '.join(args)} failed: {result.stderr.strip()}")
    return time.perf_counter() - started


def speed(work: Path) -> dict:
    source = fetch(*SPEED_REPO)
    target = work / "pip"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lctk"))
    out = {"files": sum(1 for _ in target.rglob("*.py")), "lines": sum(p.read_text(errors="replace").count("\n") for p in target.rglob("*.py"))}
    out["index_s"] = cli_seconds("index", str(target))
    out["cli_first_cold_s"] = cli_seconds("search", SPEED_QUERIES[0], str(target), "--no-refresh")
    out["cli_cold_p50_s"] = statistics.median(cli_seconds("search", q, str(target), "--no-refresh") for q in SPEED_QUERIES[1:4])
    out["cli_static_p50_s"] = statistics.median(cli_seconds("search", q, str(target), "--no-refresh", "--rerank", "0") for q in SPEED_QUERIES[1:4])
    out["warm_s"] = cli_seconds("index", str(target), "--warm")
    out["cli_first_warm_s"] = cli_seconds("search", SPEED_QUERIES[4], str(target), "--no-refresh")
    out["cli_warm_p50_s"] = statistics.median(cli_seconds("search", q, str(target), "--no-refresh") for q in SPEED_QUERIES[5:9])
    out["cli_warm_refresh_p50_s"] = statistics.median(cli_seconds("search", q, str(target)) for q in SPEED_QUERIES[5:9])
    searcher = CodeIndex.open(target, refresh=False).searcher
    timed = Timed(searcher)
    for query in SPEED_QUERIES[9:]:
        timed.search(query, k=10)
    out["inproc_new_p50_ms"], out["inproc_new_max_ms"] = p50_ms(timed.times), round(1000 * max(timed.times), 1)
    timed.times.clear()
    for query in SPEED_QUERIES[9:]:
        timed.search(query, k=10)
    out["inproc_repeat_p50_ms"] = p50_ms(timed.times)
    print(out, flush=True)
    return out


def render(rows: list[dict], fast: dict | None) -> str:
    lines = [
        "## search on semble's annotations — `python bench/search_semble.py`",
        "",
        "NDCG@10 by semble's protocol (`lctk eval search --annotations`); semble's numbers are its published",
        "ones (potion-code-16M, hybrid). Query times are in process, p50 over the annotated queries.",
        "",
        "| repo | queries | lexical | plain dense (full MiniLM, whole units) | static (--rerank 0) | default, cold | cold, no budget (before) | default after `index --warm` | semble (published) | p50 static ms | p50 / max cold ms | p50 / max cold ms, no budget | p50 warm ms (p95) | warm s (blocks) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['repo']} | {r['queries']} | {r['lexical']:.3f} | {r['plain_dense']:.3f} | {r['static']:.3f} | {r['default']:.3f} | {r['unbounded']:.3f} | {r['warm_ndcg']:.3f} | "
            f"{r['semble']:.3f} | {r['static_p50_ms']:,} | {r['cold_p50_ms']:,} / {r['cold_max_ms']:,} | {r['unbounded_p50_ms']:,} / {r['unbounded_max_ms']:,} | {r['warm_p50_ms']} ({r['warm_p95_ms']}) | "
            f"{r['warm_s']} ({r['blocks']:,}) |"
        )
    if fast:
        lines += [
            "",
            f"Speed on {SPEED_REPO[0]} ({fast['files']} files, {fast['lines']:,} lines), through the CLI unless said:",
            "",
            "| step | seconds |",
            "|---|---:|",
            f"| `lctk index` (static, cold) | {fast['index_s']:.1f} |",
            f"| first query, default, before warming (at most {COLD_BLOCKS} cold blocks embedded) | {fast['cli_first_cold_s']:.2f} |",
            f"| new queries before warming, default, p50 | {fast['cli_cold_p50_s']:.2f} |",
            f"| query `--rerank 0` (static only), p50 | {fast['cli_static_p50_s']:.2f} |",
            f"| `lctk index --warm` (once) | {fast['warm_s']:.1f} |",
            f"| first query after warming | {fast['cli_first_warm_s']:.2f} |",
            f"| query after warming, p50 (with the refresh) | {fast['cli_warm_p50_s']:.2f} ({fast['cli_warm_refresh_p50_s']:.2f}) |",
            f"| in process, new query after warming, p50 / max | {fast['inproc_new_p50_ms'] / 1000:.4f} / {fast['inproc_new_max_ms'] / 1000:.4f} |",
            f"| in process, repeated query, p50 | {fast['inproc_repeat_p50_ms'] / 1000:.4f} |",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-speed", action="store_true", help="skip the pip speed part (~8 minutes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = annotated(work)
        fast = None if args.no_speed else speed(work)
    text = render(rows, fast)
    print(text)
    write_section(ROOT / "BENCHMARKS.md", "search-semble", text)


if __name__ == "__main__":
    main()
