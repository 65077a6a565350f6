"""`lctk mcp` end to end: the real server as a subprocess, driven by the MCP SDK's own stdio client, on real models.

Every session checks that the server's stdout held protocol messages only (the client parses each
line; anything else reaches its message handler as an exception) and that its stderr has no traceback.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the MCP server is an optional extra: pip install 'lctk[mcp]'")

import anyio  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TOOLS = {"search", "related", "index", "compress", "ask"}
CALL_TIMEOUT_S = 300.0

LIBRARY = """# Opening hours

The Harbor Street library is open from nine in the morning until six in the evening on weekdays.
On Saturdays it closes at noon, and it is closed on Sundays.

# Borrowing

Members may borrow up to eight books at a time for three weeks. Late returns cost ten cents per book per day.

# History

The library was founded in 1921 by the town council. It moved to a new building on Elm Avenue in 1968.
"""


def _repo(tmp_path: Path) -> Path:
    """A small real repository: four stdlib modules."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("bisect.py", "colorsys.py", "fnmatch.py", "keyword.py"):
        shutil.copy(STDLIB / name, root / name)
    return root


def _serve(tmp_path: Path, session: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    """Run `session` against a fresh `python -m lctk mcp` in `tmp_path`; fail on anything but protocol on stdout."""
    env = {**os.environ, "LCTK_INDEX_DIR": str(tmp_path / "indexes"), "HF_HUB_OFFLINE": "1"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "lctk", "mcp"], env=env, cwd=str(tmp_path))
    faults: list[Exception] = []
    stderr = tmp_path / "server.stderr"

    async def on_message(message) -> None:
        if isinstance(message, Exception):  # a stdout line that was not a JSON-RPC message
            faults.append(message)

    async def main() -> Any:
        with stderr.open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT_S, message_handler=on_message) as client:
                    info = await client.initialize()
                    assert info.server_info.name == "lctk"
                    return await session(client)

    result = anyio.run(main)
    assert not faults, f"non-protocol output on stdout: {faults}"
    assert "Traceback" not in stderr.read_text(), stderr.read_text()
    return result


def _text(result) -> str:
    return "".join(block.text for block in result.content)


def _error(result, contains: str) -> None:
    """A tool error: isError, one line of text saying what is wrong."""
    assert result.is_error, _text(result)
    assert len(result.content) == 1 and "\n" not in result.content[0].text
    assert contains.lower() in result.content[0].text.lower(), result.content[0].text


def test_search_index_related_and_bad_arguments(tmp_path):
    root = _repo(tmp_path)
    assert not (root / ".lctk").exists()

    async def session(client: ClientSession) -> None:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == TOOLS
        for tool in listed.values():
            assert tool.description and tool.input_schema["type"] == "object" and tool.input_schema["properties"]
        assert {"query", "path", "k", "mode", "languages", "globs", "paths", "kinds"} <= set(listed["search"].input_schema["properties"])
        assert listed["search"].input_schema["required"] == ["query"]
        assert set(listed["related"].input_schema["required"]) == {"file", "line"}
        assert set(listed["ask"].input_schema["required"]) == {"document", "question"}

        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total, message))

        built = await client.call_tool("index", {"path": "repo"}, progress_callback=on_progress)
        assert not built.is_error, _text(built)
        assert built.structured_content["files"] == 4 and built.structured_content["added"] == 4
        assert progress and all(message for _, _, message in progress)
        values = [value for value, _, _ in progress]
        assert values == sorted(values) and len(set(values)) == len(values)  # progress only grows

        found = await client.call_tool("search", {"query": "translate a shell pattern into a regular expression", "path": "repo", "k": 3})
        assert not found.is_error, _text(found)
        top = found.structured_content["results"][0]
        assert Path(top["path"]).resolve() == (root / "fnmatch.py").resolve() and top["symbol"] == "translate"
        assert any("def translate(pat)" in line for line in top["code"]["lines"])  # hits come with their code
        assert f"{top['path']}:{top['start_line']}-{top['end_line']}" in _text(found)

        # bad arguments are tool errors, and the server answers the next call
        _error(await client.call_tool("search", {"query": "  ", "path": "repo"}), "empty query")
        _error(await client.call_tool("search", {"query": "x", "path": "no/such/dir"}), "no such file or directory")
        _error(await client.call_tool("search", {"query": "x", "path": "repo", "k": 0}), "k must be at least 1")
        _error(await client.call_tool("search", {"query": "x", "path": "repo", "mode": "fuzzy"}), "unknown mode 'fuzzy'")
        _error(await client.call_tool("search", {"query": "x", "path": "repo", "languages": ["cobol"]}), "unknown language 'cobol'")
        _error(await client.call_tool("search", {"path": "repo", "k": "many"}), "query: field required")
        _error(await client.call_tool("related", {"file": "repo/colorsys.py", "line": 100_000, "path": "repo"}), "past the end")
        _error(await client.call_tool("compress", {"paths": ["repo/fnmatch.py"], "budget": 0}), "budget must be at least 1")
        _error(await client.call_tool("ask", {"document": "missing.pdf", "question": "why?"}), "no such file")

        filtered = await client.call_tool("search", {"query": "insert an item into a sorted list", "path": "repo", "k": 5,
                                                     "kinds": ["function"], "globs": ["bisect.py"], "context": 0})
        assert not filtered.is_error, _text(filtered)
        hits = filtered.structured_content["results"]
        assert hits and hits[0]["symbol"] in {"insort_left", "insort_right", "insort"}
        assert all(h["kind"] == "function" and h["path"].endswith("bisect.py") for h in hits)

        colorsys = root / "colorsys.py"
        line = next(n for n, text in enumerate(colorsys.read_text().splitlines(), 1) if text.startswith("def rgb_to_hsv")) + 2
        similar = await client.call_tool("related", {"file": "repo/colorsys.py", "line": line, "path": "repo", "k": 3})
        assert not similar.is_error, _text(similar)
        symbols = [h["symbol"] for h in similar.structured_content["results"]]
        assert "rgb_to_hsv" not in symbols and set(symbols) <= {"rgb_to_yiq", "yiq_to_rgb", "rgb_to_hls", "hls_to_rgb", "hsv_to_rgb"}

        # a file written after the index was built is found: every search refreshes first
        (root / "distance.py").write_text(
            "def levenshtein(a, b):\n    \"\"\"Edit distance: insertions, deletions and substitutions turning a into b.\"\"\"\n"
            "    row = list(range(len(b) + 1))\n    for i, x in enumerate(a, 1):\n        prev, row[0] = row[0], i\n"
            "        for j, y in enumerate(b, 1):\n            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))\n"
            "    return row[-1]\n")
        fresh = await client.call_tool("search", {"query": "edit distance between two strings", "path": "repo", "k": 1})
        assert fresh.structured_content["results"][0]["symbol"] == "levenshtein", _text(fresh)

    _serve(tmp_path, session)
    assert not (root / ".lctk").exists()  # the index lives under LCTK_INDEX_DIR


def test_compress_fits_the_budget(tmp_path):
    _repo(tmp_path)

    async def session(client: ClientSession):
        return await client.call_tool("compress", {"paths": ["repo/fnmatch.py", "repo/bisect.py"], "budget": 300,
                                                   "query": "translate a shell pattern into a regular expression"})

    result = _serve(tmp_path, session)
    assert not result.is_error, _text(result)
    data = result.structured_content
    context, note = result.content[0].text, result.content[1].text
    assert context == data["text"] and "==> repo/fnmatch.py" in context and "translate" in context
    assert data["tokens"]["budget"] == 300 and 0 < data["tokens"]["output"] <= 300 < data["tokens"]["input"]
    assert note.startswith("lctk: ") and "budget 300" in note
    from lctk.models.loader import load_language_model

    counter, _ = load_language_model("smollm2-135m", "score", "llama")  # the scoring model counts the budget
    assert counter.count_tokens(context) <= 300


@pytest.mark.slow
def test_ask_answers_with_cited_evidence(tmp_path):
    (tmp_path / "library.md").write_text(LIBRARY)

    async def session(client: ClientSession):
        answered = await client.call_tool("ask", {"document": "library.md", "question": "When does the library close on Saturdays?"})
        _error(await client.call_tool("ask", {"document": "library.md", "question": " "}), "empty question")
        again = await client.call_tool("ask", {"document": "library.md", "question": "How many books may a member borrow?"})
        return answered, again

    answered, again = _serve(tmp_path, session)
    assert not answered.is_error, _text(answered)
    data = answered.structured_content
    assert "noon" in data["answer"].lower() and _text(answered).startswith(data["answer"])
    cited = [e for e in data["evidence"] if "Saturdays it closes at noon" in e["text"]]
    assert cited and cited[0]["page"] == "Opening hours"  # evidence names its section
    assert "[Opening hours] On Saturdays it closes at noon" in _text(answered)
    assert not again.is_error and "eight" in again.structured_content["answer"].lower()


def test_without_the_sdk_the_command_says_how_to_install(tmp_path):
    code = "import sys; sys.modules['mcp'] = None; from lctk.cli import main; main(['mcp'])"  # find_spec('mcp') is None
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == "error: the MCP server needs the mcp package: pip install 'lctk[mcp]'"


def test_progress_only_grows_across_stages_and_is_throttled():
    from lctk.cli import mcp_server

    sent: list[tuple[float, float | None, str | None]] = []

    class Recorder:
        async def report_progress(self, value: float, total: float | None = None, message: str | None = None) -> None:
            sent.append((value, total, message))

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        relay = mcp_server.ProgressRelay(Recorder(), loop, "indexing")
        for done in range(0, 101):  # a fast stage: throttled, its end always sent
            relay(done, 100)
        relay(0, 10, "embedding")  # the next stage counts from where the last ended
        relay(10, 10, "embedding")
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert sent[0] == (0, 100, "indexing") and (100, 100, "indexing") in sent and len(sent) < 10
    assert sent[-1] == (110, 110, "embedding")
    values = [value for value, _, _ in sent]
    assert values == sorted(values) and len(set(values)) == len(values)
