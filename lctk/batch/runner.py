"""`run_batch`: a manifest's pending tasks on Ray Data, each result row written as it arrives.

    ray.data.from_items(pending)                       one block per task
      .map_batches(BatchWorker, batch_size=1,          an actor pool: every actor loads the kind's
                   compute=ActorPoolStrategy(size=W))  models once, then runs task after task
      .iter_rows()                                     on the driver: append + fsync each row

Without an address a local Ray instance is started on this machine's cores and stopped at the
end (an already initialised Ray, such as a test's or a notebook's, is used as it is); with one,
the job runs on that cluster, whose workers must see the manifest's paths and have lctk
installed. The workers of a Ray started here inherit this process's environment; on any other
Ray the driver's LCTK_* and Hugging Face offline variables travel with the job (runtime_env), so
the workers choose the models and cache the CLI would.

Each of the W workers gets an equal share of the cluster's CPUs and runs its backends on that
many threads (LCTK_THREADS, OMP_NUM_THREADS), so W workers never oversubscribe the cores.
Tasks over the same path are spread apart in the queue: two workers do not compute the same
package's vectors at the same moment, and a second task over a path finds the first one's
vectors in the shared score cache. A worker whose models fail to load records every task it
is given as failed with that error.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lctk.batch.manifest import BatchTask, TaskKind, read_manifest
from lctk.batch.results import ResultsDir, ResultsFormat, open_results
from lctk.batch.tasks import STATUS_ERROR, STATUS_OK, error_line, failed_row, run_task, warm_up
from lctk.batch.warm import WarmModels
from lctk.errors import BackendUnavailableError, InputError, LctkError, UsageError, first_line
from lctk.models.hardware import ENV_THREADS, core_count
from lctk.vocabulary import parse_choice

log = logging.getLogger("lctk")

# Default workers: one per this many cores. On 2 cores, 20 cold compress tasks over 4 packages took
# 969 s with 1 worker x 2 threads and 994 s with 2 workers x 1 thread (bench/batch.py, BENCHMARKS.md).
CORES_PER_WORKER = 2
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME")  # with every LCTK_* variable
INSTALL_HINT = "pip install 'lctk[batch]'"

OnProgress = Callable[[int, int], None]
OnRow = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class BatchSummary:
    """What a batch run did: task counts, the worker layout, the wall time and the files written."""

    kind: str
    tasks: int  # in the manifest
    done_before: int  # ok in an earlier run: skipped
    run_now: int
    ok: int
    failed: int
    workers: int  # 0 when nothing was left to run
    threads_per_worker: int
    seconds: float
    results: str  # results.jsonl
    parquet: str | None  # results.parquet, with --format parquet


@dataclass(frozen=True)
class WorkerPlan:
    """How the pool is laid out on the cluster."""

    workers: int
    threads: int  # per worker
    cpus: float  # Ray CPUs reserved per worker
    gpus: float | None  # Ray GPUs per worker


def default_workers(cores: int) -> int:
    """Workers when --workers is not given: one per CORES_PER_WORKER cores, at least one."""
    return max(1, cores // CORES_PER_WORKER)


def run_batch(
    manifest: str | os.PathLike,
    kind: TaskKind | str,
    *,
    out: str | os.PathLike,
    workers: int | None = None,
    gpus_per_worker: float | None = None,
    address: str | None = None,
    output_format: ResultsFormat | str = ResultsFormat.jsonl,
    model: str | None = None,
    backend: str = "auto",
    embed_model: str | None = None,
    on_progress: OnProgress | None = None,
    on_row: OnRow | None = None,
) -> BatchSummary:
    """Run every task of `manifest` not already ok in `out`, on a Ray actor pool, appending result rows to `out`.

    Args:
        manifest: tasks.jsonl (lctk.batch.manifest); every line a task of `kind`.
        out: the results directory (lctk.batch.results); a re-run resumes it.
        workers: actors in the pool (default: one per CORES_PER_WORKER cores, or one per
            `gpus_per_worker` GPUs); each loads the models once.
        gpus_per_worker: Ray GPUs each actor reserves (None: CPU only).
        address: a Ray cluster to run on (ray://host:10001, host:6379 or auto); None starts Ray here.
        output_format: jsonl, or parquet to also write results.parquet at the end.
        model / backend / embed_model: as the CLI's --model, --backend (a resolved value) and --embed-model.
        on_progress: called with (rows done, rows to run) as rows arrive.
        on_row: called with each row after it is written.

    Returns:
        the counts; a failed task is in `failed`, not an exception.
    """
    started = time.perf_counter()
    kind = parse_choice(TaskKind, kind, "task kind")
    chosen_format = parse_choice(ResultsFormat, output_format, "results format", UsageError)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be 1 or more (got {workers})")
    if gpus_per_worker is not None and not gpus_per_worker > 0:
        raise UsageError(f"--gpus-per-worker must be above 0 (got {gpus_per_worker})")
    tasks = read_manifest(manifest, kind)
    check_models(kind, model, embed_model)  # a mistyped model fails here, before Ray starts
    worker = {"kind": kind.value, "model": model, "backend": backend, "embed_model": embed_model}
    with open_results(out) as results:
        done = results.done()
        pending = [task for task in tasks if task.id not in done]
        plan, counts = None, {STATUS_OK: 0, STATUS_ERROR: 0}
        if pending:
            ray = import_ray()
            with _ray_session(ray, address) as started_here:
                plan = plan_workers(ray, workers, gpus_per_worker)
                # a Ray started here runs its workers in this environment; any other gets the variables with the job
                env = None if started_here else forwarded_env()
                log.info("%s: %d tasks, %d done before; running %d on %d worker%s x %d thread%s", manifest, len(tasks),
                         len(tasks) - len(pending), len(pending), plan.workers, "" if plan.workers == 1 else "s",
                         plan.threads, "" if plan.threads == 1 else "s")
                counts = _write_rows(results, _rows(ray, spread(pending), plan, worker, env), len(pending), on_progress, on_row)
        parquet = results.write_parquet([task.id for task in tasks]) if chosen_format == ResultsFormat.parquet else None
        return BatchSummary(kind.value, len(tasks), len(tasks) - len(pending), len(pending), counts[STATUS_OK], counts[STATUS_ERROR],
                            plan.workers if plan else 0, plan.threads if plan else 0, time.perf_counter() - started,
                            str(results.jsonl), str(parquet) if parquet is not None else None)


def _write_rows(results: ResultsDir, rows: Generator[str, None, None], total: int, on_progress: OnProgress | None,
                on_row: OnRow | None) -> dict[str, int]:
    """Append each row as it arrives; rows by status. Ray's own failures become one LctkError line."""
    counts = {STATUS_OK: 0, STATUS_ERROR: 0}
    if on_progress is not None:
        on_progress(0, total)
    try:
        for line in rows:
            row = results.append(line)
            counts[STATUS_OK if row.get("status") == STATUS_OK else STATUS_ERROR] += 1
            if on_row is not None:
                on_row(row)
            if on_progress is not None:
                on_progress(sum(counts.values()), total)
    except (LctkError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - a dead worker or node, a lost cluster
        raise LctkError(f"the batch stopped after {sum(counts.values())} of {total} tasks: {first_line(exc)}; "
                        f"the rows written are kept in {results.jsonl}; run again to continue") from None
    finally:
        with contextlib.suppress(Exception):
            rows.close()
    return counts


def check_models(kind: TaskKind, model: str | None, embed_model: str | None) -> None:
    """Resolve the model names the workers will load (no loading), so a typo fails once, not in every task."""
    from lctk.models.registry import EMBED, LM, resolve_model, role_model

    if kind == TaskKind.compress:
        resolve_model(role_model("score", model).value, LM)
    elif kind == TaskKind.ask:
        resolve_model(role_model("attention").value, LM)
        resolve_model(role_model("answer", model).value, LM)
    else:
        resolve_model(role_model("embed", embed_model).value, EMBED)


def import_ray():
    """Ray with Ray Data, or a BackendUnavailableError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is a separate extra of ray
    except ImportError:
        raise BackendUnavailableError(f"lctk batch runs on Ray Data, which is not installed: {INSTALL_HINT}") from None
    return ray


def plan_workers(ray, workers: int | None, gpus_per_worker: float | None) -> WorkerPlan:
    """Split the cluster's CPUs (and GPUs) between the workers."""
    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 1.0)), float(resources.get("GPU", 0.0))
    node_cpus = max((float(node.get("Resources", {}).get("CPU", 0.0)) for node in ray.nodes() if node.get("Alive")), default=0.0) or cpus
    if gpus_per_worker is not None:
        count = workers or max(1, int(gpus // gpus_per_worker))
        if count * gpus_per_worker > gpus + 1e-9:
            raise InputError(f"{count} worker{'' if count == 1 else 's'} x {gpus_per_worker:g} GPUs need {count * gpus_per_worker:g} GPUs; "
                             f"the Ray cluster has {gpus:g}")
    else:
        count = workers or default_workers(int(cpus))
    share = min(cpus / count, node_cpus)
    # Ray counts resources in units of 1/10,000; rounding down keeps W shares within the total
    return WorkerPlan(count, max(1, int(share)), math.floor(share * 10_000) / 10_000, gpus_per_worker)


def spread(tasks: Sequence[BatchTask]) -> list[BatchTask]:
    """Tasks reordered round-robin over their paths: tasks over one path are as far apart as they can be."""
    groups: dict[str, list[BatchTask]] = {}
    for task in tasks:
        groups.setdefault(task.location("document" if task.kind == TaskKind.ask else "path"), []).append(task)
    return [task for turn in itertools.zip_longest(*groups.values()) for task in turn if task is not None]


class BatchWorker:
    """A Ray Data actor: takes its thread share, loads the kind's models once, runs one task per call."""

    def __init__(self, kind: str, threads: int, model: str | None, backend: str, embed_model: str | None) -> None:
        os.environ[ENV_THREADS] = str(threads)  # llama.cpp and compress's token counting (lctk.models.hardware)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # torch, read when it is first imported
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        self.kind = TaskKind(kind)
        self.models = WarmModels(model=model, backend=backend, embed_model=embed_model)
        self.load_error: str | None = None
        try:
            warm_up(self.kind, self.models)
        except Exception as exc:  # noqa: BLE001 - recorded on every task this worker gets
            self.load_error = error_line(exc)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        rows = []
        for text in batch["task"]:
            task = BatchTask.from_json(str(text))
            row = failed_row(task, self.load_error) if self.load_error is not None else run_task(task, self.models)
            rows.append(json.dumps(row, ensure_ascii=False, default=_plain))
        return {"row": rows}


def _plain(value: Any) -> Any:
    """NumPy scalars (and anything else JSON lacks) as plain values."""
    return value.item() if hasattr(value, "item") else str(value)


def _rows(ray, tasks: list[BatchTask], plan: WorkerPlan, worker: dict[str, Any], env: dict[str, str] | None) -> Generator[str, None, None]:
    """Each task's row (JSON text), in the order they finish; `worker` holds BatchWorker's model choices, `env` the workers' variables."""
    items = [{"task": task.to_json()} for task in tasks]
    options: dict[str, Any] = {
        "batch_size": 1,
        "compute": ray.data.ActorPoolStrategy(size=plan.workers, max_tasks_in_flight_per_actor=1),  # no queue behind a busy worker
        "num_cpus": plan.cpus,
        "fn_constructor_kwargs": {**worker, "threads": plan.threads},
    }
    if env is not None:
        options["runtime_env"] = {"env_vars": env}  # (a worker with its own runtime env cannot be prestarted: ~1 s more)
    if plan.gpus is not None:
        options["num_gpus"] = plan.gpus
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray's deprecation notices are not the user's to act on
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # progress is the caller's (on_progress), on stderr
        if hasattr(context, "memory_usage_poll_interval_s"):
            # Ray Data samples each task's memory (/proc/<pid>/smaps) every second in a thread beside the
            # UDF; the rows are small, so the numbers are not needed and the cores stay with the models.
            context.memory_usage_poll_interval_s = None
        if _takes_remote_args(ray):
            # A worker that dies fails the run (rows written so far are kept; a re-run resumes)
            # instead of being restarted; Ray also warns on the terminal about restartable actors.
            options["max_restarts"] = 0
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(BatchWorker, **options)
        for row in dataset.iter_rows():
            yield str(row["row"])


def _takes_remote_args(ray) -> bool:
    import inspect

    parameters = inspect.signature(ray.data.Dataset.map_batches).parameters.values()
    return any(parameter.kind == inspect.Parameter.VAR_KEYWORD for parameter in parameters)


def forwarded_env() -> dict[str, str]:
    """The driver's variables the workers need to choose the same models and cache (LCTK_THREADS is per worker)."""
    return {name: value for name, value in os.environ.items()
            if (name.startswith("LCTK_") and name != ENV_THREADS) or name in FORWARDED_ENV}


@contextlib.contextmanager
def _ray_session(ray, address: str | None) -> Iterator[bool]:
    """Ray for the run: the caller's if initialised, else a quiet local instance (or a connection to `address`), shut down
    after; yields whether this process started the instance (its workers then share this environment)."""
    if ray.is_initialized():
        _quiet_ray_loggers()
        yield False
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # an offline batch sends no usage report
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(address="local", num_cpus=core_count(), include_dashboard=False, **options)
    except Exception as exc:  # noqa: BLE001 - a wrong address, an unreachable cluster, a version mismatch
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise LctkError(f"cannot start {where}: {first_line(exc)}") from None
    _quiet_ray_loggers()
    try:
        yield not address
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()


def _quiet_ray_loggers() -> None:
    """Ray's and Ray Data's INFO lines (execution plans, "progress bars disabled") stay in Ray's own log files."""
    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)
