"""The persistent, incremental search index of one directory tree.

Layout (under `<root>/.lctk/index/`, or `<index_dir setting>/<name>-<digest of root>/`):

    CURRENT          name of the live generation directory (replaced atomically)
    g-<id>/          one complete generation: meta.json + .npy arrays, fsynced before CURRENT moves
    lock             serialises writers (readers never wait)
    vectors.sqlite   reranker block vectors by content hash (see lctk.retrieval.ranking)
    pending.sqlite   vectors embedded by a build that has not committed yet (a killed build resumes)

A writer builds a whole new generation next to the live one and then swaps CURRENT, so a killed
indexer leaves the previous generation in place and readers always see a complete index.
Unchanged files (same size and mtime, or same SHA-256) keep their rows; only new and changed
files are parsed, split and embedded. Vectors are float16 on disk and float32 in memory.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lctk.config import index_dir
from lctk.errors import CacheError
from lctk.retrieval.units import SPLITTER_VERSION
from lctk.score_cache import content_hash
from lctk.sources.lexical import Postings
from lctk.sources.secrets import REDACTION_VERSION
from lctk.sources.walk import SkippedFile
from lctk.storage import atomic_write_bytes, fsync_directory
from lctk.vocabulary import Aggregation, parse_choice

log = logging.getLogger(__name__)

FORMAT = 1
INDEX_PARENT = ".lctk"
DEFAULT_BLOCK_TOKENS = 128
DEFAULT_AGGREGATION = "mean"
CHECKPOINT_FILE = "pending.sqlite"  # vectors of a build in progress (see _EmbedCheckpoint)

Progress = Callable[..., None]


@dataclass(frozen=True)
class FileEntry:
    path: str  # posix, relative to the root
    language: str | None
    sha256: str
    size: int
    mtime_ns: int
    unit_start: int
    unit_end: int
    block_start: int
    block_end: int


@dataclass(frozen=True)
class IndexStats:
    """What an index run did (printed by `lctk index`, returned by the API)."""

    root: str
    index_dir: str
    model: str
    files: int
    units: int
    blocks: int
    added: int
    changed: int
    removed: int
    unchanged: int
    embedded_blocks: int
    skipped: tuple[SkippedFile, ...]
    seconds: float
    rebuilt: str | None  # why the whole index was rebuilt, if it was
    wrote: bool  # False when nothing had changed


def index_json(stats: IndexStats) -> dict:
    """An IndexStats as `lctk index --format json` prints it (skipped files by path and reason)."""
    payload = {key: value for key, value in asdict(stats).items() if key != "skipped"}
    payload["skipped"] = [{"path": item.display_path, "reason": item.reason} for item in stats.skipped]
    payload["seconds"] = round(stats.seconds, 3)
    return payload


def index_outcome(stats: IndexStats) -> str:
    """What an index run did, in a word: built, refreshed or up to date."""
    return "built" if stats.rebuilt or stats.added == stats.files else "refreshed" if stats.wrote else "up to date"


@dataclass
class IndexData:
    """A loaded generation: small arrays in memory; the vectors mapped from their files as stored
    (float16; multiply them with `matvec`, which converts a cache-sized chunk at a time)."""

    root: Path
    directory: Path
    meta: dict
    files: list[FileEntry]
    unit_kind: list[str]
    unit_name: list[str]
    unit_lines: np.ndarray  # (n_units, 2) int32, 1-based inclusive
    unit_blocks: np.ndarray  # (n_units, 2) int64, global block range [start, end)
    unit_file: np.ndarray  # (n_units,) int32
    unit_vectors: np.ndarray  # (n_units, d) float16 as stored (float32 where built in memory)
    block_lines: np.ndarray  # (n_blocks, 2) int32
    block_chars: np.ndarray  # (n_blocks, 2) int64, char offsets in the file's text
    block_vectors: np.ndarray  # (n_blocks, d) float16 as stored (float32 where built in memory)
    vocab: list[str]
    unit_terms: np.ndarray  # CSR over units: term ids
    unit_tfs: np.ndarray  # CSR: term frequencies
    unit_term_offsets: np.ndarray  # (n_units + 1,)
    block_keys: np.ndarray | None = None  # (n_blocks, 32) uint8: SHA-256 of what was embedded (None: older index)
    _postings: Postings | None = field(default=None, repr=False)

    @property
    def n_units(self) -> int:
        return len(self.unit_kind)

    def postings(self) -> Postings:
        """Inverted lists (term -> units, tfs) and unit lengths, built once per load."""
        if self._postings is None:
            order = np.argsort(self.unit_terms, kind="stable")
            units = np.repeat(np.arange(self.n_units, dtype=np.int32), np.diff(self.unit_term_offsets))[order]
            counts = np.bincount(self.unit_terms, minlength=len(self.vocab))
            offsets = np.concatenate(([0], np.cumsum(counts)))
            lengths = np.add.reduceat(self.unit_tfs.astype(np.float64), self.unit_term_offsets[:-1]) if len(self.unit_tfs) else np.zeros(self.n_units)
            lengths[np.diff(self.unit_term_offsets) == 0] = 0.0
            self._postings = Postings({t: i for i, t in enumerate(self.vocab)}, offsets, units,
                                      self.unit_tfs[order].astype(np.float64), lengths)
        return self._postings


# ---------------------------------------------------------------- locations


def index_location(root: Path) -> Path:
    """Where the index of `root` lives: <root>/.lctk/index, or under the index_dir setting (LCTK_INDEX_DIR, config files)."""
    configured = index_dir()
    if configured is not None:
        digest = content_hash(str(root))[:12]
        return configured / f"{root.name or 'root'}-{digest}"
    return root / INDEX_PARENT / "index"


def find_index_root(path: Path) -> Path | None:
    """The nearest directory at or above `path` that has an index, or None."""
    start = path if path.is_dir() else path.parent
    for candidate in (start, *start.parents):
        if (index_location(candidate) / "CURRENT").is_file():
            return candidate
    return None


# ---------------------------------------------------------------- reading


def current_generation(root: Path) -> str | None:
    """The name of the live generation of `root`'s index (what CURRENT says), or None without one."""
    try:
        return (index_location(root) / "CURRENT").read_text().strip()
    except OSError:
        return None


def load_index(root: Path) -> IndexData | None:
    """Load the live generation of `root`'s index; None if there is none (or it cannot be read)."""
    directory = index_location(root)
    for _ in range(3):  # a writer may swap generations between reading CURRENT and opening files
        try:
            name = (directory / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheError(f"cannot read the index at {directory}: {exc.strerror or exc}") from None
        generation = directory / name
        try:
            return _read_generation(root, generation)
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            log.warning("the index at %s is damaged (%s); it will be rebuilt", directory, type(exc).__name__)
            return None
    return None


def _read_generation(root: Path, generation: Path) -> IndexData:
    meta = json.loads((generation / "meta.json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError("format")

    def array(name: str) -> np.ndarray:
        return np.load(generation / f"{name}.npy", allow_pickle=False)

    def mapped(name: str) -> np.ndarray:  # read-only and paged in on use: a query reads no copy of them
        return np.load(generation / f"{name}.npy", allow_pickle=False, mmap_mode="r")

    files = [FileEntry(**entry) for entry in meta["files"]]
    data = IndexData(
        root=root, directory=generation, meta=meta, files=files,
        unit_kind=list(meta["unit_kind"]), unit_name=list(meta["unit_name"]),
        unit_lines=array("unit_lines"), unit_blocks=array("unit_blocks"), unit_file=array("unit_file"),
        unit_vectors=mapped("unit_vectors"),
        block_lines=array("block_lines"), block_chars=array("block_chars"),
        block_vectors=mapped("block_vectors"),
        vocab=list(meta["vocab"]), unit_terms=array("unit_terms"), unit_tfs=array("unit_tfs"),
        unit_term_offsets=array("unit_term_offsets"),
        block_keys=array("block_keys") if (generation / "block_keys.npy").is_file() else None,
    )
    n_units, n_blocks = len(data.unit_kind), len(data.block_lines)
    consistent = (
        len(data.unit_name) == n_units == len(data.unit_lines) == len(data.unit_blocks) == len(data.unit_file)
        == len(data.unit_vectors) == len(data.unit_term_offsets) - 1
        and len(data.block_chars) == n_blocks == len(data.block_vectors)
        and (data.block_keys is None or data.block_keys.shape == (n_blocks, 32))
        and (n_units == 0 or int(data.unit_blocks[:, 1].max()) <= n_blocks)
        and len(data.unit_terms) == len(data.unit_tfs) == int(data.unit_term_offsets[-1])
        and (len(data.unit_terms) == 0 or int(data.unit_terms.max()) < len(data.vocab))
        and all(_inside_root(entry.path) for entry in files)
    )
    if not consistent:
        raise ValueError("inconsistent arrays")
    return data


def _inside_root(relative: str) -> bool:
    """A stored path stays inside the index root: relative, no `..` part (string checks: the
    index stores posix paths, and building Path objects for every file cost ~10 ms a load)."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    return bool(parts) and not relative.startswith("/") and ".." not in parts


def compatibility(meta: dict, model: str, fingerprint: str, block_tokens: int, aggregation: str) -> str | None:
    """Why an index built with `meta` cannot be reused as is (None if it can)."""
    if meta.get("model") != model:
        return f"the embedder changed ({meta.get('model')} -> {model})"
    if meta.get("fingerprint") != fingerprint:
        return f"the {model} weights changed"
    if meta.get("splitter") != SPLITTER_VERSION:
        return f"the splitter changed (version {meta.get('splitter')} -> {SPLITTER_VERSION})"
    if meta.get("block_tokens") != block_tokens:
        return f"the block size changed ({meta.get('block_tokens')} -> {block_tokens} tokens)"
    if meta.get("aggregation") != aggregation:
        return f"the aggregation changed ({meta.get('aggregation')} -> {aggregation})"
    if meta.get("redaction") != REDACTION_VERSION:
        return f"the secret redaction rules changed (version {meta.get('redaction')} -> {REDACTION_VERSION})"
    return None


# ---------------------------------------------------------------- aggregation


MATVEC_ROWS = 2048  # rows converted to float32 at a time: the chunk stays in cache, no large temporary


def matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """float32 (n,): `matrix` @ `vector` for float16 or float32 rows (an index's stored vectors).

    A fresh process would otherwise convert the whole mapped matrix to a new float32 array first
    (~0.15 s for pip's 24k blocks, mostly page faults); chunk by chunk it costs a few ms.
    """
    vector = np.asarray(vector, dtype=np.float32)
    if matrix.dtype == np.float32:
        return np.asarray(matrix @ vector)
    out = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), MATVEC_ROWS):
        out[start : start + MATVEC_ROWS] = matrix[start : start + MATVEC_ROWS].astype(np.float32) @ vector
    return out


def aggregate(block_vectors: np.ndarray, ranges: np.ndarray, how: str) -> np.ndarray:
    """Unit vectors from their block ranges: mean, max, or attention pooling; L2-normalised.

    Attention pooling is parameter-free: block weights are softmax(sqrt(d) * cos(block, mean)),
    so blocks typical of the unit count more than stray ones.
    """
    how = parse_choice(Aggregation, how, "aggregation").value
    d = block_vectors.shape[1] if block_vectors.ndim == 2 else 0
    out = np.zeros((len(ranges), d), dtype=np.float32)
    if not len(ranges):
        return out
    if how == "mean":
        cumulative = np.vstack([np.zeros((1, d), np.float64), np.cumsum(block_vectors, axis=0, dtype=np.float64)])
        out[:] = cumulative[ranges[:, 1]] - cumulative[ranges[:, 0]]
    else:  # max or attention
        scale = np.sqrt(d)
        for row, (start, end) in enumerate(ranges):
            vectors = block_vectors[start:end]
            if how == "max":
                out[row] = vectors.max(axis=0)
                continue
            mean = vectors.mean(axis=0)
            norm = np.linalg.norm(mean)
            if norm == 0:
                continue
            logits = scale * (vectors @ (mean / norm))
            weights = np.exp(logits - logits.max())
            out[row] = (weights / weights.sum()) @ vectors
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


# ---------------------------------------------------------------- writing


ARRAYS = ("unit_lines", "unit_blocks", "unit_file", "unit_vectors", "block_lines", "block_chars",
          "block_vectors", "unit_terms", "unit_tfs", "unit_term_offsets", "block_keys")


def write_generation(directory: Path, generation: dict, meta_extra: dict) -> None:
    """Write a new generation directory, fsync it, then point CURRENT at it and drop the old ones."""
    name = f"g-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
    target = directory / name
    try:
        target.mkdir(parents=True)
        meta = {"format": FORMAT, **meta_extra, "created": time.time(),
                "files": [entry.__dict__ for entry in generation["files"]],
                "unit_kind": generation["unit_kind"], "unit_name": generation["unit_name"], "vocab": generation["vocab"]}
        for array_name in ARRAYS:
            with open(target / f"{array_name}.npy", "wb") as handle:
                np.save(handle, generation[array_name], allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
        with open(target / "meta.json", "w", encoding="utf-8") as handle:
            json.dump(meta, handle)  # ASCII escapes: a non-UTF-8 file name (a lone surrogate) survives the round trip
            handle.flush()
            os.fsync(handle.fileno())
        fsync_directory(target)
        atomic_write_bytes(directory / "CURRENT", (name + "\n").encode())
    except OSError as exc:
        shutil.rmtree(target, ignore_errors=True)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or exc.errno is None  # numpy: short write
        hint = "; is the disk full or over quota? The previous index is untouched" if full else ""
        raise CacheError(f"cannot write the index at {directory} ({exc.strerror or exc}{hint})") from None
    for stale in directory.glob("g-*"):
        if stale.name != name and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
