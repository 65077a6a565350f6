"""`lctk compress` as a script sees it: inputs, stdout payload only, one-line errors."""

import json
import os

from conftest import assert_one_line_error, run_lctk

PY = '''import os


def read_config(path):
    """Read the configuration file."""
    with open(path) as handle:
        return handle.read()


def retry_with_backoff(call, attempts=3):
    """Call `call` until it succeeds, sleeping longer after each failure."""
    import time
    for attempt in range(attempts):
        try:
            return call()
        except OSError:
            time.sleep(2 ** attempt)
    raise RuntimeError("gave up")
'''


def make_repo(root):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "net.py").write_text(PY)
    (root / "pkg" / "blob.bin").write_bytes(b"\x00\x01\x02")
    return root


def test_compress_directory_to_budget_with_json(tmp_path):
    make_repo(tmp_path)
    result = run_lctk("compress", str(tmp_path / "pkg"), "-q", "add retry with backoff", "--budget", "120", "--format", "json", "--no-cache")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tokens"]["output"] <= 120 and data["tokens"]["budget"] == 120
    assert "retry_with_backoff" in data["text"]
    assert "skipped" in result.stderr and "blob.bin: binary" in result.stderr
    assert [item["reason"] for item in data["skipped"]] == ["binary"]
    assert "tokens (budget 120" in result.stderr


def test_compress_stdin_text_and_stdin_paths(tmp_path):
    make_repo(tmp_path)
    piped = run_lctk("compress", "-", "--lang", "python", "-q", "retry", "--budget", "100", "--no-cache", input=PY)
    assert piped.exit_code == 0 and piped.stdout.startswith("==> <stdin>")
    listed = run_lctk("compress", "--stdin-paths", "--rate", "0.5", "--no-cache", "--format", "xml", input=str(tmp_path / "pkg" / "net.py") + "\n")
    assert listed.exit_code == 0 and listed.stdout.startswith("<context>")
    explained = run_lctk("compress", str(tmp_path / "pkg" / "net.py"), "-B", "80", "--explain", "--no-cache", "-q", "config")
    assert "decision" in explained.stderr and "decision" not in explained.stdout


def test_budget_is_counted_with_the_named_tokenizer(tmp_path):
    make_repo(tmp_path)
    args = ("compress", str(tmp_path / "pkg" / "net.py"), "-q", "retry", "-B", "90", "--no-cache", "--format", "json")
    result = run_lctk(*args, "--tokenizer", "gemma3-270m")
    assert result.exit_code == 0, result.stderr
    from lctk.models.loader import load_language_model

    gemma, _ = load_language_model("gemma3-270m", "score", "llama")
    assert gemma.count_tokens(json.loads(result.stdout)["text"]) <= 90


def test_python_api_is_importable_lazily():
    import lctk.compress

    assert callable(lctk.compress.compress)


def test_compress_bad_inputs(tmp_path):
    make_repo(tmp_path)
    assert_one_line_error(run_lctk("compress", str(tmp_path / "missing"), "-B", "100"), 1, "no such file")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_lctk("compress", str(tmp_path / "empty"), "-B", "100"), 1, "nothing to compress")
    binary_only = tmp_path / "bin"
    binary_only.mkdir()
    (binary_only / "x.bin").write_bytes(b"\x00" * 10)
    result = run_lctk("compress", str(binary_only), "-B", "100")
    assert result.exit_code == 1 and "error: nothing to compress" in result.stderr and result.stdout == ""
    assert_one_line_error(run_lctk("compress", str(tmp_path / "pkg"), "-B", "0"), 2, "--budget")
    assert_one_line_error(run_lctk("compress", str(tmp_path / "pkg"), "-B", "-5"), 2, "--budget")
    assert_one_line_error(run_lctk("compress", str(tmp_path / "pkg" / "net.py"), "-B", "2", "--format", "xml", "--no-cache"), 1, "needs at least")
    assert_one_line_error(run_lctk("compress", str(tmp_path / "pkg"), "-B", "10", "--rate", "0.5"), 2, "not both")
    assert_one_line_error(run_lctk("compress", str(tmp_path / "pkg"), "-q", "  ", "-B", "50"), 1, "query is empty")
    assert_one_line_error(run_lctk("compress", "-B", "50"), 2, "no input")
    assert_one_line_error(run_lctk("compress", "-", "--lang", "cobol", "-B", "50", input="x"), 2, "unknown --lang")
    unreadable = tmp_path / "locked.py"
    unreadable.write_text("def f():\n    pass\n")
    os.chmod(unreadable, 0)
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "self").symlink_to(loop)
    (loop / "a.py").write_text("def a():\n    return 1\n")
    result = run_lctk("compress", str(loop), "-B", "200", "--no-cache")
    assert result.exit_code == 0 and "def a" in result.stdout
    assert_one_line_error(run_lctk("compress", str(loop), "-B", "20", "--no-cache"), 1, "keeps nothing")
    if os.geteuid() != 0:  # root reads mode-000 files anyway
        result = run_lctk("compress", str(unreadable), "-B", "50")
        assert result.exit_code == 1 and "unreadable" in result.stderr
