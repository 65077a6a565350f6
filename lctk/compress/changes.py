"""Which chunks a diff is about: the changed ones, and the ones that use what changed.

`change_tiers` gives every chunk CHANGED (a changed line falls inside it, or its file is new),
USES_CHANGED (its code names a function, method or class a changed chunk defines — a caller,
a subclass, an import) or 0. compress ranks by tier first and by its usual scores within a tier,
so for `--diff` the changed code comes first, then its callers, then the rest as the query
orders it; changed chunks are also kept whole rather than cut line by line, and a caller cut
line by line keeps its lines that name the changed code (`lines_using`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lctk.sources.chunking import Chunk
from lctk.sources.gitdiff import ChangedFile

CHANGED, USES_CHANGED = 2, 1
MIN_NAME_CHARS = 3  # shorter names (`f`, `id`) match too much unrelated code to mark a caller
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def change_tiers(chunks: Sequence[tuple[str, Chunk]], files: Sequence[ChangedFile]) -> tuple[list[int], frozenset[str]]:
    """The tier of each (path, chunk) — CHANGED, USES_CHANGED or 0 — and the names the changed chunks define."""
    by_path = {f.path: f for f in files if not f.binary}
    changed = [path in by_path and by_path[path].touches(chunk.start_line, chunk.end_line) for path, chunk in chunks]
    names = frozenset({_defined_name(chunk) for (_, chunk), is_changed in zip(chunks, changed) if is_changed} - {""})
    tiers = []
    for (_, chunk), is_changed in zip(chunks, changed):
        if is_changed:
            tiers.append(CHANGED)
        elif names and not names.isdisjoint(_WORD.findall(chunk.text)):
            tiers.append(USES_CHANGED)
        else:
            tiers.append(0)
    return tiers, names


def lines_using(text: str, names: frozenset[str]) -> frozenset[int]:
    """0-based indexes of the lines of `text` that name one of `names` (a caller's call sites)."""
    return frozenset(i for i, line in enumerate(text.split("\n")) if not names.isdisjoint(_WORD.findall(line)))


def _defined_name(chunk: Chunk) -> str:
    """The name a chunk defines, when it is specific enough to look for ("" for module code, `__init__`, `id`)."""
    name = chunk.name.rsplit(".", 1)[-1] if chunk.name else ""
    if len(name) < MIN_NAME_CHARS or (name.startswith("__") and name.endswith("__")):
        return ""
    return name
