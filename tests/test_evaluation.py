"""lctk eval building blocks: metrics against hand-computed values, deterministic task generators."""

from __future__ import annotations

import math

import pytest
from conftest import SHARED_DATA

from lctk.errors import InputError
from lctk.evaluation.haystack import Haystack, depths
from lctk.evaluation.metrics import (
    answer_score,
    ndcg_at,
    ranking_report,
    reciprocal_rank,
    recall_at,
    retention,
)

JARGON = SHARED_DATA / "haystack" / "jargon.txt"


def words(text: str) -> int:
    return len(text.split())


def test_ranking_metrics_by_hand():
    ranked = ["a", "b", "c", "d"]
    relevance = {"c": 2, "x": 1}  # one primary, one secondary that was not retrieved
    assert reciprocal_rank(ranked, relevance) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, relevance, k=2) == 0.0
    assert recall_at(ranked, relevance, 1) == 0.0 and recall_at(ranked, relevance, 5) == 1.0
    assert recall_at(ranked, relevance, 5, grade=1) == 0.5  # both grades: c found, x not
    # DCG = (2^2-1)/log2(4) = 1.5; IDCG = 3/log2(2) + 1/log2(3)
    assert ndcg_at(ranked, relevance, 10) == pytest.approx(1.5 / (3 + 1 / math.log2(3)))
    assert ndcg_at(["c", "x"], relevance) == pytest.approx(1.0)
    assert ndcg_at(["c", "c"], {"c": 1, "d": 1}) == pytest.approx(1 / (1 + 1 / math.log2(3)))  # repeats earn nothing
    report = ranking_report([(ranked, relevance), (["c"], {"c": 1})])
    assert report["MRR"] == pytest.approx((1 / 3 + 1) / 2) and report["R@1"] == 0.5 and report["queries"] == 2
    assert ranking_report([])["queries"] == 0


def test_retention_and_answer_scoring():
    assert retention({1, 2, 3}, {2, 3, 4, 5}) == 0.5 and retention({1}, set()) == 1.0
    assert answer_score("The numbers are 123 and 456.", ["123", "456", "789"]) == pytest.approx(2 / 3)
    assert answer_score("It is 41234", ["1234"]) == 1.0 and answer_score("It is 41234", ["1234"], "exact") == 0.0
    with pytest.raises(ValueError):
        answer_score("x", ["x"], "fuzzy")


@pytest.fixture(scope="module")
def haystack():
    return Haystack(JARGON.read_text(encoding="utf-8")[100_000:200_000], words)


@pytest.mark.parametrize("depth", depths(5))
def test_needles_go_where_they_say(haystack, depth):
    task = haystack.task("needle", 2000, depth, seed=7)
    (start, end), = task.needles
    needle = task.document[start:end]
    assert needle.startswith("The special magic number for ") and task.expected[0] in needle
    assert task.tokens >= 2000 and words(task.document) == task.tokens + words(needle)
    before = words(task.document[:start])
    assert abs(before - depth * task.tokens) <= 80  # within a sentence of the asked depth
    assert task == haystack.task("needle", 2000, depth, seed=7)  # deterministic
    assert task.expected != haystack.task("needle", 2000, depth, seed=8).expected


def test_multi_needle_thread_and_passkey(haystack):
    multi = haystack.task("multi-needle", 3000, 0.2, needles=4)
    assert len(multi.needles) == 4 and len(set(multi.expected)) == 4
    starts = [s for s, _ in multi.needles]
    assert starts == sorted(starts) and words(multi.document[: starts[0]]) <= 0.2 * multi.tokens + 80
    assert all(v in multi.document[a:b] for v, (a, b) in zip(multi.expected, multi.needles))
    thread = haystack.task("thread", 3000, 0.0, hops=3)
    lines = [thread.document[a:b] for a, b in thread.needles]
    assert len(lines) == 4 and lines[0].startswith(f"VAR {thread.expected[0]} = ")
    assert lines[1] == f"VAR {thread.expected[1]} = VAR {thread.expected[0]}."
    passkey = haystack.task("passkey", 1500, 0.5)
    assert "The grass is green." in passkey.document and passkey.tokens >= 1500
    assert passkey.document.count(f"The pass key is {passkey.expected[0]}.") == 1


def test_bad_task_requests_are_refused(haystack):
    with pytest.raises(InputError, match="only"):
        Haystack("One short sentence. And another.", words).task("needle", 1000, 0.5)
    with pytest.raises(InputError, match="unknown task"):
        haystack.task("haystack", 1000, 0.5)
    with pytest.raises(InputError, match="depth"):
        haystack.task("needle", 1000, 1.5)
    with pytest.raises(InputError, match="no text"):
        Haystack("   ", words)
    assert depths(1) == [0.5] and depths(3) == [0.0, 0.5, 1.0]


def test_annotations_read_and_validate(tmp_path):
    import json

    from lctk.evaluation.annotations import Target, read_annotations

    good = tmp_path / "queries.json"
    good.write_text(json.dumps([
        {"query": " where are retries configured ", "category": "config",
         "relevant": ["src/http.py", {"path": "./src/retry.py", "start_line": 10, "end_line": 42}],
         "secondary": [{"path": "src/config.py"}]},
        {"query": "parse a header", "relevant": ["lib/headers.py"]},
    ]))
    first, second = read_annotations(good)
    assert first.query == "where are retries configured" and first.category == "config"
    assert first.relevant == (Target("src/http.py"), Target("src/retry.py", 10, 42))
    assert first.secondary == (Target("src/config.py"),) and second.secondary == ()
    assert first.relevant[1].overlaps("src/retry.py", 40, 60) and not first.relevant[1].overlaps("src/retry.py", 43, 60)
    assert first.relevant[0].overlaps("src/http.py", 1, 1)

    cases = {
        "not json": ("{", "not valid JSON"),
        "object": ({"query": "x"}, "non-empty JSON list"),
        "empty": ([], "non-empty JSON list"),
        "no query": ([{"relevant": ["a.py"]}], "item 1: 'query' must be a non-empty string"),
        "no relevant": ([{"query": "q", "relevant": []}], "'relevant' must be a non-empty list"),
        "escape": ([{"query": "q", "relevant": ["../etc/passwd"]}], "stay inside"),
        "absolute": ([{"query": "q", "relevant": ["/etc/passwd"]}], "stay inside"),
        "half range": ([{"query": "q", "relevant": [{"path": "a.py", "start_line": 3}]}], "both lines or neither"),
        "reversed": ([{"query": "q", "relevant": [{"path": "a.py", "start_line": 9, "end_line": 3}]}], "after end_line"),
        "typo": ([{"query": "q", "relevant": ["a.py"], "secondry": []}], "unknown field 'secondry'"),
        "second item": ([{"query": "q", "relevant": ["a.py"]}, "oops"], "item 2: expected an object"),
    }
    for name, (content, message) in cases.items():
        bad = tmp_path / f"{name}.json"
        bad.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(InputError, match=message) as caught:
            read_annotations(bad)
        assert "\n" not in str(caught.value), name
    with pytest.raises(InputError, match="no such file"):
        read_annotations(tmp_path / "missing.json")
