"""`lctk doctor`: check that the default setup works on this machine, and say how to fix it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lctk import __version__
from lctk.config import SETTINGS, cache_dir_fix, cache_dir_setting, project_config_path, settings_in_effect, user_config_path
from lctk.errors import LctkError
from lctk.models import registry
from lctk.models.hardware import cpu_count

OK, WARN, FAIL = "ok", "warn", "fail"
SMOKE_PROMPT = "Say hello."
SMOKE_CODE = "def add(a, b):\n    return a + b\n"
SMOKE_TOKENS = 5
CACHE_FREE_GIB = 2.0


@dataclass(frozen=True)
class Check:
    """One doctor check: what was looked at, what was found, and the fix when it failed."""

    name: str
    status: str  # OK, WARN or FAIL
    detail: str
    fix: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class SettingInEffect:
    """One setting as resolved for this run, and where its value came from."""

    name: str  # its key in a config file
    env: str
    value: str | None  # None: nothing set it and its default is decided where it is used
    source: str  # "flag", "env LCTK_X", "project <path>", "user <path>" or "default"
    default_help: str


@dataclass(frozen=True)
class ConfigLocation:
    """A config file lctk reads: the project one found above the working directory, or the user one."""

    scope: str  # "project" or "user"
    path: str | None  # None: no project file found
    found: bool


@dataclass(frozen=True)
class DoctorReport:
    """All checks; `ok` is False when any check failed."""

    version: str
    checks: tuple[Check, ...]
    settings: tuple[SettingInEffect, ...] = ()
    config_files: tuple[ConfigLocation, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(check.status != FAIL for check in self.checks)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _timed(name: str, body: Callable[..., Check]) -> Check:  # body() takes no arguments (lambdas bind defaults)
    started = time.perf_counter()
    try:
        check = body()
    except LctkError as exc:
        check = Check(name, FAIL, str(exc))
    except Exception as exc:  # doctor reports every failure instead of dying on the first
        check = Check(name, FAIL, f"{type(exc).__name__}: {exc}")
    return Check(check.name, check.status, check.detail, check.fix, round(time.perf_counter() - started, 3))


def environment_checks() -> list[Check]:
    """Python, backends, hardware and cache directory."""
    checks = [Check("python", OK if sys.version_info >= (3, 10) else FAIL, platform.python_version(), "use Python 3.10 or newer")]
    checks.append(_timed("torch", _torch_check))
    transformers = _version("transformers")
    checks.append(Check("transformers", OK if transformers else FAIL, transformers or "not installed", "pip install transformers accelerate gguf"))
    checks.append(_timed("llama.cpp", _llama_check))
    checks.append(Check("cpu", OK, f"{cpu_count()} cores, {_memory_gib():.1f} GiB RAM, {platform.machine()}"))
    checks.append(_cache_check())
    return checks


def _torch_check() -> Check:
    if _version("torch") is None:
        return Check("torch", FAIL, "not installed", "pip install 'torch==2.13.0'")
    import torch

    if torch.cuda.is_available():
        gpu = f"CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)} (bf16)"
    else:
        gpu = "no GPU visible: CPU float32"
    return Check("torch", OK, f"{torch.__version__}; {gpu}")


def _llama_check() -> Check:
    if _version("llama_cpp_python") is None:
        return Check("llama.cpp", FAIL, "llama-cpp-python not installed", "pip install llama-cpp-python (compiles llama.cpp, ~15 min on 2 cores)")
    import llama_cpp

    offload = "GPU offload" if llama_cpp.llama_supports_gpu_offload() else "CPU build"
    return Check("llama.cpp", OK, f"llama-cpp-python {llama_cpp.__version__}; {offload}")


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 0.0


def _cache_check() -> Check:
    setting = cache_dir_setting()
    path, fix = Path(setting.value), cache_dir_fix(setting)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
        free_gib = shutil.disk_usage(path).free / 2**30
    except OSError as exc:
        return Check("cache dir", FAIL, f"{path} is not writable ({exc.strerror or exc})", fix)
    if free_gib < CACHE_FREE_GIB:
        return Check("cache dir", WARN, f"{path}: only {free_gib:.1f} GiB free; converting a GGUF for torch needs ~1.5 GiB", "free disk space or " + fix)
    return Check("cache dir", OK, f"{path} ({free_gib:.0f} GiB free)")


def model_checks(load: bool, model: str | None = None, embed_model: str | None = None, backend: str = "auto") -> list[Check]:
    """Each role's model resolves; with `load`, loads on its backend and answers a smoke test."""
    checks = []
    for role in registry.ROLES:
        setting = registry.role_model(role, embed_model if role == "embed" else model if role in ("generate", "answer", "score") else None)
        kind = registry.EMBED if role == "embed" else registry.LM
        checks.append(
            _timed(f"{role} model", lambda r=role, s=setting, k=kind: _model_check(r, s.value, s.source, k, load, backend))
        )
    return checks


def _model_check(role: str, name: str, source: str, kind: str, load: bool, backend: str) -> Check:
    label = f"{role} model"
    resolved = registry.resolve_model(name, kind)
    where = f"{resolved.model_id} ({source}) at {resolved.path}"
    if not load:
        return Check(label, OK, f"{where}; not loaded (--quick)")
    from lctk.models.loader import load_embedder, load_language_model

    if kind == registry.EMBED:
        embedder = load_embedder(name)
        vector = embedder.embed(["lctk doctor"])[0]
        return Check(label, OK, f"{where}; embeds to {embedder.dim} dims, norm {float((vector ** 2).sum()) ** 0.5:.3f}")
    operation = role if role in ("attention", "score") else "generate"
    model, choice = load_language_model(name, operation, "auto" if role == "attention" else backend)
    if role == "score":
        logprobs = model.token_logprobs(model.tokenize(SMOKE_CODE))
        if not np.all(np.isfinite(logprobs[1:])):
            return Check(label, FAIL, f"{where}; {choice.backend} returned non-finite log-probs", "reinstall the model's package")
        return Check(label, OK, f"{where}; {choice.backend} scored {len(logprobs)} tokens, perplexity {float(np.exp(-np.mean(logprobs[1:]))):.1f}")
    stream = model.generate(SMOKE_PROMPT, max_tokens=SMOKE_TOKENS)
    text = stream.text()
    if stream.stats.completion_tokens == 0 and stream.stats.finish_reason != "stop":
        return Check(label, FAIL, f"{where}; generated nothing on {choice.backend}", "reinstall the model's package")
    return Check(label, OK, f"{where}; {choice.backend} answered {stream.stats.completion_tokens} tokens: {text.strip()[:40]!r}")


def settings_report(model: str | None = None, embed_model: str | None = None, backend: str | None = None) -> tuple[SettingInEffect, ...]:
    """Every setting's value and source, given the flags (None: not passed)."""
    resolved = settings_in_effect({"model": model, "embed_model": embed_model, "backend": backend})
    return tuple(SettingInEffect(spec.key, spec.env, resolved[spec.key].value, resolved[spec.key].source, spec.default_help) for spec in SETTINGS)


def config_locations() -> tuple[ConfigLocation, ...]:
    """The project config file in effect (if any) and the user config file (found or not)."""
    project, user = project_config_path(), user_config_path()
    return (
        ConfigLocation("project", str(project) if project else None, project is not None),
        ConfigLocation("user", str(user), user.is_file()),
    )


def run_doctor(
    load_models: bool = True, model: str | None = None, embed_model: str | None = None, backend: str = "auto",
    *, backend_flag: str | None = None,
) -> DoctorReport:
    """Run every check and return the report; `backend` is the resolved backend, `backend_flag` what --backend said."""
    settings = settings_report(model, embed_model, backend_flag)
    checks = tuple(environment_checks() + model_checks(load_models, model, embed_model, backend))
    return DoctorReport(__version__, checks, settings, config_locations())
