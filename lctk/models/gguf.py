"""GGUF files: check the magic and read general.architecture from the header without parsing the vocabulary."""

from __future__ import annotations

import struct
from pathlib import Path

from lctk.errors import ModelError


def check_gguf_file(path: Path) -> None:
    """Raise ModelError unless `path` is a readable file that starts with the GGUF magic."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    if magic != b"GGUF":
        raise ModelError(f"{path} is not a GGUF model file (bad header)")
    if gguf_architecture(path) is None:
        raise ModelError(f"{path}: the GGUF header is truncated or corrupt (no general.architecture)")


_GGUF_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_architecture(path: Path, max_keys: int = 64) -> str | None:
    """Return general.architecture from a GGUF header (None if unreadable) without parsing the vocabulary.

    Writers put it first; only the first `max_keys` keys are looked at, skipping values by size.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
            if len(head) < 24 or head[:4] != b"GGUF":
                return None
            version = struct.unpack_from("<I", head, 4)[0]
            if version not in (2, 3):
                return None
            kv_count = struct.unpack_from("<Q", head, 16)[0]

            def read(n: int) -> bytes:
                data = handle.read(n)
                if len(data) != n:
                    raise EOFError
                return data

            def skip_value(kind: int) -> None:
                if kind in _GGUF_SCALAR_BYTES:
                    handle.seek(_GGUF_SCALAR_BYTES[kind], 1)
                elif kind == _GGUF_STRING:
                    handle.seek(struct.unpack("<Q", read(8))[0], 1)
                elif kind == _GGUF_ARRAY:
                    inner, count = struct.unpack("<IQ", read(12))
                    if inner in _GGUF_SCALAR_BYTES:
                        handle.seek(_GGUF_SCALAR_BYTES[inner] * count, 1)
                    else:
                        raise ValueError("array of strings before general.architecture")
                else:
                    raise ValueError(f"value type {kind}")

            for _ in range(min(kv_count, max_keys)):
                key_length = struct.unpack("<Q", read(8))[0]
                if key_length > 4096:
                    return None
                key = read(key_length)
                kind = struct.unpack("<I", read(4))[0]
                if key == b"general.architecture" and kind == _GGUF_STRING:
                    length = struct.unpack("<Q", read(8))[0]
                    return read(min(length, 256)).decode("utf-8", "replace") if length <= 256 else None
                skip_value(kind)
    except (OSError, EOFError, ValueError, struct.error):
        return None
    return None
