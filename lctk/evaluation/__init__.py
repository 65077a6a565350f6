"""Evaluation on the user's own data: long-context tasks from any text, ranking and retention metrics.
"""

from lctk.exports import lazy_exports

_WHERE = {
    "Haystack": "haystack",
    "parse_lengths": "haystack",
    "evaluate_annotations": "search_eval",
    "needle_tasks": "compress_eval",
    "dependency_tasks": "compress_eval",
    "answer_score": "metrics",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
