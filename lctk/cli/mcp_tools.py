"""The tools `lctk mcp` serves, over models that stay loaded: search, related, index, compress, ask.

One `ToolBox` per server process holds what is slow to make: the models, the score cache and the
last few prepared documents (a `lctk.batch.warm.WarmModels`, as `lctk batch` workers hold them)
and an opened `CodeIndex` per index root. Models load on first use and stay. Before every
search the root's index is refreshed (only changed files are re-parsed and re-embedded), so
results are never stale.

Each method checks its arguments with lctk's own errors, calls the library objects the CLI calls
(never the CLI), and returns a frozen `ToolOutput`: text for the agent to read and a JSON-able
dict with the same facts in the shapes of the CLI's `--format json`. Relative paths are relative
to the server's working directory. A ToolBox is not thread-safe: the server calls it from one
thread only (SQLite connections and models stay on the thread that made them).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lctk.ask.qa import answer
from lctk.ask.settings import RetrievalMode, RetrievalSettings
from lctk.batch.warm import WarmModels
from lctk.cli.commands.search import say_waiting_for_index
from lctk.cli.options import backend_value
from lctk.cli.render_search import render_hits
from lctk.compress.api import compress as compress_sources
from lctk.compress.render import budgeted_context, render, summary_line
from lctk.config import writable_cache_subdir
from lctk.errors import InputError
from lctk.models.protocols import Embedder
from lctk.retrieval.api import CodeIndex, Target, resolve_target
from lctk.retrieval.api import index as build_index
from lctk.retrieval.ranking import Filters
from lctk.retrieval.store import index_json, index_outcome
from lctk.sources.walk import STDIN, count_by_reason, gather_sources
from lctk.vocabulary import CompressFormat, SearchMode, parse_choice

log = logging.getLogger("lctk")

Progress = Callable[..., None]  # progress(done, total[, description])

DEFAULT_BUDGET_TOKENS = 4000  # compress: an agent's tool result must stay bounded, so a budget always applies
DEFAULT_CONTEXT_LINES = 2  # search/related: lines shown around each hit's best-matching block
MAX_OPEN_INDEXES = 8  # roots whose loaded CodeIndex is kept (the least recently used goes first)


@dataclass(frozen=True)
class ToolOutput:
    """A tool's result: `text` for the agent, `data` (JSON-able) with the same facts, `note` a one-line summary."""

    text: str
    data: dict[str, Any]
    note: str = ""


class ToolBox:
    """The five tools over warm models; see the module docstring."""

    def __init__(self) -> None:
        # the backend is resolved when a language model first loads: a bad LCTK_BACKEND fails that tool call, not search
        self.models = WarmModels(backend=lambda: backend_value(None))
        self._indexes: OrderedDict[Path, CodeIndex] = OrderedDict()

    # -- the tools

    def search(
        self, query: str, path: str = ".", *, k: int = 10, mode: str = "hybrid", languages: Sequence[str] = (),
        globs: Sequence[str] = (), paths: Sequence[str] = (), kinds: Sequence[str] = (),
        context: int = DEFAULT_CONTEXT_LINES, progress: Progress | None = None,
    ) -> ToolOutput:
        """Search the code under PATH (refreshing its index first); hits carry their best-matching code."""
        if not query.strip():
            raise InputError("empty query; say what you are looking for")
        chosen = parse_choice(SearchMode, mode, "mode")
        _check_hits(k, context, languages, kinds)
        opened, target = self.code_index(path, progress)
        hits = opened.search(query, k=k, mode=chosen, filters=opened.filters(languages=languages, globs=globs, paths=paths, kinds=kinds, within=target.within))
        data = json.loads(render_hits(hits, opened, query, chosen.value, "json", context, False, k))
        text = render_hits(hits, opened, query, chosen.value, "text", context, False, k) or "no results\n"
        return ToolOutput(text, data)

    def related(
        self, file: str, line: int, path: str = ".", *, k: int = 10, languages: Sequence[str] = (),
        globs: Sequence[str] = (), paths: Sequence[str] = (), kinds: Sequence[str] = (),
        context: int = DEFAULT_CONTEXT_LINES, progress: Progress | None = None,
    ) -> ToolOutput:
        """The code under PATH most like the unit holding FILE:LINE (by its vector), that unit left out."""
        _check_hits(k, context, languages, kinds)
        if line < 1:
            raise InputError(f"line must be at least 1 (got {line})")
        opened, target = self.code_index(path, progress)
        hits = opened.related(file, line, k=k, filters=opened.filters(languages=languages, globs=globs, paths=paths, kinds=kinds, within=target.within))
        payload = json.loads(render_hits(hits, opened, f"{file}:{line}", "related", "json", context, False, k))
        data = {"file": file, "line": line, **{key: value for key, value in payload.items() if key not in ("query", "mode")}}
        text = render_hits(hits, opened, "", "related", "text", context, False, k) or "no other code in the index\n"
        return ToolOutput(text, data)

    def index(self, path: str = ".", *, rebuild: bool = False, progress: Progress | None = None) -> ToolOutput:
        """Build or refresh the index of a directory; only new and changed files are embedded."""
        embedder, _ = self.models.search_models()
        stats = build_index(path, rebuild=rebuild, progress=progress, wait_message=say_waiting_for_index, embedder=embedder)
        data = index_json(stats)
        text = (f"{index_outcome(stats)}: {stats.root}: {stats.files:,} files ({stats.added:,} added, {stats.changed:,} changed, "
                f"{stats.removed:,} removed, {stats.unchanged:,} unchanged), {stats.units:,} units, {stats.blocks:,} blocks; "
                f"embedded {stats.embedded_blocks:,} blocks with {stats.model} in {stats.seconds:.2f} s"
                + (f"; skipped {len(stats.skipped):,} files ({count_by_reason(stats.skipped)})" if stats.skipped else "") + "\n")
        return ToolOutput(text, data)

    def compress(
        self, paths: Sequence[str], query: str | None = None, *, budget: int = DEFAULT_BUDGET_TOKENS,
        output_format: str = "text", progress: Progress | None = None,
    ) -> ToolOutput:
        """Compress files or directories into `budget` tokens for `query` (LongCodeZip), as `lctk compress` does."""
        names = list(paths)
        if not names:
            raise InputError("no input: pass files or directories")
        if STDIN in names:
            raise InputError("'-' (stdin) cannot be read over MCP; pass files or directories")
        if query is not None and not query.strip():
            raise InputError("the query is empty; leave it out for the query-free scorer")
        if budget < 1:
            raise InputError(f"the budget must be at least 1 token (got {budget})")
        chosen = parse_choice(CompressFormat, output_format, "format")
        sources, skipped = gather_sources(names)
        if not sources or not any(source.text.strip() for source in sources):
            why = f" ({len(skipped)} skipped: {count_by_reason(skipped)})" if skipped else ""
            raise InputError(f"nothing to compress: no readable source text in {', '.join(names)}{why}")
        for item in skipped:
            log.info("skipped %s: %s", item.display_path, item.reason)
        model, cache = self.models.score_model(), self.models.score_cache()
        result = compress_sources(
            sources, model, query=query, budget_tokens=budget, output_format=chosen.value, cache=cache, counter=model,
            on_progress=progress, retriever=self.models.candidate_retriever(cache) if query is not None else None,
        )
        if result.redactions:
            from lctk.sources.secrets import summarize

            log.warning(summarize(result.redactions))
        data = json.loads(render(replace(result, output_format="json"), skipped))
        data.pop("units", None)  # every chunk's score: --explain's table, too long for an agent's context
        data["text"], data["format"] = budgeted_context(result.files, chosen.value), chosen.value
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n" if chosen == CompressFormat.json else render(result, skipped)
        note = f"lctk: {summary_line(result, len(sources))}"
        return ToolOutput(text, data, note)

    def ask(
        self, document: str, question: str, *, mode: str = "prior", max_tokens: int = 256, progress: Progress | None = None,
    ) -> ToolOutput:
        """Answer a question from a document of any length, citing the kept sentences with their pages."""
        if document == STDIN:
            raise InputError("'-' (stdin) cannot be read over MCP; pass a document path")
        if not question.strip():
            raise InputError("empty question; ask something")
        if max_tokens < 1:
            raise InputError(f"max_tokens must be at least 1 (got {max_tokens})")
        settings = replace(RetrievalSettings(), mode=parse_choice(RetrievalMode, mode, "mode"))
        prepared = self.models.prepared(document, settings)  # before the models: a bad path fails at once
        retriever, answerer, backend = self.models.ask_models()

        def on_window(done: int, total: int, tokens: int) -> None:
            if progress is not None:
                progress(done, total)

        result = answer(prepared, question, retriever=retriever, answerer=answerer, answer_backend=backend, settings=settings,
                        max_tokens=max_tokens, checkpoint_dir=writable_cache_subdir("ask"), on_window=on_window)
        kind = prepared.document.kind
        lines = [f"[{f'p. {item.page}' if kind in ('pdf', 'docx') else item.page or '-'}] {item.text}" for item in result.evidence]
        text = result.answer + "\n\nevidence:\n" + "".join(line + "\n" for line in lines)
        return ToolOutput(text, {"question": question, "document": document, **asdict(result)})

    # -- warm state

    def search_models(self) -> tuple[Embedder, Embedder | None]:
        """The index embedder and its re-scoring model, loaded now if they are not yet (the server warms them at start)."""
        return self.models.search_models()

    def code_index(self, path: str, progress: Progress | None = None) -> tuple[CodeIndex, Target]:
        """The loaded index whose root covers PATH, refreshed now (opened, or built, on first use), and what PATH meant."""
        target = resolve_target(path)
        opened = self._indexes.pop(target.root, None)
        if opened is None:
            embedder, reranker = self.models.search_models()
            opened = CodeIndex.open(target.root, embedder=embedder, reranker=reranker, progress=progress, wait_message=say_waiting_for_index)
        else:
            opened.refresh(progress=progress, wait_message=say_waiting_for_index)
        self._indexes[target.root] = opened
        while len(self._indexes) > MAX_OPEN_INDEXES:
            self._indexes.popitem(last=False)
        return opened, target


def _check_hits(k: int, context: int, languages: Sequence[str], kinds: Sequence[str]) -> None:
    """Fail on a bad k, context, language or kind before any index is opened or refreshed."""
    if k < 1:
        raise InputError(f"k must be at least 1 (got {k})")
    if context < 0:
        raise InputError(f"context must be 0 or more lines (got {context})")
    Filters.checked(languages=languages, kinds=kinds)
