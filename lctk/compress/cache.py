"""On-disk score cache keyed by (model, kind, content hash, query hash).

SQLite gives atomic, durable commits and serialises concurrent writers, so a killed run never
leaves a torn cache: what was committed is kept, the rest is recomputed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from lctk.errors import CacheError

SCHEMA_VERSION = 1


def content_hash(text: str) -> str:
    """SHA-256 of a text, the key for chunk contents and queries."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


class ScoreCache:
    """Float arrays stored by (model, kind, content hash, query hash); a missing file is recreated."""

    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS scores (model TEXT, kind TEXT, content TEXT, query TEXT, "
                "value BLOB, PRIMARY KEY (model, kind, content, query)) WITHOUT ROWID"
            )
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"score cache {path} is unusable ({exc}); delete it or set LCTK_CACHE_DIR") from None
        except OSError as exc:
            raise CacheError(f"cannot create the score cache in {path.parent} ({exc.strerror or exc})") from None

    def get_many(self, model: str, kind: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        """Return the cached arrays for (content hash, query hash) keys that are present."""
        found: dict[tuple[str, str], np.ndarray] = {}
        for content, query in keys:
            row = self._db.execute(
                "SELECT value FROM scores WHERE model=? AND kind=? AND content=? AND query=?",
                (model, kind, content, query),
            ).fetchone()
            if row is not None:
                found[(content, query)] = np.frombuffer(row[0], dtype=np.float32).copy()
        return found

    def put_many(self, model: str, kind: str, values: Mapping[tuple[str, str], np.ndarray]) -> None:
        """Store arrays in one transaction (all or nothing)."""
        rows = [
            (model, kind, content, query, np.asarray(value, dtype=np.float32).tobytes())
            for (content, query), value in values.items()
        ]
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.OperationalError as exc:
            raise CacheError(f"cannot write the score cache {self.path} ({exc})") from None

    def close(self) -> None:
        """Close the database."""
        self._db.close()


class MemoryScoreCache:
    """The same interface without a file (for --no-cache): nothing survives the run."""

    def __init__(self):
        self._values: dict[tuple[str, str, str, str], np.ndarray] = {}

    def get_many(self, model: str, kind: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        """Return values stored earlier in this run."""
        return {key: self._values[(model, kind, *key)] for key in keys if (model, kind, *key) in self._values}

    def put_many(self, model: str, kind: str, values: Mapping[tuple[str, str], np.ndarray]) -> None:
        """Keep values for the rest of the run."""
        for key, value in values.items():
            self._values[(model, kind, *key)] = np.asarray(value, dtype=np.float32)

    def close(self) -> None:
        """Nothing to release."""
