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
    typer.Option("--backend", "-b", help="auto, torch or llama. [env: LCTK_BACKEND] [config: backend] [default: auto]", show_default=False, case_sensitive=False),
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
        raise UsageError(f"{where} is not a backend; use auto, torch or llama")
    return value
