"""`lctk search` and `lctk index`: semantic + lexical code search over a persistent index."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from lctk.cli.options import EmbedModelOption, FormatOption, OutputFormat
from lctk.cli.remotes import RefOption, RefreshRemoteOption
from lctk.vocabulary import Aggregation, Fusion, SearchMode


class SearchFormat(str, Enum):
    """Output formats of search."""

    text = "text"
    json = "json"
    jsonl = "jsonl"


def _split_values(values: list[str] | None) -> tuple[str, ...]:
    """Repeatable options also accept comma-separated lists (--lang python,go)."""
    return tuple(part.strip() for value in values or [] for part in value.split(",") if part.strip())


def search(
    query: Annotated[str, typer.Argument(help="What you are looking for: words, a question, or a symbol name.")],
    path: Annotated[str, typer.Argument(help="Directory (or file) to search, or a repository URL; indexed on first use.")] = ".",
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="Number of results.")] = 10,
    mode: Annotated[SearchMode, typer.Option("--mode", case_sensitive=False, help="hybrid (dense + BM25), dense or lexical.")] = SearchMode.hybrid,
    lang: Annotated[list[str] | None, typer.Option("--lang", help="Only these languages (repeatable or comma-separated; 'text' for files without a grammar).")] = None,
    glob: Annotated[list[str] | None, typer.Option("--glob", help="Only paths matching this gitignore-style glob, relative to the index root (repeatable).")] = None,
    within: Annotated[list[str] | None, typer.Option("--path", help="Only under this path prefix, relative to PATH (repeatable).")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Only these unit kinds: function, method, class, type, file.")] = None,
    context: Annotated[int | None, typer.Option("--context", "-n", min=0, help="Show the best-matching code of each hit with N lines around it.")] = None,
    files_only: Annotated[bool, typer.Option("--files-only", "-l", help="Print only the paths of matching files, best first.")] = False,
    output_format: Annotated[SearchFormat, typer.Option("--format", "-f", case_sensitive=False, help="text, json or jsonl (schema in README).")] = SearchFormat.text,
    no_refresh: Annotated[bool, typer.Option("--no-refresh", help="Search the index as it is; do not pick up changed files first.")] = False,
    rerank: Annotated[int, typer.Option("--rerank", min=0, help="Re-score this many top candidates with the full embedder (static indexes only; 0 = off). A query embeds at most 32 blocks with no stored vector (`lctk index --warm` stores them all).")] = 100,
    fusion: Annotated[Fusion, typer.Option("--fusion", case_sensitive=False, help="How hybrid mode fuses dense and lexical scores.")] = Fusion.blend,
    no_redact: Annotated[bool, typer.Option("--no-redact", help="Show likely secrets in --context code instead of [REDACTED:kind].")] = False,
    embed_model: EmbedModelOption = None,
    ref: RefOption = None,
    refresh_remote: RefreshRemoteOption = False,
) -> None:
    """Search code by meaning and by name (SEA split-encode-aggregate + BM25)."""
    from lctk.cli.console import err_console, progress_callback, write_stdout
    from lctk.cli.remotes import repository_json
    from lctk.errors import InputError
    from lctk.retrieval.api import CodeIndex, join_prefix
    from lctk.retrieval.units import UNIT_KINDS

    if not query.strip():
        raise InputError("empty query; say what you are looking for")
    kinds = _split_values(kind)
    unknown = [k_ for k_ in kinds if k_ not in UNIT_KINDS]
    if unknown:
        raise InputError(f"unknown --kind {unknown[0]!r}; use one of: {', '.join(UNIT_KINDS)}")
    languages = _check_languages(_split_values(lang))
    prefixes = _split_values(within) if within else ()
    for prefix in prefixes:
        try:
            join_prefix("", prefix)  # a --path out of PATH fails now, before any indexing
        except InputError:
            raise InputError(f"--path {prefix!r} is outside the searched directory; give a path inside it") from None
    remote = _remote_checkout(path, ref, refresh_remote)
    with progress_callback("indexing") as on_progress:
        opened = CodeIndex.open(
            remote.path if remote is not None else path, embed_model=embed_model, refresh=not no_refresh,
            rerank=rerank > 0 and mode != SearchMode.lexical, progress=on_progress, wait_message=say_waiting_for_index,
        )
    if remote is not None:
        _show_paths_from_repository_root(opened)
    if opened.stats is not None:
        _report_refresh(opened.stats)
    filters = opened.filters(languages=languages, globs=glob or (), paths=prefixes, kinds=kinds)
    hits = opened.search(
        query, k=k if not files_only else max(k * 5, 50), mode=mode, filters=filters, fusion=fusion, rerank=rerank,
    )
    from lctk.cli.render_search import render_hits

    write_stdout(render_hits(hits, opened, query, mode.value, output_format.value, context, files_only, k, not no_redact,
                             repository=repository_json(remote) if remote is not None else None))
    if context is not None and not no_redact and not files_only:
        _report_redactions(hits, opened, context)
    if not hits:
        err_console().print("lctk: no results" + (" (filters left no candidates)" if filters != opened.filters() else ""), markup=False, highlight=False)


def index(
    path: Annotated[str, typer.Argument(help="Directory to index (an indexed ancestor is refreshed instead).")] = ".",
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Re-embed everything, even unchanged files.")] = False,
    aggregate: Annotated[Aggregation, typer.Option("--aggregate", case_sensitive=False, help="How block vectors form a unit vector (changing it rebuilds).")] = Aggregation.mean,
    block_tokens: Annotated[int, typer.Option("--block-tokens", min=16, max=512, help="Largest block, in embedder tokens (changing it rebuilds).")] = 128,
    output_format: FormatOption = OutputFormat.text,
    embed_model: EmbedModelOption = None,
    warm: Annotated[bool, typer.Option("--warm", help="Also store the full model's vector of every block, so no query runs the full model over code (minutes once; then only changed blocks).")] = False,
    ref: RefOption = None,
    refresh_remote: RefreshRemoteOption = False,
) -> None:
    """Build or refresh a search index; only new and changed files are re-embedded."""
    import json

    from lctk.cli.console import progress_callback, write_stdout
    from lctk.cli.remotes import repository_json
    from lctk.retrieval.api import CodeIndex
    from lctk.retrieval.api import index as build
    from lctk.retrieval.store import index_json, index_outcome

    remote = _remote_checkout(path, ref, refresh_remote)
    if remote is not None:
        path = str(remote.path)
    with progress_callback("indexing") as on_progress:
        stats = build(path, embed_model=embed_model, rebuild=rebuild, block_tokens=block_tokens, aggregation=aggregate,
                      progress=on_progress, wait_message=say_waiting_for_index)
    _report_skipped(stats.skipped)
    warmed = None
    if warm:
        with progress_callback("storing full-model block vectors") as on_progress:
            warmed = CodeIndex.open(path, embed_model=embed_model, refresh=False).warm(progress=on_progress)  # just built
    if output_format == OutputFormat.json:
        payload = index_json(stats)
        if warmed is not None:
            payload["warm"] = {"blocks": warmed.blocks, "embedded": warmed.embedded, "seconds": round(warmed.seconds, 3)}
        if remote is not None:
            payload["repository"] = repository_json(remote)
        write_stdout(json.dumps(payload, indent=2) + "\n")
        return
    write_stdout(
        f"{index_outcome(stats)}: {stats.root}\n"
        + (f"  repository: {remote.url} at {remote.commit} ({remote.ref})\n" if remote is not None else "") +
        f"  {stats.files:,} files ({stats.added:,} added, {stats.changed:,} changed, {stats.removed:,} removed, "
        f"{stats.unchanged:,} unchanged), {stats.units:,} units, {stats.blocks:,} blocks\n"
        f"  embedded {stats.embedded_blocks:,} blocks with {stats.model} in {stats.seconds:.2f} s"
        + (f"; rebuilt because {stats.rebuilt}" if stats.rebuilt and stats.rebuilt != "requested" else "") + "\n"
        f"  index: {stats.index_dir}\n"
        + (f"  warm: {warmed.embedded:,} of {warmed.blocks:,} blocks embedded with the full model in {warmed.seconds:.2f} s\n"
           if warmed is not None else "")
    )


def _remote_checkout(path: str, ref: str | None, refresh_remote: bool):
    """The cached checkout when PATH is a repository URL (cloned on first use), else None."""
    from lctk.cli.remotes import check_remote_flags, checkout_remote, is_remote_input

    remote = is_remote_input(path)
    check_remote_flags(remote, ref, refresh_remote)
    return checkout_remote(path, ref, refresh_remote) if remote else None


def _show_paths_from_repository_root(opened) -> None:
    """Print a cloned repository's paths from its root (`src/a.py`), as a checkout of it would have them,
    not from the cache directory the clone lives in."""
    from dataclasses import replace

    opened.target = replace(opened.target, display_prefix="")
    opened.searcher.display_prefix = ""


def _report_redactions(hits, opened, context: int) -> None:
    """Say on stderr which secrets were replaced in the code shown."""
    import logging

    from lctk.sources.secrets import Redaction, summarize

    searcher = opened.searcher
    seen: dict[Redaction, None] = {}  # an ordered set: a line shown by two hits counts once
    for hit in hits:
        file_index = searcher.file_index_of(hit.path)
        shown = (hit.block_start_line - context, hit.block_end_line + context)  # the lines render's code shows
        for r in searcher.redactions(file_index, *shown) if file_index is not None else ():
            seen[Redaction(hit.path, r.line, r.kind)] = None
    if seen:
        logging.getLogger("lctk").warning(summarize(seen))


def say_waiting_for_index() -> None:
    """Say on stderr that another lctk holds this index's lock (the wait follows)."""
    import logging

    logging.getLogger("lctk").warning("waiting for lock: another lctk is writing this index")


def _report_refresh(stats) -> None:
    import logging

    _report_skipped(stats.skipped, quiet=True)
    if stats.wrote:
        logging.getLogger("lctk").info(
            "indexed %s: %d added, %d changed, %d removed (%d blocks embedded, %.1f s)",
            stats.root, stats.added, stats.changed, stats.removed, stats.embedded_blocks, stats.seconds,
        )


def _report_skipped(skipped, quiet: bool = False) -> None:
    import logging

    from lctk.sources.walk import count_by_reason

    if not skipped:
        return
    log = logging.getLogger("lctk")
    for item in skipped:
        log.debug("skipped %s: %s", item.display_path, item.reason)
    (log.debug if quiet else log.info)("skipped %d files: %s (--verbose lists them)", len(skipped), count_by_reason(skipped))


def _check_languages(languages: tuple[str, ...]) -> tuple[str, ...]:
    from lctk.errors import InputError
    from lctk.sources.languages import LANGUAGES

    known = set(LANGUAGES) | {"text"}
    for language in languages:
        if language.lower() not in known:
            raise InputError(f"unknown --lang {language!r}; use one of: {', '.join(sorted(known))}")
    return tuple(language.lower() for language in languages)
