"""Rank indexed units for a query: dense SEA scores, BM25, fusion, filters first, then top-k.

Dense score of a unit = (1 - LIFT) * cos(query, aggregated unit vector) + LIFT * its best block's
cosine, so one strongly matching block lifts a long unit. Lexical score = BM25 over identifier
parts of the unit's code, symbol and path. Hybrid fuses the two by a normalised blend (default)
or reciprocal-rank fusion; a query that is one identifier leans lexical. When the index was built
with a static embedder, the top RERANK candidates are re-scored with the full transformer it was
distilled from (block vectors cached by content hash), which restores the full model's quality
at a fraction of its indexing cost. Filters restrict the candidate set before anything is ranked.
`related` ranks units by the same dense score with one unit's aggregated vector in the query's
place, leaving out that unit and what overlaps it in its file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from lctk.errors import InputError
from lctk.retrieval.store import IndexData, aggregate, matvec
from lctk.retrieval.units import (
    FILE,
    UNIT_KINDS,
    Unit,
    block_headers,
    embedded_text,
    innermost_units,
)
from lctk.score_cache import content_hash
from lctk.sources.languages import LANGUAGES
from lctk.sources.lexical import bm25_scores, compound_identifiers, identifier_tokens
from lctk.sources.secrets import RedactedText, redact_text
from lctk.sources.walk import printable_path
from lctk.vocabulary import Fusion, SearchMode, parse_choice

log = logging.getLogger(__name__)

LIFT = 0.5  # weight of the best block in a unit's dense score (bench/search.py)
DENSE_WEIGHT = 0.9  # blend weight of the dense signal for natural-language queries (bench/search.py)
STAGE_ONE_DENSE_WEIGHT = 0.7  # ... when a reranker follows: static vectors are weaker, BM25 helps recall
SYMBOL_DENSE_WEIGHT = 0.3  # ... and for a query that is a single identifier
RRF_K = 60
RERANK = 100  # candidates re-scored by the full embedder when the index is static (bench/search.py)
RERANK_BLOCKS = 4  # at most this many blocks of one unit are re-embedded (its best ones)
COLD_BLOCKS = 32  # code blocks one query may embed with the full model where no vector is stored yet (~1 s on 2 cores)
WARM_BATCH = 512  # blocks per embedding call when `lctk index --warm` stores every block's full vector
FLOAT32_COPY_BYTES = 512 << 20  # a searcher's second query keeps float32 copies of the index's vectors up to this size
_SYMBOL = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::|#)[A-Za-z_$][\w$]*)*$")


@dataclass(frozen=True)
class SearchHit:
    """One result. Lines are 1-based and inclusive; `path` is as the user should open it."""
    rank: int
    path: str
    start_line: int
    end_line: int
    score: float
    symbol: str
    kind: str
    language: str | None
    dense: float | None
    lexical: float | None
    block_start_line: int  # the best matching block inside the unit
    block_end_line: int


@dataclass(frozen=True)
class Filters:
    """What a search may return; an empty field restricts nothing."""
    languages: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # posix prefixes relative to the index root ("" = everything)
    kinds: tuple[str, ...] = ()

    @classmethod
    def checked(
        cls, *, languages: Sequence[str] = (), globs: Sequence[str] = (), paths: Sequence[str] = (),
        kinds: Sequence[str] = (),
    ) -> Filters:
        """Filters with languages lower-cased and every language and kind checked against lctk's names."""
        known = set(LANGUAGES) | {"text"}
        for language in languages:
            if language.lower() not in known:
                raise InputError(f"unknown language {language!r}; use one of: {', '.join(sorted(known))}")
        for kind in kinds:
            if kind not in UNIT_KINDS:
                raise InputError(f"unknown unit kind {kind!r}; use one of: {', '.join(UNIT_KINDS)}")
        return cls(tuple(language.lower() for language in languages), tuple(globs), tuple(paths), tuple(kinds))


def is_symbol_query(query: str) -> bool:
    """One identifier (`Depends`, `parse_header`, `http.client.HTTPConnection`)."""
    return bool(_SYMBOL.match(query.strip()))


def query_tokens(query: str) -> list[str]:
    """BM25 terms of a query: identifier parts plus whole compound identifiers."""
    return identifier_tokens(query) + compound_identifiers(query)


def candidate_mask(index: IndexData, filters: Filters) -> np.ndarray:
    """Boolean mask over units that pass every filter (computed per file, then spread to units)."""
    if not (filters.globs or filters.languages or filters.paths or filters.kinds):
        return np.ones(index.n_units, dtype=bool)
    spec = None
    if filters.globs:
        from pathspec import GitIgnoreSpec  # here: importing it costs ~20 ms of a search that has no globs

        spec = GitIgnoreSpec.from_lines(filters.globs)
    languages = {language.lower() for language in filters.languages}
    prefixes = [p.strip("/") for p in filters.paths]
    keep_file = np.zeros(len(index.files), dtype=bool)
    for i, entry in enumerate(index.files):
        if languages and (entry.language or "text") not in languages:
            continue
        if spec is not None and not spec.match_file(entry.path):
            continue
        if prefixes and not any(p == "" or entry.path == p or entry.path.startswith(p + "/") for p in prefixes):
            continue
        keep_file[i] = True
    mask = keep_file[index.unit_file] if index.n_units else np.zeros(0, dtype=bool)
    if filters.kinds:
        kinds = set(filters.kinds)
        mask &= np.array([kind in kinds for kind in index.unit_kind], dtype=bool)
    return mask


def range_max(values: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Max of `values` over each [start, end) range (ranges may nest or overlap)."""
    if not len(ranges):
        return np.zeros(0)
    padded = np.append(values, -np.inf)
    bounds = np.empty(2 * len(ranges), dtype=np.int64)
    bounds[0::2], bounds[1::2] = ranges[:, 0], ranges[:, 1]
    return np.maximum.reduceat(padded, bounds)[0::2]


def range_argmax(values: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Index of the first maximum of `values` in each of contiguous, non-empty [start, end) ranges."""
    if not len(ranges):
        return np.zeros(0, dtype=np.int64)
    first, last = int(ranges[0, 0]), int(ranges[-1, 1])
    peak = np.repeat(range_max(values, ranges), ranges[:, 1] - ranges[:, 0])
    at_peak = np.where(values[first:last] == peak, np.arange(first, last), last)
    return np.minimum.reduceat(at_peak, ranges[:, 0] - first)


def _minmax(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return values
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def fuse(dense: np.ndarray, lexical: np.ndarray, dense_weight: float, how: str) -> np.ndarray:
    """Fuse two score vectors over the same candidates."""
    if how == "rrf":
        fused = np.zeros(len(dense))
        for scores, weight in ((dense, dense_weight), (lexical, 1 - dense_weight)):
            ranks = np.empty(len(scores))
            ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
            fused += 2 * weight / (RRF_K + ranks)
        return fused
    top = float(lexical.max()) if len(lexical) else 0.0
    lexical_n = lexical / top if top > 0 else np.zeros_like(lexical)
    return dense_weight * _minmax(dense) + (1 - dense_weight) * lexical_n


def stored_key(row: np.ndarray) -> tuple[str, str]:
    """The vector-cache key of a block from the SHA-256 of its embedded text, as the index stores it."""
    return (row.tobytes().hex(), "")


class Searcher:
    """Queries over one loaded index (reuse it for many queries)."""

    def __init__(self, index: IndexData, embedder, reranker=None, vector_cache=None, display_prefix: str = ""):
        self.index = index
        self.embedder = embedder
        self.reranker = reranker
        self.vector_cache = vector_cache
        self.display_prefix = display_prefix
        self.aggregation = index.meta.get("aggregation", "mean")
        self._file_texts: dict[int, RedactedText | None] = {}  # file index -> RedactedText, or None when stale
        self._headers: dict[int, list[str]] = {}
        self._by_display: dict[str, int] | None = None  # display path -> file index, built on first use
        self._units: dict[int, list[Unit]] = {}
        self._last_query: str | None = None
        self._last_vector: np.ndarray | None = None
        self._last_block_cos: np.ndarray | None = None
        self._block_ends = np.array([f.block_end for f in index.files], dtype=np.int64)
        self._queries = 0  # searches and related() calls so far: the second one makes float32 copies
        self._float32: dict[str, np.ndarray] = {}  # "unit_vectors"/"block_vectors" -> float32 copy
        self._full_memo: dict[tuple[str, str], np.ndarray] = {}  # vector-cache key -> full-model block vector read or embedded
        self._memo_filled = False  # every stored vector read into _full_memo (done at the second query)

    def search(
        self, query: str, k: int = 10, mode: str = "hybrid", filters: Filters = Filters(),
        fusion: str = "blend", lift: float = LIFT, rerank: int = RERANK, dense_weight: float | None = None,
        dedupe: bool = True, cold_blocks: int | None = COLD_BLOCKS,
    ) -> tuple[SearchHit, ...]:
        """The best `k` units for `query`.

        With a reranker, the best `rerank` candidates of the first stage are re-scored with the
        full model's block vectors. Stored vectors cost nothing; a query embeds at most
        `cold_blocks` blocks that have none yet (None: no limit), best candidates first, and the
        re-scored head ends before the first candidate it could not complete. A cold index
        thus answers in about a second and warms with use (or at once with `lctk index --warm`).
        """
        if not query.strip():
            raise InputError("empty query; say what you are looking for")
        mode = parse_choice(SearchMode, mode, "mode").value
        fusion = parse_choice(Fusion, fusion, "fusion").value
        if k < 1:
            raise InputError(f"k must be at least 1 (got {k})")
        index = self.index
        self._queries += 1
        candidates = np.flatnonzero(candidate_mask(index, filters))
        if not len(candidates):
            return ()
        symbol = is_symbol_query(query)
        weight = dense_weight if dense_weight is not None else (SYMBOL_DENSE_WEIGHT if symbol else DENSE_WEIGHT)
        dense = None
        if mode != "lexical":
            dense = self._dense(query, candidates, lift)
        lexical = None
        if mode != "dense":
            lexical = bm25_scores(index.postings(), query_tokens(query))[candidates]
            if symbol:
                lexical = lexical + self._exact_symbol_bonus(query, candidates, lexical)
        reranking = mode != "lexical" and self.reranker is not None and rerank > 0
        # dense is set unless the mode is lexical, lexical unless it is dense
        if mode == "dense":
            scores = cast(np.ndarray, dense)
        elif mode == "lexical":
            scores = cast(np.ndarray, lexical)
        else:
            first_weight = weight if not reranking or dense_weight is not None or symbol else STAGE_ONE_DENSE_WEIGHT
            scores = fuse(cast(np.ndarray, dense), cast(np.ndarray, lexical), first_weight, fusion)
        order = np.argsort(-scores, kind="stable")
        best_block: dict[int, int] = {}  # candidate position -> best block, filled where needed
        if reranking:
            head = order[:rerank]
            head_dense, head_best = self._rerank_dense(query, candidates[head], lift, cold_blocks)
            if head_dense is not None:
                head = head[: len(head_dense)]
                dense = cast(np.ndarray, dense).copy()  # reranking: the mode is not lexical
                dense[head] = head_dense
                best_block.update(zip(head.tolist(), head_best.tolist()))
                head_scores = head_dense if mode == "dense" else fuse(head_dense, cast(np.ndarray, lexical)[head], weight, fusion)
                scores = scores.copy()
                scores[head] = head_scores
                # the re-scored head keeps its place above the rest: its order is the better one
                order = np.concatenate([head[np.argsort(-head_scores, kind="stable")], order[len(head):]])
        block_scores = self._block_cos(query) if mode != "lexical" else None
        return self._hits(order, candidates, scores, dense, lexical, best_block, block_scores, k, dedupe, filters.kinds)

    # -- dense

    def _dense(self, query: str, candidates: np.ndarray, lift: float) -> np.ndarray:
        index = self.index
        vector = self._query_vector(query)
        unit_cos = matvec(self._stored("unit_vectors")[candidates], vector)
        best = range_max(self._block_cos(query), index.unit_blocks[candidates])
        return (1 - lift) * unit_cos + lift * best

    def _query_vector(self, query: str) -> np.ndarray:
        if self._last_query != query:
            self._last_query, self._last_vector, self._last_block_cos = query, self.embedder.embed([query])[0], None
        return cast(np.ndarray, self._last_vector)  # set with _last_query

    def _block_cos(self, query: str) -> np.ndarray:
        vector = self._query_vector(query)
        if self._last_block_cos is None:
            self._last_block_cos = matvec(self._stored("block_vectors"), vector)
        return self._last_block_cos

    def _stored(self, name: str) -> np.ndarray:
        """The index's `name` vectors: as mapped (float16) for a searcher's first query, a float32
        copy from its second on when it fits in FLOAT32_COPY_BYTES (no conversion per query; a
        one-query CLI process never pays for the copy)."""
        if name in self._float32:
            return self._float32[name]
        matrix = getattr(self.index, name)
        if matrix.dtype != np.float32 and self._keeps_copies(2 * matrix.nbytes):
            matrix = self._float32[name] = np.asarray(matrix, dtype=np.float32)
        return matrix

    def _keeps_copies(self, nbytes: int) -> bool:
        """Whether this searcher keeps an in-memory copy of `nbytes` (from its second query, up to
        FLOAT32_COPY_BYTES each): the float32 vectors and the stored full-model block vectors."""
        return self._queries > 1 and nbytes <= FLOAT32_COPY_BYTES

    def _rerank_dense(self, query: str, units: np.ndarray, lift: float, cold_blocks: int | None = None):
        """Full-model SEA scores of the longest prefix of `units` (best first) whose blocks all have
        vectors, and each one's best block; (None, None) if unavailable.

        A unit is scored over its best few blocks (by the first stage). Blocks with stored vectors
        cost nothing; at most `cold_blocks` others are embedded now, best units first. (Embedding
        every unit's best block first instead re-scored more units but ranked worse on semble's
        annotations: 0.699 against 0.746 NDCG@10 on pydantic at 16 blocks.)
        """
        index = self.index
        query_vector = self.reranker.embed([query])[0]
        stage_cos = self._block_cos(query)
        wanted: list[list[int]] = []
        for unit in units:
            start, end = index.unit_blocks[unit]
            blocks = np.arange(start, end)
            if len(blocks) > RERANK_BLOCKS:
                blocks = blocks[np.argsort(-stage_cos[start:end], kind="stable")[:RERANK_BLOCKS]]
            wanted.append(sorted(int(b) for b in blocks))
        vectors = self._full_vectors(list(dict.fromkeys(b for blocks in wanted for b in blocks)), budget=cold_blocks)
        if vectors is None:
            log.debug("some files changed since indexing; reranking skipped")
            return None, None
        complete = next((i for i, blocks in enumerate(wanted) if any(b not in vectors for b in blocks)), len(wanted))
        wanted = wanted[:complete]
        if not wanted:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        flat = [b for blocks in wanted for b in blocks]  # every unit has at least one block
        matrix = np.stack([vectors[b] for b in flat])
        lengths = np.array([len(blocks) for blocks in wanted])
        ranges = np.stack([np.cumsum(lengths) - lengths, np.cumsum(lengths)], axis=1)
        unit_vectors = aggregate(matrix, ranges, self.aggregation)
        cos = matrix @ query_vector
        top = range_argmax(cos, ranges)
        dense = (1 - lift) * (unit_vectors @ query_vector).astype(np.float64) + lift * cos[top].astype(np.float64)
        return dense, np.asarray(flat, dtype=np.int64)[top]

    def warm(self, batch: int = WARM_BATCH, progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
        """Embed every block with the reranker into the vector cache (those not there yet).

        Queries then re-score their candidates from stored vectors: the full model reads only
        the query, never code. Returns (blocks, blocks embedded now).
        """
        if self.reranker is None:
            return 0, 0
        total, embedded = len(self.index.block_chars), 0
        for start in range(0, total, batch):
            embedded += self._full_vectors(list(range(start, min(start + batch, total))), report=True)[1]
            if progress is not None:
                progress(min(start + batch, total), total)
        return total, embedded

    def _full_vectors(self, blocks: Sequence[int], report: bool = False, budget: int | None = None):
        """The reranker's vector of each block: from the vector cache, else embedded (and cached).

        Cache keys are the SHA-256 of the embedded text, stored in the index, so a warm query
        reads no file. At most `budget` blocks are embedded (the first missing ones in the order
        given); the others are left out of the result. Returns None when a missing vector's file
        changed since indexing (with report=True such blocks are skipped instead, and the count
        embedded comes back too).
        """
        model = f"{self.reranker.model_id}:{getattr(self.reranker, 'fingerprint', '')}"
        texts: dict[int, str | None] = {}

        def text(b: int) -> str | None:  # rebuilt from the file once, only where needed
            if b not in texts:
                texts[b] = self._block_text(b)
            return texts[b]

        stored = self.index.block_keys
        keys: dict[int, tuple[str, str]] = {}
        for b in blocks:
            if stored is not None and stored[b].any():
                keys[b] = stored_key(stored[b])
            elif text(b) is not None:  # an index from before stored keys, or a block of one
                keys[b] = (content_hash(cast(str, text(b))), "")
            elif not report:
                return None
        wanted = set(keys.values())
        if not report and not self._memo_filled and self._keeps_copies(0):
            self._fill_memo(model)
        cached = {key: self._full_memo[key] for key in wanted if key in self._full_memo}
        if self.vector_cache is not None and len(cached) < len(wanted):
            cached.update(self.vector_cache.get_many(model, "block", wanted - cached.keys()))
        missing: list[tuple[tuple[str, str], int]] = []
        for key, b in {keys[b]: b for b in keys if keys[b] not in cached}.items():  # in the order given
            if budget is not None and len(missing) >= budget:
                break
            if text(b) is not None:
                missing.append((key, b))
            elif not report:
                return None
        if missing:
            fresh = self.reranker.embed([texts[b] for _, b in missing])
            new = {key: vector for (key, _), vector in zip(missing, fresh)}
            cached.update(new)
            if self.vector_cache is not None:
                self.vector_cache.put_many(model, "block", new)
        vectors = {b: np.asarray(cached[key], dtype=np.float32) for b, key in keys.items() if key in cached}
        if not report:  # a query's vectors are kept for the next query (warm's pass over every block is not)
            self._full_memo.update((key, vectors[b]) for b, key in keys.items() if b in vectors)
        return (vectors, len(missing)) if report else vectors

    def _fill_memo(self, model: str) -> None:
        """Read every stored full-model block vector at once (a searcher's second query, when they
        fit in FLOAT32_COPY_BYTES): later queries then read nothing from the vector cache."""
        self._memo_filled = True
        stored = self.index.block_keys
        if stored is None or self.vector_cache is None:
            return
        dim = int(self.index.block_vectors.shape[1]) if self.index.block_vectors.ndim == 2 else 0
        if not self._keeps_copies(len(stored) * dim * 4):
            return
        keys = {stored_key(row) for row in stored if row.any()} - self._full_memo.keys()
        self._full_memo.update((key, np.asarray(vector, dtype=np.float32)) for key, vector in self.vector_cache.get_many(model, "block", keys).items())

    def _block_text(self, block: int) -> str | None:
        """What the index embedded for `block` (header + code), rebuilt from the file on disk."""
        file_index = int(np.searchsorted(self._block_ends, block, side="right"))
        text = self.file_text(file_index)
        if text is None:
            return None
        if file_index not in self._headers:
            entry = self.index.files[file_index]
            self._headers[file_index] = block_headers(printable_path(entry.path), self._file_units(file_index), entry.block_end - entry.block_start)
        start, end = self.index.block_chars[block]
        header = self._headers[file_index][block - self.index.files[file_index].block_start]
        return embedded_text(header, text[start:end])

    def file_index_of(self, hit_path: str) -> int | None:
        """The index of the file a hit's (display) path names."""
        if self._by_display is None:
            self._by_display = {self.display_prefix + printable_path(f.path): i for i, f in enumerate(self.index.files)}
        return self._by_display.get(hit_path)

    def file_text(self, file_index: int) -> str | None:
        """The file's text as indexed (secrets redacted) if it still matches the index, else None."""
        if file_index not in self._file_texts:
            raw = self.raw_file_text(file_index)
            self._file_texts[file_index] = None if raw is None else redact_text(raw, self.index.files[file_index].path)
        cached = self._file_texts[file_index]
        return None if cached is None else cached.text

    def redactions(self, file_index: int, first_line: int = 1, last_line: int | None = None) -> tuple:
        """The secrets replaced in the file's text (lctk.sources.secrets.Redaction), within those lines."""
        if self.file_text(file_index) is None:
            return ()
        return tuple(r for r in cast("RedactedText", self._file_texts[file_index]).redactions  # not stale: checked above
                     if first_line <= r.line and (last_line is None or r.line <= last_line))

    def raw_file_text(self, file_index: int) -> str | None:
        """The file's current text, unredacted, if it still matches the index (same SHA-256), else None."""
        from lctk.sources.walk import decode_source

        entry = self.index.files[file_index]
        try:
            data = (self.index.root / entry.path).read_bytes()
            return decode_source(data) if content_hash(data) == entry.sha256 else None
        except (OSError, UnicodeDecodeError):
            return None

    # -- related

    def unit_at(self, file_index: int, line: int) -> int:
        """The innermost unit of the file holding `line` (the file's own unit between definitions)."""
        index, entry = self.index, self.index.files[file_index]
        if line < 1:
            raise InputError(f"line must be at least 1 (got {line})")
        units = range(entry.unit_start, entry.unit_end)
        holding = [u for u in units if index.unit_lines[u][0] <= line <= index.unit_lines[u][1]]
        if not holding:
            last = max((int(index.unit_lines[u][1]) for u in units), default=0)
            raise InputError(f"line {line} is past the end of {self.display_prefix + printable_path(entry.path)} ({last} lines)")
        # the shortest span is the innermost; on a tie the definition (listed before its file) wins
        return min(holding, key=lambda u: (int(index.unit_lines[u][1]) - int(index.unit_lines[u][0]), u))

    def related(
        self, unit: int, k: int = 10, filters: Filters = Filters(), lift: float = LIFT, dedupe: bool = True,
    ) -> tuple[SearchHit, ...]:
        """The `k` units most like `unit`, best first: search's dense score with the unit's vector as the query.

        The unit itself and every unit of its file whose lines overlap it (the class or file around
        it, the methods inside it) are left out, so each hit is code elsewhere.
        """
        if k < 1:
            raise InputError(f"k must be at least 1 (got {k})")
        index = self.index
        self._queries += 1
        first, last = (int(x) for x in index.unit_lines[unit])
        around = (index.unit_file == index.unit_file[unit]) & (index.unit_lines[:, 0] <= last) & (index.unit_lines[:, 1] >= first)
        candidates = np.flatnonzero(candidate_mask(index, filters) & ~around)
        if not len(candidates):
            return ()
        vector = np.asarray(index.unit_vectors[unit], dtype=np.float32)
        block_cos = matvec(self._stored("block_vectors"), vector)
        dense = (1 - lift) * matvec(self._stored("unit_vectors")[candidates], vector).astype(np.float64) + lift * range_max(block_cos, index.unit_blocks[candidates])
        order = np.argsort(-dense, kind="stable")
        return self._hits(order, candidates, dense, dense, None, {}, block_cos, k, dedupe, filters.kinds)

    # -- lexical

    def _exact_symbol_bonus(self, query: str, candidates: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """Units whose symbol is the query (`Depends`, `Client.get`) go above partial matches."""
        wanted = re.split(r"\.|::|#", query.strip())
        bonus = np.zeros(len(candidates))
        top = float(lexical.max()) if len(lexical) else 0.0
        for row, unit in enumerate(candidates):
            name = self.index.unit_name[unit]
            if name and re.split(r"\.|::|#", name)[-len(wanted):] == wanted:
                bonus[row] = top + 1.0
        return bonus

    # -- results

    def _file_units(self, file_index: int) -> list[Unit]:
        """The file's units with block ranges relative to the file (as `split_file` made them)."""
        if file_index not in self._units:
            entry, index = self.index.files[file_index], self.index
            self._units[file_index] = [
                Unit(index.unit_kind[u], index.unit_name[u], 0, 0,
                     int(index.unit_blocks[u][0]) - entry.block_start, int(index.unit_blocks[u][1]) - entry.block_start)
                for u in range(entry.unit_start, entry.unit_end)
            ]
        return self._units[file_index]

    def _innermost(self, file_index: int, block: int, default: int) -> int:
        entry = self.index.files[file_index]
        units = self._file_units(file_index)
        inner = innermost_units(units, entry.block_end - entry.block_start)[block - entry.block_start]
        return default if inner < 0 else entry.unit_start + inner

    def _hits(self, order, candidates, scores, dense, lexical, best_block, block_scores, k: int, dedupe: bool, kinds=()) -> tuple[SearchHit, ...]:
        """The first `k` hits in `order`; a unit's best block is from `best_block`, else the top of `block_scores` (else its first)."""
        index = self.index
        hits: list[SearchHit] = []
        taken: dict[int, list[tuple[int, int]]] = {}
        for position in order:
            position = int(position)
            unit = int(candidates[position])
            file_index = int(index.unit_file[unit])
            kind = index.unit_kind[unit]
            start, end = (int(x) for x in index.unit_blocks[unit])
            block = best_block.get(position)
            if block is None:
                block = start + int(np.argmax(block_scores[start:end])) if block_scores is not None else start
            block_lines = (int(index.block_lines[block][0]), int(index.block_lines[block][1]))
            if kind == FILE:  # report the innermost definition holding the best block, if any
                inner = self._innermost(file_index, block, unit)
                if not kinds or index.unit_kind[inner] in kinds:
                    unit, kind = inner, index.unit_kind[inner]
            lines = block_lines if kind == FILE else (int(index.unit_lines[unit][0]), int(index.unit_lines[unit][1]))
            if dedupe:
                spans = taken.setdefault(file_index, [])
                if any(lines[0] <= b and a <= lines[1] for a, b in spans):
                    continue
                spans.append(lines)
            entry = index.files[file_index]
            hits.append(SearchHit(
                len(hits) + 1, self.display_prefix + printable_path(entry.path), lines[0], lines[1], round(float(scores[position]), 4),
                index.unit_name[unit], kind, entry.language,
                None if dense is None else round(float(dense[position]), 4),
                None if lexical is None else round(float(lexical[position]), 4),
                block_lines[0], block_lines[1],
            ))
            if len(hits) >= k:
                break
        return tuple(hits)
