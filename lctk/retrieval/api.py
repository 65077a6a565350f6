"""Python API of search: `index(path)` and `search(query, path)`, shared with the CLI."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lctk.errors import InputError
from lctk.retrieval.ranking import RERANK, Filters, Searcher, SearchHit
from lctk.retrieval.indexer import build_index, precheck_new_index
from lctk.retrieval.store import (
    DEFAULT_AGGREGATION,
    DEFAULT_BLOCK_TOKENS,
    IndexData,
    IndexStats,
    find_index_root,
    index_location,
    load_index,
)

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


def index(
    path: str | os.PathLike = ".",
    embed_model: str | None = None,
    rebuild: bool = False,
    block_tokens: int = DEFAULT_BLOCK_TOKENS,
    aggregation: str = DEFAULT_AGGREGATION,
    progress: Callable[..., None] | None = None,
    wait_message: Callable[[], None] | None = None,
    embedder=None,
) -> IndexStats:
    """Build or refresh the index of a directory; only new and changed files are embedded."""
    target = resolve_target(path)
    if target.within and (target.root / target.within).is_file():
        raise InputError(f"{path} is a file; index a directory")
    walked = precheck_new_index(target.root)  # fail fast, before an embedder is loaded or built
    if embedder is None:
        embedder, _ = load_search_embedder(embed_model)
    return build_index(target.root, embedder, block_tokens, aggregation, rebuild, progress, wait_message, walked)


@dataclass(frozen=True)
class WarmStats:
    """What `warm` did: blocks in the index, blocks embedded now, seconds."""

    blocks: int
    embedded: int
    seconds: float


def warm(
    path: str | os.PathLike = ".", embed_model: str | None = None, progress: Callable[[int, int], None] | None = None,
    refresh: bool = True,
) -> WarmStats:
    """Store the full model's vector of every block of PATH's (refreshed) index.

    A static index re-scores each query's candidates with the full model; with every block's
    vector stored, a query runs the full model over the query only. Blocks already stored are
    skipped, so a second warm after an edit embeds only what changed. refresh=False warms the
    index as it is (the caller has just built it).
    """
    import time

    started = time.perf_counter()
    opened = open_index(path, embed_model, refresh=refresh)
    if opened.searcher.reranker is None:
        raise InputError(
            f"the index of {opened.target.root} is built with {opened.data.meta.get('model')}, whose block vectors "
            "already come from the full model; --warm is for static indexes"
        )
    blocks, embedded = opened.searcher.warm(progress=progress)
    return WarmStats(blocks, embedded, time.perf_counter() - started)


@dataclass
class OpenIndex:
    """A loaded index ready to query, with what refreshing it did."""

    target: Target
    data: IndexData
    stats: IndexStats | None
    searcher: Searcher


def open_index(
    path: str | os.PathLike = ".",
    embed_model: str | None = None,
    refresh: bool = True,
    rerank: bool = True,
    block_tokens: int = DEFAULT_BLOCK_TOKENS,
    aggregation: str | None = None,
    progress: Callable[..., None] | None = None,
    wait_message: Callable[[], None] | None = None,
    embedder=None,
    reranker=None,
) -> OpenIndex:
    """Refresh (or build) the index that covers PATH and load it for searching."""
    target = resolve_target(path)
    reranker_name = None
    existing = load_index(target.root) if not refresh else None
    walked = precheck_new_index(target.root) if refresh or existing is None else None  # fail fast
    if embedder is None:
        embedder, reranker_name = load_search_embedder(embed_model)
    stats = None
    how = aggregation or (existing.meta.get("aggregation") if existing else None) or DEFAULT_AGGREGATION
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
    vector_cache = None
    if rerank and reranker is None and reranker_name:
        from lctk.compress.cache import open_score_cache
        from lctk.models.loader import load_embedder

        reranker = load_embedder(reranker_name)
        vector_cache = open_score_cache(index_location(target.root) / "vectors.sqlite", "reranker vector cache")
    searcher = Searcher(existing, embedder, reranker if rerank else None, vector_cache, target.display_prefix)
    return OpenIndex(target, existing, stats, searcher)


def search(
    query: str,
    path: str | os.PathLike = ".",
    k: int = 10,
    mode: str = "hybrid",
    languages: Sequence[str] = (),
    globs: Sequence[str] = (),
    paths: Sequence[str] = (),
    kinds: Sequence[str] = (),
    embed_model: str | None = None,
    refresh: bool = True,
    rerank: int = RERANK,
    fusion: str = "blend",
) -> tuple[SearchHit, ...]:
    """Search the code under PATH (indexing it first if needed); returns frozen hits, best first.

    `paths` are path prefixes relative to PATH; `globs` are gitignore-style patterns on paths
    relative to the index root; `languages` are lctk language names (python, go, …, text).
    """
    if not query or not query.strip():
        raise InputError("empty query; say what you are looking for")
    opened = open_index(path, embed_model, refresh=refresh, rerank=rerank > 0)
    within = [opened.target.within] if opened.target.within else []
    prefixes = tuple(join_prefix(opened.target.within, p) for p in paths) if paths else tuple(within)
    filters = Filters(tuple(languages), tuple(globs), prefixes, tuple(kinds))
    return opened.searcher.search(query, k=k, mode=mode, filters=filters, fusion=fusion, rerank=rerank)


def join_prefix(base: str, prefix: str) -> str:
    """A --path prefix given relative to PATH, made relative to the index root."""
    import posixpath

    from lctk.errors import InputError

    cleaned = prefix.strip().strip("/")
    if cleaned in ("", "."):
        return base
    joined = posixpath.normpath(f"{base}/{cleaned}" if base else cleaned)
    if prefix.strip().startswith("/") or joined == ".." or joined.startswith("../"):
        raise InputError(f"--path {prefix!r} is outside the searched directory; give a path inside it")
    return "" if joined == "." else joined
