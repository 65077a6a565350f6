"""Models layer: protocols, registry/resolution, torch and llama.cpp backends, embedder, fakes.

Nothing here imports torch, transformers or llama_cpp at import time.
"""
