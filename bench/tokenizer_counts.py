"""Benchmark how far the scoring model's token counts are from the target models' (o200k_base, cl100k_base).

`--budget` used to count in SmolLM2's tokenizer, while the output is pasted into GPT-4o (o200k_base),
GPT-4 (cl100k_base) or another model. This measures, on real code, how many target tokens one
SmolLM2 token is (whole corpus and per file), what a SmolLM2 budget means in each target, how fast
each tokenizer counts, and what `compress` returns for one budget counted in each tokenizer.

Usage: python bench/tokenizer_counts.py [--no-compress]
Sources: pip 24.2 (411 Python files) and the six pinned packages of bench/compress.py. Writes the
`tokenizers` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from compress import PACKAGES, fetch, package_sources  # noqa: E402
from report import write_section  # noqa: E402

from lctk.models.loader import load_language_model  # noqa: E402
from lctk.models.tokenizers import load_token_counter, model_token_counter  # noqa: E402

PIP = ("pip==24.2", "pip-24.2/src/pip")
TARGETS = ("o200k_base", "cl100k_base")
MIN_FILE_TOKENS = 50  # per-file ratios leave out files smaller than this (empty __init__.py and the like)
BUDGETS = (1000, 4000, 16000)
COMPRESS_PACKAGE = "click"
COMPRESS_QUERY = "add a --dry-run option that prints what a command would do"
COMPRESS_BUDGET = 4000


def corpora() -> dict[str, list]:
    """name -> SourceTexts: pip alone, and the six compress packages together."""
    pip = package_sources(fetch(*PIP), "pip")
    packages = [s for name, (requirement, inner) in PACKAGES.items() for s in package_sources(fetch(requirement, inner), name)]
    return {"pip 24.2": pip, f"{len(PACKAGES)} packages ({', '.join(PACKAGES)})": packages}


def count_all(counters: dict, sources) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-file token counts (files in order) and counting seconds, per tokenizer."""
    counts, seconds = {}, {}
    for name, counter in counters.items():
        started = time.perf_counter()
        counts[name] = np.array([counter.count_tokens(s.text) for s in sources])
        seconds[name] = time.perf_counter() - started
    return counts, seconds


def ratio_rows(label: str, sources, counts: dict[str, np.ndarray], seconds: dict[str, float], smol: str) -> list[str]:
    rows = []
    base = counts[smol]
    big = base >= MIN_FILE_TOKENS
    for target in TARGETS:
        per_file = counts[target][big] / base[big]  # target tokens per SmolLM2 token, per file
        p10, p50, p90 = np.percentile(per_file, [10, 50, 90])
        rows.append(
            f"| {label} | {target} | {len(sources)} | {int(base.sum()):,} | {int(counts[target].sum()):,} | "
            f"{counts[target].sum() / base.sum():.3f} | {p50:.3f} | {p10:.3f} | {p90:.3f} | "
            f"{seconds[smol] / seconds[target]:.1f}x |"
        )
    return rows


def compress_check(lm, counters: dict, smol: str) -> list[str]:
    """compress one package at one budget counted in each tokenizer; measure the output in all of them."""
    from lctk.compress.api import compress
    from lctk.compress.render import budgeted_context
    from lctk.score_cache import MemoryScoreCache

    requirement, inner = PACKAGES[COMPRESS_PACKAGE]
    sources = package_sources(fetch(requirement, inner), COMPRESS_PACKAGE)
    cache = MemoryScoreCache()
    for counter in counters.values():  # each tokenizer's counts pick its own LM candidates: score them all once
        compress(sources, lm, query=COMPRESS_QUERY, budget_tokens=COMPRESS_BUDGET, cache=cache, counter=counter)
    rows = []
    for name, counter in counters.items():
        started = time.perf_counter()
        result = compress(sources, lm, query=COMPRESS_QUERY, budget_tokens=COMPRESS_BUDGET, cache=cache, counter=counter)
        seconds = time.perf_counter() - started
        text = budgeted_context(result.files, result.output_format)
        measured = {other: counters[other].count_tokens(text) for other in counters}
        cells = " | ".join(f"{measured[other]:,}" + (" **over**" if measured[other] > COMPRESS_BUDGET else "") for other in counters)
        kept = sum(1 for u in result.units if u.decision != "dropped")
        rows.append(f"| {name} | {cells} | {kept} | {seconds:.2f} |")
    return rows


def render(ratio_table: list[str], budget_lines: list[str], compress_rows: list[str] | None, smol: str, loads: dict[str, float]) -> str:
    lines = [
        f"Target-model tokens per {smol} token on real Python code (`--tokenizer`, lctk.models.tokenizers). Per-file "
        f"ratios over files of at least {MIN_FILE_TOKENS} {smol} tokens; speed is counting throughput relative to "
        f"{smol}'s own tokenizer (llama.cpp).",
        "",
        f"| corpus | target | files | {smol} tokens | target tokens | total ratio | per-file median | p10 | p90 | counting speed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *ratio_table,
        "",
        f"What a `--budget` counted in {smol} (the old behaviour) holds in each target's tokens, at pip's total ratio "
        "(per-file p10-p90 in brackets: one file can stray that far):",
        "",
        *budget_lines,
        "",
        "Loading a tokenizer: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in loads.items()) + ".",
    ]
    if compress_rows is not None:
        lines += [
            "",
            f"`compress` on {COMPRESS_PACKAGE} 8.1.7, `--budget {COMPRESS_BUDGET}`, the budget counted in each tokenizer "
            "(LM scores cached, so seconds are the rest of the pipeline); the output measured in all three:",
            "",
            "| counted in | " + " | ".join(f"output in {name}" for name in (smol, *TARGETS)) + " | units kept | seconds |",
            "|---|" + "---:|" * (len(TARGETS) + 3),
            *compress_rows,
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-compress", action="store_true", help="skip the compress run on click")
    args = parser.parse_args()
    lm, _ = load_language_model("smollm2-135m", "score", "llama")
    smol = lm.model_id
    loads = {}
    counters = {smol: model_token_counter(lm)}
    for target in TARGETS:
        started = time.perf_counter()
        counters[target] = load_token_counter(target)
        loads[target] = time.perf_counter() - started
    ratio_table, budget_lines = [], []
    for label, sources in corpora().items():
        counts, seconds = count_all(counters, sources)
        ratio_table += ratio_rows(label, sources, counts, seconds, smol)
        if label.startswith("pip"):
            base, big = counts[smol], counts[smol] >= MIN_FILE_TOKENS
            for budget in BUDGETS:
                parts = []
                for target in TARGETS:
                    total = counts[target].sum() / base.sum()
                    p10, p90 = np.percentile(counts[target][big] / base[big], [10, 90])
                    parts.append(f"{budget * total:,.0f} {target} [{budget * p10:,.0f}-{budget * p90:,.0f}]")
                budget_lines.append(f"- {budget:,} {smol} tokens = " + "; ".join(parts))
    compress_rows = None if args.no_compress else compress_check(lm, counters, smol)
    text = render(ratio_table, budget_lines, compress_rows, smol, loads)
    print(text)
    write_section(ROOT / "BENCHMARKS.md", "tokenizers", text)


if __name__ == "__main__":
    main()
