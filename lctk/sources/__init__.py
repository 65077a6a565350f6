"""Sources shared by compress and search: walking a tree, languages, syntax-tree chunking, secrets, BM25.
"""

from lctk.exports import lazy_exports

_WHERE = {
    "SourceText": "text",
    "walk_sources": "walk",
    "gather_sources": "walk",
    "SkippedFile": "walk",
    "language_for_path": "languages",
    "chunk_text": "chunking",
    "BM25": "lexical",
    "identifier_tokens": "lexical",
    "redact_text": "secrets",
    "checkout": "remote",
    "is_remote": "remote",
    "load_diff": "gitdiff",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
