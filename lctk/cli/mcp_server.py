"""`lctk mcp`: lctk's tools for coding agents over the Model Context Protocol, on stdin/stdout.

Built on the official `mcp` SDK (2.x, `MCPServer`). The tools are `lctk.cli.mcp_tools.ToolBox`'s:
search, related, index, compress and ask. Invariants:

- stdout carries only protocol messages. The SDK's stdio transport points fd 1 at stderr while it
  serves (a stray print, or a C library's, lands there); lctk logs to stderr; progress travels
  as `notifications/progress`, sent only when the client's request carried a progress token.
- Every call runs on one worker thread, one call at a time, so models and SQLite connections
  stay on the thread that made them; the event loop stays free to read requests and send
  progress meanwhile. The search embedders start loading on that thread as soon as the server
  starts.
- A tool never takes the server down: lctk's errors, bad arguments and unexpected failures all
  come back as results with `isError` set and one line of text; the next call is served as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from lctk import __version__
from lctk.cli.mcp_tools import DEFAULT_BUDGET_TOKENS, DEFAULT_CONTEXT_LINES, ToolBox, ToolOutput
from lctk.cli.state import cli_state
from lctk.errors import LctkError
from lctk.sources.languages import LANGUAGES

log = logging.getLogger("lctk")

PROGRESS_INTERVAL_S = 0.25  # at most one notification this often per call (the last of a stage always goes)
PROGRESS_SEND_TIMEOUT_S = 5.0
INSTRUCTIONS = (
    "lctk: local, offline tools over code and documents. `search` finds code by meaning and by name "
    "(hybrid embeddings + BM25) and returns each hit's best-matching lines; `related` finds the code most "
    "like a given file:line; `index` builds or refreshes a directory's search index (search does this itself); "
    "`compress` fits files or directories into a token budget, keeping what a task needs; `ask` answers a "
    "question from a long document (PDF, text, Markdown, HTML, EPUB, DOCX), citing pages. Relative paths are "
    "relative to the server's working directory."
)

LANGUAGE_NAMES = ", ".join(sorted({*LANGUAGES, "text"}))
QueryArg = Annotated[str, Field(description="What to find: words, a question, or a symbol name.")]
PathArg = Annotated[str, Field(description="Directory (or file) to search; indexed on first use, refreshed before every call.")]
TopArg = Annotated[int, Field(description="Number of hits (1 or more).")]
ModeArg = Annotated[str, Field(description="hybrid (meaning and names; the default), dense (meaning only) or lexical (BM25 over identifiers).")]
LanguagesArg = Annotated[list[str] | None, Field(description=f"Only these languages: {LANGUAGE_NAMES}.")]
GlobsArg = Annotated[list[str] | None, Field(description="Only paths matching these gitignore-style globs, relative to the index root.")]
PathsArg = Annotated[list[str] | None, Field(description="Only under these path prefixes, relative to `path`.")]
KindsArg = Annotated[list[str] | None, Field(description="Only these unit kinds: function, method, class, type, file.")]
ContextArg = Annotated[int, Field(description="Lines shown around each hit's best-matching block (0 or more).")]


class ProgressRelay:
    """The library's `progress(done, total[, description])`, called on the worker thread, as MCP progress.

    The protocol wants values that only grow: when a callback starts counting over (the next stage
    of an index build), the count continues from where the last stage ended.
    """

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop, label: str):
        self._ctx, self._loop, self._label = ctx, loop, label
        self._offset, self._done, self._total = 0, 0, 0
        self._sent, self._sent_at = -1, 0.0

    def __call__(self, done: int, total: int, description: str | None = None) -> None:
        if done < self._done or total != self._total:  # a new stage
            self._offset += self._total
        self._done, self._total = done, total
        value, now = self._offset + done, time.monotonic()
        if value <= self._sent or (done < total and now - self._sent_at < PROGRESS_INTERVAL_S):
            return
        self._sent, self._sent_at = value, now
        sent = asyncio.run_coroutine_threadsafe(
            self._ctx.report_progress(value, self._offset + total, description or self._label), self._loop)
        try:
            sent.result(timeout=PROGRESS_SEND_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a lost notification must never fail the call
            log.debug("progress notification not sent: %s", exc)


def wants_progress(ctx: Context) -> bool:
    """Whether the client's request carried a progress token."""
    meta: Any = ctx.request_context.meta or {}
    return meta.get("progress_token", meta.get("progressToken")) is not None


class LctkMCPServer(MCPServer[Any]):
    """MCPServer whose argument errors read like lctk's: one line naming each bad field."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            problems = "; ".join(f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg'].lower()}"
                                 for error in exc.__cause__.errors())
            raise ToolError(f"invalid arguments to {name}: {problems}") from None


class LctkTools:
    """The tools as the server registers them: typed arguments in, one worker thread, results out."""

    def __init__(self, toolbox: ToolBox):
        self.toolbox = toolbox
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lctk-mcp")

    def warm_up(self) -> None:
        """Start loading the search embedders on the worker, so the first search finds them loaded."""
        def report(done: Future) -> None:
            if done.exception() is not None:
                log.warning("could not load the search models yet: %s", done.exception())

        self._worker.submit(self.toolbox.search_models).add_done_callback(report)

    def close(self) -> None:
        """Let the worker go; a call still running is not waited for."""
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def _run(self, ctx: Context, label: str, method: Callable[..., ToolOutput], **arguments: Any) -> CallToolResult:
        """Run a ToolBox method on the worker; its output, or its error as one line, becomes the result."""
        relay = ProgressRelay(ctx, asyncio.get_running_loop(), label) if wants_progress(ctx) else None
        try:
            output = await asyncio.wrap_future(self._worker.submit(lambda: method(progress=relay, **arguments)))
        except LctkError as exc:
            return _error(str(exc))
        except MemoryError:
            return _error("out of memory; try a smaller input or budget")
        except OSError as exc:  # a full disk, a quota, a read-only mount met where no caller expected it
            return _error(f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else ""))
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, the server stays up
            log.error("internal error in %s: %s: %s", method.__name__, type(exc).__name__, exc)
            if cli_state.verbose:
                traceback.print_exc()
            return _error(f"internal error: {type(exc).__name__}: {exc}")
        content: list[ContentBlock] = [TextContent(type="text", text=output.text)]
        if output.note:
            content.append(TextContent(type="text", text=output.note))
        return CallToolResult(content=content, structured_content=output.data)

    async def search(
        self, ctx: Context, query: QueryArg, path: PathArg = ".", k: TopArg = 10, mode: ModeArg = "hybrid",
        languages: LanguagesArg = None, globs: GlobsArg = None, paths: PathsArg = None, kinds: KindsArg = None,
        context: ContextArg = DEFAULT_CONTEXT_LINES,
    ) -> CallToolResult:
        """Search code by meaning and by name; each hit has its path, lines, score, symbol and best-matching code."""
        return await self._run(ctx, "indexing", self.toolbox.search, query=query, path=path, k=k, mode=mode,
                               languages=languages or (), globs=globs or (), paths=paths or (), kinds=kinds or (), context=context)

    async def related(
        self, ctx: Context,
        file: Annotated[str, Field(description="A file in the index.")],
        line: Annotated[int, Field(description="A line of it (1-based): the innermost function, method, class or type holding it is compared.")],
        path: PathArg = ".", k: TopArg = 10, languages: LanguagesArg = None, globs: GlobsArg = None,
        paths: PathsArg = None, kinds: KindsArg = None, context: ContextArg = DEFAULT_CONTEXT_LINES,
    ) -> CallToolResult:
        """Find the code most like the unit at file:line (by its embedding), elsewhere in the index: near-duplicates, siblings, other implementations."""
        return await self._run(ctx, "indexing", self.toolbox.related, file=file, line=line, path=path, k=k,
                               languages=languages or (), globs=globs or (), paths=paths or (), kinds=kinds or (), context=context)

    async def index(
        self, ctx: Context,
        path: Annotated[str, Field(description="Directory to index (an indexed ancestor is refreshed instead).")] = ".",
        rebuild: Annotated[bool, Field(description="Re-embed everything, even unchanged files.")] = False,
    ) -> CallToolResult:
        """Build or refresh a directory's search index (only new and changed files are embedded) and report what changed."""
        return await self._run(ctx, "indexing", self.toolbox.index, path=path, rebuild=rebuild)

    async def compress(
        self, ctx: Context,
        paths: Annotated[list[str], Field(description="Files or directories (git-ignored, binary and generated files are skipped).")],
        query: Annotated[str | None, Field(description="The task the context is for; leave out for the query-free scorer.")] = None,
        budget: Annotated[int, Field(description="Most tokens in the output, headers and elision markers included.")] = DEFAULT_BUDGET_TOKENS,
        format: Annotated[str, Field(description="text, xml, markdown or json.")] = "text",
    ) -> CallToolResult:
        """Compress code into a token budget, keeping what the task needs (LongCodeZip); returns the context and its token counts."""
        return await self._run(ctx, "scoring chunks", self.toolbox.compress, paths=paths, query=query, budget=budget,
                               output_format=format)

    async def ask(
        self, ctx: Context,
        document: Annotated[str, Field(description="PDF, text, Markdown, HTML, EPUB or DOCX file.")],
        question: Annotated[str, Field(description="The question.")],
        mode: Annotated[str, Field(description="prior (default: BM25 + embeddings, the full embedder re-reads the best), hybrid (a language model's attention also reads the best) or attention (reads every window; slow).")] = "prior",
    ) -> CallToolResult:
        """Answer a question from a document of any length; returns the answer and the evidence it rests on, with pages."""
        return await self._run(ctx, "reading windows", self.toolbox.ask, document=document, question=question, mode=mode)


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=" ".join(message.split()))], is_error=True)


def build_server(tools: LctkTools) -> LctkMCPServer:
    """An MCP server with lctk's five tools registered; the search models start loading when it starts serving."""

    @contextlib.asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        tools.warm_up()  # inside the transport: stdout is already the protocol's alone
        yield

    server = LctkMCPServer("lctk", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING", lifespan=lifespan)
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.add_tool(tools.search, annotations=reads)
    server.add_tool(tools.related, annotations=reads)
    server.add_tool(tools.index, annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                                             open_world_hint=False))
    server.add_tool(tools.compress, annotations=reads)
    server.add_tool(tools.ask, annotations=reads)
    return server


def serve() -> None:
    """Serve the tools on stdin/stdout until the client closes stdin."""
    tools = LctkTools(ToolBox())
    server = build_server(tools)
    try:
        anyio.run(server.run_stdio_async)
    finally:
        tools.close()
