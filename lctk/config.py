"""Settings with one precedence rule: flag > LCTK_* environment variable > default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from lctk.errors import CacheError

ENV_CACHE_DIR = "LCTK_CACHE_DIR"
ENV_MODEL = "LCTK_MODEL"
ENV_EMBED_MODEL = "LCTK_EMBED_MODEL"
ENV_BACKEND = "LCTK_BACKEND"

_Value = TypeVar("_Value", bound="str | None")


@dataclass(frozen=True)
class Setting(Generic[_Value]):
    """A resolved setting and where its value came from (flag, env or default)."""

    value: _Value  # str | None; str where the default is a str
    source: str


def resolve_setting(flag_value: str | None, env_name: str, default: _Value) -> Setting[str | _Value]:
    """Apply the precedence rule to one setting."""
    if flag_value is not None and flag_value != "":
        return Setting(flag_value, "flag")
    env_value = os.environ.get(env_name, "").strip()
    if env_value:
        return Setting(env_value, f"env {env_name}")
    return Setting(default, "default")


def cache_dir() -> Path:
    """Return the cache directory (LCTK_CACHE_DIR, else the platform user cache dir)."""
    configured = os.environ.get(ENV_CACHE_DIR, "").strip()
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lctk", appauthor=False))


def writable_cache_subdir(name: str) -> Path:
    """Create and return `cache_dir()/name`, or raise CacheError saying how to fix it."""
    path = cache_dir() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(
            f"cache directory {path} cannot be created ({exc.strerror or exc}); "
            f"set {ENV_CACHE_DIR} to a writable directory"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CacheError(
            f"cache directory {path} is not writable; set {ENV_CACHE_DIR} to a writable directory"
        )
    return path
