"""Search annotations in semble's format, validated with one-line errors.

    [{"query": "where are retries configured",
      "relevant": ["src/http.py", {"path": "src/retry.py", "start_line": 10, "end_line": 42}],
      "secondary": ["src/config.py"],          # optional: partly relevant (graded lower, but
                                                # semble's NDCG@10 counts it like a relevant one)
      "category": "architecture"}]              # optional

A target is a whole file (a path) or a line range of one (1-based, inclusive). Paths are
relative to the repository root and may not leave it. Fields lctk does not read (semble's
upstream files carry `seed` and `related`) are ignored, with one warning per file naming them;
everything lctk does read is validated.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import cast

from lctk.errors import InputError

log = logging.getLogger(__name__)

ITEM_FIELDS = ("query", "relevant", "secondary", "category")
TARGET_FIELDS = ("path", "start_line", "end_line")


@dataclass(frozen=True)
class Target:
    path: str  # posix, relative to the repository root
    start_line: int | None = None  # None: the whole file
    end_line: int | None = None

    def overlaps(self, path: str, start_line: int, end_line: int) -> bool:
        if path != self.path:
            return False
        if self.start_line is None:
            return True
        return start_line <= cast(int, self.end_line) and end_line >= self.start_line  # both lines or neither


@dataclass(frozen=True)
class Annotation:
    query: str
    relevant: tuple[Target, ...]
    secondary: tuple[Target, ...] = ()
    category: str = ""

    @property
    def targets(self) -> tuple[Target, ...]:
        """Relevant then secondary targets (semble's `all_relevant`)."""
        return self.relevant + self.secondary


def read_annotations(path: str | os.PathLike) -> list[Annotation]:
    """Read and validate an annotation file; every problem is a one-line InputError naming the item."""
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(data, list) or not data:
        raise InputError(f"{path}: expected a non-empty JSON list of {{query, relevant}} objects")
    ignored: set[str] = set()
    annotations = [_annotation(item, f"{path}: item {index + 1}", ignored) for index, item in enumerate(data)]
    if ignored:  # one warning for the file, not one per item: upstream files repeat them in every item
        log.warning("%s: ignored fields lctk does not read: %s", path, ", ".join(sorted(ignored)))
    return annotations


def _annotation(item, where: str, ignored: set[str]) -> Annotation:
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected an object with 'query' and 'relevant'")
    ignored.update(repr(name) for name in set(item) - set(ITEM_FIELDS))
    query = item.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InputError(f"{where}: 'query' must be a non-empty string")
    relevant = item.get("relevant")
    if not isinstance(relevant, list) or not relevant:
        raise InputError(f"{where}: 'relevant' must be a non-empty list of paths or {{path, start_line, end_line}}")
    secondary = item.get("secondary", [])
    if not isinstance(secondary, list):
        raise InputError(f"{where}: 'secondary' must be a list")
    category = item.get("category")
    if category is None:  # semble's loader infers a missing or null category; lctk leaves it empty
        category = ""
    if not isinstance(category, str):
        raise InputError(f"{where}: 'category' must be a string")
    return Annotation(
        query.strip(),
        tuple(_target(t, f"{where}, relevant {i + 1}", ignored) for i, t in enumerate(relevant)),
        tuple(_target(t, f"{where}, secondary {i + 1}", ignored) for i, t in enumerate(secondary)),
        category,
    )


def _target(value, where: str, ignored: set[str]) -> Target:
    if isinstance(value, str):
        return Target(_relative_path(value, where))
    if not isinstance(value, dict) or "path" not in value:
        raise InputError(f"{where}: expected a path or an object with 'path'")
    ignored.update(f"{name!r} (in targets)" for name in set(value) - set(TARGET_FIELDS))
    if not isinstance(value["path"], str):
        raise InputError(f"{where}: 'path' must be a string")
    path = _relative_path(value["path"], where)
    start, end = value.get("start_line"), value.get("end_line")
    if start is None and end is None:
        return Target(path)
    for name, line in (("start_line", start), ("end_line", end)):
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise InputError(f"{where}: '{name}' must be a positive integer (both lines or neither)")
    start, end = cast(int, start), cast(int, end)  # both checked just above
    if start > end:
        raise InputError(f"{where}: start_line {start} is after end_line {end}")
    return Target(path, start, end)


def _relative_path(text: str, where: str) -> str:
    path = PurePosixPath(text.replace("\\", "/"))
    if not text.strip() or path.is_absolute() or ".." in path.parts:
        raise InputError(f"{where}: path {text!r} must be relative to the repository and stay inside it")
    return path.as_posix().removeprefix("./")
