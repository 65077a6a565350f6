"""Decode text files the way their authors wrote them.

Order: a byte-order mark; a coding declaration in the first two lines (PEP 263's
`# -*- coding: latin-1 -*-`, which also matches Emacs', Vim's `fileencoding=` and Ruby's
`# encoding:` forms); UTF-8; then the most likely legacy encoding (charset-normalizer, preferring
the common Western ones on near-ties). Only the characters change, never the line structure: lines
are split on "\\n" everywhere in lctk, so a line number in a decoded file is the line number in the
file on disk.
"""

from __future__ import annotations

import codecs
import logging
import re

log = logging.getLogger("lctk")

WESTERN = ("utf_8", "cp1252", "latin_1", "iso8859_15")  # preferred on near-ties: short code is ambiguous
DETECT_BYTES = 1 << 20  # bytes the detector reads; a longer file is decoded whole with its verdict
_DECLARATION = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


def declared_encoding(data: bytes) -> str | None:
    """The codec named by a coding declaration in the first two lines, if Python knows it."""
    for line in data.split(b"\n", 2)[:2]:
        match = _DECLARATION.match(line)
        if match:
            try:
                return codecs.lookup(match.group(1).decode("ascii")).name
            except (LookupError, UnicodeDecodeError):
                return None
    return None


def detected_encoding(data: bytes) -> str | None:
    """The most likely legacy encoding of bytes that are not UTF-8 (None when nothing fits: binary)."""
    from charset_normalizer import from_bytes

    matches = from_bytes(data[:DETECT_BYTES])
    best = matches.best()
    if best is None:
        return None
    for match in matches:  # near-ties on short text: prefer the common Western encodings
        if match.encoding in WESTERN and match.chaos <= best.chaos + 0.1:
            return match.encoding
    return best.encoding


def decode_source(data: bytes) -> str:
    """Decode a source file strictly; raises UnicodeDecodeError when no encoding fits (skip the file)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    declared = declared_encoding(data)
    if declared is not None:
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            pass  # a wrong declaration: fall through to what the bytes say
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        legacy = detected_encoding(data)
        if legacy is None:
            raise exc from None
        log.debug("decoded as %s", legacy)
        return data.decode(legacy)


def decode_text(data: bytes) -> str:
    """Decode document text leniently (BOMs, UTF-8, then the detected encoding); never fails: bytes
    that do not fit become U+FFFD. No coding declaration is read: prose has none."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    encoding = detected_encoding(data) or "cp1252"
    log.debug("decoded as %s", encoding)
    return data.decode(encoding, "replace")
