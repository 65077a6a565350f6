"""Settings with one precedence rule: flag > LCTK_* environment variable > project file > user file > default.

Config files are TOML; their keys are the settings' names in snake_case (see SETTINGS):

    project  the nearest `lctk.toml` (top-level keys) or `pyproject.toml` with a `[tool.lctk]` table,
             looking in the current directory, then in each parent. The search stops after the
             directory that holds `.git` (the repository root; a `.git` file, as in a worktree,
             counts too) or at the filesystem root. In one directory `lctk.toml` wins over
             `pyproject.toml`; a `pyproject.toml` without `[tool.lctk]` is skipped and the search
             goes on upward.
    user     `config.toml` in the platform config directory (`~/.config/lctk/config.toml` on Linux),
             or the file $LCTK_CONFIG names (a missing file is no file: tests point it nowhere).

Each key is resolved on its own, so a project file may set `model` while the user file sets
`cache_dir`. Files are read only when a setting is first resolved (`lctk --help` reads none) and
parsed once per process. Path settings (`cache_dir`, `index_dir`) expand `~`, and a relative path
in a file is relative to that file's directory. An empty string counts as unset, as an empty
environment variable does. An unknown key is a warning naming `file:line`; a malformed file or a
value that is not a string is a UsageError naming the file and key.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from lctk.errors import CacheError, UsageError

log = logging.getLogger(__name__)

ENV_MODEL = "LCTK_MODEL"
ENV_EMBED_MODEL = "LCTK_EMBED_MODEL"
ENV_BACKEND = "LCTK_BACKEND"
ENV_CACHE_DIR = "LCTK_CACHE_DIR"
ENV_INDEX_DIR = "LCTK_INDEX_DIR"
ENV_CONFIG = "LCTK_CONFIG"  # the user config file, instead of the platform one
ENV_BASE_URL = "LCTK_BASE_URL"  # an OpenAI-compatible model server (lctk.models.server)
ENV_SERVED_MODEL = "LCTK_SERVED_MODEL"
ENV_SERVER_TOKENIZER = "LCTK_SERVER_TOKENIZER"

PROJECT_FILE = "lctk.toml"
PYPROJECT_FILE = "pyproject.toml"
PYPROJECT_TABLE = ("tool", "lctk")
USER_FILE = "config.toml"
PROJECT, USER = "project", "user"

_Value = TypeVar("_Value", bound="str | None")
_Value_co = TypeVar("_Value_co", bound="str | None", covariant=True)  # a Setting[str] is a Setting[str | None]


@dataclass(frozen=True)
class SettingSpec:
    """A setting that a flag, the environment or a config file can set."""

    key: str  # its name in a config file
    env: str
    is_path: bool  # `~` expanded; relative in a file means relative to the file's directory
    default: str | None  # None: the caller decides (per-role models, the platform cache dir, ...)
    default_help: str  # what applies when nothing sets it, in words


SETTINGS = (
    SettingSpec("model", ENV_MODEL, False, None, "each role's built-in model; see `lctk models`"),
    SettingSpec("embed_model", ENV_EMBED_MODEL, False, None, "the built-in embedder; see `lctk models`"),
    SettingSpec("backend", ENV_BACKEND, False, "auto", "auto: the fastest backend measured for each operation"),
    SettingSpec("cache_dir", ENV_CACHE_DIR, True, None, "the platform user cache directory"),
    SettingSpec("index_dir", ENV_INDEX_DIR, True, None, "<root>/.lctk/index inside each indexed tree"),
    SettingSpec("base_url", ENV_BASE_URL, False, None, "none: models run in this process"),
    SettingSpec("served_model", ENV_SERVED_MODEL, False, None, "the server's only model"),
    SettingSpec("server_tokenizer", ENV_SERVER_TOKENIZER, True, None, "the served model's file if it is on this machine, else the server's tokenize route"),
)
KNOWN_KEYS = tuple(sorted(spec.key for spec in SETTINGS))
_SPEC_BY_ENV = {spec.env: spec for spec in SETTINGS}
_SPEC_BY_KEY = {spec.key: spec for spec in SETTINGS}


@dataclass(frozen=True)
class Setting(Generic[_Value_co]):
    """A resolved setting and where its value came from.

    `source` is "flag", "env LCTK_X", "project /path/lctk.toml", "user /path/config.toml" or "default".
    """

    value: _Value_co  # str | None; str where the default is a str
    source: str


@dataclass(frozen=True)
class ConfigFile:
    """One config file's settings: known keys only, validated; path values absolute."""

    scope: str  # PROJECT or USER
    path: Path
    values: Mapping[str, str]


def resolve_setting(flag_value: str | None, env_name: str, default: _Value) -> Setting[str | _Value]:
    """Apply the precedence rule to one setting (one not in SETTINGS skips the config files)."""
    if flag_value is not None and flag_value != "":
        return Setting(flag_value, "flag")
    env_value = os.environ.get(env_name, "").strip()
    if env_value:
        return Setting(env_value, f"env {env_name}")
    spec = _SPEC_BY_ENV.get(env_name)
    if spec is not None:
        for config in config_files():
            value = config.values.get(spec.key)
            if value is not None:
                return Setting(value, f"{config.scope} {config.path}")
    return Setting(default, "default")


def settings_in_effect(flags: Mapping[str, str | None]) -> dict[str, Setting[str | None]]:
    """Resolve every setting in SETTINGS, given the flag values by key (for `lctk doctor`)."""
    resolved: dict[str, Setting[str | None]] = {}
    for spec in SETTINGS:
        if spec.key == "cache_dir":
            resolved[spec.key] = cache_dir_setting()
        else:
            resolved[spec.key] = resolve_setting(flags.get(spec.key), spec.env, spec.default)
    return resolved


# ---------------------------------------------------------------- directories


def cache_dir_setting() -> Setting[str]:
    """The cache directory setting, the platform user cache dir by default."""
    setting = resolve_setting(None, ENV_CACHE_DIR, None)
    if setting.value is not None:
        return Setting(str(Path(setting.value).expanduser()), setting.source)
    from platformdirs import user_cache_dir

    return Setting(user_cache_dir("lctk", appauthor=False), "default")


def cache_dir() -> Path:
    """Return the cache directory (cache_dir setting, else the platform user cache dir)."""
    return Path(cache_dir_setting().value)


def index_dir() -> Path | None:
    """Return the directory that holds every index (index_dir setting), or None: each tree's own .lctk."""
    setting = resolve_setting(None, ENV_INDEX_DIR, None)
    return Path(setting.value).expanduser() if setting.value is not None else None


def cache_dir_fix(setting: Setting[str]) -> str:
    """How to point the cache somewhere writable, naming the config file that chose it, if one did."""
    fix = f"set {ENV_CACHE_DIR} to a writable directory"
    if setting.source.startswith((f"{PROJECT} ", f"{USER} ")):
        return f"change cache_dir in {setting.source.split(' ', 1)[1]} or {fix}"
    return fix


def writable_cache_subdir(name: str) -> Path:
    """Create and return `cache_dir()/name`, or raise CacheError saying how to fix it."""
    setting = cache_dir_setting()
    path, fix = Path(setting.value) / name, cache_dir_fix(setting)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cache directory {path} cannot be created ({exc.strerror or exc}); {fix}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CacheError(f"cache directory {path} is not writable; {fix}")
    return path


# ---------------------------------------------------------------- config files


def config_files() -> tuple[ConfigFile, ...]:
    """The config files in effect, highest precedence first (project, then user)."""
    found = []
    start = _current_directory()
    project = _find_project_file(start) if start is not None else None
    if project is not None:
        found.append(project)
    user = user_config_path()
    if user.is_file():
        loaded = _load(user, USER, ())
        if loaded is not None:
            found.append(loaded)
    return tuple(found)


def project_config_path() -> Path | None:
    """The project config file in effect for the current directory, or None."""
    start = _current_directory()
    project = _find_project_file(start) if start is not None else None
    return project.path if project is not None else None


def user_config_path() -> Path:
    """Where the user config file is (whether or not it exists): $LCTK_CONFIG or the platform one."""
    configured = os.environ.get(ENV_CONFIG, "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    from platformdirs import user_config_dir

    return Path(user_config_dir("lctk", appauthor=False)) / USER_FILE


def forget_config_files() -> None:
    """Drop the parsed files, so the next resolution reads them again (tests edit files in place)."""
    _find_project_file.cache_clear()
    _load.cache_clear()


def _current_directory() -> Path | None:
    try:
        return Path.cwd()
    except OSError:  # the working directory was deleted under us: no project to find
        return None


@functools.cache
def _find_project_file(start: Path) -> ConfigFile | None:
    for directory in (start, *start.parents):
        if (directory / PROJECT_FILE).is_file():
            return _load(directory / PROJECT_FILE, PROJECT, ())
        if (directory / PYPROJECT_FILE).is_file():
            loaded = _load(directory / PYPROJECT_FILE, PROJECT, PYPROJECT_TABLE)
            if loaded is not None:
                return loaded
        if (directory / ".git").exists():
            return None
    return None


@functools.cache
def _load(path: Path, scope: str, table: tuple[str, ...]) -> ConfigFile | None:
    """Parse one file (memoised: once per process); None for a pyproject.toml without the table."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: config file is not UTF-8 text (invalid byte at offset {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    if table and table[-1] not in text:  # a pyproject.toml that never says "lctk" is someone else's: not parsed
        return None
    data: Any = _parse_toml(path, text)
    for depth, part in enumerate(table):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
        if depth == len(table) - 1 and not isinstance(data, dict):
            raise UsageError(f"{_where(path, text, table[:-1], part)}: [{'.'.join(table)}] must be a table of settings")
    return ConfigFile(scope, path, _validated(path, text, table, data))


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def _validated(path: Path, text: str, table: tuple[str, ...], data: dict[str, Any]) -> dict[str, str]:
    values = {}
    for key, value in data.items():
        spec = _SPEC_BY_KEY.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            log.warning("%s: unknown setting %r%s (known: %s)", _where(path, text, table, key), key, hint, ", ".join(KNOWN_KEYS))
            continue
        if not isinstance(value, str):
            raise UsageError(f"{_where(path, text, table, key)}: setting '{key}' must be a string, not {_toml_type(value)}")
        value = value.strip()
        if not value:
            continue
        if spec.is_path:
            given = Path(value).expanduser()
            value = str(given if given.is_absolute() else path.parent / given)
        values[key] = value
    return values


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


# TOML parsers give no line numbers, so a key's line is found by scanning the text: table headers
# (`[a.b]`, `[[a.b]]`) set the current table, and `key =` / `key.sub =` lines belong to it.
_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*[=.]""")


def _where(path: Path, text: str, table: tuple[str, ...], key: str) -> str:
    """`path:line` of `key` in `table`, or just the path when the line cannot be found."""
    line = _key_line(text, table, key)
    return f"{path}:{line}" if line is not None else str(path)


def _key_line(text: str, table: tuple[str, ...], key: str) -> int | None:
    current: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            current = tuple(part.strip().strip("\"'") for part in header.group(1).split("."))
            if current[: len(table) + 1] == (*table, key):  # [key], [key.sub] or [tool.lctk.key]
                return number
            continue
        match = _KEY.match(line)
        if match and current == table and next(group for group in match.groups() if group is not None) == key:
            return number
    return None
