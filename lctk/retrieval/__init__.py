"""Code search: SEA split-encode-aggregate over an incremental on-disk index, fused with BM25.

`CodeIndex.open(path)` refreshes (or builds) the index that covers PATH; `.search(query, k=...)`
returns frozen `SearchHit`s, best first. `index(path)` and `search(query, path)` are one-call
conveniences. Submodules: units (split), store (the on-disk index), indexer (build/refresh),
ranking (scores and fusion), candidates (compress's first stage), api (CodeIndex).
"""

from lctk.exports import lazy_exports

_WHERE = {
    "CodeIndex": "api",
    "WarmStats": "api",
    "index": "api",
    "search": "api",
    "Filters": "ranking",
    "SearchHit": "ranking",
    "IndexStats": "store",
    "CandidateRetriever": "candidates",
    "default_retriever": "candidates",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
