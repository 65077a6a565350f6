"""On-disk score cache keyed by (model, kind, content hash, query hash).

SQLite gives atomic, durable commits and serialises concurrent writers, so a killed run never
leaves a torn cache: what was committed is kept, the rest is recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from lctk.config import writable_cache_subdir
from lctk.errors import CacheError

SCHEMA_VERSION = 1

log = logging.getLogger("lctk")


def content_hash(content: str | bytes) -> str:
    """SHA-256 (hex) of a text (UTF-8) or of raw bytes: the one key for file, chunk and query contents."""
    data = content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()


GET_BATCH = 500  # keys per SELECT (SQLite allows 32,766 parameters; small statements plan fast)


class ScoreCache:
    """Float arrays stored by (model, kind, content hash, query hash); a missing file is recreated.

    A damaged file (not a database, malformed) is moved aside and started afresh. A write that
    fails (disk full, quota, read-only) is reported once and the run goes on without caching:
    a cache only ever saves work, it never stops a command.
    """

    def __init__(self, path: Path, label: str = "score cache"):
        self.path, self.label = path, label
        self._broken = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open(path)
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise CacheError(f"cannot use the {label} {path} ({_reason(exc)})") from None
            aside = path.with_name(f"{path.name}.damaged")
            log.warning("the %s %s was damaged (%s); moved it to %s and started a new one", label, path, exc, aside.name)
            try:
                for suffix in ("-wal", "-shm"):
                    Path(str(path) + suffix).unlink(missing_ok=True)
                path.replace(aside)
                self._db = self._open(path)
            except (OSError, sqlite3.DatabaseError) as again:
                raise CacheError(f"cannot use the {label} {path} ({_reason(again)})") from None
        except OSError as exc:
            raise CacheError(f"cannot create the {label} in {path.parent} ({exc.strerror or exc})") from None

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS scores (model TEXT, kind TEXT, content TEXT, query TEXT, "
            "value BLOB, PRIMARY KEY (model, kind, content, query)) WITHOUT ROWID"
        )
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("SELECT count(*) FROM (SELECT 1 FROM scores LIMIT 1)").fetchone()  # a torn file fails here, not later
        return db

    def get_many(self, model: str, kind: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        """Return the cached arrays for (content hash, query hash) keys that are present."""
        found: dict[tuple[str, str], np.ndarray] = {}
        if self._broken:
            return found
        by_query: dict[str, list[str]] = {}
        for content, query in keys:
            by_query.setdefault(query, []).append(content)
        try:  # one statement per GET_BATCH keys of a query (one per key cost ~20 us each: a query's 400 vectors)
            for query, contents in by_query.items():
                for start in range(0, len(contents), GET_BATCH):
                    part = contents[start : start + GET_BATCH]
                    rows = self._db.execute(
                        f"SELECT content, value FROM scores WHERE model=? AND kind=? AND query=? AND content IN ({','.join('?' * len(part))})",
                        (model, kind, query, *part),
                    ).fetchall()
                    for content, value in rows:
                        found[(content, query)] = np.frombuffer(value, dtype=np.float32).copy()
        except sqlite3.DatabaseError as exc:
            self._give_up("read", exc)
        return found

    def put_many(self, model: str, kind: str, values: Mapping[tuple[str, str], np.ndarray]) -> None:
        """Store arrays in one transaction (all or nothing)."""
        if self._broken:
            return
        rows = [
            (model, kind, content, query, np.asarray(value, dtype=np.float32).tobytes())
            for (content, query), value in values.items()
        ]
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.DatabaseError as exc:
            self._give_up("write", exc)

    def _give_up(self, action: str, exc: sqlite3.DatabaseError) -> None:
        self._broken = True
        log.warning("cannot %s the %s %s (%s); going on without it", action, self.label, self.path, _reason(exc))

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "file is encrypted" in text


def _reason(exc: BaseException) -> str:
    """SQLite reports a full disk or a file-size limit as a bare "disk I/O error": say what it likely means."""
    text = str(exc)
    if "disk i/o error" in text.lower() or "full" in text.lower():
        return f"{text}: is the disk full or over quota?"
    return text


def open_score_cache(path: Path | None = None, label: str = "score cache"):
    """A ScoreCache at `path` (default: scores.sqlite in the cache dir), or, with a warning,
    a MemoryScoreCache when the file or the cache dir cannot be used."""
    try:
        if path is None:
            path = writable_cache_subdir("scores") / "scores.sqlite"
        return ScoreCache(path, label)
    except CacheError as exc:
        log.warning("%s; going on without it", exc)
        return MemoryScoreCache()


class MemoryScoreCache:
    """The same interface without a file (for --no-cache): nothing survives the run."""

    def __init__(self):
        self._values: dict[tuple[str, str, str, str], np.ndarray] = {}

    def get_many(self, model: str, kind: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        """Return values stored earlier in this run."""
        return {key: self._values[full] for key in keys if (full := (model, kind, *key)) in self._values}

    def put_many(self, model: str, kind: str, values: Mapping[tuple[str, str], np.ndarray]) -> None:
        """Keep values for the rest of the run."""
        for key, value in values.items():
            full = (model, kind, *key)
            self._values[full] = np.asarray(value, dtype=np.float32)

    def close(self) -> None:
        """Nothing to release."""
