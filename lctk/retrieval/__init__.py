"""Retrieval: SEA code search over an incremental index, lexical BM25 (InfiniRetri later).

`lctk.retrieval.search(query, path=".", ...)` returns a tuple of frozen `SearchHit`s;
`lctk.retrieval.index(path)` builds or refreshes an index and returns `IndexStats`.
Submodules: units (split), store (the on-disk index), ranking (scores and fusion), lexical, api, render.
"""


def __getattr__(name: str):
    # Lazy: importing lctk.retrieval stays cheap for the CLI's start-up.
    if name in ("search", "index"):
        from lctk.retrieval import api

        return getattr(api, name)
    raise AttributeError(name)
