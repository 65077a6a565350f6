"""CoSQA dev-500 MRR@100 (as in the `search` section) of the default search before and after
`lctk index --warm`: the held-out check of the cold-query budget (chosen on semble's
pydantic/model2vec annotations).

Usage: python bench/search_cosqa_cold.py
One static index over CoSQA's 6,267 functions; every row starts from an empty full-vector cache
except the last. Rows: plain BM25 and static-only (baselines), the default (at most COLD_BLOCKS
blocks embedded per query, queries in the file's order so the cache fills as a user's would),
the same with no budget (every candidate's blocks embedded: the ranking before the budget), and
the default after warming. Writes the `search-cosqa-cold` section of BENCHMARKS.md.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import write_section  # noqa: E402
from search import K, cosqa_task, fresh_index, hit_rank, metrics  # noqa: E402

from lctk.models.loader import load_embedder  # noqa: E402
from lctk.retrieval.ranking import COLD_BLOCKS, Searcher  # noqa: E402
from lctk.retrieval.store import index_location  # noqa: E402
from lctk.score_cache import ScoreCache  # noqa: E402


def run(searcher: Searcher, tasks, **options) -> dict:
    ranks, times = [], []
    for query, path in tasks:
        started = time.perf_counter()
        hits = searcher.search(query, k=K, **options)
        times.append(time.perf_counter() - started)
        ranks.append(hit_rank(hits, path))
    return {**metrics(ranks), "p50_ms": round(1000 * statistics.median(times), 1)}


def main() -> None:
    static, full = load_embedder("minilm-l6-v2-static"), load_embedder("minilm-l6-v2")
    root, tasks, _ = cosqa_task()
    data, _, index_s = fresh_index(root, static)
    vectors = index_location(root.resolve()) / "vectors.sqlite"

    def fresh_cache() -> ScoreCache:
        for suffix in ("", "-wal", "-shm"):
            vectors.with_name(vectors.name + suffix).unlink(missing_ok=True)
        return ScoreCache(vectors)

    rows = {
        "lexical (lctk BM25)": run(Searcher(data, static), tasks, mode="lexical"),
        "static only (--rerank 0)": run(Searcher(data, static), tasks, rerank=0),
        f"default, cold (at most {COLD_BLOCKS} blocks embedded per query)": run(Searcher(data, static, full, fresh_cache()), tasks),
        "cold, no budget (before)": run(Searcher(data, static, full, fresh_cache()), tasks, cold_blocks=None),
    }
    warmed = Searcher(data, static, full, fresh_cache())
    started = time.perf_counter()
    warmed.warm()
    warm_s = time.perf_counter() - started
    rows["default after `index --warm`"] = run(Searcher(data, static, full, warmed.vector_cache), tasks)
    lines = [
        "## search on CoSQA with a cold index — `python bench/search_cosqa_cold.py`",
        "",
        f"CoSQA dev-500 ({len(tasks)} queries over {len(data.files):,} functions, {data.n_units:,} units; one static index built in {index_s:.0f} s; "
        f"warming it took {warm_s:.0f} s). Queries in file order, each on the cache the earlier ones left; "
        "times are in process, one searcher per row.",
        "",
        "| ranking | MRR@100 | R@1 | R@10 | p50 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['MRR']:.3f} | {row['R@1']:.3f} | {row['R@10']:.3f} | {row['p50_ms']:,} |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_section(ROOT / "BENCHMARKS.md", "search-cosqa-cold", text)


if __name__ == "__main__":
    main()
