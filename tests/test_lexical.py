"""Identifier splitting and BM25."""

import numpy as np

from lctk.sources.lexical import BM25, identifier_tokens


def test_identifier_tokens_split_camel_and_snake_case():
    assert identifier_tokens("parseHTTPResponse") == ["parse", "http", "response"]
    assert identifier_tokens("parse_http_response(x2)") == ["parse", "http", "response"]  # 1-char parts dropped
    assert identifier_tokens("getURL2Path, __init__ 42") == ["get", "url", "path", "init"]


def test_bm25_prefers_documents_with_rare_query_terms():
    docs = [identifier_tokens(t) for t in ("def retry_with_backoff(fn): sleep(delay)", "def parse_date(s): return s", "def parse_time(s): return s")]
    scores = BM25(docs).scores(identifier_tokens("retry backoff"))
    assert int(np.argmax(scores)) == 0 and scores[1] == 0 == scores[2]
    scores = BM25(docs).scores(identifier_tokens("parse date"))
    assert scores[1] > scores[2] > scores[0]
    assert BM25([]).scores(["x"]).shape == (0,)
