"""The candidate retriever compress shares with search: BM25 fused with a static embedder, the head
re-scored by the full one (fake embedders: meaning by construction, no model files)."""

import re

import numpy as np

from lctk.compress.api import compress
from lctk.models.fake import FakeEmbedder, FakeLanguageModel
from lctk.retrieval.candidates import CandidateRetriever, CandidateText
from lctk.score_cache import MemoryScoreCache
from lctk.sources.text import SourceText

SYNONYMS = {"delete": "remove", "erase": "remove", "records": "rows", "entries": "rows"}


class SynonymEmbedder(FakeEmbedder):
    """Words mapped to one meaning before hashing: what a real embedder does and BM25 cannot."""

    def embed(self, texts):
        return super().embed([" ".join(SYNONYMS.get(w, w) for w in re.findall(r"\w+", t.lower())) for t in texts])


def corpus() -> list[CandidateText]:
    target = CandidateText("store/table.py", "purge", "def purge(rows, key):\n    for row in list(rows):\n        if row.key == key:\n            rows.remove(row)\n")
    noise = [CandidateText(f"util/m{i}.py", f"helper{i}", f"def helper{i}(items):\n    # count the records in a batch of items quickly\n    return len(items) + {i}\n")
             for i in range(12)]
    return [*noise, target]


def test_hybrid_retrieval_finds_the_chunk_bm25_ranks_low():
    chunks = corpus()
    query = "erase records"
    lexical = CandidateRetriever().rank(query, chunks)
    hybrid = CandidateRetriever(SynonymEmbedder()).rank(query, chunks)
    target = len(chunks) - 1
    assert list(lexical.order).index(target) >= 4  # every helper says "records", the target neither word
    assert hybrid.order[0] == target
    np.testing.assert_allclose(hybrid.lexical, lexical.lexical)  # the BM25 part is the same


def test_the_full_embedder_rescores_only_the_head_and_its_vectors_are_cached():
    chunks = corpus()
    full = SynonymEmbedder(model_id="full")
    retriever = CandidateRetriever(FakeEmbedder(), full, MemoryScoreCache(), rerank=4)
    first = retriever.rank("erase records", chunks)
    assert first.rescored == 4 and full.embedded == 4 + 1  # four chunks and the query
    head = set(first.order[:4].tolist())
    assert all(first.scores[i] > first.scores[j] for i in head for j in range(len(chunks)) if j not in head)
    retriever.rank("erase records", chunks)
    assert full.embedded == 4 + 2  # the second ranking embeds only the query


def test_compress_scores_exactly_the_retrievers_candidates():
    sources = [SourceText(c.path, "python", c.text) for c in corpus()]
    retriever = CandidateRetriever(SynonymEmbedder())
    result = compress(sources, FakeLanguageModel(), query="erase records", budget_tokens=60,
                      candidates=3, retriever=retriever)
    scored = {u.symbol for u in result.units if u.scored_by == "ami"}
    assert len(scored) == 3 and "purge" in scored  # BM25 alone would not have shown it to the model
    assert {u.scored_by for u in result.units} == {"ami", "retrieval"}
    lexical = compress(sources, FakeLanguageModel(), query="erase records", budget_tokens=60, candidates=3)
    assert "purge" not in {u.symbol for u in lexical.units if u.scored_by == "ami"}


def test_the_cli_default_candidate_count_is_the_library_default():
    from lctk.cli.commands import compress as command
    from lctk.compress import api

    assert command.DEFAULT_CANDIDATES == api.DEFAULT_CANDIDATES
