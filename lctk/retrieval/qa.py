"""`ask`: answer a question over a document of any length (InfiniRetri retrieval + an answer model).

`ask(path, question)` is the Python API (`lctk.retrieval.ask`): it loads the document and the
default models and returns a frozen `AskResult`; `answer(...)` does the work with models the
caller already holds. Retrieval always runs on torch (it reads attention); the answer runs on the
backend chosen for generation. After every window the retrieval state is checkpointed under the
cache dir, keyed by document, question, settings and model, so an interrupted run continues with
`resume=True`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from lctk.documents.load import Document, load_document
from lctk.documents.sentences import pack_windows, split_sentences
from lctk.errors import InputError
from lctk.retrieval.infiniretri import RetrievalSettings, RetrievalState, retrieve

log = logging.getLogger(__name__)

ANSWER_INSTRUCTION = "Answer the question using only the text below. Quote the relevant words when you can."


@dataclass(frozen=True)
class Evidence:
    """A kept sentence: its text, page (or section), character offsets and attention score."""

    text: str
    page: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class AskResult:
    answer: str
    evidence: tuple[Evidence, ...]
    windows: int
    windows_total: int
    tokens_read: int
    tokens_kept: int
    document_chars: int
    retrieval_model: str
    answer_model: str
    answer_backend: str
    resumed_from_window: int
    timings: dict


STOP = "\nQuestion:"  # a base model (no chat template) goes on to invent the next question


def until_next_question(pieces: Iterable[str]) -> Iterator[str]:
    """Pass streamed text through, ending it where a new "Question:" line starts.

    Text that could be the start of that line is held back until it is known not to be.
    """
    held = ""
    for piece in pieces:
        held += piece
        at = held.find(STOP)
        if at >= 0:
            if held[:at]:
                yield held[:at]
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
            return
        keep = next((n for n in range(min(len(STOP) - 1, len(held)), 0, -1) if STOP.startswith(held[-n:])), 0)
        if len(held) > keep:
            yield held[: len(held) - keep]
            held = held[len(held) - keep :]
    if held:
        yield held


def answer_messages(evidence: list[str], question: str) -> list[dict]:
    """The answer prompt: instruction, the kept sentences in document order, the question."""
    context = "\n".join(evidence)
    return [{"role": "user", "content": f"{ANSWER_INSTRUCTION}\n\n{context}\n\nQuestion: {question.strip()}\nAnswer:"}]


def checkpoint_path(cache: Path, document: Document, question: str, settings: RetrievalSettings, model_id: str) -> Path:
    key = json.dumps([hashlib.sha256(document.text.encode("utf-8", "surrogateescape")).hexdigest(), question.strip(),
                      asdict(settings), model_id])
    return cache / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _load_checkpoint(path: Path, windows: int) -> RetrievalState | None:
    try:
        data = json.loads(path.read_text())
        state = RetrievalState(int(data["next_window"]), tuple(data["kept"]), tuple(data["scores"]), int(data["tokens_read"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if 0 <= state.next_window <= windows else None


def _save_checkpoint(path: Path, state: RetrievalState) -> None:
    from lctk.storage import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(asdict(state)).encode())


def ask(
    document: str | os.PathLike | Document,
    question: str,
    model: str | None = None,
    backend: str = "auto",
    retrieval_model: str | None = None,
    settings: RetrievalSettings = RetrievalSettings(),
    max_tokens: int = 256,
    resume: bool = False,
    on_window: Callable[[int, int, int], None] | None = None,
    on_piece: Callable[[str], None] | None = None,
) -> AskResult:
    """Answer `question` from a document (a path, or a `Document` from `document_from_text`).

    Models default to the `attention` and `generate` roles (`lctk models`); `model`/`backend`
    choose the answer model, `retrieval_model` the one whose attention picks the evidence (torch).
    """
    from lctk.config import writable_cache_subdir
    from lctk.models.loader import load_language_model
    from lctk.models.registry import LM, resolve_model, role_model

    if not question.strip():
        raise InputError("empty question; ask something")
    if not isinstance(document, Document):
        document = load_document(document, writable_cache_subdir("documents"))
    retrieval_name, answer_name = retrieval_model or role_model("attention").value, role_model("generate", model).value
    for name in (retrieval_name, answer_name):  # a mistyped name fails now, not after a model has loaded
        resolve_model(name, LM)
    retriever, _ = load_language_model(retrieval_name, "attention", "torch")
    answerer, choice = load_language_model(answer_name, "generate", backend)
    return answer(document, question, retriever, answerer, choice.backend, settings, max_tokens,
                  writable_cache_subdir("ask"), resume, on_window, on_piece)


def answer(
    document: Document,
    question: str,
    retriever,
    answerer,
    answer_backend: str = "",
    settings: RetrievalSettings = RetrievalSettings(),
    max_tokens: int = 256,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_window: Callable[[int, int, int], None] | None = None,
    on_piece: Callable[[str], None] | None = None,
) -> AskResult:
    """Retrieve evidence with `retriever`'s attention, then answer with `answerer` (streamed to on_piece)."""
    if not question.strip():
        raise InputError("empty question; ask something")
    started = time.perf_counter()
    sentences = split_sentences(document.text)
    if not sentences:
        raise InputError(f"{document.name} has no sentences to read")
    count = lambda texts: [retriever.count_tokens(t) for t in texts]  # noqa: E731
    sentences, windows = pack_windows(document.text, sentences, settings.window_tokens, count)
    split_s = time.perf_counter() - started
    path = checkpoint_path(checkpoint_dir, document, question, settings, retriever.model_id) if checkpoint_dir else None
    with _checkpoint_lock(path):
        state, retrieval_s, resumed = _retrieve_with_checkpoints(
            path, document, sentences, windows, question, retriever, settings, resume, on_window)
    evidence = tuple(
        Evidence(document.text[sentences[i].start : sentences[i].end], document.label_at(sentences[i].start),
                 sentences[i].start, sentences[i].end, round(score, 4))
        for i, score in zip(state.kept, state.scores)
    )
    messages = answer_messages([e.text for e in evidence], question)
    answer_started = time.perf_counter()
    stream = answerer.generate(messages, max_tokens=max_tokens, temperature=0.0)
    pieces = []
    for piece in until_next_question(stream):
        pieces.append(piece)
        if on_piece is not None:
            on_piece(piece)
    answer_s = time.perf_counter() - answer_started
    return AskResult(
        answer="".join(pieces).strip(), evidence=evidence, windows=len(windows) - resumed, windows_total=len(windows),
        tokens_read=state.tokens_read, tokens_kept=sum(retriever.count_tokens(e.text) for e in evidence),
        document_chars=len(document.text), retrieval_model=retriever.model_id, answer_model=answerer.model_id,
        answer_backend=answer_backend, resumed_from_window=resumed,
        timings={"split_s": round(split_s, 3), "retrieval_s": round(retrieval_s, 3), "answer_s": round(answer_s, 3),
                 "total_s": round(time.perf_counter() - started, 3)},
    )


@contextlib.contextmanager
def _checkpoint_lock(path: Path | None) -> Iterator[None]:
    """Serialise runs that share a checkpoint (same document, question, settings and model)."""
    if path is None:
        yield
        return
    from lctk.storage import waiting_lock

    def say_waiting() -> None:
        log.warning("waiting for lock: another lctk ask is reading this document for the same question")

    with waiting_lock(path.with_suffix(".lock"), say_waiting):
        yield


def _retrieve_with_checkpoints(path, document, sentences, windows, question, retriever, settings, resume, on_window):
    """Run retrieval from the checkpoint (with `resume`) or the start, saving one after each window."""
    state = _load_checkpoint(path, len(windows)) if (path is not None and resume) else None
    resumed = state.next_window if state else 0
    if resume and state is None:
        log.info("no checkpoint to resume from; starting at the first window")

    def after_window(current: RetrievalState) -> None:
        if path is not None:
            _save_checkpoint(path, current)
        if on_window is not None:
            on_window(current.next_window, len(windows), current.tokens_read)

    started = time.perf_counter()
    state = retrieve(retriever, document.text, sentences, windows, question, settings, state, after_window)
    return state, time.perf_counter() - started, resumed
