"""Retrieval: SEA code search, lexical BM25, on-disk index, InfiniRetri, documents."""
