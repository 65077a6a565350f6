"""Convert a GGUF to a transformers checkpoint once, cache it, and reuse it afterwards.

transformers reads a GGUF only by dequantising every tensor (40-150 s here); the converted
float32 checkpoint then loads in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from lctk.config import cache_dir, writable_cache_subdir
from lctk.errors import CacheError, ModelError, first_line
from lctk.models.gguf import gguf_architecture
from lctk.storage import atomic_directory, atomic_write_bytes, file_lock

log = logging.getLogger("lctk")

CONVERSION_VERSION = 1  # bump when the layout of a converted checkpoint changes


def conversion_key(gguf_path: Path) -> str:
    """Key a conversion by the GGUF's content (a reinstalled or copied file reuses its conversion).

    Hashing costs ~0.5 s per 100 MB, so the digest is remembered per (path, size, mtime) in
    `converted/keys.json`; a changed file is hashed again.
    """
    resolved = gguf_path.resolve()
    info = resolved.stat()
    stamp = f"{resolved}|{info.st_size}|{info.st_mtime_ns}"
    memo_path = cache_dir() / "converted" / "keys.json"
    try:
        memo = json.loads(memo_path.read_text())
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, ValueError):
        memo = {}
    digest = memo.get(stamp)
    if not isinstance(digest, str):
        sha = hashlib.sha256(f"v{CONVERSION_VERSION}|".encode())
        with open(resolved, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                sha.update(block)
        digest = sha.hexdigest()[:16]
        memo = {k: v for k, v in memo.items() if Path(k.split("|", 1)[0]).exists()}  # forget removed files
        memo[stamp] = digest
        if memo_path.parent.is_dir():  # never create the cache just to remember a digest (listing creates nothing)
            try:
                atomic_write_bytes(memo_path, json.dumps(memo, indent=1).encode())
            except OSError:
                pass  # a read-only cache only costs the hash next time
    return digest


def converted_checkpoint_path(gguf_path: Path) -> Path:
    """Return where the converted checkpoint of `gguf_path` lives (it may not exist yet)."""
    return writable_cache_subdir("converted") / f"{gguf_path.stem}-{conversion_key(gguf_path)}"


def cached_checkpoint(gguf_path: Path) -> Path | None:
    """Return the converted checkpoint of `gguf_path` if one is cached; creates nothing."""
    if not gguf_path.is_file():
        return None
    path = cache_dir() / "converted" / f"{gguf_path.stem}-{conversion_key(gguf_path)}"
    return path if (path / "config.json").is_file() else None


def ensure_converted(gguf_path: Path) -> Path:
    """Return the cached transformers checkpoint for `gguf_path`, converting it the first time."""
    target = converted_checkpoint_path(gguf_path)
    if (target / "config.json").is_file():
        return target
    with file_lock(target.with_name(target.name + ".lock")):
        if (target / "config.json").is_file():  # another process converted it while we waited
            return target
        _check_convertible(gguf_path)
        log.info("converting %s to a transformers checkpoint (one time, 1-2 min); cached in %s", gguf_path.name, target)
        model, tokenizer = _load_gguf(gguf_path)
        try:
            with atomic_directory(target) as tmp:
                model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
                source = {"gguf": str(gguf_path.resolve()), "size": gguf_path.stat().st_size, "version": CONVERSION_VERSION}
                (tmp / "lctk-source.json").write_text(json.dumps(source, indent=2) + "\n")
        except OSError as exc:  # disk full, quota, permissions: nothing half-written stays behind
            raise CacheError(
                f"cannot write the converted checkpoint under {target.parent} ({exc.strerror or exc}); "
                "free disk space (~1.5 GB needed) or set LCTK_CACHE_DIR"
            ) from None
    return target


def _check_convertible(gguf_path: Path) -> None:
    """Refuse, before announcing a conversion, an architecture transformers cannot read from GGUF."""

    architecture = gguf_architecture(gguf_path)
    if architecture is None:
        raise ModelError(f"{gguf_path}: the GGUF header is truncated or corrupt (no general.architecture)")
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    except ImportError:  # pragma: no cover - another transformers layout: let the conversion decide
        return
    # llama.cpp names some architectures with a dash or a "t5encoder" suffix; transformers maps those itself.
    known = {name.replace("_", "") for name in GGUF_SUPPORTED_ARCHITECTURES}
    if architecture.replace("-", "").replace("_", "") not in known and "t5" not in architecture:
        raise ModelError(
            f"{gguf_path.name}: transformers cannot run the '{architecture}' architecture on torch "
            "(run it with --backend llama, or pass a transformers model directory)"
        )


def _load_gguf(gguf_path: Path):
    from lctk.models.torch_backend import import_transformers

    _, transformers = import_transformers()
    AutoModelForCausalLM, AutoTokenizer = transformers.AutoModelForCausalLM, transformers.AutoTokenizer
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise ModelError(
            f"transformers cannot convert {gguf_path.name}: {first_line(exc)}; use --backend llama for this model"
        ) from None
    # save_pretrained refuses a model that still carries its GGUF quantizer.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer
