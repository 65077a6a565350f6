"""LongCodeZip compression at repository scale (chunking, scoring, selection)."""
