"""Killed, interrupted and concurrent runs: what is on disk is always whole, and nothing committed is lost."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import MODEL_BUILDS, run_lctk

from lctk.retrieval.indexer import EMBED_BATCH
from lctk.retrieval.store import CHECKPOINT_FILE, index_location, load_index

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TESTS = Path(__file__).resolve().parent


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell without job control leaves it ignored


def _lctk(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lctk", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **env}, preexec_fn=_default_sigint)


def _email_subset(root: Path, files: int = 9) -> Path:
    target = root / "mail"
    target.mkdir(parents=True)
    for path in sorted((STDLIB / "email").glob("*.py"))[:files]:
        shutil.copyfile(path, target / path.name)
    return root


def _committed_vectors(checkpoint: Path) -> int:
    """How many block vectors a killed or running indexer has committed to its checkpoint."""
    if not checkpoint.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{checkpoint}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # created but its table not written yet


def _whole_or_absent(root: Path) -> None:
    """A live index, if there is one, reads back completely (CURRENT never points at a torn generation)."""
    directory = index_location(root)
    if (directory / "CURRENT").exists():
        from lctk.retrieval.store import _read_generation

        _read_generation(root, directory / (directory / "CURRENT").read_text().strip())


@pytest.mark.slow
def test_indexer_killed_at_random_points_resumes_and_ends_identical(tmp_path, monkeypatch):
    # 18 files, ~1,200 blocks: five commit points, so each killed run has a batch left to die in
    # (with 9 files and three, a run could pass the last commit before its kill: a flaky count)
    root = _email_subset(tmp_path / "repo", files=18).resolve()
    reference_env = {"LCTK_INDEX_DIR": str(tmp_path / "reference")}
    started = time.perf_counter()
    reference = run_lctk("index", str(root), "--embed-model", "minilm-l6-v2", "-f", "json", env=reference_env)
    clean_s = time.perf_counter() - started
    assert reference.exit_code == 0, reference.stderr
    blocks = json.loads(reference.stdout)["blocks"]

    env = {"LCTK_INDEX_DIR": str(tmp_path / "killed")}
    monkeypatch.setenv("LCTK_INDEX_DIR", env["LCTK_INDEX_DIR"])
    checkpoint = index_location(root) / CHECKPOINT_FILE
    rng = random.Random(7)
    kills = mid_batch = 0
    for run in range(6):
        # Kill points follow the run's own progress, not the clock of a clean build, so a slow or
        # busy machine cannot let the build finish before the kills: the first run dies at a random
        # moment before its first batch commits, later ones at a random moment inside the batch
        # after the one they commit.
        proc = _lctk("index", str(root), "--embed-model", "minilm-l6-v2", env=env)
        before = _committed_vectors(checkpoint)
        if run == 0:
            time.sleep(rng.uniform(0.02, 0.15) * clean_s)
        else:
            deadline = time.monotonic() + 5 * clean_s
            while proc.poll() is None and _committed_vectors(checkpoint) == before and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5) * clean_s * EMBED_BATCH / blocks)
        proc.kill()
        proc.communicate()
        if proc.returncode != -signal.SIGKILL:
            break  # it finished: nothing is left to kill
        kills += 1
        mid_batch += 0 < _committed_vectors(checkpoint) < blocks
        _whole_or_absent(root)
    assert kills >= 3 and mid_batch >= 2  # the runs really were killed part-way through embedding
    final = run_lctk("index", str(root), "--embed-model", "minilm-l6-v2", "-f", "json", env=env)
    assert final.exit_code == 0, final.stderr
    stats = json.loads(final.stdout)
    assert stats["blocks"] == blocks
    assert stats["embedded_blocks"] < blocks  # the killed runs' committed batches were kept, not redone
    assert not (index_location(root) / CHECKPOINT_FILE).exists()
    killed = load_index(root)
    monkeypatch.setenv("LCTK_INDEX_DIR", reference_env["LCTK_INDEX_DIR"])
    clean = load_index(root)
    assert [f.sha256 for f in killed.files] == [f.sha256 for f in clean.files]
    assert killed.unit_name == clean.unit_name
    np.testing.assert_allclose(killed.block_vectors, clean.block_vectors, atol=2e-3)


ASK_SCRIPT = textwrap.dedent("""
    import json, logging, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_infiniretri import NEEDLE, QUESTION, EchoAnswer, WordAttention, _haystack
    from lctk.documents.load import document_from_text
    from lctk.ask.infiniretri import RetrievalSettings
    from lctk.ask.qa import answer

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")

    class SlowAttention(WordAttention):
        def last_layer_attention(self, ids, rows):
            time.sleep({delay})
            return super().last_layer_attention(ids, rows)

    document = document_from_text("hay.txt", _haystack(NEEDLE.replace("mauve-42", "4417"), 0.7))
    settings = RetrievalSettings(mode="attention", window_tokens=250, top_k=20, phrase=4, kept_tokens=120)
    model = SlowAttention()
    result = answer(document, QUESTION, retriever=model, answerer=EchoAnswer(), answer_backend="fake", settings=settings,
                    checkpoint_dir=Path(sys.argv[1]), resume=True)
    print(json.dumps({{"answer": result.answer, "evidence": [e.start for e in result.evidence],
                      "resumed": result.resumed_from_window, "total": result.windows_total, "calls": len(model.calls)}}))
""")


def _ask_process(script: Path, checkpoints: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), str(checkpoints)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=TESTS)


def test_ask_killed_at_random_points_always_resumes_to_the_same_answer(tmp_path):
    script = tmp_path / "ask.py"
    script.write_text(ASK_SCRIPT.format(tests=str(TESTS), delay=0.12))
    clean = json.loads(subprocess.run([sys.executable, str(script), str(tmp_path / "clean")], capture_output=True,
                                      cwd=TESTS, check=True).stdout)
    assert "4417" in clean["answer"] and clean["total"] > 8
    checkpoints = tmp_path / "killed"
    rng = random.Random(11)
    resumed_from = []
    for _ in range(6):
        proc = _ask_process(script, checkpoints)
        time.sleep(rng.uniform(0.4, 1.6))
        proc.kill()
        proc.communicate()
        for path in checkpoints.glob("*.json"):  # never torn: the file parses and points inside the document
            state = json.loads(path.read_text())
            assert 0 <= state["next_window"] <= clean["total"] and len(state["kept"]) == len(state["scores"])
            resumed_from.append(state["next_window"])
    final = json.loads(_ask_process(script, checkpoints).communicate()[0])
    assert resumed_from and final["resumed"] == max(resumed_from) > 0
    assert final["calls"] == final["total"] - final["resumed"]
    assert (final["answer"], final["evidence"]) == (clean["answer"], clean["evidence"])


def test_two_asks_of_one_question_take_turns_on_the_checkpoint(tmp_path):
    script = tmp_path / "ask.py"
    script.write_text(ASK_SCRIPT.format(tests=str(TESTS), delay=0.2))
    first = _ask_process(script, tmp_path / "ck")
    deadline = time.monotonic() + 60
    while not list((tmp_path / "ck").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the first has a checkpoint, so it holds the lock and is mid-document
    second = _ask_process(script, tmp_path / "ck")
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], [o[1] for o in outputs]
    one, two = (json.loads(o[0]) for o in outputs)
    assert "waiting for lock" in outputs[1][1].decode()
    assert two["resumed"] == two["total"] and two["calls"] == 0  # the second reused the first's finished work
    assert (one["answer"], one["evidence"]) == (two["answer"], two["evidence"])


@pytest.mark.slow
def test_ctrl_c_while_indexing_exits_130_and_commits_nothing_half_done(tmp_path, monkeypatch):
    root = _email_subset(tmp_path / "repo").resolve()
    env = {"LCTK_INDEX_DIR": str(tmp_path / "idx")}
    monkeypatch.setenv("LCTK_INDEX_DIR", env["LCTK_INDEX_DIR"])
    proc = _lctk("index", str(root), "--embed-model", "minilm-l6-v2", env=env)
    wal = index_location(root) / (CHECKPOINT_FILE + "-wal")
    deadline = time.monotonic() + 120
    while (not wal.exists() or wal.stat().st_size < 300_000) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until a first batch of vectors (256 x 384 floats) is committed
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert out == b"" and err.decode().strip().splitlines()[-1] == "error: interrupted"
    assert load_index(root) is None  # no generation claims to be the complete index
    final = json.loads(run_lctk("index", str(root), "--embed-model", "minilm-l6-v2", "-f", "json", env=env).stdout)
    assert final["embedded_blocks"] < final["blocks"]  # what was embedded before Ctrl-C was kept


@pytest.mark.slow
def test_ctrl_c_while_compressing_or_asking_prints_no_result(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(STDLIB / "json", root / "json", ignore=shutil.ignore_patterns("__pycache__"))
    from lctk.config import cache_dir

    env = {"LCTK_CACHE_DIR": str(tmp_path / "cache")}
    (tmp_path / "cache").mkdir()
    for made_once in MODEL_BUILDS:  # a fresh score cache; the one-time model builds are linked (GBs), so the Ctrl-C lands mid-job
        (tmp_path / "cache" / made_once).symlink_to(cache_dir() / made_once, target_is_directory=True)
    jobs = [
        ("compress", str(root), "-q", "parse a JSON document into Python objects", "-B", "800"),
        ("ask", str(TESTS.parent / "README.md"), "How does compress keep the budget?"),
    ]
    for args in jobs:
        proc = _lctk(*args, env=env)
        time.sleep(6)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (args[0], err)
        assert out == b"", args[0]  # no half result that a script could mistake for the answer
        assert err.decode().strip().splitlines()[-1] == "error: interrupted"


def test_a_ctrl_c_that_a_library_swallows_still_stops_the_run():
    # Some native extensions check for signals and then clear the KeyboardInterrupt; lctk's flag
    # makes the next progress update or result write raise it again.
    script = textwrap.dedent("""
        import os, signal, sys, time
        from lctk import cli
        from lctk.cli.console import progress_callback, write_stdout
        cli._install_sigint_handler()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass  # swallowed, as such an extension would
        with progress_callback("working") as update:
            try:
                update(1, 10)
            except KeyboardInterrupt:
                print("progress stopped", file=sys.stderr)
        sys.argv = ["lctk", "models"]
        cli.main()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, preexec_fn=_default_sigint, timeout=120)
    assert proc.returncode == 130 and proc.stdout == b""  # `lctk models` printed nothing
    assert proc.stderr.decode().splitlines() == ["progress stopped", "error: interrupted"]
