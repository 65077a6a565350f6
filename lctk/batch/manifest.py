"""A batch manifest: `tasks.jsonl`, one JSON object per line, every line a task of one kind.

    index     {"id"?, "path"}
    compress  {"id"?, "path", "query"?, "budget"?, "rate"?, "format"?, "candidates"?, "retrieval"?, "no_fine"?, "tree"?}
    ask       {"id"?, "document", "question", "mode"?, "max_tokens"?, "check"?}

The fields mean what `lctk index|compress|ask` options of the same name mean (`no_fine` is
--no-fine); a null optional field is the same as leaving it out. Paths are relative to the
manifest's directory. `id` defaults to the first 16 hex digits of the content hash of the task's
canonical JSON (kind and fields, keys sorted), so the same task keeps its id between runs.
Blank lines are skipped. Anything else that is not a well-formed task (not JSON, an unknown or
missing field, a wrong type, a duplicate id) fails the whole manifest with one `file:line:` error
before any work starts.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from lctk.ask.settings import RetrievalMode
from lctk.errors import InputError
from lctk.score_cache import content_hash
from lctk.vocabulary import CandidateSource, CompressFormat

ID_HEX_DIGITS = 16  # a default id: this much of the task's content hash (collisions need ~2^32 tasks)


class TaskKind(Enum):
    """What a batch runs: one lctk capability per task (a plain Enum: `index` would shadow str.index)."""

    index = "index"
    compress = "compress"
    ask = "ask"


@dataclass(frozen=True)
class BatchTask:
    """One validated manifest line: `fields` as written (choices normalised), paths relative to `base`."""

    id: str
    kind: TaskKind
    line: int  # 1-based line in the manifest
    fields: Mapping[str, Any]
    base: str  # absolute directory of the manifest

    def location(self, name: str) -> str:
        """The path field `name` as this process opens it: relative ones joined to the manifest's directory."""
        value = str(self.fields[name])
        return value if os.path.isabs(value) else str(Path(self.base) / value)

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "kind": self.kind.value, "line": self.line, "fields": dict(self.fields), "base": self.base},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> BatchTask:
        data = json.loads(text)
        return cls(data["id"], TaskKind(data["kind"]), data["line"], data["fields"], data["base"])


class _FieldError(ValueError):
    """A field's value is unusable; the message completes "'<field>' ..."."""


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _FieldError("must be a non-empty string")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _FieldError("must be a whole number of 1 or more")
    return value


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= 1) or math.isnan(value):
        raise _FieldError("must be a number above 0 and at most 1")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _FieldError("must be true or false")
    return value


def _choice(kind: type[Enum]) -> Callable[[Any], str]:
    names = [member.value for member in kind]

    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in names:
            return value.strip().lower()
        raise _FieldError(f"must be one of {', '.join(names)}")

    return check


# name -> (check, required), per kind; `id` is common to all
FIELDS: dict[TaskKind, dict[str, tuple[Callable[[Any], Any], bool]]] = {
    TaskKind.index: {"path": (_text, True)},
    TaskKind.compress: {
        "path": (_text, True), "query": (_text, False), "budget": (_positive_int, False), "rate": (_rate, False),
        "format": (_choice(CompressFormat), False), "candidates": (_positive_int, False),
        "retrieval": (_choice(CandidateSource), False), "no_fine": (_flag, False), "tree": (_flag, False),
    },
    TaskKind.ask: {
        "document": (_text, True), "question": (_text, True), "mode": (_choice(RetrievalMode), False),
        "max_tokens": (_positive_int, False), "check": (_flag, False),
    },
}


def read_manifest(path: str | os.PathLike, kind: TaskKind | str) -> list[BatchTask]:
    """Read and validate every task of `path`; an InputError names the file and line of the first bad one.

    Args:
        path: the manifest (JSON Lines).
        kind: what every line is (index, compress or ask).

    Returns:
        the tasks in file order.
    """
    kind = TaskKind(kind)
    shown = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such manifest: {shown}") from None
    except IsADirectoryError:
        raise InputError(f"{shown} is a directory; give the manifest file (tasks.jsonl)") from None
    except OSError as exc:
        raise InputError(f"cannot read the manifest {shown}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{shown}:{bad}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    base = os.path.abspath(Path(path).parent)
    tasks: list[BatchTask] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            task = _parse_line(line, kind, number, base)
        except InputError as exc:
            raise InputError(f"{shown}:{number}: {exc}") from None
        if task.id in first_line:
            raise InputError(f"{shown}:{number}: duplicate id {task.id!r} (first on line {first_line[task.id]})")
        first_line[task.id] = number
        tasks.append(task)
    if not tasks:
        raise InputError(f"{shown}: no tasks (one JSON object per line)")
    return tasks


def _parse_line(line: str, kind: TaskKind, number: int, base: str) -> BatchTask:
    try:
        raw = json.loads(line, object_pairs_hook=_no_duplicate_keys)
    except _FieldError as exc:
        raise InputError(str(exc)) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise InputError(f"not JSON ({getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')})") from None
    if not isinstance(raw, dict):
        raise InputError(f"a task is a JSON object, not {type(raw).__name__ if raw is not None else 'null'}")
    spec = FIELDS[kind]
    unknown = sorted(set(raw) - set(spec) - {"id"})
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r}; {kind.value} tasks have: id, {', '.join(spec)}")
    fields: dict[str, Any] = {}
    for name, (check, required) in spec.items():
        value = raw.get(name)
        if value is None:
            if required:
                raise InputError(f"missing field {name!r}")
            continue
        try:
            fields[name] = check(value)
        except _FieldError as exc:
            raise InputError(f"{name!r} {exc}, not {json.dumps(value, ensure_ascii=False)[:60]}") from None
    if "budget" in fields and "rate" in fields:
        raise InputError("give budget or rate, not both")
    task_id = raw.get("id")
    if task_id is None:
        canonical = json.dumps({"kind": kind.value, **fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        task_id = content_hash(canonical)[:ID_HEX_DIGITS]
    else:
        try:
            task_id = _text(task_id)
        except _FieldError as exc:
            raise InputError(f"'id' {exc}, not {json.dumps(task_id, ensure_ascii=False)[:60]}") from None
    return BatchTask(task_id, kind, number, fields, base)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _FieldError(f"field {key!r} given twice")
        seen[key] = value
    return seen
