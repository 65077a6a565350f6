"""Prompt rendering, incremental detokenisation, atomic writes."""

import pytest

from lctk.models.chat import IncrementalDetokenizer, render_chat
from lctk.storage import atomic_directory, atomic_file


def test_template_rendering_matches_transformers(torch_lm):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi {{ 7*7 }}"}]
    ours = torch_lm.format_chat(messages)
    theirs = torch_lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert ours == theirs
    assert "Hi {{ 7*7 }}" in ours  # user text is data, never evaluated as a template


def test_base_model_prompt_is_plain_text():
    assert render_chat(None, [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]) == "S\n\nU"


def test_incremental_detokenizer_never_splits_characters(llama_lm):
    text = "naïve café → 日本語 ✓ 🙂 done"
    ids = llama_lm.tokenize(text, add_special=False)
    detok = IncrementalDetokenizer(llama_lm.detokenize)
    pieces = [detok.push(i) for i in ids] + [detok.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces)


def test_atomic_file_keeps_the_old_content_on_failure(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write(b"half-written")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    with atomic_file(target) as handle:
        handle.write(b"new")
    assert target.read_text() == "new"


def test_atomic_directory_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "ckpt"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "a").write_text("x")
            raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("x")
    assert (target / "a").read_text() == "x" and [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_progress_logs_plain_lines_when_stderr_is_not_a_terminal(caplog):
    import logging

    from lctk.cli.console import progress_callback

    with caplog.at_level(logging.INFO, logger="lctk"), progress_callback("reading", log_every=0.0) as update:
        assert update is not None  # pytest's stderr is not a terminal
        for done in range(1, 5):
            update(done, 4, "reading windows")
    lines = [r.getMessage() for r in caplog.records]
    assert lines and lines[0].startswith("reading windows: 1/4, about ") and len(lines) == 3  # no line at 4/4
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="lctk"), progress_callback("scoring") as silent:
        silent(1, 4, "scoring chunks")  # without log_every: nothing shown when not a terminal
    assert caplog.records == []  # (the callback only re-checks Ctrl-C; see test_reliability.py)


def test_temp_files_of_killed_writers_are_swept(tmp_path):
    import os
    import time

    from lctk.storage import STALE_TEMP_S, atomic_directory, atomic_write_bytes

    target = tmp_path / "state.json"
    old_file, fresh_file = tmp_path / ".state.json.abc.tmp", tmp_path / ".state.json.def.tmp"
    old_dir = tmp_path / ".model.xyz.tmp"
    for path in (old_file, fresh_file):
        path.write_bytes(b"half written")
    old_dir.mkdir()
    (old_dir / "weights.bin").write_bytes(b"\0" * 1024)
    long_ago = time.time() - STALE_TEMP_S - 60
    for path in (old_file, old_dir):
        os.utime(path, (long_ago, long_ago))
    atomic_write_bytes(target, b"{}")
    assert not old_file.exists() and fresh_file.exists()  # a writer may still own the fresh one
    with atomic_directory(tmp_path / "model") as tmp:
        (tmp / "config.json").write_text("{}")
    assert not old_dir.exists() and (tmp_path / "model" / "config.json").exists()
