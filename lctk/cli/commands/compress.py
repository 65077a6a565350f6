"""`lctk compress`: fit files, directories or stdin into a token budget for a task."""

from __future__ import annotations

import logging
from typing import Annotated, Optional

import typer

from lctk.cli.options import BackendOption, BaseUrlOption, ModelOption, ServedModelOption
from lctk.cli.remotes import RefOption, RefreshRemoteOption
from lctk.vocabulary import CandidateSource, CompressFormat

DEFAULT_RATE = 0.5
DEFAULT_CANDIDATES = 32  # lctk.compress.api.DEFAULT_CANDIDATES, not imported: --help stays fast (a test checks they agree)


def compress(
    paths: Annotated[Optional[list[str]], typer.Argument(help="Files or directories; '-' reads text from stdin; or one repository URL (https://, ssh://, git@host:owner/repo.git, file://).", show_default=False)] = None,
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
    tokenizer: Annotated[Optional[str], typer.Option("--tokenizer", help="Count the budget in this tokenizer: o200k_base (GPT-4o), cl100k_base (GPT-4), a tokenizer.json or a model [default: the scoring model's].")] = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    base_url: BaseUrlOption = None,
    served_model: ServedModelOption = None,
    server_tokenizer: Annotated[Optional[str], typer.Option("--server-tokenizer", help="A local copy of the served model's tokenizer (.gguf, tokenizer.json or transformers directory) [default: the server's tokenize route]. [env: LCTK_SERVER_TOKENIZER] [config: server_tokenizer]", show_default=False)] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the result to this file (atomically) instead of stdout.", show_default=False)] = None,
    tree: Annotated[bool, typer.Option("--tree", help="Start with a directory tree of the input files (inside the budget).")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Start with `git diff HEAD` (the working tree's changes, new files included) and rank changed code, then its callers, first; without -q the changed lines are the query.")] = False,
    diff_base: Annotated[Optional[str], typer.Option("--diff-base", help="Diff against this revision instead of HEAD: main, HEAD~3, a tag, a SHA, or main...HEAD for a branch's own commits (implies --diff).", show_default=False)] = None,
    ref: RefOption = None,
    refresh_remote: RefreshRemoteOption = False,
) -> None:
    """Compress code into a token budget, keeping what the task needs (LongCodeZip)."""
    from rich.markup import escape

    from lctk.cli.console import err_console, progress_callback, read_stdin_text, write_stdout
    from lctk.cli.options import backend_value, server_value
    from lctk.cli.remotes import check_remote_flags, checkout_remote, is_remote_input, repository_json
    from lctk.compress.api import compress as compress_sources
    from lctk.compress.render import explain_table, render, summary_line
    from lctk.errors import CacheError, InputError, UsageError
    from lctk.models.loader import load_language_model
    from lctk.models.registry import role_model
    from lctk.models.tokenizers import load_token_counter
    from lctk.score_cache import MemoryScoreCache, open_score_cache
    from lctk.sources.languages import LANGUAGES
    from lctk.sources.walk import STDIN, gather_sources, relative_to_root

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
    diff_ref = diff_base if diff_base is not None else "HEAD" if diff else None
    remote = None
    if any(is_remote_input(name) for name in names):
        if len(names) != 1:
            raise UsageError("a repository URL must be the only input; run lctk compress once per repository")
        if diff_ref is not None:
            raise UsageError("--diff needs a local git work tree; a repository URL is read as one commit")
        remote = checkout_remote(names[0], ref, refresh_remote)
        names = [str(remote.path)]
    check_remote_flags(remote is not None, ref, refresh_remote)
    if diff_ref is not None and STDIN in names:
        raise UsageError("--diff needs files or directories in a git work tree, not stdin ('-')")
    sources, skipped = gather_sources(names, stdin_text, lang, include or [], exclude or [])
    if remote is not None:
        sources, skipped = relative_to_root(remote.path, sources, skipped)
    console = err_console()
    if not sources or not any(s.text.strip() for s in sources):
        shown = remote.url if remote is not None else ", ".join(names)
        raise InputError(f"nothing to compress: no readable source text in {shown}" + _skip_summary(skipped))
    target = _output_target(output, sources, remote.path if remote is not None else None)
    changes = _load_diff(names, diff_ref, sources) if diff_ref is not None else None
    _report_skipped(skipped)
    chosen_backend = backend_value(backend)
    server = server_value(base_url, served_model, server_tokenizer)
    lm, _ = load_language_model(role_model("score", model).value, "score", chosen_backend, server=server)
    counter = load_token_counter(tokenizer, backend=chosen_backend, loaded=lm) if tokenizer else lm
    cache = MemoryScoreCache() if no_cache else open_score_cache()
    retriever = None
    if (query is not None or changes is not None) and retrieval == CandidateSource.hybrid:  # a diff is the query without -q
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
            counter=counter, on_progress=on_progress, redact=not no_redact, retriever=retriever, diff=changes, tree=tree,
        )
    payload = render(result, skipped, repository_json(remote) if remote is not None else None)
    if target is not None:
        _write_output(target, payload)
    else:
        write_stdout(payload)
    if result.redactions:
        from lctk.sources.secrets import summarize

        logging.getLogger("lctk").warning(summarize(result.redactions))
    if result.diff is not None and result.diff.truncated:
        logging.getLogger("lctk").warning(
            "the diff alone exceeds the budget: showing %d of its %d lines and no code (raise --budget to see more)",
            result.diff.lines_shown, result.diff.lines_total)
    if explain:
        console.print(explain_table(result), markup=False, highlight=False, end="")
    console.print(
        f"[dim]lctk:[/dim] {escape(summary_line(result, len(sources)))}"
        + (f"; written to {escape(output or '')}" if target is not None else ""),
        markup=True, highlight=False,
    )


def _output_target(output: str | None, sources, root):
    """The -o file as a Path (None for stdout), checked before any work: a writable place that is not an input."""
    import os
    from pathlib import Path

    from lctk.errors import InputError
    from lctk.sources.walk import STDIN

    if output is None or output == STDIN:
        return None
    target = Path(output)
    if not output.strip() or target.is_dir():
        raise InputError(f"cannot write the output to {output}: it is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise InputError(f"cannot write the output to {output}: no such directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise InputError(f"cannot write the output to {output}: permission denied")
    resolved = target.resolve()
    for source in sources:
        if source.path == "<stdin>":
            continue
        where = (root / source.path) if root is not None else Path(source.path)
        if where.resolve() == resolved:
            raise InputError(f"refusing to write the output over an input file: {output}")
    return target


def _write_output(target, payload: str) -> None:
    """Replace `target` with the payload atomically (a reader never sees half a file), keeping its mode."""
    import os
    import stat

    from lctk.cli.state import check_interrupt
    from lctk.errors import LctkError
    from lctk.storage import atomic_file

    check_interrupt()  # never write a result after Ctrl-C
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        with atomic_file(target) as handle:
            handle.write(payload.encode("utf-8"))
            os.fchmod(handle.fileno(), mode)
    except OSError as exc:
        raise LctkError(f"cannot write the output to {target}: {exc.strerror or exc}") from None


def _load_diff(names, ref: str, sources):
    """The diff against `ref` of the named paths, limited to the files being compressed (deletions kept)."""
    import logging

    from lctk.sources.gitdiff import load_diff

    log = logging.getLogger("lctk")
    full = load_diff(names, ref)
    changes = full.restricted(s.path for s in sources)
    left_out = [f.path for f in full.files if f not in changes.files]
    if left_out:
        log.info("diff: left out %d changed file%s that %s not among the inputs: %s", len(left_out),
                 "" if len(left_out) == 1 else "s", "is" if len(left_out) == 1 else "are", ", ".join(left_out[:5])
                 + (", ..." if len(left_out) > 5 else ""))
    if not changes.files:
        log.warning("no changes against %s in %s; compressing without a diff", ref, ", ".join(names))
    return changes


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
