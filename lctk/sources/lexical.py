"""Lexical relevance: identifier-aware tokens, plain words and Okapi BM25 — the one BM25 of compress, search and ask."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def identifier_tokens(text: str) -> list[str]:
    """Split text into lower-case word parts: `parseHTTPResponse`, `parse_http_response` -> parse, http, response."""
    tokens = []
    for word in _WORD.findall(text):
        for part in _CAMEL.findall(word):
            if len(part) > 1 and not part.isdigit():
                tokens.append(part.lower())
    return tokens


_PLAIN_WORD = re.compile(r"[a-z0-9]+")


def plain_words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: the words of prose (identifiers are not split)."""
    return _PLAIN_WORD.findall(text.lower())


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def compound_identifiers(text: str) -> list[str]:
    """Whole identifiers of several parts, lower-cased (`parse_http_date` stays one term too)."""
    return [word.lower() for word in _IDENTIFIER.findall(text) if len(identifier_tokens(word)) > 1]


@dataclass(frozen=True)
class Postings:
    """Inverted lists of a document collection: the one input BM25 scores from."""

    vocab: Mapping[str, int]  # term -> term id
    offsets: np.ndarray  # (V + 1,) int: term t's postings are [offsets[t], offsets[t + 1])
    documents: np.ndarray  # (P,) int: the document of each posting
    tfs: np.ndarray  # (P,) float64: the term's count in that document
    lengths: np.ndarray  # (N,) float64: terms per document

    @classmethod
    def from_documents(cls, documents: Sequence[Sequence[str]]) -> Postings:
        """Postings of pre-tokenized documents."""
        vocab: dict[str, int] = {}
        terms, owners, tfs = [], [], []
        for number, document in enumerate(documents):
            for term, tf in Counter(document).items():
                terms.append(vocab.setdefault(term, len(vocab)))
                owners.append(number)
                tfs.append(tf)
        term_ids = np.array(terms, dtype=np.int64)
        order = np.argsort(term_ids, kind="stable")
        offsets = np.concatenate(([0], np.cumsum(np.bincount(term_ids, minlength=len(vocab))))).astype(np.int64)
        return cls(vocab, offsets, np.array(owners, dtype=np.int64)[order], np.array(tfs, dtype=np.float64)[order],
                   np.array([len(document) for document in documents], dtype=np.float64))


def bm25_scores(postings: Postings, query: Sequence[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Okapi BM25 of every document for the query terms: float64 (n_documents,)."""
    n = len(postings.lengths)
    scores = np.zeros(n)
    if not n:
        return scores
    average = float(postings.lengths.mean()) or 1.0
    norm = k1 * (1 - b + b * postings.lengths / average)  # (n,)
    for term in set(query):
        term_id = postings.vocab.get(term)
        if term_id is None:
            continue
        start, end = int(postings.offsets[term_id]), int(postings.offsets[term_id + 1])
        if start == end:
            continue
        documents, tfs = postings.documents[start:end], postings.tfs[start:end]
        idf = math.log(1 + (n - (end - start) + 0.5) / ((end - start) + 0.5))
        scores[documents] += idf * tfs * (k1 + 1) / (tfs + norm[documents])
    return scores


class BM25:
    """Okapi BM25 over pre-tokenized documents (k1 = 1.2, b = 0.75)."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.postings = Postings.from_documents(documents)

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """Return float64 (n_documents,) BM25 scores of the query terms."""
        return bm25_scores(self.postings, query, self.k1, self.b)
