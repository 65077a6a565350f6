"""Benchmark `lctk batch compress` against a shell loop of `lctk compress` calls on the same tasks.

20 compress tasks (5 per package over requests, packaging, attrs and toolz; each query names a
real function of its package) at 4x (--rate 0.25), default models and retrieval. Run as:

    (a) a shell loop: one `lctk compress` process per task (bash, outputs to files);
    (b) `lctk batch compress` on the same tasks, once per --workers value.

Each run gets a fresh, empty cache directory (scores, vectors, documents) with only the one-time
model builds linked in (as tests/conftest.py does), so no run reuses another's scores. Then the
same tasks at 8x run again, (a) and (b) with the first --workers value, each over the cache its
cold run left (a re-run with a new budget: scoring is mostly cached, so start-up counts). The
outputs must be byte-identical to the shell loop's. Prints the tables and, on a full run, writes
the `batch` section of BENCHMARKS.md. Run nothing else CPU-heavy meanwhile.

Usage: python bench/batch.py [--tasks-per-package 5] [--workers 1,2] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import write_section  # noqa: E402

DATA = ROOT / "bench" / ".data"
RATE = 0.25  # 4x compression
WARM_RATE = 0.125  # the re-run: 8x over the 4x run's cache
MODEL_BUILDS = ("converted", "weights", "static")  # one-time model builds: linked into every fresh cache (tests/conftest.py)
PACKAGES = {  # name -> (directory under bench/.data, five tasks naming one of its functions)
    "requests": ("requests-2.32.3/src/requests", [
        "Fix how PreparedRequest.prepare_body encodes a JSON body when files are also given",
        "Why does resolve_redirects drop the Authorization header when a redirect goes to another host?",
        "get_encoding_from_headers should return utf-8 for application/json responses without a charset",
        "Add a retry to HTTPAdapter.send when the connection pool is full",
        "should_bypass_proxies ignores CIDR ranges in no_proxy; find where the hosts are compared",
    ]),
    "packaging": ("packaging-24.1/src/packaging", [
        "canonicalize_name with validate=True should reject a name that starts with a dot",
        "How does SpecifierSet.contains decide whether to accept prereleases?",
        "Marker.evaluate fails on python_full_version with a local version suffix like 3.11.0+local",
        "Explain Specifier._compare_compatible and the ~= operator's prefix match",
        "parse_requirement gives a poor error message when the extras bracket is not closed",
    ]),
    "attrs": ("attrs-24.2.0/src/attr", [
        "evolve should raise a clear error when given an attribute name the class does not have",
        "asdict with recurse=True and retain_collection_types=True turns nested tuples into lists",
        "Where does _ClassBuilder add __slots__, and how is weakref_slot handled?",
        "The instance_of validator's error message should name the expected type",
        "How does define choose slots=True and auto_attribs by default?",
    ]),
    "toolz": ("toolz-1.0.0/toolz", [
        "groupby should accept a non-callable key such as a string index into each item",
        "merge_with should take a factory keyword for the type of the output dict",
        "How does curry combine keyword arguments given across several calls?",
        "sliding_window on a sequence shorter than n returns nothing; where is that decided?",
        "get_in with no_default=True should raise KeyError for a missing key",
    ]),
}


class LoadMonitor:
    """The 1-minute load average, sampled every 15 s while a run goes on: about 2 on 2 cores means nothing else ran."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(15.0):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        return f"{sum(self.samples) / len(self.samples):.1f} (max {max(self.samples):.1f})" if self.samples else "-"


LOADS: dict[str, str] = {}  # run label -> load average while it ran


def cache_env(parent: Path, name: str) -> dict[str, str]:
    """Environment for a run: cache directory `name` (made empty, with the model builds linked in, on first use), no user config."""
    from platformdirs import user_cache_dir

    home = Path(os.environ.get("LCTK_CACHE_DIR") or user_cache_dir("lctk", appauthor=False)).expanduser()
    cache = parent / f"cache-{name}"
    if cache.is_dir():
        return {**os.environ, "LCTK_CACHE_DIR": str(cache), "LCTK_CONFIG": str(cache / "no-config.toml"), "HF_HUB_OFFLINE": "1"}
    cache.mkdir()
    for build in MODEL_BUILDS:
        (home / build).mkdir(parents=True, exist_ok=True)
        (cache / build).symlink_to(home / build, target_is_directory=True)
    return {**os.environ, "LCTK_CACHE_DIR": str(cache), "LCTK_CONFIG": str(cache / "no-config.toml"), "HF_HUB_OFFLINE": "1"}


def make_tasks(per_package: int, rate: float = RATE) -> list[dict]:
    tasks = []
    for name, (directory, queries) in PACKAGES.items():
        for number, query in enumerate(queries[:per_package], 1):
            tasks.append({"id": f"{name}-{number}", "path": directory, "query": query, "rate": rate})
    return tasks


def shell_loop(tasks: list[dict], work: Path, cache: str, tag: str) -> tuple[float, dict[str, bytes]]:
    """(a): a bash script with one `lctk compress` per task, run from the manifest's directory."""
    outputs = work / f"loop-out-{tag}"
    outputs.mkdir()
    lctk = f"{shlex.quote(sys.executable)} -m lctk"
    lines = ["set -e"] + [f"{lctk} compress {shlex.quote(t['path'])} -q {shlex.quote(t['query'])} --rate {t['rate']} "
                          f"> {shlex.quote(str(outputs / (t['id'] + '.txt')))} 2>/dev/null" for t in tasks]
    script = work / f"loop-{tag}.sh"
    script.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    with LoadMonitor() as load:
        subprocess.run(["bash", str(script)], cwd=DATA, env=cache_env(work, cache), check=True)
    seconds = time.perf_counter() - started
    LOADS[f"loop {tag}"] = load.summary()
    return seconds, {t["id"]: (outputs / f"{t['id']}.txt").read_bytes() for t in tasks}


def batch_run(manifest: Path, work: Path, workers: int, cache: str, tag: str) -> tuple[float, dict[str, dict]]:
    """(b): `lctk batch compress` with `workers` workers on the same manifest."""
    out = work / f"batch-out-{tag}"
    started = time.perf_counter()
    with LoadMonitor() as load:
        proc = subprocess.run([sys.executable, "-m", "lctk", "batch", "compress", "--manifest", str(manifest), "--out", str(out),
                               "--workers", str(workers)], env=cache_env(work, cache), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    LOADS[f"batch {tag}"] = load.summary()
    if proc.returncode != 0:
        raise SystemExit(f"lctk batch failed: {proc.stderr}")
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return seconds, {row["id"]: row for row in rows}


def _row(label: str, n: int, seconds: float, loop_s: float, rows: dict[str, dict] | None, loop_out: dict[str, bytes], tasks: list[dict]) -> str:
    same = "-"
    if rows is not None:
        count = sum(rows[t["id"]]["status"] == "ok" and rows[t["id"]]["output"].encode() == loop_out[t["id"]] for t in tasks)
        same = "yes" if count == n else f"no: {count} of {n}"
    return f"| {label} | {n} | {seconds:.1f} | {seconds / n:.1f} | {loop_s / seconds:.2f}x | {same} |"


def report(tasks: list[dict], loop: tuple[float, dict[str, bytes]], batches: dict[int, tuple[float, dict[str, dict]]],
           warm_loop: tuple[float, dict[str, bytes]], warm_batch: tuple[int, float, dict[str, dict]]) -> str:
    n, (loop_s, loop_out) = len(tasks), loop
    header = ["| run | tasks | wall s | s per task | speed-up | outputs identical to the loop |", "|---|---:|---:|---:|---:|---|"]
    lines = [f"{n} compress tasks ({n // len(PACKAGES)} per package over {', '.join(PACKAGES)}; each query names one of the package's "
             f"functions) at 4x (--rate {RATE}), default models and hybrid retrieval, every run from an empty score cache:", "", *header,
             _row("shell loop: one `lctk compress` process per task", n, loop_s, loop_s, None, loop_out, tasks)]
    for workers, (seconds, rows) in batches.items():
        threads = max(1, (os.cpu_count() or 1) // workers)
        lines.append(_row(f"`lctk batch compress --workers {workers}` ({workers} x {threads} thread{'s' if threads > 1 else ''})",
                          n, seconds, loop_s, rows, loop_out, tasks))
    (warm_loop_s, warm_loop_out), (warm_workers, warm_s, warm_rows) = warm_loop, warm_batch
    lines += ["", f"The same tasks again at 8x (--rate {WARM_RATE}), each run over the score cache its 4x run left "
              "(AMI scores and vectors cached; kept functions the 4x run did not read whole are scored):", "", *header,
              _row("shell loop", n, warm_loop_s, warm_loop_s, None, warm_loop_out, tasks),
              _row(f"`lctk batch compress --workers {warm_workers}`", n, warm_s, warm_loop_s, warm_rows, warm_loop_out, tasks)]
    lines += ["", "Where the time goes (a batch row carries its task's own seconds, the models already loaded):", ""]
    for workers, (seconds, rows) in batches.items():
        task_s = sum(rows[t["id"]]["seconds"] for t in tasks)
        lm_tokens = sum(rows[t["id"]].get("lm_tokens", 0) for t in tasks)
        lines.append(f"- 4x, batch with {workers} worker{'s' if workers > 1 else ''}: {task_s:.1f} s of task work ({task_s / n:.1f} s each, "
                     f"{lm_tokens:,} LM tokens scored in all), {seconds - task_s / workers:.1f} s of wall time around it "
                     "(Ray start, worker start, model load, shutdown)")
    warm_task_s = sum(warm_rows[t["id"]]["seconds"] for t in tasks)
    lines.append(f"- 8x re-run, batch: {warm_task_s / n:.2f} s of work per task, {warm_s - warm_task_s / warm_workers:.1f} s around it; "
                 f"the loop's {warm_loop_s / n:.2f} s per call is mostly starting Python, importing lctk and loading the models")
    lines.append("- load average while each ran (2 busy threads on 2 cores read about 2): "
                 + "; ".join(f"{label} {value}" for label, value in LOADS.items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks-per-package", type=int, default=5)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to run the batch with (the first also re-runs warm)")
    parser.add_argument("--no-write", action="store_true", help="print the tables only (a partial run never writes)")
    args = parser.parse_args()
    missing = [directory for directory, _ in PACKAGES.values() if not (DATA / directory).is_dir()]
    if missing:
        raise SystemExit(f"unpack the sdists first (python bench/compress.py fetches them): missing {', '.join(missing)}")
    tasks, warm_tasks = make_tasks(args.tasks_per_package), make_tasks(args.tasks_per_package, WARM_RATE)
    counts = [int(w) for w in args.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="lctk-bench-batch-"))
    try:
        manifest, warm_manifest = DATA / "batch-tasks.jsonl", DATA / "batch-tasks-8x.jsonl"  # paths relative to bench/.data, as the loop's cwd
        manifest.write_text("".join(json.dumps(task) + "\n" for task in tasks))
        warm_manifest.write_text("".join(json.dumps(task) + "\n" for task in warm_tasks))
        print(f"shell loop: {len(tasks)} tasks ...", file=sys.stderr)
        loop = shell_loop(tasks, work, "loop", "4x")
        batches = {}
        for workers in counts:
            print(f"lctk batch compress --workers {workers} ...", file=sys.stderr)
            batches[workers] = batch_run(manifest, work, workers, f"batch-{workers}", f"4x-{workers}")
        print("8x over the caches ...", file=sys.stderr)
        warm_loop = shell_loop(warm_tasks, work, "loop", "8x")
        warm_batch = (counts[0], *batch_run(warm_manifest, work, counts[0], f"batch-{counts[0]}", "8x"))
        table = report(tasks, loop, batches, warm_loop, warm_batch)
        print(table)
        if not args.no_write and args.tasks_per_package == 5:
            write_section(ROOT / "BENCHMARKS.md", "batch", "## batch — `python bench/batch.py`\n\n" + table)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
