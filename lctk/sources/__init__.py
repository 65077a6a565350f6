"""Sources shared by compress and search: language detection and syntax-tree chunking."""
