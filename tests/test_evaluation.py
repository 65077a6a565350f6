"""lctk eval building blocks: metrics against hand-computed values, deterministic task generators."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from lctk.errors import InputError
from lctk.evaluation.haystack import Haystack, depths
from lctk.evaluation.metrics import (
    answer_score,
    ndcg_at,
    ranking_report,
    recall_at,
    reciprocal_rank,
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
        "bad line": ([{"query": "q", "seed": 1, "relevant": [{"path": "a.py", "start_line": "3", "end_line": 4}]}],
                     "item 1, relevant 1: 'start_line' must be a positive integer"),
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


def test_semble_upstream_annotations_are_read_with_one_warning(tmp_path, caplog):
    import json
    import logging

    from lctk.evaluation.annotations import Target, read_annotations

    upstream = tmp_path / "upstream.json"
    upstream.write_text(json.dumps([
        {"query": "how are retries configured", "seed": "src/retry.py", "related": ["src/config.py"],
         "relevant": [{"path": "src/retry.py", "start_line": 10, "end_line": 42, "symbol": "Retry"}],
         "secondary": ["src/config.py"], "category": "architecture"},
        {"query": "Retry", "seed": "src/retry.py", "relevant": ["src/retry.py"], "category": None},
    ]))
    with caplog.at_level(logging.WARNING, logger="lctk"):
        first, second = read_annotations(upstream)
    assert first.relevant == (Target("src/retry.py", 10, 42),) and first.secondary == (Target("src/config.py"),)
    assert first.targets == (Target("src/retry.py", 10, 42), Target("src/config.py"))
    assert second.category == "" and second.relevant == (Target("src/retry.py"),)
    warnings = [r.getMessage() for r in caplog.records if r.name == "lctk.evaluation.annotations"]
    assert len(warnings) == 1, warnings  # one for the file, not one per item
    assert "upstream.json" in warnings[0]
    assert all(f"'{name}'" in warnings[0] for name in ("seed", "related", "symbol")), warnings[0]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lctk"):
        shipped = read_annotations(SHARED_DATA / "semble" / "pydantic.json")
    assert len(shipped) == 20 and shipped[0].relevant == (Target("pydantic/main.py"),)
    assert not [r for r in caplog.records if r.name == "lctk.evaluation.annotations"]  # nothing ignored, no warning


def test_semble_binary_ndcg_by_hand():
    from lctk.evaluation.annotations import Target
    from lctk.evaluation.metrics import binary_ndcg_at
    from lctk.evaluation.search_eval import count_indexed, path_matches, semble_ndcg

    assert binary_ndcg_at([1, 3], 2) == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3)))
    assert binary_ndcg_at([1, 1], 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))  # one rank gains once
    assert binary_ndcg_at(range(1, 11), 15) == pytest.approx(1.0)  # the ideal holds at most 10
    assert binary_ndcg_at([11], 1) == 0.0 and binary_ndcg_at([1], 0) == 0.0
    assert path_matches("/r/pkg/a.py", "pkg/a.py") and path_matches("pkg/a.py", "pkg/a.py")
    assert not path_matches("/r/xpkg/a.py", "pkg/a.py")

    whole = Target("pkg/a.py")  # relevant: the whole file
    lines = Target("pkg/b.py", 10, 20)  # secondary: a line range
    gone = Target("pkg/gone.py")  # not in the index: left out of the ideal
    indexed = {"/r/pkg/a.py": [(1, 50)], "/r/pkg/b.py": [(1, 9), (10, 30)], "/r/pkg/c.py": [(1, 5)]}
    assert count_indexed([whole, lines, gone], indexed) == 2
    assert count_indexed([Target("pkg/b.py", 100, 120)], indexed) == 0  # the file is there, those lines are not
    ranked = [
        ("/r/xpkg/a.py", 1, 9),  # 1: another directory's a.py
        ("/r/pkg/a.py", 1, 10),  # 2: first hit of `whole`
        ("/r/pkg/a.py", 20, 30),  # 3: the same file again: earns nothing
        ("/r/pkg/b.py", 1, 9),  # 4: b.py, but not the target's lines
        ("/r/pkg/b.py", 12, 15),  # 5: first hit of `lines`
    ]
    expected = (1 / math.log2(3) + 1 / math.log2(6)) / (1 + 1 / math.log2(3))
    assert semble_ndcg([whole, lines, gone], ranked, 2) == pytest.approx(expected)
    # with `gone` counted in the ideal the score would be lower: the protocol drops it
    assert expected > (1 / math.log2(3) + 1 / math.log2(6)) / (1 + 1 / math.log2(3) + 1 / 2)
    assert semble_ndcg([whole], [("/r/pkg/c.py", 1, 5)] * 10 + [("/r/pkg/a.py", 1, 1)], 1) == 0.0  # rank 11
    assert semble_ndcg([whole, Target("pkg/a.py", 1, 5)], ranked[1:], 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert semble_ndcg([gone], ranked, count_indexed([gone], indexed)) == 0.0  # none indexed: 0, as in semble


def test_evaluate_annotations_on_a_package_directory_index(tmp_path, monkeypatch):
    from lctk.evaluation.annotations import Annotation, Target
    from lctk.evaluation.search_eval import evaluate_annotations
    from lctk.models.fake import FakeEmbedder
    from lctk.retrieval.indexer import build_index
    from lctk.retrieval.ranking import Searcher
    from lctk.retrieval.store import load_index

    monkeypatch.setenv("LCTK_INDEX_DIR", str(tmp_path / "indexes"))
    repo = tmp_path / "checkout"
    (repo / "pkg").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "pkg" / "retry.py").write_text("def configure_backoff_zorblax(attempts):\n    return attempts * 2\n")
    (repo / "pkg" / "other.py").write_text("def unrelated():\n    return 'nothing here'\n")
    (repo / "tests" / "test_retry.py").write_text("def test_zorblax():\n    configure_backoff_zorblax(3)\n")
    annotations = [
        Annotation("configure_backoff_zorblax", (Target("pkg/retry.py"),), (Target("pkg/missing.py"),)),
        Annotation("test_zorblax", (Target("tests/test_retry.py"),)),  # outside the package directory
    ]
    embedder = FakeEmbedder()
    # semble's way: index only the package directory; annotation paths are relative to the checkout
    build_index((repo / "pkg").resolve(), embedder)
    searcher = Searcher(load_index((repo / "pkg").resolve()), embedder)
    report = evaluate_annotations(searcher, annotations, ["lexical"])["lexical"]
    assert report["queries"] == 2 and report["no_target_in_index"] == 1
    assert report["NDCG@10"] == pytest.approx((1.0 + 0.0) / 2)  # found at rank 1; the other holds no target
    assert report["MRR"] == pytest.approx(0.5)

    # an index of the whole checkout, searched within pkg/ only, scores the same
    build_index(repo.resolve(), embedder)
    searcher = Searcher(load_index(repo.resolve()), embedder)
    assert evaluate_annotations(searcher, annotations, ["lexical"], within="pkg")["lexical"]["NDCG@10"] == pytest.approx(0.5)
    whole = evaluate_annotations(searcher, annotations, ["lexical"])["lexical"]
    assert whole["no_target_in_index"] == 0 and whole["NDCG@10"] == pytest.approx(1.0)


def test_docstring_tasks_hide_the_answer_and_mask_the_name(tmp_path):
    import ast
    import json as stdlib_json

    from lctk.evaluation.search_eval import build_docstring_corpus, mask_identifier, sample

    assert mask_identifier("Parse a header with parse_header", "parse_header") == "Parse a header with it"
    assert mask_identifier("Use scanString to scan a string", "scanString") == "Use it to scan a string"
    assert mask_identifier("Decode JSON from the string", "decode") == "it JSON from the string"
    package = Path(stdlib_json.__file__).parent
    files = [(p, f"json/{p.name}") for p in sorted(package.glob("*.py"))]
    tasks = build_docstring_corpus(files, tmp_path / "corpus")
    assert len(tasks) >= 8
    for task in tasks:
        assert task.symbol.lower() not in task.query.lower() or "_" not in task.symbol
        source = (tmp_path / "corpus" / task.path).read_text()
        assert re.match(rf"\s*(async\s+)?def {task.symbol}\b", source.split("\n")[task.line - 1]), task
    for path in (tmp_path / "corpus" / "json").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and len(node.body) > 1:
                assert ast.get_docstring(node) is None, (path, node.name)
    assert sample(tasks, 3, seed=1) == sample(tasks, 3, seed=1) and len(sample(tasks, 3, seed=1)) == 3
    assert sample(tasks, None, 0) == tasks


def test_search_evaluation_end_to_end_on_a_real_package(tmp_path, monkeypatch):
    import json as stdlib_json
    from dataclasses import replace

    from lctk.evaluation.annotations import Annotation, Target
    from lctk.evaluation.search_eval import annotation_relevance, build_docstring_corpus, docstring_relevance, evaluate
    from lctk.retrieval.api import CodeIndex

    monkeypatch.setenv("LCTK_INDEX_DIR", str(tmp_path / "indexes"))
    package = Path(stdlib_json.__file__).parent
    tasks = build_docstring_corpus([(p, f"json/{p.name}") for p in sorted(package.glob("*.py"))], tmp_path / "corpus")
    searcher = CodeIndex.open(tmp_path / "corpus").searcher
    report = evaluate(searcher, [t.query for t in tasks], lambda i, hits: docstring_relevance(tasks[i], hits))
    assert set(report) == {"lexical", "dense", "hybrid"}
    for row in report.values():
        assert row["queries"] == len(tasks) and 0 <= row["R@1"] <= row["R@5"] <= row["R@10"] <= 1
    assert report["hybrid"]["MRR"] > 0.3  # real models on real code: most summaries find their function
    annotation = Annotation("decode a JSON document", (Target("json/decoder.py"),), (Target("json/__init__.py"),))
    report = evaluate(searcher, [annotation.query], lambda i, hits: annotation_relevance(annotation, hits), modes=["hybrid"])
    assert report["hybrid"]["MRR"] > 0
    prefix = searcher.display_prefix
    hits = [replace(h, path=h.path.removeprefix(prefix)) for h in searcher.search(annotation.query, k=20)]
    ranked, relevance = annotation_relevance(annotation, hits)
    assert relevance == {"t0": 2.0, "t1": 1.0} and "t0" in ranked


def test_eval_cli_bad_input():
    from conftest import assert_one_line_error, run_lctk

    haystack = str(JARGON)
    assert_one_line_error(run_lctk("eval", "ask", "--haystack", haystack, "--task", "nope"), 2, "--task must be one of")
    assert_one_line_error(run_lctk("eval", "ask", "--haystack", haystack, "--lengths", "4q"), 2, "not a token count")
    assert_one_line_error(run_lctk("eval", "ask", "--haystack", haystack, "--scoring", "fuzzy"), 2, "--scoring")
    assert_one_line_error(run_lctk("eval", "ask", "--haystack", "/nonexistent.txt"), 1, "no such file")
    assert_one_line_error(run_lctk("eval", "search", "/nonexistent"), 1, "no such directory")
    assert_one_line_error(run_lctk("eval", "search", ".", "--docstrings", "--annotations", "a.json"), 2, "not both")


@pytest.mark.slow
def test_eval_ask_cli_runs_passkey_tasks_with_the_default_models():
    import json

    from conftest import run_lctk

    result = run_lctk("eval", "ask", "--haystack", str(JARGON), "--task", "passkey", "--lengths", "1k",
                      "--depths", "2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["depth"] for r in report["results"]] == [0.0, 1.0] and report["retrieval_model"] == "gemma3-270m"
    assert all(r["kept"] == 1.0 for r in report["results"])  # the pass key survives retrieval at both ends
    assert 0.0 <= report["mean_score"] <= 1.0
    text = run_lctk("eval", "ask", "--haystack", str(JARGON), "--task", "passkey", "--lengths", "1k", "--depths", "1")
    assert text.exit_code == 0 and "tokens" in text.stdout and "passkey: answers" in text.stdout


@pytest.mark.slow
def test_eval_search_cli_on_docstrings_and_annotations(tmp_path):
    import json
    import json as stdlib_json
    import shutil

    from conftest import run_lctk

    repo = tmp_path / "repo"
    shutil.copytree(Path(stdlib_json.__file__).parent, repo / "json", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"LCTK_INDEX_DIR": str(tmp_path / "indexes")}
    result = run_lctk("eval", "search", str(repo), "--limit", "6", "--format", "json", env=env)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["modes"]) == {"lexical", "dense", "hybrid"} and report["modes"]["hybrid"]["queries"] == 6
    annotations = tmp_path / "queries.json"
    annotations.write_text(json.dumps([{"query": "decode a JSON document into Python objects", "relevant": ["json/decoder.py"],
                                        "secondary": ["json/__init__.py"]}]))
    text = run_lctk("eval", "search", str(repo), "--annotations", str(annotations), "--modes", "hybrid", env=env)
    assert text.exit_code == 0, text.stderr
    assert text.stdout.splitlines()[0].split() == ["mode", "MRR", "R@1", "R@5", "R@10", "NDCG@10"]
    assert text.stdout.splitlines()[1].startswith("hybrid") and "1 queries" in text.stderr


def test_heatmap_png_is_written_atomically(tmp_path):
    from lctk.evaluation.plot import heatmap

    rows = [{"length": n, "depth": d, "score": (i + j) % 3 / 2} for i, n in enumerate((4096, 8192, 16384))
            for j, d in enumerate(depths(5))]
    out = heatmap(rows, tmp_path / "niah.png", "needle test")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["niah.png"]  # no temporary left behind
    with pytest.raises(InputError, match="no such directory"):
        heatmap(rows, tmp_path / "missing" / "x.png", "t")
    with pytest.raises(InputError, match=".png"):
        heatmap(rows, tmp_path / "x.jpg", "t")


def test_compress_retention_summary_and_chart(tmp_path):
    from lctk.evaluation.compress_eval import summarize
    from lctk.evaluation.plot import retention_chart

    rows = [{"id": f"t{i}", "kind": "needle", "method": m, "ratio": r, "retention": float(i == 0 or m == "lctk"),
             "input": 1000, "output": int(1000 / r), "violation": m == "tail" and r == 8}
            for i in range(2) for m in ("lctk", "tail") for r in (2, 8)]
    summary = summarize(rows)
    assert summary["needle"]["lctk"]["retention"] == {2: 1.0, 8: 1.0}
    assert summary["needle"]["tail"]["retention"] == {2: 0.5, 8: 0.5}
    assert summary["needle"]["tail"]["violations"] == 2 and summary["needle"]["lctk"]["achieved"] == pytest.approx(5.0)
    data = retention_chart(summary, tmp_path / "retention.png", "t").read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) > 5000


def test_needle_and_dependency_tasks_from_real_code():
    import shutil

    from lctk.evaluation.compress_eval import dependency_tasks, needle_tasks
    from lctk.sources.text import SourceText

    sources = [SourceText("shutil.py", "python", Path(shutil.__file__).read_text(encoding="utf-8"))]
    needles = needle_tasks(sources, 3, seed=1)
    assert len(needles) == 3 and needles == needle_tasks(sources, 3, seed=1)
    for task in needles:
        edited = task.sources[0].text.split("\n")
        assert re.match(rf"\s*def {task.name}\b", edited[task.lines[0] - 1])
        assert task.query not in "\n".join(edited[task.lines[0] - 1 : task.lines[0] + 4])  # its docstring is gone
    deps = dependency_tasks(sources, lambda text: len(text) // 4, 2, seed=1)
    assert deps and all(t.kind == "dependency" and t.lines for t in deps)
    for task in deps:
        prefix = task.sources[0].text.split("\n")
        assert all(1 <= line <= len(prefix) for line in task.lines) and task.query.lstrip().startswith(("def", "@", "async"))


@pytest.mark.slow
def test_eval_compress_cli_on_a_real_package(tmp_path):
    import json
    import json as stdlib_json
    import shutil

    from conftest import run_lctk

    repo = tmp_path / "repo"
    shutil.copytree(Path(stdlib_json.__file__).parent, repo / "json", ignore=shutil.ignore_patterns("__pycache__"))
    # few LM-scored candidates: first-time scoring costs ~1 s per 50 tokens on 2 cores
    result = run_lctk("eval", "compress", str(repo), "--tasks", "needle", "--limit", "1", "--ratios", "2,4",
                      "--candidates", "3", "--methods", "lctk,bm25,tail", "--format", "json", "--plot", str(tmp_path / "r.png"))
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["summary"]["needle"]) == {"lctk", "bm25", "tail"}
    assert len(report["tasks"]) == 2 * 3 and not any(r["violation"] for r in report["tasks"])
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_rank_report_matches_the_closed_forms():
    import numpy as np

    from lctk.evaluation.metrics import rank_report

    ranks = [1, 3, None, 12, 2, 150, 10]
    r = np.array([x if x is not None else 10**9 for x in ranks], dtype=float)
    report = rank_report(ranks, k=100)
    assert report["MRR"] == pytest.approx(np.mean(np.where(r <= 100, 1 / r, 0)))
    assert report["R@10"] == pytest.approx(np.mean(r <= 10)) and report["R@1"] == pytest.approx(1 / 7)
    assert report["NDCG@10"] == pytest.approx(np.mean(np.where(r <= 10, 1 / np.log2(r + 1), 0)))
