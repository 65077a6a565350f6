"""Candidate retrieval over code chunks for a query: search's hybrid ranking, for compress.

compress asks a language model to score only a few chunks (AMI is the expensive part), so the
chunks it shows the model must already contain the one the task needs. This is the same
ranking `lctk search` runs over an index, applied to chunks in memory:

1. every chunk: BM25 over identifier parts (its code, its symbol twice and its path; the
   query's identifier parts and whole compound identifiers), fused with the cosine of the
   static embedder (the index's model), by search's normalised blend with its stage-one weight;
2. the best `rerank` of those: re-scored with the full embedder the static one was distilled
   from, over the chunk's header (path and symbol) and head, fused with BM25 by search's
   weights. Vectors are cached by content hash, so a second compress of the same code embeds
   nothing.

Measured on bench/compress.py's needle tasks (docstring summary -> function, 6 packages):
the needle is among the top 32 for 57% of tasks with BM25 alone, 57% static hybrid, 87% after
the full-model re-score; see BENCHMARKS.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lctk.retrieval.indexer import unit_tokens
from lctk.retrieval.ranking import DENSE_WEIGHT, STAGE_ONE_DENSE_WEIGHT, SYMBOL_DENSE_WEIGHT, fuse, is_symbol_query, query_tokens
from lctk.retrieval.units import embedded_text
from lctk.score_cache import content_hash
from lctk.sources.lexical import BM25

RERANK_CHUNKS = 128  # chunks re-scored by the full embedder: static hybrid recall@128 was 90%, and up to
# ~200 texts the full model runs in NumPy, without importing torch (models.loader.SplitRuntimeEmbedder)
VECTOR_KIND = "chunk-vector"


@dataclass(frozen=True)
class CandidateText:
    """What the retriever reads of one chunk: its file path, symbol and code."""

    path: str
    symbol: str
    text: str


@dataclass(frozen=True)
class Ranking:
    """Scores of every chunk (higher is better) and their order, best first."""

    scores: np.ndarray  # float64 (n,), comparable within one ranking only
    order: np.ndarray  # int64 (n,), indexes into the chunks
    lexical: np.ndarray  # BM25 of each chunk
    rescored: int  # how many chunks the full embedder re-scored


class CandidateRetriever:
    """Hybrid BM25 + dense ranking of chunks; `embedder` is static (fast), `reranker` full (or None).

    Either embedder may be None: without both the ranking is BM25 alone.
    """

    def __init__(self, embedder=None, reranker=None, cache=None, rerank: int = RERANK_CHUNKS):
        self.embedder = embedder
        self.reranker = reranker
        self.cache = cache
        self.rerank = rerank

    @property
    def description(self) -> str:
        names = [m.model_id for m in (self.embedder, self.reranker) if m is not None]
        return "bm25 + " + " > ".join(names) if names else "bm25"

    def rank(self, query: str, chunks: Sequence[CandidateText]) -> Ranking:
        n = len(chunks)
        lexical = BM25([unit_tokens(c.text, c.path, c.symbol) for c in chunks]).scores(query_tokens(query)) if n else np.zeros(0)
        symbol = is_symbol_query(query)
        if not n or (self.embedder is None and self.reranker is None):
            return _ranking(lexical, lexical, 0)
        texts = [embedded_text(f"{c.path} {c.symbol}".strip(), c.text) for c in chunks]
        first = self.embedder if self.embedder is not None else self.reranker
        dense = self._cosines(first, query, texts, cached=first is self.reranker)
        stage_weight = SYMBOL_DENSE_WEIGHT if symbol else (STAGE_ONE_DENSE_WEIGHT if self.reranker is not None else DENSE_WEIGHT)
        scores = fuse(dense, lexical, stage_weight, "blend")
        if self.reranker is None or first is self.reranker or self.rerank <= 0:
            return _ranking(scores, lexical, 0)
        order = np.argsort(-scores, kind="stable")
        head = order[: self.rerank]
        full = self._cosines(self.reranker, query, [texts[i] for i in head], cached=True)
        head_scores = fuse(full, lexical[head], SYMBOL_DENSE_WEIGHT if symbol else DENSE_WEIGHT, "blend")
        # the re-scored head keeps its place above the rest (its order is the better one), as in search
        scores = scores.copy()
        base = float(scores.max()) + 1.0
        scores[head] = base + head_scores
        return _ranking(scores, lexical, len(head))

    def _cosines(self, model, query: str, texts: list[str], cached: bool) -> np.ndarray:
        # static vectors cost less to recompute than to read back; full-model ones are cached
        vectors = self._vectors(model, texts, self.cache if cached else None)
        return vectors @ np.asarray(model.embed([query])[0], dtype=np.float32)

    @staticmethod
    def _vectors(model, texts: list[str], cache) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(model, "dim", 1)), dtype=np.float32)
        name = f"{model.model_id}:{getattr(model, 'fingerprint', '')}"
        keys = [(content_hash(t), "") for t in texts]
        cached = cache.get_many(name, VECTOR_KIND, set(keys)) if cache is not None else {}
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in cached}.items())
        if missing:
            fresh = model.embed([t for _, t in missing])
            new = {k: np.asarray(v, dtype=np.float32) for (k, _), v in zip(missing, fresh)}
            cached.update(new)
            if cache is not None:
                cache.put_many(name, VECTOR_KIND, new)
        return np.stack([np.asarray(cached[k], dtype=np.float32) for k in keys])


def _ranking(scores: np.ndarray, lexical: np.ndarray, rescored: int) -> Ranking:
    return Ranking(scores, np.argsort(-scores, kind="stable"), lexical, rescored)


def default_retriever(cache=None, embed_model: str | None = None) -> CandidateRetriever:
    """Search's embedders (the index's static model and the full model it was distilled from)."""
    from lctk.models.loader import distilled_from, load_embedder
    from lctk.models.registry import role_model

    chosen = role_model("embed", embed_model).value
    embedder = load_embedder(chosen)
    full_name = distilled_from(embedder.model_id)
    reranker = load_embedder(full_name) if full_name else None
    return CandidateRetriever(embedder, reranker, cache)
