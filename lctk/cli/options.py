"""Options shared by several commands, declared once."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from lctk.vocabulary import Backend


class OutputFormat(str, Enum):
    """How a command renders its result on stdout."""

    text = "text"
    json = "json"


ModelOption = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model alias (see `lctk models`), .gguf file or transformers directory. [env: LCTK_MODEL] [config: model]", show_default=False),
]
EmbedModelOption = Annotated[
    Optional[str],
    typer.Option("--embed-model", help="Embedding model alias or sentence-transformers directory. [env: LCTK_EMBED_MODEL] [config: embed_model]", show_default=False),
]
BackendOption = Annotated[
    Optional[Backend],
    typer.Option("--backend", "-b", help="auto, torch, llama or openai (a model server: see --base-url). [env: LCTK_BACKEND] [config: backend] [default: auto]", show_default=False, case_sensitive=False),
]
BaseUrlOption = Annotated[
    Optional[str],
    typer.Option("--base-url", help="An OpenAI-compatible model server (vLLM, SGLang, llama.cpp, ollama), e.g. http://localhost:8000/v1: generation, answers and compress scoring run there (API key from LCTK_API_KEY or OPENAI_API_KEY). [env: LCTK_BASE_URL] [config: base_url]", show_default=False),
]
ServedModelOption = Annotated[
    Optional[str],
    typer.Option("--served-model", help="The server's model to use. [env: LCTK_SERVED_MODEL] [config: served_model] [default: the server's only model]", show_default=False),
]
FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format on stdout.", case_sensitive=False),
]


def backend_value(flag: Backend | None) -> str:
    """Resolve --backend with LCTK_BACKEND, the config files and the default, validating what they say."""
    from lctk.config import ENV_BACKEND, resolve_setting
    from lctk.errors import UsageError

    setting = resolve_setting(flag.value if flag else None, ENV_BACKEND, "auto")
    value = (setting.value or "auto").lower()
    if value not in {b.value for b in Backend}:
        where = f"{ENV_BACKEND}={setting.value!r}" if setting.source.startswith("env ") else f"backend = {setting.value!r} in {setting.source.split(' ', 1)[1]}"
        raise UsageError(f"{where} is not a backend; use {', '.join(b.value for b in Backend)}")
    return value


def server_value(base_url: str | None, served_model: str | None, tokenizer: str | None = None):
    """The model server the flags, LCTK_* variables and config files name (a ServerTarget), or None."""
    from lctk.models.server import server_target

    return server_target(base_url, served_model, tokenizer)
