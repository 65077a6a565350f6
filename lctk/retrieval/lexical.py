"""Lexical relevance: identifier-aware tokens and Okapi BM25 (shared by compress and search)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

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


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def compound_identifiers(text: str) -> list[str]:
    """Whole identifiers of several parts, lower-cased (`parse_http_date` stays one term too)."""
    return [word.lower() for word in _IDENTIFIER.findall(text) if len(identifier_tokens(word)) > 1]


class BM25:
    """Okapi BM25 over pre-tokenized documents (k1 = 1.2, b = 0.75)."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self._counts = [Counter(doc) for doc in documents]
        self._lengths = np.array([len(doc) for doc in documents], dtype=np.float64)
        self._average = float(self._lengths.mean()) if len(documents) and self._lengths.sum() else 1.0
        document_frequency: Counter[str] = Counter()
        for counts in self._counts:
            document_frequency.update(counts.keys())
        n = len(documents)
        self._idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in document_frequency.items()}

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """Return float64 (n_documents,) BM25 scores of the query terms."""
        out = np.zeros(len(self._counts))
        norm = self.k1 * (1 - self.b + self.b * self._lengths / self._average)  # (n,)
        for term in set(query):
            idf = self._idf.get(term)
            if idf is None:
                continue
            tf = np.array([counts.get(term, 0) for counts in self._counts], dtype=np.float64)
            out += idf * tf * (self.k1 + 1) / (tf + norm)
        return out
