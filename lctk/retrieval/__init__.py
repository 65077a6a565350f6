"""Retrieval: SEA code search over an incremental index, lexical BM25, InfiniRetri question answering.

`lctk.retrieval.search(query, path=".", ...)` returns a tuple of frozen `SearchHit`s;
`lctk.retrieval.index(path)` builds or refreshes an index and returns `IndexStats`;
`lctk.retrieval.ask(path, question, ...)` returns a frozen `AskResult` (answer + cited evidence).
Submodules: units (split), store (the on-disk index), ranking (scores and fusion), lexical, api,
render, infiniretri (attention retrieval), qa (ask).
"""


def __getattr__(name: str):
    # Lazy: importing lctk.retrieval stays cheap for the CLI's start-up.
    if name in ("search", "index"):
        from lctk.retrieval import api

        return getattr(api, name)
    if name in ("ask", "AskResult", "Evidence"):
        from lctk.retrieval import qa

        return getattr(qa, name)
    raise AttributeError(name)
