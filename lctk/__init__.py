"""lctk: long-context work on local models — compress, search, ask, generate."""

__version__ = "0.1.0"
__all__ = ["__version__"]
