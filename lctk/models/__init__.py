"""Models layer: protocols, registry/resolution, torch and llama.cpp backends, embedders, fakes.

Nothing here imports torch, transformers or llama_cpp at import time.
"""

from lctk.exports import lazy_exports

_WHERE = {
    "LanguageModel": "protocols",
    "AttentionModel": "protocols",
    "AttentionLanguageModel": "protocols",
    "Embedder": "protocols",
    "TokenCounter": "protocols",
    "load_token_counter": "tokenizers",
    "load_language_model": "loader",
    "load_embedder": "loader",
    "choose_backend": "loader",
    "resolve_model": "registry",
    "role_model": "registry",
    "describe_models": "registry",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
