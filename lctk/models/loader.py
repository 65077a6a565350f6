"""Pick a backend per operation and load models: the one place the CLI gets models from."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lctk.errors import UsageError
from lctk.models import registry
from lctk.models.hardware import gpu_visible
from lctk.models.protocols import Embedder, LanguageModel
from lctk.models.server import ServerTarget, server_target
from lctk.vocabulary import Backend, parse_choice

log = logging.getLogger("lctk")


# What `auto` runs, per operation, measured by bench/backends.py (tables in BENCHMARKS.md).
# CPU: llama.cpp generates 4-6x faster, loads a GGUF in <1 s without the one-time conversion,
# and scores log-probs end to end (load + score) as fast as torch or faster.
CPU_AUTO = {"generate": "llama", "score": "llama", "attention": "torch"}
# GPU: transformers in bf16 on CUDA (llama-cpp-python from PyPI builds for the CPU).
GPU_AUTO = {"generate": "torch", "score": "torch", "attention": "torch"}


@dataclass(frozen=True)
class BackendChoice:
    """The backend an operation runs on and why."""

    backend: str
    reason: str


def choose_backend(requested: str, operation: str, fmt: str, gpu: bool | None = None) -> BackendChoice:
    """Resolve `--backend` (auto, torch or llama) for one operation on one model format."""
    requested = parse_choice(Backend, requested, "backend", UsageError).value
    if requested == "openai" and operation != "attention":
        raise UsageError("--backend openai needs a server: pass --base-url URL (or set LCTK_BASE_URL, or base_url in lctk.toml)")
    if operation == "attention":
        if requested == "llama":
            raise UsageError("attention-based retrieval runs only on the torch backend")
        return BackendChoice("torch", "attention is read from transformers (torch only)")
    if fmt == registry.HF:
        if requested == "llama":
            raise UsageError("a transformers model directory runs on --backend torch; pass a .gguf file for llama")
        return BackendChoice("torch", "a transformers model directory runs on torch")
    if requested != "auto":
        return BackendChoice(requested, f"--backend {requested}")
    gpu = gpu_visible() if gpu is None else gpu
    table = GPU_AUTO if gpu else CPU_AUTO
    where = "a CUDA GPU" if gpu else "CPU only"
    return BackendChoice(table[operation], f"auto: {operation} on {where} is fastest on {table[operation]}")


def load_language_model(
    name: str, operation: str, backend: str = "auto", context_tokens: int | None = None, *,
    server: ServerTarget | None = None, local_only: bool = False,
) -> tuple[LanguageModel, BackendChoice]:
    """Resolve `name` and load it on the backend chosen for `operation`.

    With backend auto or openai, a model server in effect (`server`, else LCTK_BASE_URL or base_url
    in a config file) runs the operation instead and `name` is not used: the server's model is
    `server.served_model` (or its only one). Attention never goes to a server (none returns it),
    and torch or llama always run here; `local_only` ignores any server (a tokenizer named by alias).
    """
    requested = parse_choice(Backend, backend, "backend", UsageError).value
    if requested in ("auto", "openai") and operation != "attention" and not local_only:
        target = server or server_target()
        if target is not None:
            from lctk.models.openai_backend import OpenAIServerModel

            log.debug("%s on the model server %s", operation, target.shown)
            return OpenAIServerModel(target), BackendChoice("openai", f"the model server {target.shown}")
    if requested == "openai" and (operation == "attention" or local_only):
        requested = "torch" if operation == "attention" else "auto"  # ask's retrieval reads attention weights, which stay local; its answer may go to the server
    source = registry.resolve_model(name, registry.LM)
    choice = choose_backend(requested, operation, source.fmt)
    log.debug("model %s (%s) on %s: %s", source.model_id, source.path, choice.backend, choice.reason)
    if choice.backend == "llama":
        from lctk.models.llama_backend import LlamaLanguageModel

        return LlamaLanguageModel(source.path, source.model_id, context_tokens), choice
    from lctk.models.torch_backend import TorchLanguageModel

    checkpoint = source.path
    if source.fmt == registry.GGUF:
        from lctk.models.convert import ensure_converted

        checkpoint = ensure_converted(source.path)
    return TorchLanguageModel(checkpoint, source.model_id), choice


def load_embedder(name: str) -> Embedder:
    """Resolve and load a sentence embedder (a static one is distilled on first use)."""
    source = registry.resolve_model(name, registry.EMBED)
    if source.fmt == registry.STATIC:
        from lctk.models.static import StaticEmbedder, ensure_static, is_static_folder

        folder = source.path if is_static_folder(source.path) else ensure_static(source.path, source.model_id)
        return StaticEmbedder(folder, source.model_id)
    from lctk.models import numpy_bert
    from lctk.models.embedder import TorchEmbedder

    if numpy_bert.supports(source.path):
        return SplitRuntimeEmbedder(source.path, source.model_id)
    return TorchEmbedder(source.path, source.model_id)


class SplitRuntimeEmbedder:
    """A BERT embedder that runs small batches in NumPy and large ones on torch (loaded lazily).

    Queries and reranking embed a few texts: NumPy answers in a fraction of the ~3 s that
    importing torch takes. Indexing embeds thousands: torch's kernels are ~2x faster there.
    Both give the same vectors (cosine 1.0000, tests/test_search.py).
    """

    # NumPy runs ~35 blocks/s here, torch ~70 after a ~3 s import: below ~200 texts NumPy is done first.
    SMALL_BEFORE_TORCH = 200
    SMALL_AFTER_TORCH = 16

    def __init__(self, folder, model_id: str):
        from lctk.models.numpy_bert import NumpyBertEmbedder

        self._folder = folder
        self._numpy = NumpyBertEmbedder(folder, model_id)
        self._torch = None
        self.model_id = model_id
        self.fingerprint = self._numpy.fingerprint
        self.dim = self._numpy.dim
        self.max_tokens = self._numpy.max_tokens
        self.count_tokens = self._numpy.count_tokens
        self.cut_text = self._numpy.cut_text

    def embed(self, texts):
        if len(texts) <= (self.SMALL_AFTER_TORCH if self._torch is not None else self.SMALL_BEFORE_TORCH):
            return self._numpy.embed(texts)
        if self._torch is None:
            from lctk.models.embedder import TorchEmbedder

            self._torch = TorchEmbedder(self._folder, self.model_id)
        return self._torch.embed(texts)


def distilled_from(name: str) -> str | None:
    """The full embedder a built-in static alias was distilled from (its reranker), else None."""
    alias = registry.find_alias(name)
    if alias is not None and alias.fmt == registry.STATIC:
        return alias.name.removesuffix("-static")
    return None
