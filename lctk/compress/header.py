"""What goes ahead of the code: a directory tree of the inputs and the diff, fitted into the budget.

Both count against the budget. The tree may take at most TREE_BUDGET_SHARE of it: past that,
directories below some depth fold into one line with their file count, and when even the top
level is too long its last entries are cut ("… 40 more entries"; the first stays even if it alone
is over the share). The diff comes next and may
take everything else the frame leaves: one that does not fit is cut after its last whole line
that fits, and a marker says how many lines were shown; the code then gets what is left, which
can be nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lctk.compress.model import DiffSection

TREE_BUDGET_SHARE = 0.2  # an overview, not the content: at most a fifth of the budget

_Node = dict  # name -> _Node for a directory, None for a file


def directory_tree(paths: Sequence[str], max_depth: int | None = None) -> list[str]:
    """A compact tree of `paths`, one entry a line: two spaces a level, directories end in '/',
    a chain of single subdirectories shares one line (`src/lctk/`), and a directory at `max_depth`
    is one line with its file count."""
    root: _Node = {}
    for path in paths:
        parts = path.split("/")
        if path.startswith("/"):
            parts = ["", *[p for p in parts[1:] if p]]
        parts = [p for i, p in enumerate(parts) if p or i == 0]
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node.setdefault(parts[-1], None)
    lines: list[str] = []
    _render(root, "", 0, max_depth, lines)
    return lines


def tree_depth(paths: Sequence[str]) -> int:
    """The deepest directory level `directory_tree` shows for `paths` (0: files only at the top)."""
    depth, lines = 0, directory_tree(paths)
    for line in lines:
        if line.rstrip().endswith("/"):
            depth = max(depth, (len(line) - len(line.lstrip(" "))) // 2 + 1)
    return depth


def fit_tree(paths: Sequence[str], limit_tokens: int, count: Callable[[str], int]) -> str:
    """The deepest tree of `paths` whose text counts at most `limit_tokens`, as text (lines + newlines)."""
    for depth in range(tree_depth(paths), -1, -1):
        text = _text(directory_tree(paths, depth))
        if count(text) <= limit_tokens:
            return text
    lines = directory_tree(paths, 0)
    fitting = _largest(len(lines), lambda k: count(_text(_cut(lines, k))) <= limit_tokens)
    return _text(_cut(lines, max(fitting, 1)))  # the first entry even past the share: a tree of nothing says nothing


def fit_diff(diff: DiffSection, fits: Callable[[DiffSection], bool]) -> DiffSection:
    """`diff` whole if it fits, else cut to its longest head of whole lines that does (possibly none)."""
    if fits(diff):
        return diff
    lines = diff.text.splitlines(keepends=True)

    def cut(k: int) -> DiffSection:
        return DiffSection(diff.ref, "".join(lines[:k]), diff.files, diff.lines_total, k, diff.query_from_diff)

    return cut(_largest(len(lines) - 1, lambda k: fits(cut(k))))


def _largest(high: int, ok: Callable[[int], bool]) -> int:
    """The largest k in 0..high with ok(k) (ok falls as k grows); 0 when none."""
    low = 0
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _cut(lines: list[str], keep: int) -> list[str]:
    left = len(lines) - keep
    return lines[:keep] + ([f"… {left} more entr{'y' if left == 1 else 'ies'}"] if left else [])


def _text(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _files_in(node: _Node) -> int:
    return sum(1 if child is None else _files_in(child) for child in node.values())


def _render(node: _Node, indent: str, depth: int, max_depth: int | None, lines: list[str]) -> None:
    directories = sorted(name for name, child in node.items() if child is not None)
    files = sorted(name for name, child in node.items() if child is None)
    for name in directories:
        label, child = (name + "/" if name else "/"), node[name]
        while len(child) == 1 and next(iter(child.values())) is not None:  # a lone subdirectory shares the line
            only = next(iter(child))
            label, child = label + only + "/", child[only]
        if max_depth is not None and depth >= max_depth:
            n = _files_in(child)
            lines.append(f"{indent}{label} ({n} file{'' if n == 1 else 's'})")
        else:
            lines.append(f"{indent}{label}")
            _render(child, indent + "  ", depth + 1, max_depth, lines)
    lines.extend(indent + name for name in files)
