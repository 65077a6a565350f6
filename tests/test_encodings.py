"""Legacy sources: a coding declaration or a detectable legacy encoding is honoured, lines stay true."""

from __future__ import annotations

import json

import pytest
from conftest import run_lctk

from lctk.sources.encoding import declared_encoding, decode_source, decode_text
from lctk.sources.walk import read_text

LATIN1_DECLARED = '# -*- coding: latin-1 -*-\n"""Caf\xe9 helpers."""\n\n\ndef caf\xe9_price(cr\xe8me):\n    return cr\xe8me * 2\n'


@pytest.mark.parametrize(("first_lines", "codec"), [
    (b"# -*- coding: latin-1 -*-\n", "iso8859-1"),
    (b"#!/usr/bin/env python\n# vim: set fileencoding=cp1252 :\n", "cp1252"),
    (b"# encoding: euc-jp\n", "euc_jp"),
    (b"x = 1  # coding: latin-1 is only read on a comment line\n", None),
    (b"# -*- coding: no-such-codec -*-\n", None),
    (b"\n\n# coding: latin-1  (third line: too late)\n", None),
])
def test_coding_declarations_are_read_from_the_first_two_lines_only(first_lines, codec):
    assert declared_encoding(first_lines + b"pass\n") == codec


def test_declared_detected_and_undecodable_sources():
    assert decode_source(LATIN1_DECLARED.encode("latin-1")) == LATIN1_DECLARED
    cp1252 = 'def greet():\n    return "\u201cna\xefve\u201d caf\xe9 \u2014 d\xe9j\xe0 vu"\n'
    assert decode_source(cp1252.encode("cp1252")) == cp1252  # no declaration: detected
    gbk = 'x = "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5\u4e2d\u6587"\n'
    assert decode_source(gbk.encode("gbk")) == gbk
    wrong = "# coding: ascii\nname = 'caf\xe9'\n"  # a wrong declaration falls through to what the bytes say
    assert decode_source(wrong.encode("utf-8")) == wrong
    with pytest.raises(UnicodeDecodeError):
        decode_source(bytes(range(128, 256)) * 3)  # no NUL, yet nothing fits: skipped, not garbled
    assert decode_text(bytes(range(128, 256)) * 3)  # documents never fail


def test_line_numbers_stay_true_in_a_legacy_file(tmp_path):
    path = tmp_path / "old.py"
    path.write_bytes(LATIN1_DECLARED.encode("latin-1"))
    lines = read_text(path).split("\n")
    assert lines[4] == "def caf\xe9_price(cr\xe8me):"  # line 5 on disk is line 5 decoded


def test_compress_and_search_keep_a_latin1_file(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "old.py").write_bytes(LATIN1_DECLARED.encode("latin-1"))
    (repo / "modern.py").write_text('def shout(text):\n    """Upper-case a text."""\n    return text.upper()\n')
    env = {"LCTK_INDEX_DIR": str(tmp_path / "index")}
    compressed = run_lctk("compress", str(repo), "-B", "400", "--retrieval", "bm25", "-f", "json", env=env)
    assert compressed.exit_code == 0, compressed.stderr
    payload = json.loads(compressed.stdout)
    assert "def caf\xe9_price(cr\xe8me):" in payload["text"]
    assert not payload.get("skipped")
    found = run_lctk("search", "cafe price", str(repo), "--mode", "lexical", "-f", "jsonl", "-n", "0", env=env)
    assert found.exit_code == 0, found.stderr
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    top = next(hit for hit in hits if hit["path"].endswith("old.py"))
    assert top["start_line"] == 5 and top["code"]["lines"][0] == "def caf\xe9_price(cr\xe8me):"
