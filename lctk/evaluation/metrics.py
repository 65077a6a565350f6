"""Metrics shared by `lctk eval` and bench/: ranking quality, retention, answer scoring.

Ranking metrics take, per query, the ranked item ids and a map of graded relevance
(item -> grade > 0; e.g. 2 for primary, 1 for secondary annotations). Items not in the map
are irrelevant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence


def first_relevant_rank(ranked: Sequence[str], relevance: Mapping[str, float]) -> int | None:
    """1-based rank of the first relevant item, None if none is ranked."""
    return next((i + 1 for i, item in enumerate(ranked) if relevance.get(item, 0) > 0), None)


def reciprocal_rank(ranked: Sequence[str], relevance: Mapping[str, float], k: int = 100) -> float:
    rank = first_relevant_rank(ranked[:k], relevance)
    return 1.0 / rank if rank else 0.0


def recall_at(ranked: Sequence[str], relevance: Mapping[str, float], n: int, grade: float | None = None) -> float:
    """Share of the relevant items (of the top grade unless `grade` is given) found in the top n."""
    wanted = max(relevance.values(), default=0) if grade is None else grade
    targets = {item for item, g in relevance.items() if g >= wanted and g > 0}
    if not targets:
        return 0.0
    return len(targets & set(ranked[:n])) / len(targets)


def ndcg_at(ranked: Sequence[str], relevance: Mapping[str, float], n: int = 10) -> float:
    """Normalised discounted cumulative gain with graded gains 2^g - 1 and log2(rank + 1) discounts."""

    def dcg(grades: Iterable[float]) -> float:
        return sum((2.0**g - 1.0) / math.log2(i + 2) for i, g in enumerate(grades))

    ideal = dcg(sorted((g for g in relevance.values() if g > 0), reverse=True)[:n])
    if ideal == 0:
        return 0.0
    seen: set[str] = set()
    gains = []
    for item in ranked[:n]:
        gains.append(relevance.get(item, 0) if item not in seen else 0)  # a repeated item earns nothing
        seen.add(item)
    return dcg(gains) / ideal


def binary_ndcg_at(ranks: Iterable[int], relevant_count: int, n: int = 10) -> float:
    """Binary NDCG@n from the 1-based ranks that hold a relevant item (semble's benchmark metric).

    A rank held by several items gains 1 once; the ideal ranks min(n, relevant_count) items first.
    """
    if relevant_count <= 0:
        return 0.0
    gained = {rank for rank in ranks if 1 <= rank <= n}
    dcg = sum(1.0 / math.log2(rank + 1) for rank in gained)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(n, relevant_count)))
    return dcg / ideal


def ranking_report(runs: Sequence[tuple[Sequence[str], Mapping[str, float]]], k: int = 100) -> dict[str, float]:
    """Mean MRR@k, R@1/5/10 and NDCG@10 over queries: each run is (ranked ids, relevance)."""
    if not runs:
        return {"MRR": 0.0, "R@1": 0.0, "R@5": 0.0, "R@10": 0.0, "NDCG@10": 0.0, "queries": 0}
    count = len(runs)
    return {
        "MRR": sum(reciprocal_rank(r, rel, k) for r, rel in runs) / count,
        "R@1": sum(recall_at(r, rel, 1) for r, rel in runs) / count,
        "R@5": sum(recall_at(r, rel, 5) for r, rel in runs) / count,
        "R@10": sum(recall_at(r, rel, 10) for r, rel in runs) / count,
        "NDCG@10": sum(ndcg_at(r, rel, 10) for r, rel in runs) / count,
        "queries": count,
    }


def rank_report(ranks: Sequence[int | None], k: int = 100) -> dict[str, float]:
    """The same report for single-target tasks, from each target's 1-based rank (None = not found)."""
    runs = [(["target"] if rank == 1 else [f"other{i}" for i in range(rank - 1)] + ["target"], {"target": 1.0})
            if rank is not None and rank <= k else ([], {"target": 1.0}) for rank in ranks]
    return ranking_report(runs, k)


def retention(kept: Iterable, needed: Iterable) -> float:
    """Share of the needed items (lines, definitions, facts) that were kept; 1.0 when none are needed."""
    needed = set(needed)
    return len(needed & set(kept)) / len(needed) if needed else 1.0


def answer_score(answer: str, expected: Sequence[str], mode: str = "substring") -> float:
    """Share of the expected values the answer gives: as substrings, or as whole words (`exact`)."""
    if not expected:
        return 0.0
    if mode == "exact":
        words = set(re.findall(r"[\w.-]+", answer.lower()))
        found = sum(value.lower() in words for value in expected)
    elif mode == "substring":
        found = sum(value.lower() in answer.lower() for value in expected)
    else:
        raise ValueError(f"unknown scoring mode {mode!r}")
    return found / len(expected)
