"""Benchmark the `openai` backend against llama-cpp-python's own server, beside the in-process llama backend.

Usage: python bench/server_backend.py [--chunks 4] [--prompts 5]  (needs pip install 'lctk[server]')

Starts `python -m llama_cpp.server` on 127.0.0.1 for gemma3-270m (a BOS model, whose echoed prompt
log-probs llama-cpp-python gets right) and smollm2-135m, each with 2 threads, and measures:

- prompt log-probs of functions from lctk's own source: the largest difference between the
  server's numbers and llama.cpp in process on the same token ids, and the seconds per token of each;
- greedy generation (chat) of a few prompts with smollm2: identical text, and tokens per second of each.

Writes the `server` section of BENCHMARKS.md. Not a test of vLLM (no GPU here): the vLLM path is
covered by the response fixtures and the fake server in tests/test_openai_backend.py.
"""

from __future__ import annotations

import argparse
import ast
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import write_section  # noqa: E402

PROMPTS = ["Name a fruit.", "What is a Python list?", "Say hello in French.", "Write a haiku about code.",
           "What does HTTP stand for?", "Give one use of a hash map.", "What is 2 + 2?"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(path: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/models", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server for {path.name} did not start; see {log}") from None
            time.sleep(0.3)


def functions(count: int) -> list[str]:
    """The first `count` top-level functions of 5-12 lines in lctk/sources (real code, short enough for the slow echo)."""
    found = []
    for path in sorted((ROOT / "lctk" / "sources").glob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and 5 <= (node.end_lineno or 0) - node.lineno + 1 <= 12:
                found.append("\n".join(lines[node.lineno - 1 : node.end_lineno]) + "\n")
                if len(found) == count:
                    return found
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=5)
    args = parser.parse_args()
    from lctk.models import registry
    from lctk.models.loader import load_language_model
    from lctk.models.openai_backend import OpenAIServerModel
    from lctk.models.server import ServerTarget

    logs = Path(tempfile.mkdtemp(prefix="lctk-bench-server-"))
    procs = []
    try:
        gemma_proc, gemma_url = start(registry.resolve_model("gemma3-270m").path, logs / "gemma.log")
        procs.append(gemma_proc)
        smol_proc, smol_url = start(registry.resolve_model("smollm2-135m").path, logs / "smol.log")
        procs.append(smol_proc)

        remote = OpenAIServerModel(ServerTarget(gemma_url))
        local = load_language_model("gemma3-270m", "score", "llama")[0]
        remote.token_logprobs(remote.tokenize("x = 1\n"))  # the one-time probe, outside the timing
        diffs, tokens, remote_s, local_s, same_ids = [], 0, 0.0, 0.0, 0
        for chunk in functions(args.chunks):
            ids = remote.tokenize(chunk)
            same_ids += ids == local.tokenize(chunk)
            started = time.perf_counter()
            theirs = remote.token_logprobs(ids)
            remote_s += time.perf_counter() - started
            started = time.perf_counter()
            ours = local.token_logprobs(ids)
            local_s += time.perf_counter() - started
            both = ~np.isnan(theirs) & ~np.isnan(ours)
            diffs.append(float(np.max(np.abs(theirs[both] - ours[both]))))
            tokens += len(ids)
        print(f"log-probs: {args.chunks} functions, {tokens} tokens, max |diff| {max(diffs):.2e}, "
              f"server {remote_s / tokens * 1000:.0f} ms/token, in process {local_s / tokens * 1000:.2f} ms/token")

        smol_remote = OpenAIServerModel(ServerTarget(smol_url))
        smol_local = load_language_model("smollm2-135m", "generate", "llama")[0]
        same, r_tokens, r_s, l_tokens, l_s = 0, 0, 0.0, 0, 0.0
        for prompt in PROMPTS[: args.prompts]:
            chat = [{"role": "user", "content": prompt}]
            stream = smol_remote.generate(chat, max_tokens=64)
            remote_text = stream.text()
            r_s += stream.stats.generate_s
            r_tokens += stream.stats.completion_tokens
            stream = smol_local.generate(chat, max_tokens=64)
            local_text = stream.text()
            l_s += stream.stats.generate_s
            l_tokens += stream.stats.completion_tokens
            same += remote_text == local_text
        print(f"generation: {same}/{args.prompts} identical, server {r_tokens / r_s:.1f} tok/s, in process {l_tokens / l_s:.1f} tok/s")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)

    body = (
        "`python bench/server_backend.py` — the `openai` backend against llama-cpp-python's own server "
        f"(`python -m llama_cpp.server`, {os.cpu_count()} cores, 2 threads per server), beside the llama backend in process, same GGUF.\n\n"
        "| check | server (openai backend) | in process (llama) | agreement |\n|---|---|---|---|\n"
        f"| prompt log-probs, gemma3-270m, {args.chunks} functions ({tokens} tokens) | {remote_s / tokens * 1000:.0f} ms/token "
        f"| {local_s / tokens * 1000:.2f} ms/token | same ids {same_ids}/{args.chunks}; max abs diff {max(diffs):.1e} nats |\n"
        f"| greedy chat, smollm2-135m, {args.prompts} prompts x 64 tokens | {r_tokens / r_s:.1f} tok/s | {l_tokens / l_s:.1f} tok/s "
        f"| identical text {same}/{args.prompts} |\n\n"
        "llama-cpp-python's server computes echoed log-probs in Python, sorting the whole vocabulary for every "
        "prompt token (262k entries for Gemma 3), hence its cost per token: it is a correctness reference here, not "
        "a scoring server — vLLM or SGLang return prompt log-probs from the GPU batch. It also pairs each echoed "
        "token with the wrong position when the model adds no BOS token (SmolLM2), so lctk refuses to score there "
        "(tests/test_openai_backend.py). Generation through the server costs the HTTP stream and the server's own "
        "sampling loop.\n"
    )
    write_section(ROOT / "BENCHMARKS.md", "server", body)


if __name__ == "__main__":
    main()
