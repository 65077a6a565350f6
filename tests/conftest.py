"""Shared fixtures: the real default models, loaded once per test session."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports transformers

import atexit
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


def _shared_data() -> Path:
    """The project's real test data (../shared/data beside the checkout, as on the dev machine).

    A clean checkout elsewhere (CI clones to a temporary directory) finds it through
    LCTK_SHARED_DATA or the workspace's fixed location.
    """
    candidates = [os.environ.get("LCTK_SHARED_DATA", ""), Path(__file__).resolve().parents[2] / "shared" / "data", "/work/shared/data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "pdf" / "debian-policy.pdf").is_file():
            return Path(candidate)
    raise RuntimeError("shared test data not found: set LCTK_SHARED_DATA to the shared/data directory")


SHARED_DATA = _shared_data()

MODEL_BUILDS = ("converted", "weights", "static")  # one-time model builds (GBs, minutes): shared, never redone


def _isolated_cache() -> Path:
    """Point LCTK_CACHE_DIR at a fresh directory for this test session (scores, documents, checkpoints).

    Tests never read or write the user's score cache; the one-time model builds are linked in from
    the user's cache directory (made there on first use), so no model is converted twice.
    """
    from platformdirs import user_cache_dir

    home = Path(os.environ.get("LCTK_CACHE_DIR") or user_cache_dir("lctk", appauthor=False)).expanduser()
    session = Path(tempfile.mkdtemp(prefix="lctk-test-cache-"))
    atexit.register(shutil.rmtree, session, ignore_errors=True)
    for name in MODEL_BUILDS:
        (home / name).mkdir(parents=True, exist_ok=True)
        (session / name).symlink_to(home / name, target_is_directory=True)
    os.environ["LCTK_CACHE_DIR"] = str(session)  # subprocesses (run_lctk) inherit it
    os.environ["LCTK_CONFIG"] = str(session / "no-user-config.toml")  # a developer's own config never leaks in
    return session


SESSION_CACHE = _isolated_cache()


@dataclass
class CliResult:
    """A finished `lctk` process."""

    exit_code: int
    stdout: str
    stderr: str


def run_lctk(*args: str, input: bytes | str | None = None, env: dict | None = None, timeout: float = 600) -> CliResult:
    """Run `python -m lctk ARGS` in a real process, the way a shell script would."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [sys.executable, "-m", "lctk", *args],
        input=data if data is not None else b"",
        capture_output=True,
        env=full_env,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def assert_one_line_error(result: CliResult, exit_code: int, contains: str) -> None:
    """An error is exactly one `error: …` line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == exit_code, (result.exit_code, result.stderr)
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert contains.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="session")
def llama_lm():
    """The default generation/scoring model on llama.cpp."""
    from lctk.models.loader import load_language_model

    model, _ = load_language_model("smollm2-135m", "score", "llama")
    return model


@pytest.fixture(scope="session")
def torch_lm():
    """The same model on torch (converted from its GGUF once, then cached)."""
    from lctk.models.loader import load_language_model

    model, _ = load_language_model("smollm2-135m", "score", "torch")
    return model


@pytest.fixture(scope="session")
def attention_lm():
    """The default attention-retrieval model on torch."""
    from lctk.models.loader import load_language_model

    model, _ = load_language_model("gemma3-270m", "attention", "auto")
    return model


@pytest.fixture(scope="session")
def embedder():
    """The default sentence embedder."""
    from lctk.models.loader import load_embedder

    return load_embedder("minilm-l6-v2")


REAL_CODE = '''def binary_search(items, target):
    """Return the index of target in sorted items, or -1."""
    low, high = 0, len(items) - 1
    while low <= high:
        mid = (low + high) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            low = mid + 1
        else:
            high = mid - 1
    return -1


class Stack:
    """A last-in, first-out stack."""

    def __init__(self):
        self._items = []

    def push(self, item):
        self._items.append(item)

    def pop(self):
        if not self._items:
            raise IndexError("pop from empty stack")
        return self._items.pop()
'''


@pytest.fixture(scope="session")
def real_code() -> str:
    """A small piece of real, idiomatic Python."""
    return REAL_CODE
