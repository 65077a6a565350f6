"""Building an index: walk the tree, split new and changed files, embed their blocks (committed
batch by batch, so a killed build resumes), assemble the arrays and commit a generation.

The on-disk layout, reading and the atomic generation write live in lctk.retrieval.store.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import numpy as np

from lctk.config import ENV_INDEX_DIR
from lctk.errors import CacheError, InputError
from lctk.retrieval.store import (
    CHECKPOINT_FILE,
    DEFAULT_AGGREGATION,
    DEFAULT_BLOCK_TOKENS,
    INDEX_PARENT,
    FileEntry,
    IndexData,
    IndexStats,
    Progress,
    aggregate,
    compatibility,
    current_generation,
    index_location,
    load_index,
    write_generation,
)
from lctk.retrieval.units import SPLITTER_VERSION, Block, Unit, block_headers, embedded_text, split_file
from lctk.score_cache import content_hash
from lctk.sources.chunking import parse_text, text_lines
from lctk.sources.lexical import compound_identifiers, identifier_tokens
from lctk.sources.secrets import REDACTION_VERSION, redact_text
from lctk.sources.walk import SkippedFile, WalkResult, decode_source, printable_path, walk_sources
from lctk.storage import atomic_write_bytes, waiting_lock
from lctk.vocabulary import Aggregation, parse_choice

log = logging.getLogger("lctk.retrieval.store")  # same logger name as before the split: messages unchanged

EMBED_BATCH = 256

@dataclass
class _FileRows:
    """One file's part of a generation, before global offsets are applied."""

    entry: FileEntry  # offsets relative to the file
    units: list[Unit]
    blocks: list[Block]
    block_chars: list[tuple[int, int]]
    vectors: np.ndarray | None  # (n_blocks, d) float32, None until embedded
    unit_counts: list[Counter]
    embed_texts: list[str]  # header + block text, what the embedder reads


def unit_tokens(text: str, path: str, name: str) -> list[str]:
    """Lexical tokens of a unit: identifier parts of its text, its symbol (twice) and its path."""
    tokens = identifier_tokens(text)
    tokens += identifier_tokens(name) * 2 + identifier_tokens(path)
    tokens += compound_identifiers(name)
    return tokens


def build_index(
    root: Path,
    embedder,
    block_tokens: int = DEFAULT_BLOCK_TOKENS,
    aggregation: str = DEFAULT_AGGREGATION,
    rebuild: bool = False,
    progress: Progress | None = None,
    wait_message: Callable[[], None] | None = None,
    walked: WalkResult | None = None,
    loaded: IndexData | None = None,
) -> IndexStats:
    """Create or refresh the index of `root` incrementally; returns what was done.

    `walked` is the tree's file list when the caller listed it already (see `precheck_new_index`);
    `loaded` is the index as the caller holds it, read again only when it is no longer the live one.
    """
    started = time.perf_counter()
    root = root.resolve()
    if not root.is_dir():
        raise InputError(f"not a directory: {root}")
    aggregation = parse_choice(Aggregation, aggregation, "aggregation").value
    limit = min(block_tokens, max(embedder.max_tokens - 2, 8))
    directory = index_location(root)
    prepare_index_directory(directory, root)
    with waiting_lock(directory / "lock", wait_message):
        return _build_locked(root, directory, embedder, limit, aggregation, rebuild, progress, started, walked, loaded)


def precheck_new_index(root: Path) -> WalkResult | None:
    """Before an embedder is loaded (the static one is built on first use, ~30 s): make sure the
    index directory is writable and, if no index exists yet, that the tree has something to index.

    Returns the file list it made, for `build_index` to reuse; None when an index already exists.
    """
    root = root.resolve()
    if not root.is_dir():
        raise InputError(f"not a directory: {root}")
    directory = index_location(root)
    prepare_index_directory(directory, root)
    if (directory / "CURRENT").exists():
        return None
    walked = walk_sources([root])
    if not any(_index_relative(f, root).split("/", 1)[0] != INDEX_PARENT for f in walked.files):
        raise InputError(_nothing_to_index(root, list(walked.skipped)))
    return walked


def _index_relative(source, root: Path) -> str:
    return source.path.resolve().relative_to(root).as_posix() if source.path.is_absolute() else source.path.as_posix()


def _nothing_to_index(root: Path, skipped: list) -> str:
    more = ", ..." if len(skipped) > 1 else ""
    reasons = f" ({len(skipped)} file{'' if len(skipped) == 1 else 's'} skipped: {skipped[0].reason}{more})" if skipped else ""
    return f"nothing to index in {root}: no readable text files{reasons}"


def prepare_index_directory(directory: Path, root: Path) -> None:
    """Create the index directory (and the .gitignore that keeps `.lctk/` out of git), or say how to fix it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        parent = root / INDEX_PARENT
        if directory.parent == parent and not (parent / ".gitignore").exists():
            atomic_write_bytes(parent / ".gitignore", b"# lctk's search index; never commit it\n*\n")
    except OSError as exc:
        raise CacheError(
            f"cannot write the index at {directory} ({exc.strerror or exc}); set {ENV_INDEX_DIR} to a writable directory"
        ) from None


def _build_locked(root, directory, embedder, limit, aggregation, rebuild, progress, started, walked=None, loaded=None) -> IndexStats:
    model, fingerprint = embedder.model_id, getattr(embedder, "fingerprint", "")
    live = loaded is not None and loaded.root == root and current_generation(root) == loaded.directory.name
    old = None if rebuild else loaded if live else load_index(root)
    rebuilt = "requested" if rebuild else None
    if old is not None:
        reason = compatibility(old.meta, model, fingerprint, limit, aggregation)
        if reason:
            log.warning("rebuilding the index of %s: %s", root, reason)
            old, rebuilt = None, reason
    elif not rebuild and (directory / "CURRENT").exists():
        rebuilt = "the previous index could not be read"
    walked = walked if walked is not None else walk_sources([root])
    old_files = {entry.path: (i, entry) for i, entry in enumerate(old.files)} if old else {}
    skipped = list(walked.skipped)
    rows: list[_FileRows | tuple[int, FileEntry]] = []  # new rows, or (old index, refreshed entry)
    pending: list[_FileRows] = []
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    for position, source in enumerate(walked.files):
        if progress is not None and position % 50 == 0:
            progress(position, len(walked.files), f"reading and splitting {len(walked.files):,} files")
        relative = _index_relative(source, root)
        if relative.split("/", 1)[0] == INDEX_PARENT:
            continue
        try:
            info = source.path.stat()
            previous = old_files.get(relative)
            if previous and previous[1].size == info.st_size and previous[1].mtime_ns == info.st_mtime_ns:
                rows.append(previous)
                counts["unchanged"] += 1
                continue
            data = source.path.read_bytes()
        except FileNotFoundError:
            skipped.append(SkippedFile(relative, "vanished"))
            continue
        except OSError as exc:
            skipped.append(SkippedFile(relative, f"unreadable ({exc.strerror or exc})"))
            continue
        digest = content_hash(data)
        if previous and previous[1].sha256 == digest:
            rows.append((previous[0], replace(previous[1], size=info.st_size, mtime_ns=info.st_mtime_ns)))
            counts["unchanged"] += 1
            continue
        try:
            text = decode_source(data)
        except UnicodeDecodeError:
            skipped.append(SkippedFile(relative, "undecodable text"))
            continue
        text = redact_text(text, relative).text  # secrets never reach the embedder or the on-disk vocabulary
        file_rows = _split(relative, source.language, text, digest, info, embedder, limit)
        if file_rows is None:
            continue
        counts["changed" if previous else "added"] += 1
        rows.append(file_rows)
        pending.append(file_rows)
    if not rows:
        raise InputError(_nothing_to_index(root, skipped))
    kept = {_row_entry(item).path for item in rows}
    removed = sum(1 for path in old_files if path not in kept)
    checkpoint = _EmbedCheckpoint(directory / CHECKPOINT_FILE, f"{model}:{fingerprint}:{limit}") if pending else None
    try:
        embedded = _embed_pending(pending, embedder, progress, checkpoint) if checkpoint else 0
    finally:
        if checkpoint is not None:
            checkpoint.close()
    changed_anything = bool(pending or removed or old is None or any(
        isinstance(item, tuple) and item[1] != old.files[item[0]] for item in rows
    ))
    generation = None
    if changed_anything:
        generation = _assemble(rows, old, aggregation)
        meta_extra = {"model": model, "fingerprint": fingerprint, "splitter": SPLITTER_VERSION,
                      "block_tokens": limit, "aggregation": aggregation, "root": str(root),
                      "redaction": REDACTION_VERSION}
        write_generation(directory, generation, meta_extra)
    _EmbedCheckpoint.discard_at(directory / CHECKPOINT_FILE)  # its vectors now live in the committed generation
    n_units = len(generation["unit_kind"]) if generation else (old.n_units if old else 0)
    n_blocks = len(generation["block_lines"]) if generation else (len(old.block_lines) if old else 0)
    return IndexStats(
        str(root), str(directory), model, len(rows), n_units, n_blocks, counts["added"], counts["changed"],
        removed, counts["unchanged"], embedded, tuple(skipped), time.perf_counter() - started, rebuilt,
        changed_anything,
    )


def _split(relative, language, text, digest, info, embedder, limit) -> _FileRows | None:
    parsed = parse_text(text, language)
    split = split_file(parsed, limit, embedder.count_tokens, embedder.cut_text)
    if not split.blocks:
        return None  # an empty (or all-blank) file has nothing to search
    starts = _line_offsets(text)
    chars = []
    for block in split.blocks:
        if block.start_line == block.end_line and block.text != _line(text, starts, block.start_line):
            offset = text.find(block.text, starts[block.start_line - 1])  # a piece of a cut line
            chars.append((offset, offset + len(block.text)))
        else:
            chars.append((starts[block.start_line - 1], starts[block.start_line - 1] + len(block.text)))
    lines = text_lines(text)
    unit_counts = []
    for unit in split.units:
        body = "\n".join(lines[unit.start_line - 1 : unit.end_line])
        unit_counts.append(Counter(unit_tokens(body, printable_path(relative), unit.name)))
    entry = FileEntry(relative, language, digest, info.st_size, info.st_mtime_ns, 0, len(split.units), 0, len(split.blocks))
    headers = block_headers(printable_path(relative), split.units, len(split.blocks))
    texts = [embedded_text(header, block.text) for header, block in zip(headers, split.blocks)]
    return _FileRows(entry, list(split.units), list(split.blocks), chars, None, unit_counts, texts)


def block_digests(texts: Sequence[str]) -> np.ndarray:
    """(n, 32) uint8 SHA-256 of each embedded text: the key of its full-model vector in the vector cache."""
    rows = [bytes.fromhex(content_hash(t)) for t in texts]
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 32).copy()


def _row_entry(item) -> FileEntry:
    """The file entry of a row: new rows carry it, reused rows are (old index, refreshed entry)."""
    return item.entry if isinstance(item, _FileRows) else item[1]


def _line_offsets(text: str) -> list[int]:
    offsets, position = [0], text.find("\n")
    while position >= 0:
        offsets.append(position + 1)
        position = text.find("\n", position + 1)
    return offsets


def _line(text: str, starts: list[int], line: int) -> str:
    start = starts[line - 1]
    end = text.find("\n", start)
    return text[start : end if end >= 0 else len(text)]


class _EmbedCheckpoint:
    """Block vectors embedded by an indexer that has not committed yet, keyed by embedded text.

    Each batch is committed to SQLite as it is embedded, so an indexer killed after an hour of
    embedding resumes where it stopped instead of starting over. Removed once a generation that
    holds the vectors is live.
    """

    def __init__(self, path: Path, model_key: str):
        from lctk.score_cache import open_score_cache

        self.path, self.model_key = path, model_key
        self._resumable = path.exists()  # a fresh checkpoint holds nothing to look up
        self._cache = open_score_cache(path, "index checkpoint")

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Vectors already embedded, by the content hash of the text embedded."""
        if not self._resumable:
            return {}
        found = self._cache.get_many(self.model_key, "block", [(key, "") for key in keys])
        return {content: vector for (content, _), vector in found.items()}

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        """Commit one batch (keys: content hashes of the texts embedded)."""
        self._cache.put_many(self.model_key, "block", {(key, ""): v for key, v in zip(keys, vectors)})

    def close(self) -> None:
        self._cache.close()

    @staticmethod
    def discard_at(path: Path) -> None:
        """Remove a checkpoint (and SQLite's side files) once nothing in it is needed."""
        for suffix in ("", "-wal", "-shm"):
            try:
                Path(str(path) + suffix).unlink(missing_ok=True)
            except OSError:
                pass  # a leftover costs disk space, never correctness: its vectors are keyed by content


def _embed_pending(pending: list[_FileRows], embedder, progress: Progress | None, checkpoint: _EmbedCheckpoint) -> int:
    """Embed the blocks of new and changed files in batches; returns how many were embedded now.

    Blocks found in the checkpoint (left by a killed run) are not embedded again.
    """
    total = sum(len(rows.blocks) for rows in pending)
    if not total:
        return 0
    units = sum(len(rows.units) for rows in pending)
    keys = [[content_hash(text) for text in rows.embed_texts] for rows in pending]  # hashed once
    saved = checkpoint.get([key for file_keys in keys for key in file_keys])
    done, embedded, started = 0, 0, time.perf_counter()
    queue: list[tuple[_FileRows, int, str]] = []  # (file, block index, content hash)

    def flush() -> None:
        nonlocal done, embedded, queue
        if not queue:
            return
        vectors = embedder.embed([rows.embed_texts[i] for rows, i, _ in queue])
        checkpoint.put([key for _, _, key in queue], vectors)
        for (rows, i, _), vector in zip(queue, vectors):
            cast(np.ndarray, rows.vectors)[i] = vector  # allocated before its blocks were queued
        done, embedded, queue = done + len(queue), embedded + len(queue), []
        if progress is not None:
            rate = embedded / max(time.perf_counter() - started, 1e-9)
            progress(done, total, f"indexing {len(pending)} files, {units} units: {rate:,.0f} blocks/s")

    for rows, file_keys in zip(pending, keys):
        rows.vectors = np.zeros((len(rows.blocks), embedder.dim), dtype=np.float32)
        for i, key in enumerate(file_keys):
            vector = saved.get(key)
            if vector is not None and len(vector) == embedder.dim:
                rows.vectors[i] = vector
                done += 1
                continue
            queue.append((rows, i, key))
            if len(queue) >= EMBED_BATCH:
                flush()
    flush()
    return embedded


def _assemble(rows, old: IndexData | None, aggregation: str) -> dict:
    """Concatenate reused and new rows into one generation's arrays (global offsets applied)."""
    vocab: dict[str, int] = {}
    files, kinds, names = [], [], []
    unit_lines, unit_blocks, unit_file, block_lines, block_chars, block_vectors = [], [], [], [], [], []
    block_keys: list[np.ndarray] = []
    term_rows: list[tuple[np.ndarray, np.ndarray]] = []
    old_vocab = np.array(old.vocab, dtype=object) if old is not None else None
    n_units = n_blocks = 0
    for file_index, item in enumerate(sorted(rows, key=lambda r: _row_entry(r).path)):
        if isinstance(item, _FileRows):
            entry = item.entry
            kinds += [u.kind for u in item.units]
            names += [u.name for u in item.units]
            unit_lines.append(np.array([(u.start_line, u.end_line) for u in item.units], dtype=np.int32).reshape(-1, 2))
            unit_blocks.append(np.array([(u.block_start, u.block_end) for u in item.units], dtype=np.int64).reshape(-1, 2) + n_blocks)
            block_lines.append(np.array([(b.start_line, b.end_line) for b in item.blocks], dtype=np.int32).reshape(-1, 2))
            block_chars.append(np.array(item.block_chars, dtype=np.int64).reshape(-1, 2))
            block_vectors.append(cast(np.ndarray, item.vectors))  # every file has blocks: _embed_pending filled them
            block_keys.append(block_digests(item.embed_texts))
            for counts in item.unit_counts:
                ids = np.array([vocab.setdefault(term, len(vocab)) for term in counts], dtype=np.int32)
                term_rows.append((ids, np.array(list(counts.values()), dtype=np.int32)))
            n_new_units, n_new_blocks = len(item.units), len(item.blocks)
        else:
            old_index, entry = item
            old = cast(IndexData, old)  # rows are reused only from an old index
            previous = old.files[old_index]
            us, ue, bs, be = previous.unit_start, previous.unit_end, previous.block_start, previous.block_end
            kinds += old.unit_kind[us:ue]
            names += old.unit_name[us:ue]
            unit_lines.append(old.unit_lines[us:ue])
            unit_blocks.append(old.unit_blocks[us:ue] - bs + n_blocks)
            block_lines.append(old.block_lines[bs:be])
            block_chars.append(old.block_chars[bs:be])
            block_vectors.append(old.block_vectors[bs:be])
            # an index from before stored keys has none: zero rows mean "hash the text when needed"
            block_keys.append(old.block_keys[bs:be] if old.block_keys is not None else np.zeros((be - bs, 32), np.uint8))
            for unit in range(us, ue):
                a, b = old.unit_term_offsets[unit], old.unit_term_offsets[unit + 1]
                terms = cast(np.ndarray, old_vocab)[old.unit_terms[a:b]]
                ids = np.array([vocab.setdefault(term, len(vocab)) for term in terms], dtype=np.int32)
                term_rows.append((ids, old.unit_tfs[a:b]))
            n_new_units, n_new_blocks = ue - us, be - bs
        files.append(replace(entry, unit_start=n_units, unit_end=n_units + n_new_units, block_start=n_blocks, block_end=n_blocks + n_new_blocks))
        unit_file += [file_index] * n_new_units
        n_units += n_new_units
        n_blocks += n_new_blocks
    dim = next((v.shape[1] for v in block_vectors if v is not None and v.ndim == 2), old.block_vectors.shape[1] if old else 0)
    blocks_matrix = np.concatenate(block_vectors) if block_vectors else np.zeros((0, dim), np.float32)
    ranges = np.concatenate(unit_blocks) if unit_blocks else np.zeros((0, 2), np.int64)
    # float16 is the stored precision: aggregate from what readers will see
    stored_blocks = blocks_matrix.astype(np.float16)
    offsets = np.concatenate(([0], np.cumsum([len(ids) for ids, _ in term_rows]))).astype(np.int64)
    return {
        "files": files, "unit_kind": kinds, "unit_name": names, "vocab": list(vocab),
        "unit_lines": np.concatenate(unit_lines) if unit_lines else np.zeros((0, 2), np.int32),
        "unit_blocks": ranges, "unit_file": np.array(unit_file, dtype=np.int32),
        "unit_vectors": aggregate(stored_blocks.astype(np.float32), ranges, aggregation).astype(np.float16),
        "block_lines": np.concatenate(block_lines) if block_lines else np.zeros((0, 2), np.int32),
        "block_chars": np.concatenate(block_chars) if block_chars else np.zeros((0, 2), np.int64),
        "block_vectors": stored_blocks,
        "block_keys": np.concatenate(block_keys) if block_keys else np.zeros((0, 32), np.uint8),
        "unit_terms": np.concatenate([ids for ids, _ in term_rows]) if term_rows else np.zeros(0, np.int32),
        "unit_tfs": np.concatenate([tfs for _, tfs in term_rows]).astype(np.int32) if term_rows else np.zeros(0, np.int32),
        "unit_term_offsets": offsets,
    }
