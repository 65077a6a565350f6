"""`lctk ask`: answer questions over a document longer than any model window, citing pages."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional, cast

import typer

from lctk.ask.settings import RetrievalMode, RetrievalSettings
from lctk.cli.options import BackendOption, BaseUrlOption, ModelOption, ServedModelOption

DEFAULTS = RetrievalSettings()


class AskFormat(str, Enum):
    """text: the answer (streamed); json: one object (an array with -Q); jsonl: one object per question."""

    text = "text"
    json = "json"
    jsonl = "jsonl"


def ask(
    document: Annotated[str, typer.Argument(help="PDF, text, Markdown, HTML, EPUB or DOCX file; '-' reads text from stdin.")],
    question: Annotated[Optional[str], typer.Argument(help="The question (or give several with -Q).", show_default=False)] = None,
    questions_file: Annotated[Optional[str], typer.Option("--questions", "-Q", help="Ask every question of this file (one per line; '#' lines skipped; or JSONL with a \"question\" field): the document is read and indexed once.", show_default=False)] = None,
    show_evidence: Annotated[bool, typer.Option("--show-evidence", "-e", help="After the answer, list the kept sentences with pages (stderr in text mode).")] = False,
    max_tokens: Annotated[int, typer.Option("--max-tokens", "-n", min=1, help="Most tokens in the answer.")] = 256,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="With --no-check: print the answer as it is generated.")] = True,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Hold the answer until it is checked against the evidence; an answer the evidence does not support becomes \"The document does not say.\"")] = True,
    mode: Annotated[RetrievalMode, typer.Option("--mode", help="prior: BM25 + static embeddings over every sentence, the full MiniLM re-reads the best with their neighbours; hybrid: the attention model also reads the best candidates; attention: InfiniRetri over every window (slow).", case_sensitive=False)] = DEFAULTS.mode,
    window: Annotated[int, typer.Option("--window", "-W", min=64, help="Tokens the attention model reads per step.")] = DEFAULTS.window_tokens,
    read_tokens: Annotated[int, typer.Option("--read-tokens", min=64, help="hybrid: candidate tokens the attention model reads per question.")] = DEFAULTS.read_tokens,
    rerank: Annotated[int, typer.Option("--rerank", min=0, help="hybrid/prior: the prior's best sentences that the full embedder re-reads with their neighbours (0: off).")] = DEFAULTS.rerank_sentences,
    top_k: Annotated[int, typer.Option("--top-k", "-K", min=1, help="Context tokens with the most attention whose sentences are kept.")] = DEFAULTS.top_k,
    phrase: Annotated[int, typer.Option("--phrase", min=1, help="Width of the moving sum that smooths attention (tokens).")] = DEFAULTS.phrase,
    kept_tokens: Annotated[int, typer.Option("--kept-tokens", min=16, help="Cap on the kept sentences, in tokens.")] = DEFAULTS.kept_tokens,
    weight_rows: Annotated[bool, typer.Option("--weight-rows", help="Weight question rows by their attention to the question (the reference's variant; measured worse, see BENCHMARKS.md).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="--mode attention: continue an interrupted run of the same question on the same document.")] = False,
    retrieval_model: Annotated[Optional[str], typer.Option("--retrieval-model", help="Model whose attention reads the candidates; always runs on torch (default: gemma3-270m).", show_default=False)] = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    base_url: BaseUrlOption = None,
    served_model: ServedModelOption = None,
    output_format: Annotated[AskFormat, typer.Option("--format", "-f", help="text, json or jsonl (one object per question).", case_sensitive=False)] = AskFormat.text,
) -> None:
    """Answer from a long document: evidence found by a lexical+dense prior over every sentence (or a model's attention, --mode), answer on --backend."""
    from dataclasses import replace

    from lctk.ask.qa import ask_many, read_questions
    from lctk.cli.console import progress_callback, read_stdin_text
    from lctk.cli.options import backend_value, server_value
    from lctk.config import writable_cache_subdir
    from lctk.documents.load import document_from_text, load_document
    from lctk.errors import UsageError

    if (question is None) == (questions_file is None):
        raise UsageError("give one question, or a file of questions with -Q (not both)")
    questions = [question] if question is not None else read_questions(cast(str, questions_file))  # one of the two
    if question is not None and not question.strip():
        from lctk.errors import InputError

        raise InputError("empty question; ask something")
    doc = document_from_text("<stdin>", read_stdin_text()) if document == "-" else load_document(document, writable_cache_subdir("documents"))
    settings = replace(DEFAULTS, mode=mode, window_tokens=window, top_k=top_k, phrase=phrase, kept_tokens=kept_tokens,
                       weight_rows=weight_rows, read_tokens=read_tokens, rerank_sentences=rerank)
    server = server_value(base_url, served_model)
    many = questions_file is not None
    streaming = stream and output_format == AskFormat.text
    printer = _Printer(doc, output_format, many, show_evidence, streaming, questions)
    with progress_callback("reading", log_every=30.0) as on_progress:
        results = ask_many(doc, questions, model=model, backend=backend_value(backend), server=server, retrieval_model=retrieval_model, settings=settings, max_tokens=max_tokens,
                           resume=resume, on_window=_window_progress(on_progress), on_piece=printer.piece if streaming else None, check=check)
        for index, result in enumerate(results):
            printer.result(index, result)
    printer.close()


def _window_progress(on_progress):
    """Progress over windows, with the reading rate after the first one (model loading excluded)."""
    import time

    first: list[float] = []

    def on_window(done: int, total: int, tokens: int) -> None:
        if on_progress is None:
            return
        if not first:
            first[:] = [time.perf_counter(), tokens]
            on_progress(done, total, "reading windows")
            return
        rate = (tokens - first[1]) / max(time.perf_counter() - first[0], 1e-9)
        on_progress(done, total, f"reading windows ({rate:,.0f} tok/s)")

    return on_window


class _Printer:
    """Renders each question's result as it arrives: stdout gets answers only, stderr the rest."""

    def __init__(self, doc, output_format: AskFormat, many: bool, show_evidence: bool, streaming: bool, questions):
        self.doc, self.format, self.many, self.show_evidence, self.streaming = doc, output_format, many, show_evidence, streaming
        self.questions = questions
        self.collected: list[dict] = []
        self.started: set[int] = set()

    def piece(self, index: int, text: str) -> None:
        from lctk.cli.console import write_stdout

        if index not in self.started:
            self.started.add(index)
            if self.many:
                write_stdout(("\n" if index else "") + f"Q: {self.questions[index]}\nA: ")
        write_stdout(text)

    def result(self, index: int, result) -> None:
        import json
        from dataclasses import asdict

        from lctk.cli.console import err_console, write_stdout

        record = {"question": self.questions[index], **asdict(result)}
        if self.format == AskFormat.jsonl:
            write_stdout(json.dumps(record, ensure_ascii=False) + "\n")
        elif self.format == AskFormat.json:
            self.collected.append(record)
        else:
            if not self.streaming:
                self.piece(index, result.answer)
            elif index not in self.started:  # nothing was streamed (an empty answer)
                self.piece(index, "")
            write_stdout("\n")
        console = err_console()
        if self.show_evidence and self.format == AskFormat.text:
            for item in result.evidence:
                where = f"p. {item.page}" if self.doc.kind in ("pdf", "docx") else (item.page or "-")
                console.print(f"[{where}] {item.text}", markup=False, highlight=False)
        console.print(_summary(result, self.doc), markup=False, highlight=False)

    def close(self) -> None:
        import json

        from lctk.cli.console import write_stdout

        if self.format == AskFormat.json:
            payload = self.collected if self.many else self.collected[0]
            write_stdout(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def _summary(result, doc) -> str:
    pages = sorted({e.page for e in result.evidence}, key=lambda p: (len(p), p)) if doc.kind in ("pdf", "docx") else []
    cited = f"; evidence from p. {', '.join(pages[:12])}{' …' if len(pages) > 12 else ''}" if pages else ""
    if result.mode == "attention":
        read = f"read {result.tokens_read:,} tokens in {result.windows_total} windows (all of {doc.name})"
    else:
        read = (f"scanned all {result.document_tokens:,} tokens of {doc.name}"
                + (f", the model read {result.tokens_read:,} in {result.windows} windows" if result.mode == "hybrid" else ""))
    return f"lctk: {read}, kept {len(result.evidence)} sentences / {result.tokens_kept:,} tokens{cited}"
