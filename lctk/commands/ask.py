"""`lctk ask`: answer a question over a document longer than any model window, citing pages."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lctk.options import BackendOption, FormatOption, ModelOption, OutputFormat

# The defaults of lctk.retrieval.infiniretri.RetrievalSettings (a test keeps them equal), written
# out so that `lctk --help` does not import NumPy.
WINDOW, TOP_K, PHRASE, KEPT_TOKENS = 1024, 300, 8, 768


def ask(
    document: Annotated[str, typer.Argument(help="PDF, text, Markdown, HTML, EPUB or DOCX file; '-' reads text from stdin.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    show_evidence: Annotated[bool, typer.Option("--show-evidence", "-e", help="After the answer, list the kept sentences with pages (stderr in text mode).")] = False,
    max_tokens: Annotated[int, typer.Option("--max-tokens", "-n", min=1, help="Most tokens in the answer.")] = 256,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print the answer as it is generated.")] = True,
    window: Annotated[int, typer.Option("--window", "-W", min=64, help="Tokens of document read per step.")] = WINDOW,
    top_k: Annotated[int, typer.Option("--top-k", "-K", min=1, help="Context tokens with the most attention whose sentences are kept.")] = TOP_K,
    phrase: Annotated[int, typer.Option("--phrase", min=1, help="Width of the moving sum that smooths attention (tokens).")] = PHRASE,
    kept_tokens: Annotated[int, typer.Option("--kept-tokens", min=16, help="Cap on the kept sentences, in tokens.")] = KEPT_TOKENS,
    weight_rows: Annotated[bool, typer.Option("--weight-rows", help="Weight question rows by their attention to the question (the reference's variant; measured worse, see BENCHMARKS.md).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run of the same question on the same document.")] = False,
    retrieval_model: Annotated[Optional[str], typer.Option("--retrieval-model", help="Model whose attention picks sentences; always runs on torch (default: gemma3-270m).", show_default=False)] = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Answer from a long document: InfiniRetri retrieval on torch, the answer on --backend."""
    import json
    import time
    from dataclasses import asdict

    from lctk.config import writable_cache_subdir
    from lctk.console import err_console, progress_callback, read_stdin_text, write_stdout
    from lctk.documents.load import document_from_text, load_document
    from lctk.errors import InputError
    from lctk.options import backend_value
    from lctk.retrieval.infiniretri import RetrievalSettings
    from lctk.retrieval.qa import ask as run_ask

    if not question.strip():
        raise InputError("empty question; ask something")
    doc = document_from_text("<stdin>", read_stdin_text()) if document == "-" else load_document(document, writable_cache_subdir("documents"))
    settings = RetrievalSettings(window, top_k, phrase, kept_tokens, weight_rows)
    streaming = stream and output_format == OutputFormat.text
    with progress_callback("reading", log_every=30.0) as on_progress:
        first: list[float] = []  # time and tokens read at the first finished window (rate excludes model loading)

        def on_window(done: int, total: int, tokens: int) -> None:
            if on_progress is None:
                return
            if not first:
                first[:] = [time.perf_counter(), tokens]
                on_progress(done, total, "reading windows")
                return
            rate = (tokens - first[1]) / max(time.perf_counter() - first[0], 1e-9)
            on_progress(done, total, f"reading windows ({rate:,.0f} tok/s)")

        result = run_ask(
            doc, question, model, backend_value(backend), retrieval_model, settings, max_tokens, resume,
            on_window, write_stdout if streaming else None,
        )
    console = err_console()
    if output_format == OutputFormat.json:
        write_stdout(json.dumps(asdict(result), indent=2, ensure_ascii=False) + "\n")
        return
    if not streaming:
        write_stdout(result.answer)
    write_stdout("\n")
    if show_evidence:
        for item in result.evidence:
            where = f"p. {item.page}" if doc.kind in ("pdf", "docx") else (item.page or "-")
            console.print(f"[{where}] {item.text}", markup=False, highlight=False)
    console.print(
        f"lctk: read {result.tokens_read:,} tokens in {result.windows_total} windows "
        f"(all of {doc.name}), kept {len(result.evidence)} sentences / {result.tokens_kept:,} tokens",
        markup=False, highlight=False,
    )
