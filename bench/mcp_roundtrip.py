"""Benchmark `lctk mcp`: a warm `search` round trip through MCP against one `python -m lctk search` call.

Usage: python bench/mcp_roundtrip.py [--repo PATH]  (needs the SDK: pip install 'lctk[mcp]')
Source: the stdlib's `json` and `email` packages copied to a temporary directory (or --repo, e.g.
bench/.data/pip-24.2/src/pip, also copied), indexed once with `lctk index --warm`, so every block's
full-model vector is stored and no query in either front end runs the full model over code: both
pay the same per-query work (refresh, embed the query, rank, read the hits' code). MCP: the server
is started and warmed by one search (models loaded, index opened), then 20 different queries go
through the SDK's stdio client one after another (the server refreshes the index before each).
CLI: 5 different queries, one process each, with the same k and context. In process: the same 20
queries as `CodeIndex.refresh()` + `.search()`, what the server does inside a call. Writes the
`mcp` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import write_section

QUERIES = (
    "parse an email message from a string", "encode a header with RFC 2047 encoded words",
    "decode a quoted-printable body", "serialize a Python object to a JSON formatted str",
    "parse a JSON document into Python objects", "format a date for an email Date header",
    "split an address list into name and address pairs", "base64 encode a message payload",
    "walk the parts of a multipart message", "set a parameter of the Content-Type header",
    "escape non-ASCII characters in a JSON string", "detect a circular reference while encoding",
    "generate a unique Message-ID", "fold a long header line", "convert text to the output charset",
    "scan a JSON string literal", "pretty-print JSON with indentation", "parse a date string into a timestamp",
    "attach a file to a MIME message", "policy that controls line length and line separators",
)
K, CONTEXT = 10, 2  # the MCP tool's default context; the CLI gets `-n 2`
CLI_QUERIES = 5


def prepare(work: Path, repo: str | None) -> Path:
    """Copy the source into `work` and build its warm index (under $LCTK_INDEX_DIR); returns the copy."""
    target = work / "repo"
    if repo:
        shutil.copytree(repo, target, ignore=shutil.ignore_patterns(".lctk", "__pycache__"))
    else:
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        for package in ("json", "email"):
            shutil.copytree(stdlib / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lctk", "index", str(target), "--warm"], check=True, capture_output=True, cwd=work)
    print(f"indexed and warmed {target} in {time.perf_counter() - started:.1f} s", flush=True)
    return target


def through_mcp(target: Path) -> dict:
    """Start `lctk mcp`, warm it with one search, then time each query's round trip."""
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "lctk", "mcp"], env=dict(os.environ), cwd=target.parent)
    out: dict = {}

    async def main() -> None:
        started = time.perf_counter()
        with open(os.devnull, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as client:
                    await client.initialize()
                    out["start_s"] = time.perf_counter() - started
                    started = time.perf_counter()
                    await _search(client, "warm the server up", target)
                    out["first_s"] = time.perf_counter() - started
                    times = []
                    for query in QUERIES:
                        started = time.perf_counter()
                        await _search(client, query, target)
                        times.append(time.perf_counter() - started)
                    out["times"] = times

    anyio.run(main)
    return out


async def _search(client, query: str, target: Path) -> None:
    result = await client.call_tool("search", {"query": query, "path": str(target), "k": K, "context": CONTEXT})
    if result.is_error or not result.structured_content["results"]:
        raise SystemExit(f"MCP search {query!r} failed: {result.content[0].text}")


def in_process(target: Path) -> list[float]:
    """What a call does inside the server: refresh the index, then search (models loaded, index open)."""
    from lctk.retrieval.api import CodeIndex

    opened = CodeIndex.open(target)
    opened.search("warm the searcher up", k=K)
    times = []
    for query in QUERIES:
        started = time.perf_counter()
        opened.refresh()
        opened.search(query, k=K)
        times.append(time.perf_counter() - started)
    return times


def through_cli(target: Path) -> list[float]:
    """One `python -m lctk search` process per query, with the MCP tool's k and context."""
    times = []
    for query in QUERIES[:CLI_QUERIES]:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "lctk", "search", query, str(target), "-k", str(K), "-n", str(CONTEXT),
                                 "--format", "json"], capture_output=True, text=True, cwd=target.parent)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"lctk search failed: {result.stderr.strip()}")
    return times


def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.0f}" if seconds >= 1 else f"{1000 * seconds:,.1f}"


def p95(times: list[float]) -> float:
    return sorted(times)[round(0.95 * (len(times) - 1))]


def render(source: str, files: int, lines: int, mcp: dict, inproc: list[float], cli: list[float]) -> str:
    mcp_median, cli_median = statistics.median(mcp["times"]), statistics.median(cli)
    rows = [
        ("MCP `search` round trip, server warm (SDK stdio client)", mcp["times"]),
        ("in process: `CodeIndex.refresh()` + `.search()`", inproc),
        ("CLI: one `python -m lctk search -n 2 --format json` process", cli),
    ]
    body = [
        "## mcp — `python bench/mcp_roundtrip.py`",
        "",
        f"A `search` (k={K}, {CONTEXT} lines of code around each hit) over {source} ({files} files, {lines:,} lines),",
        "indexed and warmed once (`lctk index --warm`), so neither front end runs the full model over code.",
        "Different queries per call; the server refreshes the index before each search, as it always does.",
        "",
        "| front end | queries | median ms | p95 ms |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {len(times)} | {ms(statistics.median(times))} | {ms(p95(times))} |" for name, times in rows),
        "",
        f"**MCP is {cli_median / mcp_median:,.0f}x faster per search than the CLI** (goal: 20x): the server keeps the",
        "embedders loaded and the index open, so a call costs the refresh and the search alone; a CLI call starts",
        f"Python, imports lctk and loads both embedders and the index every time. Starting the server took {mcp['start_s']:.1f} s",
        f"to the end of `initialize`; its first search (loading the models, opening the index) {mcp['first_s']:.1f} s.",
    ]
    return "\n".join(body) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", help="a directory to search instead of the stdlib's json + email")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["LCTK_INDEX_DIR"] = str(work / "indexes")  # the server, the CLI and this process share it
        target = prepare(work, args.repo)
        python = list(target.rglob("*.py"))
        files, lines = len(python), sum(p.read_text(errors="replace").count("\n") for p in python)
        mcp = through_mcp(target)
        print(f"MCP: median {ms(statistics.median(mcp['times']))} ms over {len(mcp['times'])} queries", flush=True)
        inproc = in_process(target)
        cli = through_cli(target)
        print(f"CLI: median {ms(statistics.median(cli))} ms over {len(cli)} queries", flush=True)
    source = f"`{args.repo}`" if args.repo else "the stdlib's `json` and `email` packages"
    text = render(source, files, lines, mcp, inproc, cli)
    print(text)
    write_section(ROOT / "BENCHMARKS.md", "mcp", text)


if __name__ == "__main__":
    main()
