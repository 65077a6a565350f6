"""Write one benchmark's tables into its own marked section of BENCHMARKS.md."""

from __future__ import annotations

import platform
import time
from pathlib import Path


def write_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) the section between `<!-- bench:NAME -->` markers."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = f"_Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {_cores()} cores, Python {platform.python_version()}._"
    block = f"{start}\n{stamp}\n\n{body}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))
