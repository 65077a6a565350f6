"""`ask`: answer questions over a document of any length (a lexical + dense prior, or InfiniRetri, + an answer model).

`ask(path, question)` is the Python API (`lctk.ask.ask`): it loads the document and the
default models and returns a frozen `AskResult`; `ask_many(path, questions)` loads and prepares
once and yields one result per question; `prepare(...)` + `answer(...)` do the work with models
the caller already holds. Retrieval in the hybrid and attention modes reads attention, so its
model runs on torch (in prior mode only its tokenizer counts tokens); the answer runs on the
backend chosen for generation, from the `answer_sentences` best kept
sentences, and is checked against them (lctk.ask.grounding). In `attention` mode the
retrieval state is checkpointed after every window under the cache dir, keyed by document,
question, settings and model, so an interrupted run continues with `resume=True`; `hybrid` and
`prior` take seconds and keep no checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

from lctk.ask.grounding import close_stream, first_line, supported
from lctk.ask.hybrid import hybrid_select
from lctk.ask.infiniretri import RetrievalState, retrieve
from lctk.ask.prior import ContextReranker, SentencePrior
from lctk.ask.settings import RetrievalMode, RetrievalSettings
from lctk.config import writable_cache_subdir
from lctk.documents.load import Document, load_document
from lctk.documents.sentences import Sentence, Window, fit_sentences, split_sentences, windows_of
from lctk.errors import InputError
from lctk.models.protocols import AttentionLanguageModel, Embedder, LanguageModel
from lctk.models.server import ServerTarget
from lctk.score_cache import content_hash
from lctk.storage import atomic_write_bytes, waiting_lock
from lctk.vocabulary import Backend

log = logging.getLogger(__name__)

# The answer prompt: short answers copied from the text, shown by two examples (generic on purpose:
# nothing from the benchmark's manuals). Sub-1B models copy the right span far more often this
# way than when asked to "answer using the text" (bench/ask_questions.py, dev questions).
ANSWER_INSTRUCTION = "Answer the question with a few words copied from the text."
ANSWER_EXAMPLES = (
    "Text: The museum opens at nine in the morning and closes at five. Tickets cost twelve euros.\n"
    "Question: How much does a ticket cost?\nAnswer: twelve euros\n\n"
    "Text: Settings are read from /etc/app/config.toml at start-up. Changes take effect after a restart.\n"
    "Question: Which file holds the settings?\nAnswer: /etc/app/config.toml\n\n"
)
REFUSAL = "The document does not say."
ANSWER_LOOKUP_TOKENS = 0  # prompt-lookup drafts for answers: off; llama.cpp, where answers run, cannot check drafts exactly (BENCHMARKS.md)


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
    document_tokens: int
    mode: str
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
            close_stream(pieces)
            return
        keep = next((n for n in range(min(len(STOP) - 1, len(held)), 0, -1) if STOP.startswith(held[-n:])), 0)
        if len(held) > keep:
            yield held[: len(held) - keep]
            held = held[len(held) - keep :]
    if held:
        yield held


def answer_messages(evidence: list[str], question: str) -> list[dict]:
    """The answer prompt: instruction, two worked examples, the evidence (document order), the question."""
    context = " ".join(" ".join(text.split()) for text in evidence)
    return [{"role": "user", "content": f"{ANSWER_INSTRUCTION}\n\n{ANSWER_EXAMPLES}Text: {context}\n"
                                        f"Question: {' '.join(question.split())}\nAnswer:"}]


def best_evidence(evidence: Sequence[Evidence], count: int) -> list[Evidence]:
    """The `count` best-scored kept sentences, in document order: what the answer model reads."""
    best = sorted(range(len(evidence)), key=lambda i: (-evidence[i].score, i))[:count]
    return [evidence[i] for i in sorted(best)]


def respond(answerer, evidence: Sequence[Evidence], question: str, max_tokens: int = 256,
            on_piece: Callable[[str], None] | None = None, *, check: bool = True,
            lookup_tokens: int = ANSWER_LOOKUP_TOKENS):
    """Answer `question` from `evidence` (document order) with `answerer`; return (answer, stats).

    With `check` the reply is held until it is complete and replaced by REFUSAL when the model
    refuses in its own words or the evidence does not support it (lctk.ask.grounding);
    without, it streams to `on_piece` as generated. No evidence: REFUSAL, and no model runs.
    Answers copy spans of the evidence, so tokens are drafted from the prompt (`lookup_tokens`
    at a time) and checked in one pass: the same text as plain greedy decoding, sooner.
    """
    if not evidence:
        if on_piece is not None:
            on_piece(REFUSAL)
        return REFUSAL, None
    stream = answerer.generate(answer_messages([e.text for e in evidence], question), max_tokens=max_tokens,
                               temperature=0.0, lookup_tokens=lookup_tokens)
    pieces = []
    for piece in first_line(until_next_question(stream)):
        pieces.append(piece)
        if on_piece is not None and not check:
            on_piece(piece)
    reply = "".join(pieces).strip()
    if check:
        if _refuses(reply) or not supported(reply, [e.text for e in evidence], question):
            reply = REFUSAL
        if on_piece is not None:
            on_piece(reply)
    return reply, getattr(stream, "stats", None)


def _refuses(reply: str) -> bool:
    """The answer model declined in its own words."""
    lowered = reply.lower()
    return any(phrase in lowered for phrase in ("does not say", "doesn't say", "does not mention", "not mentioned",
                                                "does not answer", "no information"))


def checkpoint_path(cache: Path, document: Document, question: str, settings: RetrievalSettings, model_id: str) -> Path:
    key = json.dumps([content_hash(document.text), question.strip(),
                      asdict(settings), model_id])
    return cache / f"{content_hash(key)[:24]}.json"


def _load_checkpoint(path: Path, windows: int) -> RetrievalState | None:
    try:
        data = json.loads(path.read_text())
        state = RetrievalState(int(data["next_window"]), tuple(data["kept"]), tuple(data["scores"]), int(data["tokens_read"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if 0 <= state.next_window <= windows else None


def _save_checkpoint(path: Path, state: RetrievalState) -> None:
    atomic_write_bytes(path, json.dumps(asdict(state)).encode())


def ask(
    document: str | os.PathLike | Document,
    question: str,
    *,
    model: str | None = None,
    backend: Backend | str = Backend.auto,
    retrieval_model: str | None = None,
    settings: RetrievalSettings = RetrievalSettings(),
    max_tokens: int = 256,
    resume: bool = False,
    on_window: Callable[[int, int, int], None] | None = None,
    on_piece: Callable[[str], None] | None = None,
    check: bool = True,
    server: ServerTarget | None = None,
) -> AskResult:
    """Answer `question` from a document (a path, or a `Document` from `document_from_text`).

    Models default to the `attention` and `answer` roles (`lctk models`); `model`/`backend`
    choose the answer model, `retrieval_model` the one whose attention picks the evidence (torch).
    """
    if not question.strip():
        raise InputError("empty question; ask something")
    return next(ask_many(document, [question], model=model, backend=backend, server=server, retrieval_model=retrieval_model, settings=settings, max_tokens=max_tokens, resume=resume,
                         on_window=on_window, on_piece=lambda _index, piece: on_piece(piece) if on_piece else None, check=check))


def ask_many(
    document: str | os.PathLike | Document,
    questions: Sequence[str],
    *,
    model: str | None = None,
    backend: Backend | str = Backend.auto,
    retrieval_model: str | None = None,
    settings: RetrievalSettings = RetrievalSettings(),
    max_tokens: int = 256,
    resume: bool = False,
    on_window: Callable[[int, int, int], None] | None = None,
    on_piece: Callable[[int, str], None] | None = None,
    check: bool = True,
    server: ServerTarget | None = None,
) -> Iterator[AskResult]:
    """Answer each question in turn, loading the models and reading the document once; yields results in order.

    Extraction, the sentence split, token counts and the prior's sentence vectors are computed once
    and shared by every question; `on_piece(index, piece)` streams each answer. With a model
    server (`server`, or LCTK_BASE_URL) the answers come from it; retrieval stays local (no server
    returns attention weights).
    """
    from lctk.models.loader import load_language_model
    from lctk.models.registry import LM, resolve_model, role_model

    blank = [i + 1 for i, q in enumerate(questions) if not q.strip()]
    if not questions or blank:
        raise InputError(f"empty question (number {blank[0]}); ask something" if blank else "no questions to ask")
    if not isinstance(document, Document):
        document = load_document(document, writable_cache_subdir("documents"))
    retrieval_name, answer_name = retrieval_model or role_model("attention").value, role_model("answer", model).value
    for name in (retrieval_name, answer_name):  # a mistyped name fails now, not after a model has loaded
        resolve_model(name, LM)
    retriever = cast(AttentionLanguageModel, retrieval_model_for(retrieval_name, settings))  # counts tokens in prior mode
    answerer, choice = load_language_model(answer_name, "generate", backend, server=server)
    prepared = prepare(document, retriever, settings, prior_embedder(settings))
    for index, question in enumerate(questions):
        pieces = (lambda piece, at=index: on_piece(at, piece)) if on_piece is not None else None
        yield answer(prepared, question, retriever=retriever, answerer=answerer, answer_backend=choice.backend, settings=settings, max_tokens=max_tokens,
                     checkpoint_dir=writable_cache_subdir("ask"), resume=resume, on_window=on_window, on_piece=pieces, check=check)


def retrieval_model_for(name: str, settings: RetrievalSettings):
    """The retrieval model, loaded for what `settings.mode` does with it.

    hybrid and attention read its attention weights (torch). prior only counts sentences in its
    tokens (the kept cap): a GGUF's vocabulary alone gives the same token ids as the torch model in
    ~0.1 s, with no torch import and no weights.
    """
    from lctk.models.loader import load_language_model
    from lctk.models.registry import GGUF, LM, resolve_model

    source = resolve_model(name, LM)
    if settings.mode == RetrievalMode.prior and source.fmt == GGUF:
        try:
            from lctk.models.llama_backend import LlamaLanguageModel

            return LlamaLanguageModel(source.path, source.model_id, vocab_only=True)
        except ImportError:  # no llama-cpp-python: the torch model counts the same tokens
            pass
    return load_language_model(name, "attention", "torch")[0]


def question_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The non-blank lines of a questions file, stripped, with their 1-based numbers (InputError if unreadable)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such questions file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read questions ({getattr(error, 'strerror', None) or error})") from None
    return [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]


def read_questions(path: str | os.PathLike) -> list[str]:
    """Questions from a file: one per line ('#' lines and blank lines skipped), or JSON lines with a "question"."""
    questions = []
    line: str | None  # a JSON line's "question" may be missing or not a string
    for number, line in question_lines(path):
        if line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                line = json.loads(line).get("question")
            except (ValueError, AttributeError):
                line = None
            if not isinstance(line, str) or not line.strip():
                raise InputError(f"{path}:{number}: a JSON line needs a non-empty \"question\" string")
        questions.append(line.strip())
    if not questions:
        raise InputError(f"{path}: no questions in the file")
    return questions


def prior_embedder(settings: RetrievalSettings):
    """The embedder of the prior's dense half (the `embed` role's model), or None when the mode has no prior."""
    if settings.mode == RetrievalMode.attention:
        return None
    from lctk.models.loader import load_embedder
    from lctk.models.registry import role_model

    return load_embedder(role_model("embed").value)


def rerank_embedder(embedder):
    """The full embedder that re-reads the prior's best sentences: the model a static `embedder` was
    distilled from, else `embedder` itself (None without one)."""
    if embedder is None:
        return None
    from lctk.models.loader import distilled_from

    full = distilled_from(getattr(embedder, "model_id", ""))
    return _loaded_embedder(full) if full else embedder


@functools.lru_cache(maxsize=2)
def _loaded_embedder(name: str):
    """One loaded copy per process: every document prepared (e.g. each eval task) shares it."""
    from lctk.models.loader import load_embedder

    return load_embedder(name)


@dataclass
class PreparedDocument:
    """A document split, counted and indexed once; any number of questions can then be asked of it."""
    document: Document
    sentences: list[Sentence]
    counts: list[int]  # retrieval-model tokens of each sentence
    windows: list[Window]
    prior: SentencePrior | None  # built on first use by a mode that needs it
    embedder: object | None = None
    split_s: float = 0.0
    reranker: ContextReranker | None = None  # built on first use, from `rerank_model` or the embedder's full model
    rerank_model: object | None = None

    def texts(self) -> list[str]:
        return [self.document.text[s.start : s.end] for s in self.sentences]

    def prior_scores(self, question: str):
        if self.prior is None:
            self.prior = SentencePrior(self.texts(), self.embedder)
        return self.prior.scores(question)

    def relevance(self, question: str, settings: RetrievalSettings):
        """The prior, its best `settings.rerank_sentences` re-read in context by the full embedder (when there is one)."""
        prior = self.prior_scores(question)
        if settings.rerank_sentences <= 0 or settings.rerank_weight <= 0:
            return prior
        if self.reranker is None:
            model = self.rerank_model if self.rerank_model is not None else rerank_embedder(self.embedder)
            if model is None:
                return prior
            self.rerank_model = model
            self.reranker = ContextReranker(self.texts(), model)
        return self.reranker.rescore(prior, question, settings.rerank_sentences, settings.rerank_weight)

    def evidence(self, kept: Iterable[int], scores: Iterable[float]) -> tuple[Evidence, ...]:
        text, sentences = self.document.text, self.sentences
        return tuple(
            Evidence(text[sentences[i].start : sentences[i].end], self.document.label_at(sentences[i].start),
                     sentences[i].start, sentences[i].end, round(score, 4))
            for i, score in zip(kept, scores)
        )


def prepare(document: Document, retriever: LanguageModel, settings: RetrievalSettings = RetrievalSettings(),
            embedder: Embedder | None = None, rerank_model: Embedder | None = None) -> PreparedDocument:
    """Split `document` into sentences, count them in `retriever`'s tokens and pack its windows.

    `embedder` is the prior's dense half; `rerank_model` the full embedder that re-reads the prior's
    best sentences (default: the model `embedder` was distilled from, loaded on first use)."""
    started = time.perf_counter()
    sentences = split_sentences(document.text)
    if not sentences:
        raise InputError(f"{document.name} has no sentences to read")
    count = lambda texts: [retriever.count_tokens(t) for t in texts]  # noqa: E731
    sentences, counts = fit_sentences(document.text, sentences, settings.window_tokens, count)
    windows = windows_of(counts, settings.window_tokens)
    return PreparedDocument(document, sentences, counts, windows, None, embedder, time.perf_counter() - started,
                            rerank_model=rerank_model)


def answer(
    document: Document | PreparedDocument,
    question: str,
    *,
    retriever: AttentionLanguageModel,
    answerer: LanguageModel,
    answer_backend: str = "",
    settings: RetrievalSettings = RetrievalSettings(),
    max_tokens: int = 256,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_window: Callable[[int, int, int], None] | None = None,
    on_piece: Callable[[str], None] | None = None,
    embedder: Embedder | None = None,
    check: bool = True,
) -> AskResult:
    """Find evidence for `question` (settings.mode), then answer with `answerer` (streamed to on_piece).

    `document` may be prepared once with `prepare(...)` and reused across questions; `embedder`
    gives the prior its dense half (lexical only without one).
    """
    if not question.strip():
        raise InputError("empty question; ask something")
    started = time.perf_counter()
    prepared = document if isinstance(document, PreparedDocument) else prepare(document, retriever, settings, embedder)
    windows_total, resumed = len(prepared.windows), 0
    retrieval_started = time.perf_counter()
    if settings.mode == RetrievalMode.attention:
        path = (checkpoint_path(checkpoint_dir, prepared.document, question, settings, retriever.model_id)
                if checkpoint_dir else None)
        with _checkpoint_lock(path):
            state, _, resumed = _retrieve_with_checkpoints(
                path, prepared.document, prepared.sentences, prepared.windows, question, retriever, settings, resume,
                on_window)
        kept, scores, tokens_read, windows_read = state.kept, state.scores, state.tokens_read, windows_total - resumed
    else:
        prior = prepared.relevance(question, settings)
        reader = retriever if settings.mode == RetrievalMode.hybrid else None
        selection = hybrid_select(reader, prepared.document.text, prepared.sentences, prepared.counts, prior,
                                  question, settings)
        kept, scores, tokens_read, windows_read = (selection.kept, selection.scores, selection.tokens_read,
                                                   selection.windows_read)
        if on_window is not None:
            on_window(windows_read, windows_read, tokens_read)
    retrieval_s = time.perf_counter() - retrieval_started
    evidence = prepared.evidence(kept, scores)
    answer_started = time.perf_counter()
    reply, _ = respond(answerer, best_evidence(evidence, settings.answer_sentences), question, max_tokens, on_piece,
                       check=check)
    answer_s = time.perf_counter() - answer_started
    split_s = prepared.split_s  # shared by every question asked of a prepared document
    return AskResult(
        answer=reply, evidence=evidence, windows=windows_read, windows_total=windows_total,
        tokens_read=tokens_read, tokens_kept=sum(prepared.counts[i] for i in kept),
        document_chars=len(prepared.document.text), document_tokens=sum(prepared.counts), mode=RetrievalMode(settings.mode).value,
        retrieval_model=retriever.model_id, answer_model=answerer.model_id,
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
