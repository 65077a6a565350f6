"""What changed in a git work tree: `git diff REF` parsed into files, line counts and changed lines.

`load_diff(paths, ref)` runs `git diff REF` in each named file or directory (each in whatever
work tree holds it) and, when REF is one revision (so the new side is the working tree), adds
the untracked files git does not ignore as new files. Paths inside the diff are written the way
compress shows its inputs (`repo/src/a.py` when `repo/` was named: git's `--relative` plus
`--src-prefix=a/repo/`), so a file's diff and its code carry the same name.

A file's changed lines are line numbers of its new side: every added line, and for a removal the
line just before it (where the removed lines were), so a function that only lost lines counts
as changed too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lctk.errors import InputError
from lctk.sources.gitcmd import failure_line, run_git
from lctk.sources.secrets import Redaction, redact_text

DIFF_TIMEOUT_S = 120.0
DIFF_QUERY_CHARS = 1200  # the changed lines used as a query when there is none: ~350 tokens for AMI to read
UNTRACKED_MAX_BYTES = 1_000_000  # as lctk.sources.walk.MAX_FILE_BYTES: larger files are not inputs either
ADDED, DELETED, MODIFIED, RENAMED = "added", "deleted", "modified", "renamed"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True)
class ChangedFile:
    """One file's part of a diff."""

    path: str  # as compress shows the file (a rename's new path; a deletion's old path)
    old_path: str | None  # a rename's old path, else None
    status: str  # ADDED, DELETED, MODIFIED or RENAMED
    added: int  # lines
    removed: int
    binary: bool
    changed_lines: tuple[tuple[int, int], ...]  # 1-based inclusive ranges of the new side
    patch: str  # this file's unified diff, headers included

    def touches(self, start_line: int, end_line: int) -> bool:
        """Whether a change falls within lines start_line..end_line of the new side."""
        return any(a <= end_line and start_line <= b for a, b in self.changed_lines)


@dataclass(frozen=True)
class GitDiff:
    """A diff against `ref`, file by file (sorted by path)."""

    ref: str
    files: tuple[ChangedFile, ...]

    @property
    def text(self) -> str:
        """The unified diff."""
        return "".join(f.patch for f in self.files)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files)

    def restricted(self, paths: Iterable[str]) -> GitDiff:
        """Only the files among `paths` (the inputs), and deletions (which have no input to be among)."""
        keep = set(paths)
        return replace(self, files=tuple(f for f in self.files if f.path in keep or f.status == DELETED))

    def query_text(self, max_chars: int = DIFF_QUERY_CHARS) -> str:
        """The changed lines (added and removed, markers and repeats dropped), at most `max_chars`."""
        seen: dict[str, None] = {}
        for f in self.files:
            for kind, content, _ in _body_lines(f.patch):
                if kind in "+-" and content.strip():
                    seen.setdefault(content.strip(), None)
        out: list[str] = []
        used = 0
        for line in seen:
            if used + len(line) + 1 > max_chars:
                if not out:
                    out.append(line[:max_chars])
                break
            out.append(line)
            used += len(line) + 1
        return "\n".join(out)

    def redacted(self) -> tuple[GitDiff, tuple[Redaction, ...]]:
        """The diff with likely secrets replaced (lctk.sources.secrets), and what was replaced."""
        files, found = [], []
        for f in self.files:
            patch, redactions = _redact_patch(f.patch, f.path)
            files.append(replace(f, patch=patch) if redactions else f)
            found.extend(redactions)
        return replace(self, files=tuple(files)), tuple(found)


def load_diff(paths: Sequence[str], ref: str = "HEAD", *, timeout_s: float = DIFF_TIMEOUT_S) -> GitDiff:
    """The diff of the named files and directories against `ref` (a revision, or a range `A..B` / `A...B`)."""
    ref = ref.strip()
    if not ref or ref.startswith("-") or any(ch.isspace() or ord(ch) < 32 for ch in ref):
        raise InputError(f"not a git revision: {ref!r}")
    # One git run per directory named, and one per directory of the files named (as they were typed):
    # `git ls-files | lctk compress --stdin-paths --diff` must not start git once per file.
    groups: dict[tuple[Path, str], list[str]] = {}
    for name in paths:
        named = Path(name)
        if not named.exists():
            raise InputError(f"no such file or directory: {name}")
        if named.is_dir():
            prefix = "" if named.as_posix() in (".", "") else named.as_posix().rstrip("/") + "/"
            groups.setdefault((named, prefix), []).append(".")
        else:
            groups.setdefault((named.parent, named.as_posix()[: -len(named.name)]), []).append(named.name)
    files: dict[str, ChangedFile] = {}
    for (directory, prefix), pathspecs in groups.items():
        name = prefix.rstrip("/") or directory.as_posix()
        _check_work_tree(directory, name)
        _check_revision(directory, ref, name)
        out = run_git(
            ["--literal-pathspecs", "-c", "core.quotePath=false", "diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M", "--unified=3",
             "--relative", f"--src-prefix=a/{prefix}", f"--dst-prefix=b/{prefix}", ref, "--", *pathspecs],
            cwd=directory, timeout_s=timeout_s, what=f"git diff {ref} in {name}",
        )
        if not out.ok:
            raise InputError(f"git diff {ref} failed in {name}: {failure_line(out.stderr)}")
        for changed in parse_diff(out.stdout.decode("utf-8", "replace")):
            files.setdefault(changed.path, changed)
        if ".." not in ref:  # the new side is the working tree: new files count before `git add`
            for changed in _untracked(directory, pathspecs, prefix, timeout_s, name):
                files.setdefault(changed.path, changed)
    return GitDiff(ref, tuple(sorted(files.values(), key=lambda f: f.path)))


def _check_work_tree(directory: Path, name: str) -> None:
    out = run_git(["rev-parse", "--is-inside-work-tree"], cwd=directory, timeout_s=DIFF_TIMEOUT_S, what="git rev-parse")
    if not out.ok or out.stdout.decode().strip() != "true":
        raise InputError(f"{name} is not in a git work tree, so it has no diff")


def _check_revision(directory: Path, ref: str, name: str) -> None:
    for side in (s for s in re.split(r"\.\.\.?", ref) if s):
        out = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{side}^{{commit}}"],
                      cwd=directory, timeout_s=DIFF_TIMEOUT_S, what="git rev-parse")
        if not out.ok:
            empty = side == "HEAD" and not run_git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=directory,
                                                     timeout_s=DIFF_TIMEOUT_S, what="git rev-parse").ok
            raise InputError(f"unknown revision {side!r} in {name}" + (" (the repository has no commits yet)" if empty else ""))


def _untracked(directory: Path, pathspecs: list[str], prefix: str, timeout_s: float, name: str) -> list[ChangedFile]:
    """Untracked, not ignored files under `pathspecs`, each as a new file's diff."""
    out = run_git(["--literal-pathspecs", "ls-files", "--others", "--exclude-standard", "-z", "--", *pathspecs], cwd=directory,
                  timeout_s=timeout_s, what=f"git ls-files in {name}")
    if not out.ok:
        raise InputError(f"git ls-files failed in {name}: {failure_line(out.stderr)}")
    changed = []
    for relative in sorted(n for n in out.stdout.decode("utf-8", "replace").split("\0") if n):
        if any(ch in relative for ch in '\n"\\'):
            continue  # a name the header line could not carry unquoted; not an input either
        path = directory / relative
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > UNTRACKED_MAX_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        shown = prefix + relative
        header = f"diff --git a/{shown} b/{shown}\nnew file mode 100644\n"
        if b"\0" in data[:8000]:
            patch = header + f"Binary files /dev/null and b/{shown} differ\n"
            changed.append(ChangedFile(shown, None, ADDED, 0, 0, True, (), patch))
            continue
        text = data.decode("utf-8", "replace")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        body = "".join(f"+{line}\n" for line in lines) + ("" if not text or text.endswith("\n") else "\\ No newline at end of file\n")
        hunk = f"--- /dev/null\n+++ b/{shown}\n@@ -0,0 +1{'' if len(lines) == 1 else f',{len(lines)}'} @@\n{body}" if lines else ""
        changed.append(ChangedFile(shown, None, ADDED, len(lines), 0, False, ((1, len(lines)),) if lines else (), header + hunk))
    return changed


def parse_diff(text: str) -> list[ChangedFile]:
    """Split a `git diff` unified diff into files (paths taken as written after the a/ and b/ prefixes)."""
    sections: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("diff --git ") or not sections:
            sections.append([])
        sections[-1].append(line)
    return [_parse_file(section) for section in sections if section and section[0].startswith("diff --git ")]


def _parse_file(lines: list[str]) -> ChangedFile:
    old: str | None = None
    new: str | None = None
    status, binary, renamed = MODIFIED, False, False
    added = removed = 0
    marks: list[int] = []
    body = [raw.rstrip("\n") for raw in lines[1:]]
    for index, kind, _, new_line in _hunk_lines(body):
        if kind == "+":
            marks.append(new_line)
            added += 1
        elif kind == "-":
            marks.append(max(new_line - 1, 1))
            removed += 1
        if kind:
            continue
        line = body[index]
        if line.startswith("new file mode"):
            status = ADDED
        elif line.startswith("deleted file mode"):
            status = DELETED
        elif line.startswith(("rename from ", "rename to ")):
            renamed = True  # its paths lack the a/ b/ prefixes; the header's carry them
        elif line.startswith("Binary files ") or line == "GIT binary patch":
            binary = True
        elif line.startswith("--- "):
            old = _side(line[4:], "a/")
        elif line.startswith("+++ "):
            new = _side(line[4:], "b/")
    header_old, header_new = _header_paths(lines[0].rstrip("\n")[len("diff --git "):])
    if renamed and status == MODIFIED:
        status = RENAMED
    path = new or (old if status == DELETED else None) or header_new or header_old or ""
    old_path = (old or header_old) if status == RENAMED else None
    return ChangedFile(path, old_path, status, added, removed, binary, _ranges(marks), "".join(lines))


def _side(value: str, prefix: str) -> str | None:
    """A `---`/`+++` line's path without its a/ or b/ prefix (None for /dev/null)."""
    value = _unquote(value.rstrip("\t"))
    if value == "/dev/null":
        return None
    return value[len(prefix):] if value.startswith(prefix) else value


def _header_paths(rest: str) -> tuple[str | None, str | None]:
    """The two paths of a `diff --git a/X b/Y` line (quoted or not; unquoted X == Y unless renamed)."""
    if rest.startswith('"'):
        end = _quoted_end(rest)
        first, second = rest[: end + 1], rest[end + 1 :].strip()
    else:
        half = (len(rest) - 5) // 2  # "a/" + P + " b/" + P when both sides name the same file
        if len(rest) >= 5 and rest == f"a/{rest[2:2 + half]} b/{rest[2:2 + half]}":
            return rest[2 : 2 + half], rest[2 : 2 + half]
        first, _, tail = rest.rpartition(" b/")
        second = "b/" + tail
    a, b = _unquote(first), _unquote(second)
    return (a[2:] if a.startswith("a/") else a), (b[2:] if b.startswith("b/") else b)


def _quoted_end(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return len(text) - 1


def _unquote(value: str) -> str:
    """git's C-style quoting undone ("a/caf\\303\\251.py" -> a/café.py); unquoted text is returned as is."""
    if len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
        return value
    out = bytearray()
    body, i = value[1:-1], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567" and i + 3 < len(body) + 1 and all(c in "01234567" for c in body[i + 1 : i + 4]):
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, ord(nxt)))
            i += 2
            continue
        out.extend(char.encode("utf-8"))
        i += 1
    return out.decode("utf-8", "replace")


def _ranges(lines: list[int]) -> tuple[tuple[int, int], ...]:
    ranges: list[list[int]] = []
    for n in sorted(set(lines)):
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return tuple((a, b) for a, b in ranges)


def _hunk_lines(lines: Sequence[str]) -> Iterator[tuple[int, str, int, int]]:
    """Walk a file's patch lines: (index, kind, old line, new line) of each.

    kind is "@" for a hunk header (the numbers its hunk starts at), " ", "+" or "-" for a hunk
    line (the numbers it stands at on the old and new side, before it is counted), "\\" for git's
    "No newline at end of file" inside a hunk, and "" for any other line (the file's header).
    """
    old_line = new_line = 0
    in_hunk = False
    for index, line in enumerate(lines):
        hunk = _HUNK.match(line)
        if hunk:
            in_hunk, old_line, new_line = True, int(hunk.group(1)), int(hunk.group(3))
            yield index, "@", old_line, new_line
            continue
        marker = line[:1]
        if not in_hunk or marker not in (" ", "+", "-", "\\"):
            in_hunk = False
            yield index, "", old_line, new_line
            continue
        yield index, marker, old_line, new_line
        if marker != "+" and marker != "\\":
            old_line += 1
        if marker != "-" and marker != "\\":
            new_line += 1


def _body_lines(patch: str) -> Iterable[tuple[str, str, int]]:
    """(marker, content, line number on its side) of each hunk line: ' ' and '+' count the new side, '-' the old."""
    lines = patch.splitlines()
    for index, kind, old_line, new_line in _hunk_lines(lines):
        if kind in (" ", "+", "-"):
            yield kind, lines[index][1:], old_line if kind == "-" else new_line


def _redact_patch(patch: str, path: str) -> tuple[str, list[Redaction]]:
    """Redact a file's patch: its hunk lines read as one text (so multi-line keys are caught), markers kept."""
    lines = patch.split("\n")
    body: list[int] = []  # indexes of hunk lines in `lines`
    numbers: list[int] = []
    found: list[Redaction] = []
    for index, kind, old_line, new_line in _hunk_lines(lines):
        if kind == "@":
            line = lines[index]
            end = _HUNK.match(line).end()  # type: ignore[union-attr]  # kind "@" means it matched
            context = line[end:]
            if context.strip():  # the function line git prints after @@ is file text too
                cleaned = redact_text(context, path)
                if cleaned.redactions:
                    lines[index] = line[:end] + cleaned.text
                    found.extend(Redaction(path, new_line, r.kind) for r in cleaned.redactions)
        elif kind in (" ", "+", "-"):
            body.append(index)
            numbers.append(old_line if kind == "-" else new_line)
    if body:
        cleaned = redact_text("\n".join(lines[i][1:] for i in body) + "\n", path)
        if cleaned.redactions:
            for index, text in zip(body, cleaned.text.split("\n")):
                lines[index] = lines[index][:1] + text
            found.extend(Redaction(path, numbers[r.line - 1], r.kind) for r in cleaned.redactions)
    return "\n".join(lines), found
