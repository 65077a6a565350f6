"""A batch's output directory: result rows appended as they arrive, resumable, one writer at a time.

Layout of `--out DIR`:

    results.jsonl    one JSON row per finished task (lctk.batch.tasks), appended, flushed and
                     fsynced one by one: a killed run keeps every row it wrote
    results.parquet  with --format parquet: the latest row of each task, in manifest order,
                     rewritten (atomically) at the end of every run
    .lock            held while a run writes; a second run on the same DIR fails at once

A re-run skips the tasks whose latest row says ok and runs the rest again (failed ones are
retried); rows are only ever added, so the file keeps every attempt. A last line cut short by a
kill (no newline) is dropped before new rows are appended.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import IO, Any

from lctk.errors import InputError, LctkError
from lctk.storage import atomic_file, file_lock

log = logging.getLogger("lctk")

RESULTS_FILE = "results.jsonl"
PARQUET_FILE = "results.parquet"
LOCK_FILE = ".lock"


class ResultsFormat(str, Enum):
    """What a batch writes: the JSON Lines file always, and with parquet a Parquet copy at the end."""

    jsonl = "jsonl"
    parquet = "parquet"


class ResultsDir:
    """An open, locked output directory (see the module docstring); made by `open_results`."""

    def __init__(self, path: Path, handle: IO[bytes], rows: list[dict[str, Any]]):
        self.path = path
        self.jsonl = path / RESULTS_FILE
        self._handle = handle
        self.rows = rows  # every row in the file, oldest first

    def done(self) -> set[str]:
        """Ids whose latest row is ok."""
        latest = {row["id"]: row for row in self.rows}
        return {task_id for task_id, row in latest.items() if row.get("status") == "ok"}

    def append(self, line: str) -> dict[str, Any]:
        """Write one row (a JSON object on one line) durably; returns it parsed."""
        row = json.loads(line)
        self._handle.write(line.rstrip("\n").encode("utf-8") + b"\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.rows.append(row)
        return row

    def write_parquet(self, order: Sequence[str]) -> Path:
        """results.parquet: the latest row of each task, those of `order` first and in that order."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            from lctk.errors import BackendUnavailableError

            raise BackendUnavailableError("--format parquet needs pyarrow: pip install 'lctk[batch]'") from None
        latest = {row["id"]: row for row in self.rows}
        position = {task_id: index for index, task_id in enumerate(order)}
        rows = sorted(latest.values(), key=lambda row: position.get(row["id"], len(position)))
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        target = self.path / PARQUET_FILE
        try:
            table = pa.Table.from_pylist([{name: row.get(name) for name in columns} for row in rows])
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise LctkError(f"cannot write {target}: the rows do not fit one table ({exc})") from None
        with atomic_file(target) as handle:
            pq.write_table(table, handle)
        return target


@contextlib.contextmanager
def open_results(directory: str | os.PathLike) -> Iterator[ResultsDir]:
    """Lock `directory` (made if missing), read the rows already there and open results.jsonl for appending."""
    from filelock import Timeout

    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {directory} is a file; give a directory for the results")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the results directory {directory}: {exc.strerror or exc}") from None
    lock = file_lock(path / LOCK_FILE, timeout_s=0)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(f"another lctk batch is writing to {directory}; wait for it or give another --out") from None
    try:
        jsonl = path / RESULTS_FILE
        rows = _read_rows(jsonl)
        with open(jsonl, "ab") as handle:
            yield ResultsDir(path, handle, rows)
    finally:
        lock.release()


def _read_rows(jsonl: Path) -> list[dict[str, Any]]:
    """The rows of results.jsonl; a torn last line (a kill mid-write) is cut off the file."""
    try:
        data = jsonl.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InputError(f"cannot read {jsonl}: {exc.strerror or exc}") from None
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s ended in a partial row (a run was stopped while writing it); dropped it", jsonl)
        with open(jsonl, "r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())
        data = data[:keep]
    rows = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            log.warning("%s:%d is not a result row; ignored", jsonl, number)
            continue
        rows.append(row)
    return rows
