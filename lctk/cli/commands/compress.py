"""`lctk compress`: fit files, directories or stdin into a token budget for a task."""

from __future__ import annotations

import logging
from typing import Annotated, Optional

import typer

from lctk.cli.options import BackendOption, ModelOption
from lctk.vocabulary import CandidateSource, CompressFormat

DEFAULT_RATE = 0.5
DEFAULT_CANDIDATES = 32  # lctk.compress.api.DEFAULT_CANDIDATES, not imported: --help stays fast (a test checks they agree)


def compress(
    paths: Annotated[Optional[list[str]], typer.Argument(help="Files or directories; '-' reads text from stdin.", show_default=False)] = None,
    query: Annotated[Optional[str], typer.Option("--query", "-q", help="The task the context is for (omit for the query-free scorer).")] = None,
    budget: Annotated[Optional[int], typer.Option("--budget", "-B", min=1, help="Most tokens in the output, everything included.")] = None,
    rate: Annotated[Optional[float], typer.Option("--rate", "-r", min=0.0, max=1.0, help="Output size as a share of the input [default: 0.5 without --budget].")] = None,
    output_format: Annotated[CompressFormat, typer.Option("--format", "-f", case_sensitive=False, help="text, xml, markdown or json.")] = CompressFormat.text,
    explain: Annotated[bool, typer.Option("--explain", help="List every unit with score, tokens and decision on stderr.")] = False,
    no_fine: Annotated[bool, typer.Option("--no-fine", help="Keep whole functions (skip the line-level stage).")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the score cache.")] = False,
    candidates: Annotated[int, typer.Option("--candidates", min=1, help="Chunks the language model scores (retrieval picks them).")] = DEFAULT_CANDIDATES,
    retrieval: Annotated[CandidateSource, typer.Option("--retrieval", case_sensitive=False, help="How candidates are picked: hybrid (BM25 + embeddings, as search) or bm25 (no embedder).")] = CandidateSource.hybrid,
    stdin_paths: Annotated[bool, typer.Option("--stdin-paths", help="Read the list of files from stdin, one per line.")] = False,
    lang: Annotated[Optional[str], typer.Option("--lang", help="Language of text read from stdin ('-').")] = None,
    include: Annotated[Optional[list[str]], typer.Option("--include", help="Only paths matching this glob (repeatable).")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="Leave out paths matching this glob (repeatable).")] = None,
    no_redact: Annotated[bool, typer.Option("--no-redact", help="Keep likely secrets (keys, tokens, .env values) instead of replacing them with [REDACTED:kind].")] = False,
    tokenizer: Annotated[Optional[str], typer.Option("--tokenizer", help="Count the budget with this model's tokenizer [default: the scoring model's].")] = None,
    model: ModelOption = None,
    backend: BackendOption = None,
) -> None:
    """Compress code into a token budget, keeping what the task needs (LongCodeZip)."""
    from lctk.cli.console import err_console, progress_callback, read_stdin_text, write_stdout
    from lctk.cli.options import backend_value
    from lctk.compress.api import compress as compress_sources
    from lctk.compress.render import explain_table, render
    from lctk.errors import CacheError, InputError, UsageError
    from lctk.models.loader import load_language_model
    from lctk.models.registry import role_model
    from lctk.score_cache import MemoryScoreCache, open_score_cache
    from lctk.sources.languages import LANGUAGES
    from lctk.sources.walk import STDIN, gather_sources

    names = list(paths or [])
    if budget is not None and rate is not None:
        raise UsageError("give --budget or --rate, not both")
    if rate is not None and rate <= 0:
        raise UsageError("--rate must be above 0")
    if lang is not None and lang not in LANGUAGES:
        raise UsageError(f"unknown --lang '{lang}'; choose one of {', '.join(sorted(LANGUAGES))}")
    if query is not None and not query.strip():
        raise InputError("the query is empty; omit -q for the query-free scorer")
    stdin_text = None
    if stdin_paths:
        if STDIN in names:
            raise UsageError("--stdin-paths and '-' both want stdin")
        names += [line.strip() for line in read_stdin_text().splitlines() if line.strip()]
    elif STDIN in names:
        stdin_text = read_stdin_text()
    if not names:
        raise UsageError("no input: pass files or directories, '-' for stdin, or --stdin-paths")
    sources, skipped = gather_sources(names, stdin_text, lang, include or [], exclude or [])
    console = err_console()
    if not sources or not any(s.text.strip() for s in sources):
        raise InputError(f"nothing to compress: no readable source text in {', '.join(names)}" + _skip_summary(skipped))
    _report_skipped(skipped)
    chosen_backend = backend_value(backend)
    lm, _ = load_language_model(role_model("score", model).value, "score", chosen_backend)
    counter = load_language_model(tokenizer, "score", chosen_backend)[0] if tokenizer else lm
    cache = MemoryScoreCache() if no_cache else open_score_cache()
    retriever = None
    if query is not None and retrieval == CandidateSource.hybrid:
        from lctk.retrieval.candidates import default_retriever

        try:
            retriever = default_retriever(cache)
        except CacheError as exc:
            # The static embedder lives in the cache directory; without one, BM25 alone picks candidates.
            logging.getLogger("lctk").warning("%s; choosing candidates by BM25 alone", exc)
    with progress_callback("scoring chunks") as on_progress:
        result = compress_sources(
            sources, lm, query=query, budget_tokens=budget, rate=None if budget else (rate or DEFAULT_RATE),
            output_format=output_format.value, fine=not no_fine, candidates=candidates, cache=cache,
            counter=counter, on_progress=on_progress, redact=not no_redact, retriever=retriever,
        )
    write_stdout(render(result, skipped))
    if result.redactions:
        from lctk.sources.secrets import summarize

        logging.getLogger("lctk").warning(summarize(result.redactions))
    if explain:
        console.print(explain_table(result), markup=False, highlight=False, end="")
    console.print(
        f"[dim]lctk:[/dim] {result.input_tokens:,} -> {result.output_tokens:,} tokens "
        f"(budget {result.budget_tokens:,}, {result.ratio:.1f}x) from {len(sources)} files; "
        f"scored {result.lm_sequences_scored} chunks, {result.lm_cache_hits} from cache",
        markup=True, highlight=False,
    )


def _skip_summary(skipped) -> str:
    """Why nothing was left, folded into the one error line: "(2 files skipped: a.bin: binary, ...)"."""
    if not skipped:
        return ""
    shown = "; ".join(f"{item.display_path}: {item.reason}" for item in skipped[:3])
    more = f"; {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f" ({len(skipped)} file{'' if len(skipped) == 1 else 's'} skipped: {shown}{more})"


def _report_skipped(skipped, listed: int = 10) -> None:
    """Name each skipped file on stderr; past `listed`, count them by reason (--verbose names all)."""
    import logging

    from lctk.cli.state import cli_state
    from lctk.sources.walk import count_by_reason

    log = logging.getLogger("lctk")
    if len(skipped) <= listed or cli_state.verbose:
        for item in skipped:
            log.info("skipped %s: %s", item.display_path, item.reason)
        return
    log.info("skipped %d files: %s (--verbose lists them; --format json names them)", len(skipped), count_by_reason(skipped))
