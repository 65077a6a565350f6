"""Models kept loaded between calls: what a long-lived front end (`lctk mcp`'s tools, a `lctk batch` worker) holds.

`WarmModels` loads each model on first use and keeps it: the search embedders (the static index
model and the full model that re-scores its candidates; compress's candidate retriever and ask's
sentence prior use the same two), the scoring model, ask's attention and answer models, the score
cache, and the last few documents prepared for ask (split and counted once, while the file is
unchanged). Models are chosen exactly as the CLI chooses them (`role_model` with the same flag
value, `load_language_model` on the same backend), so a call over warm models gives what the
command gives.

Not thread-safe: one call at a time. The score cache is opened once per thread, because an SQLite
connection cannot move between threads (a Ray actor is built on one thread and runs its tasks on
another; a connection used there fails and the cache gives up, silently scoring everything again).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import cast

from lctk.ask.qa import PreparedDocument, prepare
from lctk.ask.settings import RetrievalSettings
from lctk.config import writable_cache_subdir
from lctk.documents.load import load_document
from lctk.errors import CacheError
from lctk.models.protocols import AttentionLanguageModel, Embedder, LanguageModel
from lctk.retrieval.api import load_search_embedder
from lctk.retrieval.candidates import CandidateRetriever
from lctk.score_cache import MemoryScoreCache, ScoreCache, open_score_cache

log = logging.getLogger("lctk")

MAX_PREPARED_DOCUMENTS = 4  # ask: documents kept split and counted, by path, size and mtime


class WarmModels:
    """Load-once models for compress, index, search and ask; see the module docstring.

    Args:
        model: the --model of compress (scoring) and ask (answers); None for the role's default.
        backend: the --backend value ("auto", "torch", ...), or a function that resolves it when
            a model first needs it (so a bad LCTK_BACKEND fails the call that uses it, not start-up).
        embed_model: the --embed-model of index and search; None for the default.
    """

    def __init__(self, *, model: str | None = None, backend: str | Callable[[], str] = "auto", embed_model: str | None = None) -> None:
        self.model, self.embed_model = model, embed_model
        self._backend = backend
        self._search_models: tuple[Embedder, Embedder | None] | None = None
        self._score_model: LanguageModel | None = None
        self._ask_models: tuple[AttentionLanguageModel, LanguageModel, str] | None = None
        self._caches: dict[int, ScoreCache | MemoryScoreCache] = {}  # by thread (see the module docstring)
        self._documents: OrderedDict[tuple[str, int, int], PreparedDocument] = OrderedDict()

    def backend(self) -> str:
        """The backend language models load on."""
        return self._backend() if callable(self._backend) else self._backend

    def search_models(self) -> tuple[Embedder, Embedder | None]:
        """The index embedder (flag/env/default) and the full model that re-scores a static index's candidates."""
        if self._search_models is None:
            from lctk.models.loader import load_embedder

            embedder, reranker_name = load_search_embedder(self.embed_model)
            self._search_models = (embedder, load_embedder(reranker_name) if reranker_name else None)
        return self._search_models

    def score_model(self) -> LanguageModel:
        """The model that scores chunks for compress (the `score` role, on the backend chosen for scoring)."""
        if self._score_model is None:
            from lctk.models.loader import load_language_model
            from lctk.models.registry import role_model

            self._score_model = load_language_model(role_model("score", self.model).value, "score", self.backend())[0]
        return self._score_model

    def score_cache(self) -> ScoreCache | MemoryScoreCache:
        """This thread's score cache in the cache directory (one in memory, with a warning, when it cannot be used)."""
        thread = threading.get_ident()
        if thread not in self._caches:
            self._caches[thread] = open_score_cache()
        return self._caches[thread]

    def candidate_retriever(self, cache: ScoreCache | MemoryScoreCache) -> CandidateRetriever | None:
        """Search's hybrid retriever over compress's chunks, on the search models; None (BM25 alone) without them."""
        try:
            embedder, reranker = self.search_models()
        except CacheError as exc:  # the static embedder lives in the cache directory
            log.warning("%s; choosing candidates by BM25 alone", exc)
            return None
        return CandidateRetriever(embedder, reranker, cache)

    def ask_models(self) -> tuple[AttentionLanguageModel, LanguageModel, str]:
        """ask's attention model (torch), its answer model and the answer model's backend."""
        if self._ask_models is None:
            from lctk.models.loader import load_language_model
            from lctk.models.registry import LM, resolve_model, role_model

            retrieval_name, answer_name = role_model("attention").value, role_model("answer", self.model).value
            for name in (retrieval_name, answer_name):  # a mistyped name fails before a model loads
                resolve_model(name, LM)
            retriever = cast(AttentionLanguageModel, load_language_model(retrieval_name, "attention", "torch")[0])
            answerer, choice = load_language_model(answer_name, "generate", self.backend())
            self._ask_models = (retriever, answerer, choice.backend)
        return self._ask_models

    def prepared(self, document: str, settings: RetrievalSettings) -> PreparedDocument:
        """The document split into sentences and counted, reused while the file is unchanged."""
        location = Path(document).expanduser()
        try:
            info = location.stat()
        except OSError:
            info = None  # load_document says what is wrong with it
        key = (str(location.resolve()), info.st_size, info.st_mtime_ns) if info is not None else None
        if key is not None and key in self._documents:
            self._documents.move_to_end(key)
            return self._documents[key]
        loaded = load_document(location, writable_cache_subdir("documents"))
        retriever, _, _ = self.ask_models()
        # the prior's dense half is the `embed` role's model, as in qa.prior_embedder, and its full model
        # re-reads the prior's best sentences; only modes with a prior use them
        embedder, full = self.search_models()
        prepared = prepare(loaded, retriever, settings, embedder, full)
        if key is not None:
            self._documents[key] = prepared
            while len(self._documents) > MAX_PREPARED_DOCUMENTS:
                self._documents.popitem(last=False)
        return prepared
