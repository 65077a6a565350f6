"""Every result's text and JSON forms: the only place numbers become strings."""

from __future__ import annotations

import dataclasses
import json

from lctk.diagnostics import FAIL, OK, DoctorReport
from lctk.generation import GenerationResult
from lctk.models.registry import ModelInfo


def to_json(payload: object) -> str:
    """Serialise a payload as stable, indented JSON with a trailing newline."""
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def generation_json(result: GenerationResult) -> str:
    """Schema: text, model, backend, backend_reason, tokens {prompt, completion}, finish_reason,
    timing {load_s, prompt_s, generate_s, tokens_per_s}."""
    return to_json(
        {
            "text": result.text,
            "model": result.model,
            "backend": result.backend,
            "backend_reason": result.backend_reason,
            "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
            "finish_reason": result.finish_reason,
            "timing": {
                "load_s": result.load_s,
                "prompt_s": result.prompt_s,
                "generate_s": result.generate_s,
                "tokens_per_s": round(result.tokens_per_s, 2),
            },
        }
    )


def generation_summary(result: GenerationResult) -> str:
    """One stderr line for --verbose: counts, speed and backend."""
    return (
        f"{result.model} on {result.backend} ({result.backend_reason}): {result.prompt_tokens} prompt + "
        f"{result.completion_tokens} generated tokens, {result.tokens_per_s:.1f} tok/s, "
        f"load {result.load_s:.2f} s, finish {result.finish_reason}"
    )


def _size(size_bytes: int | None) -> str:
    return "-" if size_bytes is None else f"{size_bytes / 1e6:.0f} MB"


def models_json(infos: list[ModelInfo], defaults: dict[str, dict[str, str]], backends: dict[str, bool]) -> str:
    """Schema: models [ModelInfo fields], defaults {role: {model, source}}, backends {name: installed}."""
    return to_json(
        {
            "models": [dataclasses.asdict(info) for info in infos],
            "defaults": defaults,
            "backends": backends,
        }
    )


def models_text(infos: list[ModelInfo], defaults: dict[str, dict[str, str]], backends: dict[str, bool]) -> str:
    """A plain aligned table of aliases, then the defaults in effect."""
    header = ("alias", "kind", "installed", "size", "backends", "default for", "licence")
    rows = [header]
    for info in infos:
        rows.append(
            (
                info.alias, info.kind, "yes" if info.installed else "no", _size(info.size_bytes),
                ",".join(info.backends), ",".join(info.default_for) or "-", info.licence,
            )
        )
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.append("")
    for info in infos:
        lines.append(f"{info.alias}: {info.summary}; pip package {info.distribution}; path {info.path or 'not installed'}")
        if info.fmt == "gguf":
            torch_state = info.torch_checkpoint or "converted on first torch use (~1 min, then cached)"
            lines.append(f"  torch checkpoint: {torch_state}")
    lines.append("")
    lines.append("defaults: " + ", ".join(f"{role}={d['model']} ({d['source']})" for role, d in defaults.items()))
    lines.append("backends: " + ", ".join(f"{name} {'installed' if ok else 'missing'}" for name, ok in backends.items()))
    return "\n".join(lines) + "\n"


def doctor_text(report: DoctorReport) -> str:
    """The settings and where each came from, the config files, then one line per check with the fix under each failure."""
    mark = {OK: "ok  ", "warn": "warn", FAIL: "FAIL"}
    lines = [f"lctk {report.version}"]
    if report.settings:
        lines.append("settings (flag > env > project file > user file > default):")
        width = max(len(setting.name) for setting in report.settings)
        for setting in report.settings:
            value = setting.value if setting.value is not None else f"- ({setting.default_help})"
            lines.append(f"  {setting.name.ljust(width)}  {value}  [{setting.source}]")
    if report.config_files:
        files = [f"{where.scope} {where.path or '-'}" + ("" if where.found else " (none)" if where.path is None else " (not found)")
                 for where in report.config_files]
        lines.append("config files: " + "; ".join(files))
    for check in report.checks:
        lines.append(f"[{mark[check.status]}] {check.name}: {check.detail}")
        if check.status == FAIL and check.fix:
            lines.append(f"       fix: {check.fix}")
    lines.append("all checks passed" if report.ok else "some checks failed: lctk cannot work as configured until they are fixed")
    return "\n".join(lines) + "\n"


def doctor_json(report: DoctorReport) -> str:
    """Schema: version, ok, settings {name: {value, source, env}}, config_files [{scope, path, found}],
    checks [{name, status, detail, fix, seconds}]."""
    return to_json(
        {
            "version": report.version,
            "ok": report.ok,
            "settings": {s.name: {"value": s.value, "source": s.source, "env": s.env} for s in report.settings},
            "config_files": [dataclasses.asdict(where) for where in report.config_files],
            "checks": [dataclasses.asdict(c) for c in report.checks],
        }
    )
