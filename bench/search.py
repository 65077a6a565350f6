"""Benchmark `lctk search`: quality on CoSQA and on a CodeSearchNet-style set from pinned PyPI
packages, and speed on a ~100k-line repository, each beside its baselines in the same run.

Usage: python bench/search.py [--quality] [--speed] [--queries N] [--report]
Everything goes through the real index (files on disk, `lctk.retrieval`), so what is measured is
what users run. Embeddings of baselines are cached in bench/.data; a full run writes the
"search" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from compress import fetch  # noqa: E402
from report import write_section  # noqa: E402

from lctk.evaluation.metrics import rank_report  # noqa: E402  (one implementation, shared with `lctk eval`)
from lctk.models.loader import load_embedder  # noqa: E402
from lctk.retrieval.indexer import build_index  # noqa: E402
from lctk.retrieval.ranking import Searcher  # noqa: E402
from lctk.retrieval.store import aggregate, index_location, load_index  # noqa: E402
from lctk.score_cache import ScoreCache  # noqa: E402
from lctk.sources.lexical import BM25, identifier_tokens  # noqa: E402

DATA = ROOT / "bench" / ".data"
RESULTS = DATA / "search-results.json"
COSQA = ROOT.parent / "shared" / "data" / "cosqa"
CSN_PACKAGES = {  # pinned sdists: requirement -> package directory inside the sdist
    "requests==2.32.3": "requests-2.32.3/src/requests",
    "packaging==24.1": "packaging-24.1/src/packaging",
    "toolz==1.0.0": "toolz-1.0.0/toolz",
    "attrs==24.2.0": "attrs-24.2.0/src/attr",
    "click==8.1.7": "click-8.1.7/src/click",
    "jinja2==3.1.4": "jinja2-3.1.4/src/jinja2",
}
SPEED_REPO = ("pip==24.2", "pip-24.2/src/pip")  # ~100k lines of Python (vendored libraries included)
K = 100  # ranks beyond this count as misses (MRR@100)


# ------------------------------------------------------------------ metrics


def metrics(ranks: list[int | None]) -> dict:
    """MRR@K, R@1/5/10 and NDCG@10 (one relevant item) from 1-based ranks (None = not found)."""
    report = rank_report(ranks, K)
    report.pop("queries")
    return report


def matrix_ranks(scores: np.ndarray, gold: list[int]) -> list[int]:
    gold_scores = scores[np.arange(len(gold)), gold]
    return [int(x) for x in (scores > gold_scores[:, None]).sum(1) + 1]


def hit_rank(hits, path: str) -> int | None:
    for hit in hits:
        if hit.path == path:
            return hit.rank
    return None


# ------------------------------------------------------------------ data sets


def cosqa_task() -> tuple[Path, list[tuple[str, str]], list[str]]:
    """Write the 6,267 CoSQA functions as files; return (root, [(query, gold path)], codes)."""
    mapping = json.loads((COSQA / "code_idx_map.txt").read_text())
    codes = [""] * len(mapping)
    for code, index in mapping.items():
        codes[index] = code
    root = DATA / "cosqa-corpus"
    if not (root / f"{len(codes) - 1:05d}.py").exists():
        root.mkdir(parents=True, exist_ok=True)
        for index, code in enumerate(codes):
            (root / f"{index:05d}.py").write_text(code + "\n")
    queries = json.loads((COSQA / "cosqa-retrieval-dev-500.json").read_text())
    return root, [(q["doc"], f"{q['retrieval_idx']:05d}.py") for q in queries], codes


def _docstring_summary(node) -> str | None:
    doc = ast.get_docstring(node)
    if not doc:
        return None
    summary = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    summary = summary.split(". ")[0].rstrip(".")
    return summary if len(summary.split()) >= 4 else None


def csn_task(limit: int) -> tuple[Path, list[tuple[str, str, str]]]:
    """CodeSearchNet-style: docstring summary -> its function, docstrings removed from every file.

    Returns (root, [(query, gold path, gold symbol)]); each function whose docstring summary has 4+
    words is a task (the first `limit`, in a fixed order); all functions are candidates.
    """
    root = DATA / "csn-corpus"
    tasks_file = DATA / "csn-tasks.json"
    if not tasks_file.exists():
        shutil.rmtree(root, ignore_errors=True)
        tasks = []
        for requirement, inner in CSN_PACKAGES.items():
            source = fetch(requirement, inner)
            package = requirement.split("==")[0]
            for path in sorted(p for p in source.rglob("*.py") if "tests" not in p.parts):
                text = path.read_text(encoding="utf-8")
                tree = ast.parse(text)
                lines = text.split("\n")
                drop: set[int] = set()
                for node in ast.walk(tree):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body:
                        first = node.body[0]
                        if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) and isinstance(first.value.value, str):
                            if len(node.body) > 1 or isinstance(node, ast.Module):
                                drop.update(range(first.lineno - 1, first.end_lineno))
                            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (summary := _docstring_summary(node)):
                                tasks.append((summary, f"{package}/{path.relative_to(source).as_posix()}", node.name))
                target = root / package / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("\n".join(line for i, line in enumerate(lines) if i not in drop))
        tasks_file.write_text(json.dumps(tasks))
    tasks = [tuple(t) for t in json.loads(tasks_file.read_text())]
    step = max(len(tasks) // limit, 1)
    return root, tasks[::step][:limit]


def csn_rank(hits, path: str, symbol: str) -> int | None:
    for hit in hits:
        if hit.path == path and (hit.symbol == symbol or hit.symbol.endswith("." + symbol)):
            return hit.rank
    return None


# ------------------------------------------------------------------ quality


def fresh_index(root: Path, embedder, **kwargs):
    shutil.rmtree(index_location(root.resolve()), ignore_errors=True)
    started = time.perf_counter()
    stats = build_index(root, embedder, **kwargs)
    return load_index(root.resolve()), stats, time.perf_counter() - started


def evaluate(searcher, tasks, ranker, **options) -> dict:
    ranks = [ranker(searcher.search(task[0], k=K, **options), *task[1:]) for task in tasks]
    return metrics(ranks)


def quality(limit: int) -> dict:
    static, full = load_embedder("minilm-l6-v2-static"), load_embedder("minilm-l6-v2")
    out: dict = {}
    # CoSQA
    root, tasks, codes = cosqa_task()
    tasks = tasks[:limit]
    gold = [int(path[:-3]) for _, path in tasks]
    bm25 = BM25([identifier_tokens(c) for c in codes])
    out["cosqa/plain BM25 (baseline)"] = metrics(matrix_ranks(np.stack([bm25.scores(identifier_tokens(q)) for q, _ in tasks]), gold))
    whole = _cached(DATA / "cosqa-whole-minilm.npy", lambda: full.embed(codes))
    queries = full.embed([q for q, _ in tasks])
    out["cosqa/plain dense MiniLM, whole function (baseline)"] = metrics(matrix_ranks(queries @ whole.T, gold))
    out.update(_index_rows("cosqa", root, tasks, hit_rank, static, full))
    # CodeSearchNet-style
    root, tasks = csn_task(limit)
    out["csn/tasks"] = {"queries": len(tasks)}
    out.update(_index_rows("csn", root, tasks, csn_rank, static, full))
    return out


def _index_rows(name: str, root: Path, tasks, ranker, static, full) -> dict:
    rows: dict = {}
    data, stats, seconds = fresh_index(root, full)
    rows[f"{name}/index full"] = {"units": data.n_units, "blocks": len(data.block_lines), "seconds": seconds}
    searcher = Searcher(data, full)
    rows[f"{name}/lexical (lctk BM25)"] = evaluate(searcher, tasks, ranker, mode="lexical")
    rows[f"{name}/dense SEA, full MiniLM"] = evaluate(searcher, tasks, ranker, mode="dense")
    rows[f"{name}/dense SEA, full, no block lift"] = evaluate(searcher, tasks, ranker, mode="dense", lift=0.0)
    rows[f"{name}/hybrid SEA, full MiniLM (blend)"] = evaluate(searcher, tasks, ranker)
    rows[f"{name}/hybrid SEA, full MiniLM (RRF)"] = evaluate(searcher, tasks, ranker, fusion="rrf")
    for weight in (0.6, 0.9):
        rows[f"{name}/hybrid SEA, full, dense weight {weight}"] = evaluate(searcher, tasks, ranker, dense_weight=weight)
    for how in ("max", "attention"):  # same blocks, other pooling: no re-embedding needed
        pooled = dataclasses.replace(data, unit_vectors=aggregate(data.block_vectors, data.unit_blocks, how), _postings=None)
        pooled.meta = {**data.meta, "aggregation": how}
        rows[f"{name}/dense SEA, full, {how} pooling"] = evaluate(Searcher(pooled, full), tasks, ranker, mode="dense")
    data, stats, seconds = fresh_index(root, static)
    rows[f"{name}/index static"] = {"units": data.n_units, "blocks": len(data.block_lines), "seconds": seconds}
    searcher = Searcher(data, static)
    rows[f"{name}/dense SEA, static"] = evaluate(searcher, tasks, ranker, mode="dense")
    rows[f"{name}/hybrid SEA, static, no rerank"] = evaluate(searcher, tasks, ranker)
    cache = ScoreCache(index_location(root.resolve()) / "vectors.sqlite")
    reranked = Searcher(data, static, full, cache)
    for depth in (20, 50, 100):
        rows[f"{name}/hybrid SEA, static + rerank {depth}"] = evaluate(reranked, tasks, ranker, rerank=depth)
    rows[f"{name}/dense SEA, static + rerank 50"] = evaluate(reranked, tasks, ranker, mode="dense", rerank=50)
    return rows


def _cached(path: Path, compute) -> np.ndarray:
    if path.exists():
        return np.load(path)
    value = compute()
    np.save(path, value)
    return value


# ------------------------------------------------------------------ speed


def _run_measured(args: list[str]) -> tuple[float, float]:
    """Run a command; return (seconds, peak RSS in MB) of that child process alone.

    ru_maxrss would carry this (large) benchmark process's high-water mark into the child
    across fork+exec, so the child's own VmHWM is sampled from /proc until it exits.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kb = 0
    status_file = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status_file.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}: {proc.stderr.read().decode()[-500:]}")
    return seconds, peak_kb / 1024


def speed(models=("minilm-l6-v2-static", "minilm-l6-v2"), previous: dict | None = None) -> dict:
    source = fetch(*SPEED_REPO)
    root = DATA / "speed-repo"
    if not root.exists():
        shutil.copytree(source, root)
    files = sorted(root.rglob("*.py"))
    lines = sum(p.read_text(encoding="utf-8", errors="replace").count("\n") for p in files)
    out: dict = {**(previous or {}), "repo": {"name": SPEED_REPO[0], "files": len(files), "lines": lines}}
    lctk = [sys.executable, "-m", "lctk"]
    for model in models:
        shutil.rmtree(root / ".lctk", ignore_errors=True)
        seconds, rss = _run_measured([*lctk, "index", str(root), "--embed-model", model])
        data = load_index(root.resolve())
        target = files[len(files) // 2]
        original = target.read_text()
        target.write_text(original + "\n\ndef added_for_the_benchmark():\n    return 42\n")
        again, again_rss = _run_measured([*lctk, "index", str(root), "--embed-model", model])
        target.write_text(original)
        _run_measured([*lctk, "index", str(root), "--embed-model", model])
        latencies = _query_latencies(root, model)
        cli = [_run_measured([*lctk, "search", q, str(root), "--embed-model", model, "--no-refresh"])[0] for q in QUERIES[:5]]
        out[model] = {
            "build_s": seconds, "build_rss_mb": rss, "units": data.n_units, "blocks": len(data.block_lines),
            "units_per_s": data.n_units / seconds, "reindex_one_file_s": again, "reindex_rss_mb": again_rss,
            **latencies, "cli_query_s_median": statistics.median(cli),
        }
    if len(models) > 1 or "brute force (sentence-transformers + numpy)" not in out:
        out["brute force (sentence-transformers + numpy)"] = _brute_force(root)
    return out


QUERIES = [
    "parse a version string", "download a file with a progress bar", "check if a wheel is compatible",
    "read configuration from environment variables", "retry an HTTP request", "resolve dependencies",
    "hash a file with sha256", "uninstall a package", "format a table for the terminal", "detect the platform tag",
]


def _query_latencies(root: Path, model: str) -> dict:
    from lctk.retrieval.api import CodeIndex

    (index_location(root.resolve()) / "vectors.sqlite").unlink(missing_ok=True)  # cold reranker cache
    opened = CodeIndex.open(root, embed_model=model, refresh=False)
    cold = []
    for query in QUERIES:  # first time: the reranker embeds the candidates' blocks (then cached)
        started = time.perf_counter()
        opened.searcher.search(query)
        cold.append(time.perf_counter() - started)
    times = []
    for _ in range(3):
        for query in QUERIES:
            started = time.perf_counter()
            opened.searcher.search(query)
            times.append(time.perf_counter() - started)
    times.sort()
    return {"query_ms_p50": 1000 * times[len(times) // 2], "query_ms_p95": 1000 * times[int(len(times) * 0.95) - 1],
            "cold_query_ms_p50": 1000 * statistics.median(cold), "cold_query_ms_max": 1000 * max(cold)}


def _brute_force(root: Path) -> dict:
    """The flat baseline: whole chunks through sentence-transformers in a fresh process, numpy dot products."""
    from sentence_transformers import SentenceTransformer

    from lctk.models.registry import resolve_model
    from lctk.sources.chunking import chunk_text

    units = [chunk.text for path in sorted(root.rglob("*.py"))
             for chunk in chunk_text(path.read_text(encoding="utf-8", errors="replace"), "python")]
    units_file, vectors_file = DATA / "speed-units.json", DATA / "speed-vectors.npy"
    units_file.write_text(json.dumps(units))
    folder = str(resolve_model("minilm-l6-v2", "embed").path)
    script = (
        "import json,sys,time,numpy as np\n"
        "from sentence_transformers import SentenceTransformer\n"
        "units=json.load(open(sys.argv[1]))\n"
        "m=SentenceTransformer(sys.argv[2], device='cpu')\n"
        "np.save(sys.argv[3], m.encode(units, batch_size=32, normalize_embeddings=True))\n"
    )
    seconds, rss = _run_measured([sys.executable, "-c", script, str(units_file), folder, str(vectors_file)])
    vectors = np.load(vectors_file)
    model = SentenceTransformer(folder, device="cpu")
    times = []
    for query in QUERIES * 3:
        t0 = time.perf_counter()
        q = model.encode([query], normalize_embeddings=True)[0]
        np.argsort(-(vectors @ q))[:10]
        times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "build_s": seconds, "units": len(units), "units_per_s": len(units) / seconds, "build_rss_mb": rss,
        "query_ms_p50": 1000 * times[len(times) // 2], "query_ms_p95": 1000 * times[int(len(times) * 0.95) - 1],
    }


def throughput() -> dict:
    """Embedding throughput on 1,000 CoSQA functions: sentence-transformers vs lctk's runtimes."""
    from sentence_transformers import SentenceTransformer

    from lctk.models.registry import resolve_model

    _, _, codes = cosqa_task()
    sample = codes[:1000]
    st = SentenceTransformer(str(resolve_model("minilm-l6-v2", "embed").path), device="cpu")
    out = {}
    for name, embed in (
        ("sentence-transformers", lambda t: st.encode(t, batch_size=32, normalize_embeddings=True)),
        ("lctk torch", load_embedder("minilm-l6-v2").embed),
        ("lctk static", load_embedder("minilm-l6-v2-static").embed),
    ):
        started = time.perf_counter()
        embed(sample)
        out[name] = len(sample) / (time.perf_counter() - started)
    return out


# ------------------------------------------------------------------ report


def report(results: dict) -> str:
    parts = []
    if "throughput" in results:
        t = results["throughput"]
        base = t["sentence-transformers"]
        parts.append("Embedding throughput, 1,000 CoSQA functions (functions/s):\n\n| runtime | functions/s | vs sentence-transformers |\n|---|---:|---:|")
        parts += [f"| {name} | {value:,.0f} | {value / base:.1f}x |" for name, value in t.items()]
    if "quality" in results:
        q = results["quality"]
        for name, title in (("cosqa", "CoSQA dev, 500 queries over 6,267 functions"), ("csn", "CodeSearchNet-style, pinned PyPI packages")):
            rows = {key.split("/", 1)[1]: value for key, value in q.items() if key.startswith(name + "/")}
            extra = f" ({rows['tasks']['queries']} queries)" if "tasks" in rows else ""
            parts.append(f"\n{title}{extra}:\n\n| method | MRR@100 | R@1 | R@5 | R@10 | NDCG@10 |\n|---|---:|---:|---:|---:|---:|")
            for method, m in rows.items():
                if "MRR" in m:
                    parts.append(f"| {method} | {m['MRR']:.3f} | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['R@10']:.3f} | {m['NDCG@10']:.3f} |")
            for method, m in rows.items():
                if "seconds" in m:
                    parts.append(f"\n{method}: {m['units']:,} units, {m['blocks']:,} blocks in {m['seconds']:.1f} s")
    if "speed" in results:
        s = results["speed"]
        repo = s["repo"]
        parts.append(f"\nSpeed on {repo['name']} ({repo['files']:,} files, {repo['lines']:,} lines):\n")
        parts.append(
            "| method | build s | units | units/s | build peak RSS MB | re-index 1 file s | query p50 ms (warm) | query p95 ms (warm) "
            "| first query ms (cold reranker cache), median / max | CLI query s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        for method in ("minilm-l6-v2-static", "minilm-l6-v2"):
            m = s[method]
            parts.append(
                f"| lctk index, {method} | {m['build_s']:.1f} | {m['units']:,} | {m['units_per_s']:,.0f} | {m['build_rss_mb']:,.0f} | "
                f"{m['reindex_one_file_s']:.2f} | {m['query_ms_p50']:.0f} | {m['query_ms_p95']:.0f} | "
                f"{m['cold_query_ms_p50']:,.0f} / {m['cold_query_ms_max']:,.0f} | {m['cli_query_s_median']:.2f} |"
            )
        b = s["brute force (sentence-transformers + numpy)"]
        parts.append(
            f"| flat brute force (sentence-transformers + numpy) | {b['build_s']:.1f} | {b['units']:,} | {b['units_per_s']:,.0f} | "
            f"{b['build_rss_mb']:,.0f} | {b['build_s']:.1f} (no incremental) | {b['query_ms_p50']:.0f} | {b['query_ms_p95']:.0f} | – | – |"
        )
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--speed-model", action="append", help="with --speed: only these embedders (keeps the other rows)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--report", action="store_true", help="only print the tables from saved results")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.report:
        everything = not (args.quality or args.speed or args.throughput)
        if args.throughput or everything:
            results["throughput"] = throughput()
            RESULTS.write_text(json.dumps(results, indent=1))
        if args.quality or everything:
            results["quality"] = quality(args.queries)
            RESULTS.write_text(json.dumps(results, indent=1))
        if args.speed or everything:
            results["speed"] = speed(tuple(args.speed_model), results.get("speed")) if args.speed_model else speed()
            RESULTS.write_text(json.dumps(results, indent=1))
    text = report(results)
    print(text)
    if not args.report and {"quality", "speed", "throughput"} <= set(results):
        write_section(ROOT / "BENCHMARKS.md", "search", text)


if __name__ == "__main__":
    main()
