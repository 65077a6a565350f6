"""Run one batch task over warm models and return its result row (a JSON-able dict).

Every row starts with `id`, `kind`, `status` ("ok" or "error"), `error` (one line, or None),
`seconds` (the task's own time, models already loaded) and the task's inputs; an ok row adds:

    compress  output (exactly what `lctk compress` prints on stdout for the same options, run
              from the manifest's directory), input_tokens, output_tokens, budget_tokens, ratio,
              files, skipped, lm_sequences, lm_cache_hits, lm_tokens (the language model's work),
              summary (the command's one-line stderr summary)
    index     outcome (built, refreshed or up to date), index (`lctk index --format json`'s object)
    ask       the fields of `lctk ask --format json` (answer, evidence with pages, windows, tokens,
              models, timings) and pages (the cited pages of a PDF or DOCX, in page order)

A task that fails for any reason (a missing path, an unreadable file, a model error) gives an
error row; nothing a task does stops the batch.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lctk.ask.qa import answer
from lctk.ask.settings import RetrievalMode, RetrievalSettings
from lctk.batch.manifest import BatchTask, TaskKind
from lctk.batch.warm import WarmModels
from lctk.compress.api import DEFAULT_CANDIDATES
from lctk.compress.api import compress as compress_sources
from lctk.compress.model import CompressResult
from lctk.compress.render import render, summary_line
from lctk.config import writable_cache_subdir
from lctk.errors import InputError, LctkError, first_line
from lctk.models.protocols import LanguageModel
from lctk.retrieval.api import index as build_index
from lctk.retrieval.candidates import CandidateRetriever
from lctk.retrieval.store import index_json, index_outcome
from lctk.score_cache import MemoryScoreCache, ScoreCache
from lctk.sources.walk import SkippedFile, count_by_reason, gather_sources, relative_to_root
from lctk.vocabulary import CandidateSource

DEFAULT_RATE = 0.5  # lctk compress's output share without --budget (lctk.cli.commands.compress.DEFAULT_RATE; a test checks they agree)
STATUS_OK, STATUS_ERROR = "ok", "error"
INPUTS = {TaskKind.index: ("path",), TaskKind.compress: ("path", "query"), TaskKind.ask: ("document", "question")}


@dataclass(frozen=True)
class CompressRun:
    """A compress run as the CLI makes it: the result, the stdout payload, and the files read and skipped."""

    result: CompressResult
    payload: str
    files: int
    skipped: tuple[SkippedFile, ...]


def compress_paths(
    paths: Sequence[str],
    model: LanguageModel,
    *,
    query: str | None = None,
    budget_tokens: int | None = None,
    rate: float | None = None,
    output_format: str = "text",
    fine: bool = True,
    candidates: int = DEFAULT_CANDIDATES,
    cache: ScoreCache | MemoryScoreCache | None = None,
    retriever: CandidateRetriever | None = None,
    tree: bool = False,
    root: Path | None = None,
) -> CompressRun:
    """Compress files and directories as `lctk compress PATHS` does, and render what it prints.

    Args:
        paths: files or directories (no stdin).
        model: the scoring model; it also counts the budget, as the CLI's default --tokenizer.
        rate: used without `budget_tokens` (default DEFAULT_RATE, as the CLI).
        retriever: compress's candidate stage (None: BM25 alone, as --retrieval bm25).
        root: show paths relative to this directory, as the command run from it would.

    Returns:
        the run, its `payload` byte for byte what `lctk compress` writes on stdout.
    """
    sources, skipped = gather_sources(list(paths))
    if root is not None:
        sources, skipped = relative_to_root(root, sources, skipped)
    if not sources or not any(source.text.strip() for source in sources):
        why = f" ({len(skipped)} skipped: {count_by_reason(skipped)})" if skipped else ""
        raise InputError(f"nothing to compress: no readable source text in {', '.join(paths)}{why}")
    result = compress_sources(
        sources, model, query=query, budget_tokens=budget_tokens, rate=None if budget_tokens else (rate or DEFAULT_RATE),
        output_format=output_format, fine=fine, candidates=candidates, cache=cache, counter=model, retriever=retriever, tree=tree,
    )
    return CompressRun(result, render(result, skipped), len(sources), tuple(skipped))


def warm_up(kind: TaskKind, models: WarmModels) -> None:
    """Load the models `kind`'s tasks use, so the first task's time is its own."""
    if kind == TaskKind.compress:
        models.score_model()
        with contextlib.suppress(LctkError):  # the candidate retriever's embedders; a task that needs them reports their error
            models.search_models()
    elif kind == TaskKind.index:
        models.search_models()
    else:
        models.ask_models()
        models.search_models()


def run_task(task: BatchTask, models: WarmModels) -> dict[str, Any]:
    """The task's result row; a failure of any kind becomes an error row (see the module docstring)."""
    started = time.perf_counter()
    row: dict[str, Any] = {"id": task.id, "kind": task.kind.value, "status": STATUS_OK, "error": None, "seconds": 0.0}
    row.update({name: task.fields.get(name) for name in INPUTS[task.kind]})
    try:
        row.update(_RUNNERS[task.kind](task, models))
    except Exception as exc:  # noqa: BLE001 - one task's failure is its row's; the batch goes on
        row.update(status=STATUS_ERROR, error=error_line(exc))
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def failed_row(task: BatchTask, error: str) -> dict[str, Any]:
    """The row of a task that could not run at all (its worker's models failed to load)."""
    row: dict[str, Any] = {"id": task.id, "kind": task.kind.value, "status": STATUS_ERROR, "error": error, "seconds": 0.0}
    row.update({name: task.fields.get(name) for name in INPUTS[task.kind]})
    return row


def error_line(exc: BaseException) -> str:
    """An exception as the CLI's one `error:` line would say it (without the prefix)."""
    if isinstance(exc, LctkError):
        text = first_line(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    elif isinstance(exc, OSError):
        text = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    else:
        text = f"internal error: {type(exc).__name__}: {first_line(exc)}"
    return " ".join(text.split())


def _compress(task: BatchTask, models: WarmModels) -> dict[str, Any]:
    fields = task.fields
    query = fields.get("query")
    cache = models.score_cache()
    hybrid = fields.get("retrieval", CandidateSource.hybrid.value) == CandidateSource.hybrid.value
    run = compress_paths(
        [task.location("path")], models.score_model(), query=query, budget_tokens=fields.get("budget"), rate=fields.get("rate"),
        output_format=fields.get("format", "text"), fine=not fields.get("no_fine", False),
        candidates=fields.get("candidates", DEFAULT_CANDIDATES), cache=cache,
        retriever=models.candidate_retriever(cache) if query is not None and hybrid else None,
        tree=fields.get("tree", False), root=None if Path(fields["path"]).is_absolute() else Path(task.base),
    )
    result = run.result
    return {"output": run.payload, "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
            "budget_tokens": result.budget_tokens, "ratio": round(result.ratio, 3), "files": run.files,
            "skipped": len(run.skipped), "lm_sequences": result.lm_sequences_scored, "lm_cache_hits": result.lm_cache_hits,
            "lm_tokens": result.lm_tokens_scored, "summary": summary_line(result, run.files)}


def _index(task: BatchTask, models: WarmModels) -> dict[str, Any]:
    embedder, _ = models.search_models()
    stats = build_index(task.location("path"), embedder=embedder)
    return {"outcome": index_outcome(stats), "index": index_json(stats)}


def _ask(task: BatchTask, models: WarmModels) -> dict[str, Any]:
    fields = task.fields
    settings = replace(RetrievalSettings(), mode=RetrievalMode(fields.get("mode", RetrievalSettings().mode.value)))
    prepared = models.prepared(task.location("document"), settings)  # before the models: a bad path fails at once
    retriever, answerer, backend = models.ask_models()
    result = answer(prepared, fields["question"], retriever=retriever, answerer=answerer, answer_backend=backend, settings=settings,
                    max_tokens=fields.get("max_tokens", 256), checkpoint_dir=writable_cache_subdir("ask"), check=fields.get("check", True))
    paged = prepared.document.kind in ("pdf", "docx")
    pages = sorted({item.page for item in result.evidence}, key=lambda page: (len(page), page)) if paged else []
    return {**asdict(result), "pages": pages}


_RUNNERS: dict[TaskKind, Callable[[BatchTask, WarmModels], dict[str, Any]]] = {
    TaskKind.compress: _compress, TaskKind.index: _index, TaskKind.ask: _ask,
}
