"""Question relevance of every sentence of a document, before any language model reads it.

Two cheap signals over the whole document, fused: Okapi BM25 over stemmed content words, and the
cosine between the question's and the sentence's embeddings (a static embedder: a tokenizer pass
and a sum of rows, thousands of sentences a second). A sentence is scored together with its
neighbours (`NEIGHBOUR_WEIGHT` of the better neighbour is added), because the subject of a real
sentence is often named in the one before it ("This field ..."). The prior is built once per
document (`SentencePrior`) and answers any number of questions.

bench/ask.py measured why it exists: on real questions over real manuals the attention of a
sub-1B model alone kept the answer sentence for a small minority of questions, while BM25 over
sentences ranked it near the top for almost all.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import cast

import numpy as np

from lctk.sources.lexical import BM25, plain_words

# Weights tuned on the dev half of bench/data/ask-questions.jsonl (bench/ask.py --questions).
NEIGHBOUR_WEIGHT = 0.35  # share of the better neighbour's score added to a sentence's own
DENSE_WEIGHT = 0.3  # weight of the dense cosine in the fused prior (lexical gets the rest)

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves shall may might must
    also one ever get got use used using said says say tell whats""".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def content_terms(text: str) -> list[str]:
    """Lower-case stemmed words of `text`, function words dropped (`Uploading files` -> upload, file)."""
    words = [w for w in plain_words(text) if w not in STOPWORDS]
    return [_stem(w) for w in words]


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return word if word.isdigit() else _stemmer().stemWord(word)


class SentencePrior:
    """Lexical and dense relevance of a fixed list of sentences to any question.

    Args:
        texts: the sentences, in document order.
        embedder: an `Embedder` (L2-normalised vectors), or None for lexical only.
        dense_weight, neighbour_weight: the fusion weights (bench/ask_questions.py varies them).
    """

    def __init__(self, texts: Sequence[str], embedder=None, *, dense_weight: float = DENSE_WEIGHT,
                 neighbour_weight: float = NEIGHBOUR_WEIGHT):
        self.size = len(texts)
        self.dense_weight, self.neighbour_weight = dense_weight, neighbour_weight
        self._bm25 = BM25([content_terms(t) for t in texts])
        self._embedder = embedder
        self._vectors = embedder.embed(list(texts)) if embedder is not None and texts else None  # (n, d)

    def lexical(self, question: str) -> np.ndarray:
        """BM25 of each sentence, float64 (n,)."""
        return self._bm25.scores(content_terms(question))

    def dense(self, question: str) -> np.ndarray | None:
        """Cosine of each sentence to the question, float64 (n,), or None without an embedder."""
        if self._vectors is None:
            return None
        query = self._embedder.embed([question])[0]  # (d,)
        return self._vectors.astype(np.float64) @ query.astype(np.float64)

    def scores(self, question: str) -> np.ndarray:
        """Fused relevance in [0, ~1.35] of each sentence, neighbours included, float64 (n,)."""
        dense = self.dense(question)
        weight = self.dense_weight if dense is not None else 0.0
        fused = (1.0 - weight) * _scaled(self.lexical(question))
        if weight > 0:
            dense = cast(np.ndarray, dense)  # weight > 0 only with dense scores
            fused = fused + weight * _scaled(dense, floor=float(np.median(dense)))
        return with_neighbours(fused, self.neighbour_weight)


def _scaled(values: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Map `floor`..max onto 0..1 (values under the floor become 0)."""
    top = float(values.max()) if len(values) else 0.0
    if top <= floor:
        return np.zeros_like(values, dtype=np.float64)
    return np.clip((values - floor) / (top - floor), 0.0, None)


def with_neighbours(scores: np.ndarray, weight: float) -> np.ndarray:
    """Add `weight` x the better of each sentence's two neighbours' scores."""
    if len(scores) < 2 or weight == 0:
        return scores.astype(np.float64)
    before = np.concatenate(([0.0], scores[:-1]))
    after = np.concatenate((scores[1:], [0.0]))
    return scores + weight * np.maximum(before, after)
