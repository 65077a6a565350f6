"""Question relevance of every sentence of a document, before any language model reads it.

Two cheap signals over the whole document, fused: Okapi BM25 over stemmed content words, and the
cosine between the question's and the sentence's embeddings (a static embedder: a tokenizer pass
and a sum of rows, thousands of sentences a second). A sentence is scored together with its
neighbours (`NEIGHBOUR_WEIGHT` of the better neighbour is added), because the subject of a real
sentence is often named in the one before it ("This field ..."). The prior is built once per
document (`SentencePrior`) and answers any number of questions.

`ContextReranker` then re-reads the prior's best sentences with the full sentence embedder, each
inside its neighbours ("previous + sentence + next"), and adds their cosine to the question: a
static embedder sums word vectors, so "They must be at least two characters long" does not match
"How short may a package name be?"; the full model over the window that names "package names" does.

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
RERANK_SPAN = (1, 1)  # sentences before and after each re-read sentence in its window (bench/ask_questions.py --ablation)

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


class ContextReranker:
    """Re-scores a prior's best sentences with a full sentence embedder, each read with its neighbours.

    A sentence's window is the `span` sentences before it, the sentence and those after it, joined.
    Window vectors do not depend on the question, so each is embedded once per document and reused
    by every later question.

    Args:
        texts: the sentences, in document order (the prior's).
        embedder: an `Embedder` with L2-normalised vectors (the full model the prior's static one
            was distilled from, by default).
        span: (sentences before, sentences after) in each window.
    """

    def __init__(self, texts: Sequence[str], embedder, span: tuple[int, int] = RERANK_SPAN):
        self._texts, self._embedder, self._span = texts, embedder, span
        self._vectors: dict[int, np.ndarray] = {}

    def window(self, index: int) -> str:
        """The sentence at `index` with its neighbours, whitespace collapsed."""
        before, after = self._span
        lo, hi = max(0, index - before), min(len(self._texts), index + 1 + after)
        return " ".join(" ".join(text.split()) for text in self._texts[lo:hi])

    def vectors(self, indexes: Sequence[int]) -> np.ndarray:
        """Window vectors of the sentences at `indexes`, (len(indexes), d); new ones embedded in one call."""
        missing = [i for i in dict.fromkeys(indexes) if i not in self._vectors]
        if missing:
            for i, vector in zip(missing, self._embedder.embed([self.window(i) for i in missing])):
                self._vectors[i] = vector
        return np.stack([self._vectors[i] for i in indexes])

    def rescore(self, prior: np.ndarray, question: str, top: int, weight: float) -> np.ndarray:
        """prior / best prior, plus `weight` x the window cosine (min-max scaled to 0..1) of the `top` best.

        Sentences outside the `top` keep prior / best prior; with `top` 0 or no positive prior the
        prior comes back as it was.
        """
        best_prior = float(prior.max()) if len(prior) else 0.0
        if top <= 0 or best_prior <= 0:
            return prior
        best = [int(i) for i in np.argsort(-prior, kind="stable")[:top] if prior[i] > 0]
        query = self._embedder.embed([question])[0].astype(np.float64)
        cosine = self.vectors(best).astype(np.float64) @ query
        out = prior.astype(np.float64) / best_prior
        out[best] += weight * _scaled(cosine, floor=float(cosine.min()))  # min-max; all equal: no change
        return out
