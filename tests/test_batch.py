"""`lctk batch`: manifests, the results directory, the Ray Data runner and the CLI, on the real default models.

The runner tests share one local Ray (module fixture); the CLI tests start their own in a subprocess,
as a user's shell would. Inputs are a small source tree and a short text document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_lctk

from lctk.batch.manifest import TaskKind, read_manifest
from lctk.errors import BackendUnavailableError, InputError, UsageError

NET = '''import os


def read_config(path):
    """Read the configuration file."""
    with open(path) as handle:
        return handle.read()


def retry_with_backoff(call, attempts=3):
    """Call `call` until it succeeds, sleeping longer after each failure."""
    import time
    for attempt in range(attempts):
        try:
            return call()
        except OSError:
            time.sleep(2 ** attempt)
    raise RuntimeError("gave up")
'''

SHAPES = '''class Circle:
    """A circle of a given radius."""

    def __init__(self, radius):
        self.radius = radius

    def area(self):
        return 3.14159 * self.radius ** 2


def total_area(shapes):
    """Sum the areas of all shapes."""
    return sum(shape.area() for shape in shapes)
'''

LIBRARY = """# Opening hours

The Harbor Street library is open from nine in the morning until six in the evening on weekdays.
On Saturdays it closes at noon, and it is closed on Sundays.

# Borrowing

Members may borrow up to eight books at a time for three weeks. Late returns cost ten cents per book per day.

# History

The library was founded in 1921 by the town council. It moved to a new building on Elm Avenue in 1968.
"""


def _tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "net.py").write_text(NET)
    (root / "pkg" / "shapes.py").write_text(SHAPES)
    (root / "library.md").write_text(LIBRARY)
    return root


def _manifest(root: Path, tasks: list[dict | str], name: str = "tasks.jsonl") -> Path:
    path = root / name
    path.write_text("".join((task if isinstance(task, str) else json.dumps(task)) + "\n" for task in tasks))
    return path


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _cli_compress(cwd: Path, *args: str) -> str:
    """What `lctk compress ARGS` prints, run from `cwd` (no score cache: every score is computed afresh)."""
    proc = subprocess.run([sys.executable, "-m", "lctk", "compress", *args, "--no-cache"], cwd=cwd, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


# ---------------------------------------------------------------- no Ray needed


def test_lctk_threads_sets_the_backends_thread_count(monkeypatch):
    from lctk.models.hardware import ENV_THREADS, core_count, cpu_count

    monkeypatch.delenv(ENV_THREADS, raising=False)
    assert cpu_count() == core_count() >= 1
    monkeypatch.setenv(ENV_THREADS, "3")
    assert cpu_count() == 3
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv(ENV_THREADS, bad)
        with pytest.raises(UsageError, match="LCTK_THREADS"):
            cpu_count()


def test_default_rate_agrees_with_the_cli():
    from lctk.batch import tasks
    from lctk.cli.commands import compress as command

    assert tasks.DEFAULT_RATE == command.DEFAULT_RATE


def test_manifest_ids_are_stable_and_paths_relative_to_it(tmp_path):
    (tmp_path / "jobs").mkdir()
    manifest = _manifest(tmp_path / "jobs", [
        {"path": "../src", "query": "q", "budget": 10},
        '{"budget": 10, "query": "q",  "path": "../src", "format": null}',  # same task, other key order, a null option
        {"id": "mine", "path": "/abs/src", "format": "JSON", "retrieval": "BM25"},
    ])
    manifest.write_text(manifest.read_text().replace("\n", "\n\n", 1))  # a blank line is skipped
    with pytest.raises(InputError, match=r"tasks\.jsonl:3: duplicate id '[0-9a-f]{16}' \(first on line 1\)"):
        read_manifest(manifest, "compress")
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([lines[0], lines[3]]) + "\n")
    first, mine = read_manifest(manifest, TaskKind.compress)
    assert len(first.id) == 16 and first.id == read_manifest(manifest, "compress")[0].id
    assert first.location("path") == str(tmp_path / "jobs" / ".." / "src") and first.line == 1
    assert mine.id == "mine" and mine.location("path") == "/abs/src"
    assert mine.fields["format"] == "json" and mine.fields["retrieval"] == "bm25"  # choices are case-insensitive, as the CLI's


BAD_MANIFESTS = [
    ('{"path": "a"}\n{"path": "b",}\n', 2, "not JSON"),
    ('["path", "a"]\n', 1, "a task is a JSON object, not list"),
    ('{"path": "a", "budgte": 10}\n', 1, "unknown field 'budgte'; compress tasks have: id, path, query, budget"),
    ('{"query": "q"}\n', 1, "missing field 'path'"),
    ('{"path": "a", "budget": "10"}\n', 1, "'budget' must be a whole number of 1 or more, not \"10\""),
    ('{"path": "a", "budget": true}\n', 1, "'budget' must be a whole number"),
    ('{"path": "a", "rate": 0}\n', 1, "'rate' must be a number above 0 and at most 1"),
    ('{"path": "a", "rate": 0.5, "budget": 9}\n', 1, "give budget or rate, not both"),
    ('{"path": "a", "format": "yaml"}\n', 1, "'format' must be one of text, xml, markdown, json"),
    ('{"path": "a", "tree": "yes"}\n', 1, "'tree' must be true or false"),
    ('{"path": "a", "query": "  "}\n', 1, "'query' must be a non-empty string"),
    ('{"path": "a", "path": "b"}\n', 1, "field 'path' given twice"),
    ('{"id": "x", "path": "a"}\n\n{"id": "x", "path": "b"}\n', 3, "duplicate id 'x' (first on line 1)"),
    ('{"id": 7, "path": "a"}\n', 1, "'id' must be a non-empty string"),
]


@pytest.mark.parametrize("text, line, message", BAD_MANIFESTS)
def test_a_bad_manifest_names_its_file_and_line(tmp_path, text, line, message):
    manifest = tmp_path / "tasks.jsonl"
    manifest.write_text(text)
    with pytest.raises(InputError) as caught:
        read_manifest(manifest, "compress")
    assert str(caught.value).startswith(f"{manifest}:{line}: ") and message in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)


def test_manifests_of_the_other_kinds_are_checked_too(tmp_path):
    manifest = _manifest(tmp_path, [{"document": "a.pdf", "question": "why?", "max_tokens": 0}])
    with pytest.raises(InputError, match=r":1: 'max_tokens' must be a whole number of 1 or more"):
        read_manifest(manifest, "ask")
    with pytest.raises(InputError, match=r":1: unknown field 'document'; index tasks have: id, path"):
        read_manifest(manifest, "index")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(InputError, match="no tasks"):
        read_manifest(tmp_path / "empty.jsonl", "ask")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"path": "a"}\n{"path": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"latin1\.jsonl:2: not UTF-8"):
        read_manifest(tmp_path / "latin1.jsonl", "index")
    with pytest.raises(InputError, match="no such manifest"):
        read_manifest(tmp_path / "none.jsonl", "index")


def test_bad_input_on_the_command_line_is_one_line_and_starts_no_ray(tmp_path):
    manifest = _manifest(tmp_path, [{"path": "a"}, {"path": "b", "rate": 2}])
    out = tmp_path / "out"
    assert_one_line_error(run_lctk("batch", "compress", "--manifest", str(manifest), "--out", str(out)), 1, f"{manifest}:2: 'rate' must be")
    assert_one_line_error(run_lctk("batch", "ask", "--manifest", str(tmp_path / "none.jsonl"), "--out", str(out)), 1, "no such manifest")
    good = _manifest(tmp_path, [{"path": "a"}], "good.jsonl")
    assert_one_line_error(run_lctk("batch", "index", "--manifest", str(good), "--out", str(out), "--gpus-per-worker", "0"), 2, "--gpus-per-worker must be above 0")
    assert_one_line_error(run_lctk("batch", "compress", "--manifest", str(good), "--out", str(out), "--model", "no-such-model"), 1, "no-such-model")
    assert_one_line_error(run_lctk("batch", "compress", "--manifest", str(good), "--out", str(manifest)), 1, "is a file")
    assert run_lctk("batch", "compress", "--manifest", str(good), "--out", str(out), "--workers", "0").exit_code == 2


def test_without_ray_the_command_says_how_to_install(monkeypatch):
    from lctk.batch.runner import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'lctk\[batch\]'"):
        import_ray()


def test_a_second_run_on_the_same_out_is_refused_and_a_torn_row_is_dropped(tmp_path):
    from lctk.batch.results import LOCK_FILE, open_results
    from lctk.batch.runner import run_batch
    from lctk.storage import file_lock

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text('{"id": "a", "status": "ok"}\n{"id": "b", "status": "error"}\n{"id": "c", "sta')
    with open_results(out) as results:
        assert results.done() == {"a"} and [row["id"] for row in results.rows] == ["a", "b"]
    assert (out / "results.jsonl").read_text().endswith('"error"}\n')  # the torn row is gone, the others stay
    manifest = _manifest(tmp_path, [{"path": "pkg"}])
    with file_lock(out / LOCK_FILE, timeout_s=0):
        with pytest.raises(InputError, match="another lctk batch is writing to"):
            run_batch(manifest, "index", out=out)


def test_workers_share_the_cluster_and_tasks_over_a_path_are_spread():
    from lctk.batch.runner import plan_workers, spread

    class FakeRay:
        def __init__(self, cpus, gpus=0.0):
            self.resources = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}

        def cluster_resources(self):
            return self.resources

        def nodes(self):
            return [{"Alive": True, "Resources": self.resources}]

    one = plan_workers(FakeRay(2.0), None, None)
    assert (one.workers, one.threads, one.cpus, one.gpus) == (1, 2, 2.0, None)
    three = plan_workers(FakeRay(2.0), 3, None)
    assert (three.workers, three.threads) == (3, 1) and three.cpus * 3 <= 2.0
    assert plan_workers(FakeRay(16.0), None, None).workers == 8
    gpu = plan_workers(FakeRay(8.0, gpus=2.0), None, 0.5)
    assert (gpu.workers, gpu.threads, gpu.gpus) == (4, 2, 0.5)
    with pytest.raises(InputError, match="need 2 GPUs; the Ray cluster has 0"):
        plan_workers(FakeRay(8.0), 2, 1.0)

    from lctk.batch.manifest import BatchTask

    tasks = [BatchTask(f"{path}{i}", TaskKind.compress, i + 1, {"path": path}, "/base") for i, path in enumerate("aaabc")]
    assert [t.id for t in spread(tasks)] == ["a0", "b3", "c4", "a1", "a2"]


def test_a_worker_whose_model_fails_to_load_records_every_task_as_failed(tmp_path, monkeypatch):
    from lctk.batch.runner import BatchWorker
    from lctk.models.hardware import ENV_THREADS, core_count

    monkeypatch.delenv(ENV_THREADS, raising=False)  # the worker sets both in its (here: this) process
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", str(core_count())))
    worker = BatchWorker("compress", core_count(), str(tmp_path / "missing.gguf"), "auto", None)
    assert os.environ[ENV_THREADS] == str(core_count())
    task = read_manifest(_manifest(tmp_path, [{"id": "t", "path": "src"}]), "compress")[0]
    rows = [json.loads(row) for row in worker({"task": [task.to_json()]})["row"]]
    assert rows == [{"id": "t", "kind": "compress", "status": "error", "error": worker.load_error, "seconds": 0.0, "path": "src", "query": None}]
    assert "missing.gguf" in worker.load_error and "\n" not in worker.load_error


# ---------------------------------------------------------------- the CLI (its own Ray, in a subprocess)


def test_cli_runs_a_manifest_prints_nothing_on_stdout_and_resumes(tmp_path):
    pytest.importorskip("ray.data", reason="lctk batch runs on Ray Data: pip install 'lctk[batch]'")
    root = _tree(tmp_path)
    manifest = _manifest(root, [
        {"id": "net", "path": "pkg/net.py", "query": "retry with backoff", "budget": 90, "retrieval": "bm25"},
        {"id": "gone", "path": "missing", "query": "x"},
    ])
    out = tmp_path / "results"
    first = run_lctk("batch", "compress", "--manifest", str(manifest), "--out", str(out))
    assert first.exit_code == 1 and first.stdout == ""
    assert "Traceback" not in first.stderr
    lines = [line for line in first.stderr.splitlines() if line.strip()]
    assert all(line.startswith(("lctk:", "error:")) for line in lines), first.stderr  # no Ray log lines on the terminal
    assert "lctk: warning: task gone failed: no such file or directory" in first.stderr
    assert "2 compress tasks: 0 done before, 2 run now (1 ok, 1 failed)" in first.stderr
    assert lines[-1].startswith("error: 1 of 2 tasks failed")
    rows = {row["id"]: row for row in _rows(out)}
    assert rows["net"]["status"] == "ok" and rows["net"]["output"] == _cli_compress(root, "pkg/net.py", "-q", "retry with backoff", "-B", "90", "--retrieval", "bm25")
    assert rows["gone"]["status"] == "error" and "missing" in rows["gone"]["error"]

    (root / "missing").mkdir()
    (root / "missing" / "shapes.py").write_text(SHAPES)
    second = run_lctk("batch", "compress", "--manifest", str(manifest), "--out", str(out), "--format", "parquet")
    assert second.exit_code == 0 and second.stdout == "", second.stderr
    assert "2 compress tasks: 1 done before, 1 run now (1 ok, 0 failed)" in second.stderr
    assert [row["id"] for row in _rows(out)] == ["net", "gone", "gone"]  # rows are only ever added

    import pyarrow.parquet as pq

    table = pq.read_table(out / "results.parquet").to_pylist()
    assert [(row["id"], row["status"]) for row in table] == [("net", "ok"), ("gone", "ok")]  # the latest row of each, manifest order


# ---------------------------------------------------------------- the runner, on one Ray for the module


@pytest.fixture(scope="module")
def ray_cluster():
    import logging

    pytest.importorskip("ray.data", reason="lctk batch runs on Ray Data: pip install 'lctk[batch]'")
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return _tree(tmp_path_factory.mktemp("batch"))


def test_compress_rows_are_what_the_cli_prints_and_a_failure_does_not_stop_the_rest(ray_cluster, tree, tmp_path):
    from lctk.batch.runner import run_batch

    tasks = [
        {"id": "hybrid", "path": "pkg", "query": "add retry with backoff", "budget": 120},
        {"id": "tree", "path": "pkg", "query": "area of a circle", "rate": 0.5, "format": "markdown", "tree": True, "retrieval": "bm25", "no_fine": True},
        {"id": "json", "path": str(tree / "pkg" / "shapes.py"), "budget": 90, "format": "json", "candidates": 4},  # absolute, no query
        {"id": "gone", "path": "pkg/gone.py", "query": "x"},
        {"id": "again", "path": "pkg", "query": "add retry with backoff", "budget": 100},  # the same chunks and query as "hybrid"
    ]
    manifest = _manifest(tree, tasks)
    seen: list[tuple[int, int]] = []
    summary = run_batch(manifest, "compress", out=tmp_path / "out", on_progress=lambda done, total: seen.append((done, total)))
    assert (summary.tasks, summary.done_before, summary.run_now, summary.ok, summary.failed) == (5, 0, 5, 4, 1)
    assert (summary.workers, summary.threads_per_worker) == (1, 2) and seen[-1] == (5, 5)
    rows = {row["id"]: row for row in _rows(tmp_path / "out")}
    assert rows["gone"]["status"] == "error" and rows["gone"]["error"] == f"no such file or directory: {tree / 'pkg' / 'gone.py'}"
    assert _cli_compress(tree, "pkg", "-q", "add retry with backoff", "-B", "120") == rows["hybrid"]["output"]
    assert _cli_compress(tree, "pkg", "-q", "area of a circle", "-r", "0.5", "--format", "markdown", "--tree", "--retrieval", "bm25", "--no-fine") == rows["tree"]["output"]
    cli_json = json.loads(_cli_compress(tree, str(tree / "pkg" / "shapes.py"), "-B", "90", "--format", "json", "--candidates", "4"))
    batch_json = json.loads(rows["json"]["output"])
    for payload in (cli_json, batch_json):
        payload.pop("scoring")  # time taken and cache hits differ from run to run
    assert batch_json == cli_json and batch_json["files"][0]["path"] == str(tree / "pkg" / "shapes.py")
    hybrid = rows["hybrid"]
    assert "retry_with_backoff" in hybrid["output"] and hybrid["output_tokens"] <= hybrid["budget_tokens"] == 120
    assert hybrid["ratio"] == round(hybrid["input_tokens"] / hybrid["output_tokens"], 3) and hybrid["files"] == 2
    assert rows["tree"]["output"].startswith("## Directory tree")
    assert all(row["seconds"] >= 0 and row["kind"] == "compress" for row in rows.values())
    # the worker's score cache works on the thread its tasks run on: the same query over the same chunks scores nothing again
    assert rows["again"]["lm_sequences"] == 0 and rows["again"]["lm_cache_hits"] == hybrid["lm_sequences"] + hybrid["lm_cache_hits"] > 0

    again = run_batch(manifest, "compress", out=tmp_path / "out")  # only the failed task runs again
    assert (again.done_before, again.run_now, again.ok, again.failed) == (4, 1, 0, 1)
    ids = [row["id"] for row in _rows(tmp_path / "out")]
    assert sorted(ids[:5]) == ["again", "gone", "hybrid", "json", "tree"] and ids[5] == "gone"  # rows are only ever added


def test_index_and_ask_tasks(ray_cluster, tree, tmp_path):
    import shutil

    from lctk.batch.runner import run_batch

    shutil.copytree(tree / "pkg", tmp_path / "src")
    manifest = _manifest(tmp_path, [{"id": "src", "path": "src"}, {"id": "none", "path": "nowhere"}], "index.jsonl")
    summary = run_batch(manifest, "index", out=tmp_path / "index-out", output_format="parquet")
    assert (summary.ok, summary.failed) == (1, 1) and summary.parquet is not None
    rows = {row["id"]: row for row in _rows(tmp_path / "index-out")}
    assert rows["src"]["outcome"] == "built" and rows["src"]["index"]["files"] == 2 and rows["src"]["index"]["units"] >= 4
    assert rows["none"]["error"].startswith("no such file or directory")

    shutil.copy(tree / "library.md", tmp_path / "library.md")
    manifest = _manifest(tmp_path, [
        {"id": "borrow", "document": "library.md", "question": "How many books may a member borrow?", "max_tokens": 24},
        {"id": "founded", "document": "library.md", "question": "When was the library founded?", "max_tokens": 24, "mode": "prior"},
        {"id": "lost", "document": "lost.pdf", "question": "why?"},
    ], "ask.jsonl")
    summary = run_batch(manifest, "ask", out=tmp_path / "ask-out")
    assert (summary.ok, summary.failed) == (2, 1)
    rows = {row["id"]: row for row in _rows(tmp_path / "ask-out")}
    borrow, founded = rows["borrow"], rows["founded"]
    assert any("eight books" in item["text"] for item in borrow["evidence"]) and "eight" in borrow["answer"].lower()
    assert any("1921" in item["text"] for item in founded["evidence"]) and founded["mode"] == "prior"
    assert borrow["question"] == "How many books may a member borrow?" and borrow["pages"] == [] and borrow["answer_model"]
    cli = run_lctk("ask", str(tmp_path / "library.md"), borrow["question"], "--format", "json", "-n", "24")
    assert cli.exit_code == 0, cli.stderr
    expected = json.loads(cli.stdout)
    got = {key: value for key, value in borrow.items() if key in expected}
    for payload in (expected, got):
        payload.pop("timings")
    assert got == expected  # the row holds what `lctk ask --format json` prints
    assert rows["lost"]["status"] == "error" and "no such file" in rows["lost"]["error"]
    assert os.path.exists(tmp_path / "src" / ".lctk")  # the index lives with the indexed tree, as `lctk index` puts it
