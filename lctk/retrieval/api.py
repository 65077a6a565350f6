"""Code search's one object: `CodeIndex.open(path)`, then `.search(query, k=..., filters=...)`
(or `.related(file, line)`: the code most like a given unit).

The CLI, `lctk eval`, the benchmarks and any server call this; `index(path)` and
`search(query, path)` are one-call conveniences over it. Opening refreshes (or builds) the index
that covers PATH unless told not to; results are frozen `SearchHit`s, best first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lctk.errors import InputError
from lctk.models.protocols import Embedder
from lctk.retrieval.indexer import build_index, precheck_new_index
from lctk.retrieval.ranking import COLD_BLOCKS, RERANK, Filters, Searcher, SearchHit
from lctk.retrieval.store import (
    DEFAULT_AGGREGATION,
    DEFAULT_BLOCK_TOKENS,
    IndexData,
    IndexStats,
    current_generation,
    find_index_root,
    index_location,
    load_index,
)
from lctk.score_cache import open_score_cache
from lctk.vocabulary import Aggregation, Fusion, SearchMode, parse_choice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """What a PATH argument means: the index root, and the part of it searched."""
    root: Path  # absolute directory that holds (or will hold) the index
    within: str  # posix path relative to root that results are limited to ("" = all)
    display_prefix: str  # prepended to root-relative paths in output ("" when root is the cwd)


def resolve_target(path: str | os.PathLike = ".") -> Target:
    """Find the index root for PATH: an indexed ancestor, else PATH itself (its directory for a file)."""
    given = Path(path)
    if not given.exists():
        raise InputError(f"no such file or directory: {path}")
    absolute = given.resolve()
    if not absolute.is_dir() and not absolute.is_file():
        raise InputError(f"not a file or directory: {path}")
    root = find_index_root(absolute) or (absolute if absolute.is_dir() else absolute.parent)
    within = "" if absolute == root else absolute.relative_to(root).as_posix()
    # Paths are shown the way PATH was typed: absolute stays absolute, relative stays relative.
    shown = root.as_posix() if given.is_absolute() else Path(os.path.relpath(root, Path.cwd())).as_posix()
    display = "" if shown == "." else shown.rstrip("/") + "/"
    return Target(root, within, display)


def load_search_embedder(name: str | None):
    """The index embedder named by flag/env/default, and its reranker (None unless static)."""
    from lctk.models.loader import distilled_from, load_embedder
    from lctk.models.registry import role_model

    chosen = role_model("embed", name).value
    embedder = load_embedder(chosen)
    return embedder, distilled_from(embedder.model_id)


@dataclass(frozen=True)
class WarmStats:
    """What `warm` did: blocks in the index, blocks embedded now, seconds."""
    blocks: int
    embedded: int
    seconds: float


class CodeIndex:
    """An index of one directory, loaded and ready to search.

    Attributes: `target` (what PATH meant), `data` (the loaded arrays), `stats` (what the last
    refresh did, None when none ran) and `searcher` (the ranking object over `data`).
    """

    def __init__(self, target: Target, data: IndexData, stats: IndexStats | None, searcher: Searcher,
                 embedder: Embedder, block_tokens: int):
        self.target, self.data, self.stats, self.searcher = target, data, stats, searcher
        self._embedder, self._block_tokens = embedder, block_tokens

    @classmethod
    def open(
        cls,
        path: str | os.PathLike = ".",
        *,
        embed_model: str | None = None,
        refresh: bool = True,
        rerank: bool = True,
        block_tokens: int = DEFAULT_BLOCK_TOKENS,
        aggregation: Aggregation | str | None = None,
        progress: Callable[..., None] | None = None,
        wait_message: Callable[[], None] | None = None,
        embedder: Embedder | None = None,
        reranker: Embedder | None = None,
    ) -> CodeIndex:
        """Refresh (or build) the index that covers PATH and load it for searching.

        Args:
            path: a directory or file; an indexed ancestor's index is used when there is one.
            embed_model: the index embedder's alias or folder (flag/env/default when None).
            refresh: pick up changed files first (False searches the index as it is).
            rerank: load the full model that re-scores a static index's candidates.
            embedder / reranker: already loaded models (skip loading by name).
        """
        target = resolve_target(path)
        reranker_name = None
        existing = load_index(target.root) if not refresh else None
        walked = precheck_new_index(target.root) if refresh or existing is None else None  # fail fast
        if embedder is None:
            embedder, reranker_name = load_search_embedder(embed_model)
        stats = None
        how = parse_choice(
            Aggregation, aggregation or (existing.meta.get("aggregation") if existing else None) or DEFAULT_AGGREGATION,
            "aggregation",
        ).value
        if refresh or existing is None:
            stats = build_index(target.root, embedder, block_tokens, how, False, progress, wait_message, walked)
            existing = load_index(target.root)
        if existing is None:
            raise InputError(f"the index of {target.root} could not be written or read")
        if existing.meta.get("model") != embedder.model_id:
            raise InputError(
                f"the index of {target.root} was built with {existing.meta.get('model')}, not {embedder.model_id}; "
                "run `lctk index` or drop --no-refresh"
            )
        if rerank and reranker is None and reranker_name:
            from lctk.models.loader import load_embedder

            reranker = load_embedder(reranker_name)
        # a reranker the caller holds reads and fills the same cache (keys carry the model's fingerprint)
        vector_cache = open_score_cache(index_location(target.root) / "vectors.sqlite", "reranker vector cache") if rerank and reranker is not None else None
        searcher = Searcher(existing, embedder, reranker if rerank else None, vector_cache, target.display_prefix)
        return cls(target, existing, stats, searcher, embedder, block_tokens)

    def refresh(
        self, *, progress: Callable[..., None] | None = None, wait_message: Callable[[], None] | None = None,
    ) -> IndexStats:
        """Pick up changed files (embedding only those) and reload; returns what changed.

        When nothing changed and no other writer has moved the index on, the loaded index and its
        searcher (with what it has cached: file texts, BM25 postings) are kept as they are.
        """
        how = self.data.meta.get("aggregation") or DEFAULT_AGGREGATION
        stats = build_index(self.target.root, self._embedder, self._block_tokens, how, False, progress, wait_message, loaded=self.data)
        if not stats.wrote and current_generation(self.target.root) == self.data.directory.name:
            self.stats = stats
            return stats
        data = load_index(self.target.root)
        if data is None:
            raise InputError(f"the index of {self.target.root} could not be written or read")
        old = self.searcher
        self.data, self.stats = data, stats
        self.searcher = Searcher(data, self._embedder, old.reranker, old.vector_cache, self.target.display_prefix)
        return stats

    def filters(
        self,
        *,
        languages: Sequence[str] = (),
        globs: Sequence[str] = (),
        paths: Sequence[str] = (),
        kinds: Sequence[str] = (),
        within: str | None = None,
    ) -> Filters:
        """Filters for `search`, validated: `paths` are prefixes relative to PATH (the whole of PATH
        when none); `globs` are gitignore-style patterns relative to the index root. `within`
        stands for PATH (relative to the index root) when the index is searched for another PATH
        than the one it was opened with."""
        within = self.target.within if within is None else within
        prefixes = tuple(join_prefix(within, p) for p in paths) if paths else ((within,) if within else ())
        return Filters.checked(languages=languages, globs=globs, paths=prefixes, kinds=kinds)

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: SearchMode | str = SearchMode.hybrid,
        filters: Filters | None = None,
        fusion: Fusion | str = Fusion.blend,
        rerank: int = RERANK,
        cold_blocks: int | None = COLD_BLOCKS,
    ) -> tuple[SearchHit, ...]:
        """The best `k` units for `query`, best first (filters default to the whole of PATH).

        `cold_blocks` bounds the blocks this query embeds with the full model where no vector is
        stored yet (None: every candidate's; see `Searcher.search`)."""
        return self.searcher.search(query, k=k, mode=mode, filters=filters if filters is not None else self.filters(),
                                    fusion=fusion, rerank=rerank, cold_blocks=cold_blocks)

    def related(
        self, path: str | os.PathLike, line: int, *, k: int = 10, filters: Filters | None = None,
    ) -> tuple[SearchHit, ...]:
        """The `k` units most like the one holding PATH:LINE, by its vector, best first; never that unit itself.

        Args:
            path: a file in this index (relative to the current directory, or absolute).
            line: 1-based; the innermost function, method, class or type holding it is the unit
                compared (the whole file between definitions).
            filters: what the hits may be (default: the whole of PATH, as `search`).
        """
        unit = self.searcher.unit_at(self._file_index(path), line)
        return self.searcher.related(unit, k=k, filters=filters if filters is not None else self.filters())

    def _file_index(self, path: str | os.PathLike) -> int:
        """The position of a file in `data.files`, or an InputError saying why it is not there."""
        absolute = Path(path).resolve()
        if not absolute.is_file():
            raise InputError(f"no such file: {path}" if not absolute.exists() else f"not a file: {path}")
        try:
            relative = absolute.relative_to(self.target.root).as_posix()
        except ValueError:
            raise InputError(f"{path} is outside the index of {self.target.root}") from None
        found = next((i for i, entry in enumerate(self.data.files) if entry.path == relative), None)
        if found is None:
            raise InputError(f"{path} is not in the index of {self.target.root} (ignored, skipped or not text)")
        return found

    def warm(self, *, progress: Callable[[int, int], None] | None = None) -> WarmStats:
        """Store the full model's vector of every block, so a query runs the full model over the query only.

        Blocks already stored are skipped, so a second warm after an edit embeds only what changed.
        """
        import time

        if self.searcher.reranker is None:
            raise InputError(
                f"the index of {self.target.root} is built with {self.data.meta.get('model')}, whose block vectors "
                "already come from the full model; --warm is for static indexes"
            )
        started = time.perf_counter()
        blocks, embedded = self.searcher.warm(progress=progress)
        return WarmStats(blocks, embedded, time.perf_counter() - started)


def index(
    path: str | os.PathLike = ".",
    *,
    embed_model: str | None = None,
    rebuild: bool = False,
    block_tokens: int = DEFAULT_BLOCK_TOKENS,
    aggregation: Aggregation | str = DEFAULT_AGGREGATION,
    progress: Callable[..., None] | None = None,
    wait_message: Callable[[], None] | None = None,
    embedder: Embedder | None = None,
) -> IndexStats:
    """Build or refresh the index of a directory; only new and changed files are embedded."""
    target = resolve_target(path)
    if target.within and (target.root / target.within).is_file():
        raise InputError(f"{path} is a file; index a directory")
    how = parse_choice(Aggregation, aggregation, "aggregation").value
    walked = precheck_new_index(target.root)  # fail fast, before an embedder is loaded or built
    if embedder is None:
        embedder, _ = load_search_embedder(embed_model)
    return build_index(target.root, embedder, block_tokens, how, rebuild, progress, wait_message, walked)


def search(
    query: str,
    path: str | os.PathLike = ".",
    *,
    k: int = 10,
    mode: SearchMode | str = SearchMode.hybrid,
    languages: Sequence[str] = (),
    globs: Sequence[str] = (),
    paths: Sequence[str] = (),
    kinds: Sequence[str] = (),
    embed_model: str | None = None,
    refresh: bool = True,
    rerank: int = RERANK,
    fusion: Fusion | str = Fusion.blend,
) -> tuple[SearchHit, ...]:
    """Search the code under PATH (indexing it first if needed); returns frozen hits, best first.

    `paths` are path prefixes relative to PATH; `globs` are gitignore-style patterns on paths
    relative to the index root; `languages` are lctk language names (python, go, …, text).
    """
    if not query or not query.strip():
        raise InputError("empty query; say what you are looking for")
    opened = CodeIndex.open(path, embed_model=embed_model, refresh=refresh, rerank=rerank > 0)
    filters = opened.filters(languages=languages, globs=globs, paths=paths, kinds=kinds)
    return opened.search(query, k=k, mode=mode, filters=filters, fusion=fusion, rerank=rerank)


def join_prefix(base: str, prefix: str) -> str:
    """A path prefix given relative to PATH, made relative to the index root."""
    import posixpath

    cleaned = prefix.strip().strip("/")
    if cleaned in ("", "."):
        return base
    joined = posixpath.normpath(f"{base}/{cleaned}" if base else cleaned)
    if prefix.strip().startswith("/") or joined == ".." or joined.startswith("../"):
        raise InputError(f"path {prefix!r} is outside the searched directory; give a path inside it")
    return "" if joined == "." else joined
