"""The `openai` backend: parsers pinned by server-shaped fixtures, a fake vLLM-shaped server for the
whole path and its failures, and llama-cpp-python's real server against the in-process llama backend."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_lctk

from lctk.models.openai_backend import (
    OpenAIServerModel,
    _byte_decoder,
    parse_echo_logprobs,
    parse_sglang_input_logprobs,
    parse_vllm_prompt_logprobs,
)
from lctk.models.server import ServerError, ServerTarget, display_url, notice_remote

SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"

# --- parsers -------------------------------------------------------------------------------------


def test_vllm_prompt_logprobs_fixture():
    """A /v1/completions reply as vLLM sends it for prompt_logprobs=1: the prompt token's own entry is taken, not the top one."""
    reply = json.loads("""{"id": "cmpl-1", "object": "text_completion", "model": "Qwen/Qwen2.5-Coder-7B",
      "choices": [{"index": 0, "text": " x", "logprobs": null, "finish_reason": "length",
        "prompt_logprobs": [null,
          {"4990": {"logprob": -3.25, "rank": 4, "decoded_token": " add"}, "1": {"logprob": -0.5, "rank": 1, "decoded_token": ","}},
          {"7": {"logprob": -0.125, "rank": 1, "decoded_token": "("}},
          {"64": {"logprob": -7.0, "rank": 90, "decoded_token": "a"}, "65": {"logprob": -0.01, "rank": 1, "decoded_token": "b"}}]}],
      "usage": {"prompt_tokens": 4, "total_tokens": 5, "completion_tokens": 1}}""")
    values = parse_vllm_prompt_logprobs(reply["choices"][0]["prompt_logprobs"], [151643, 4990, 7, 64])
    assert np.isnan(values[0])
    assert values[1:].tolist() == [-3.25, -0.125, -7.0]
    with pytest.raises(ServerError, match="3 prompt log-probs for 4 tokens"):
        parse_vllm_prompt_logprobs(reply["choices"][0]["prompt_logprobs"][:3], [1, 2, 3, 4])


def test_sglang_input_logprobs_fixture():
    rows = [[None, 1, None], [-1.5, 20, None], [-0.25, 30, None]]
    values = parse_sglang_input_logprobs(rows, [1, 20, 30])
    assert np.isnan(values[0]) and values[1:].tolist() == [-1.5, -0.25]


def test_echo_alignment_maps_a_merged_token_by_offset():
    """Ours: 'ab' 'c' 'd'; the server's: 'a' 'bc' 'd' (+ one generated token): spans keep their log-prob sums."""
    text = "abcd"
    ours = np.array([2, 3, 4])  # byte ends of 'ab', 'c', 'd'
    rows = {"tokens": ["a", "bc", "d", "!"], "text_offset": [0, 1, 3, 4], "token_logprobs": [None, -2.0, -1.0, -9.0]}
    values = parse_echo_logprobs(rows, text, ours, first_scored=False)
    assert np.isnan(values[0])  # no context before the first token
    assert values[1:].tolist() == [-2.0, -1.0]  # 'bc' ends inside our 'c'; the generated '!' is cut off


def test_display_url_hides_credentials_and_notice_once(caplog):
    assert display_url("https://user:s3cret@gpu.example:8000/v1") == "https://***@gpu.example:8000/v1"
    with caplog.at_level(logging.WARNING, logger="lctk"):
        notice_remote(ServerTarget("http://127.0.0.1:9/v1"))
        notice_remote(ServerTarget("http://gpu-box.example:8000/v1"))
        notice_remote(ServerTarget("http://gpu-box.example:8000"))
    notes = [r.getMessage() for r in caplog.records if "not on this machine" in r.getMessage()]
    assert len(notes) == 1 and "gpu-box.example" in notes[0]


# --- a fake vLLM-shaped server ----------------------------------------------------------------------

BYTE_CHARS = {byte: char for char, byte in _byte_decoder().items()}


def _fake_logprob(token: int) -> float:
    return -((token % 5) + 0.5)


class FakeVllm(BaseHTTPRequestHandler):
    """Tokens are UTF-8 bytes (id = byte + 3, BOS = 1) shown in byte-level BPE letters, as vLLM's /tokenize shows them."""

    behaviour = "ok"
    models = ["fake/coder-7b"]
    requests: list[tuple[str, dict]] = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "max_model_len": 4096} for m in self.models]})
        else:
            self._send(404, {"detail": "Not Found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        type(self).requests.append((self.path, body))
        if self.behaviour == "slow":
            time.sleep(2)
        if self.behaviour == "error" and self.path != "/tokenize":
            return self._send(500, {"error": {"message": "boom: CUDA out of memory", "type": "InternalServerError"}})
        if self.path == "/tokenize":
            ids = ([1] if body.get("add_special_tokens", True) else []) + [b + 3 for b in body["prompt"].encode()]
            strs = ["<s>" if i == 1 else BYTE_CHARS[i - 3] for i in ids]
            return self._send(200, {"tokens": ids, "token_strs": strs, "count": len(ids), "max_model_len": 4096})
        if self.path == "/v1/completions":
            prompt = body.get("prompt")
            if self.behaviour == "nologprobs" or not isinstance(prompt, list) or "prompt_logprobs" not in body:
                return self._send(200, {"choices": [{"index": 0, "text": "x", "logprobs": None, "finish_reason": "length"}]})
            rows = [None] + [{str(t): {"logprob": _fake_logprob(t), "rank": 2, "decoded_token": "?"},
                              "0": {"logprob": -0.01, "rank": 1, "decoded_token": "!"}} for t in prompt[1:]]
            return self._send(200, {"choices": [{"index": 0, "text": "x", "prompt_logprobs": rows, "finish_reason": "length"}]})
        if self.path == "/v1/chat/completions":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["Hello", " from", " the", " server."]:
                event = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 11, "completion_tokens": 4}}
            self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
            return None
        return self._send(404, {"detail": "Not Found"})


@pytest.fixture
def fake_server():
    FakeVllm.behaviour, FakeVllm.models, FakeVllm.requests = "ok", ["fake/coder-7b"], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVllm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_fake_vllm_scores_tokens_and_offsets(fake_server):
    model = OpenAIServerModel(ServerTarget(fake_server))
    assert (model.model_id, model.backend, model.max_context_tokens) == ("fake/coder-7b", "openai", 4096)
    text = "def café():\n    return 1\n"
    encoded = model.tokenize_with_offsets(text, add_special=False)
    assert list(encoded.ids) == [b + 3 for b in text.encode()]
    # byte tokens of 'é' share its character; every other token covers its own character
    assert "".join(text[s:e] for s, e in encoded.offsets) == text
    ids = model.tokenize(text)
    values = model.token_logprobs(ids)
    assert np.isnan(values[0]) and values[1:].tolist() == [_fake_logprob(t) for t in ids[1:]]
    assert model._scoring == "vllm prompt_logprobs"
    batch = model.token_logprobs_batch([ids, ids[:5], ids[:3]])
    assert [len(v) for v in batch] == [len(ids), 5, 3] and np.allclose(batch[1][1:], values[1:5])


def test_compress_through_the_server_keys_scores_by_served_model(fake_server, tmp_path):
    from lctk.compress.api import compress
    from lctk.score_cache import open_score_cache
    from lctk.sources.text import SourceText

    source = SourceText("calc.py", "python", "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n\n\n"
                        f"TOKEN = '{SECRET}'\n")
    model = OpenAIServerModel(ServerTarget(fake_server))
    cache = open_score_cache(tmp_path / "scores.sqlite")
    result = compress([source], model, query="multiply two numbers", budget_tokens=150, cache=cache)
    assert (result.model, result.backend) == ("fake/coder-7b", "openai")
    assert result.output_tokens <= 150 and result.lm_sequences_scored > 0
    sent = json.dumps(FakeVllm.requests)
    assert SECRET not in sent and "REDACTED" in sent  # compress redacts before it tokenizes or scores
    again = compress([source], model, query="multiply two numbers", budget_tokens=150, cache=cache)
    assert again.lm_cache_hits > 0 and again.lm_sequences_scored == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "scores.sqlite") as db:
        models = {row[0] for row in db.execute("SELECT DISTINCT model FROM scores")}
    assert models == {"fake/coder-7b@openai"}  # never mixed with a local model's scores


def test_cli_generate_and_compress_on_the_server(fake_server, tmp_path):
    result = run_lctk("generate", "--base-url", fake_server, "--format", "json", f"say hi {SECRET}")
    assert result.exit_code == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["text"] == "Hello from the server." and reply["backend"] == "openai"
    assert SECRET not in json.dumps(FakeVllm.requests)  # redacted before it was sent
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n")
    result = run_lctk("compress", str(source), "-q", "multiply", "--budget", "200", "--format", "json", "--retrieval", "bm25",
                      env={"LCTK_BASE_URL": fake_server})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["backend"] == "openai"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("behaviour, env, contains", [
    ("down", {}, "cannot reach the model server"),
    ("slow", {"LCTK_SERVER_TIMEOUT": "0.5"}, "no answer within 0.5 s"),
    ("error", {}, "HTTP 500: boom: CUDA out of memory"),
    ("nologprobs", {}, "returns no prompt log-probs"),
    ("two-models", {}, "serves 2 models"),
])
def test_server_failures_are_one_line(fake_server, tmp_path, behaviour, env, contains):
    url = f"http://127.0.0.1:{_free_port()}/v1" if behaviour == "down" else fake_server
    FakeVllm.behaviour = behaviour
    if behaviour == "two-models":
        FakeVllm.models = ["a", "b"]
    source = tmp_path / "calc.py"
    source.write_text("def add(a, b):\n    return a + b\n")
    result = run_lctk("compress", str(source), "-q", "add", "--retrieval", "bm25", "--base-url", url, env=env)
    assert_one_line_error(result, 2 if behaviour == "two-models" else 1, contains)


def test_bad_base_url_and_openai_without_url():
    assert_one_line_error(run_lctk("generate", "--base-url", "localhost:8000", "hi"), 2, "must be an http(s) URL")
    assert_one_line_error(run_lctk("generate", "--backend", "openai", "hi"), 2, "needs a server")


# --- llama-cpp-python's own server ------------------------------------------------------------------


def _start_server(alias: str, log: Path) -> tuple[subprocess.Popen, str]:
    from lctk.models import registry

    path = registry.resolve_model(alias, registry.LM).path
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "1024", "--n_threads", "1"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    return proc, f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def llama_servers(tmp_path_factory):
    """gemma3-270m (a BOS model) and smollm2-135m (none) on llama-cpp-python's server, started together."""
    pytest.importorskip("llama_cpp.server.app", reason="the server extra: pip install 'llama-cpp-python[server]'")
    logs = tmp_path_factory.mktemp("servers")
    started = {alias: _start_server(alias, logs / f"{alias}.log") for alias in ("gemma3-270m", "smollm2-135m")}
    deadline = time.monotonic() + 120
    for alias, (proc, url) in started.items():
        while True:
            try:
                with urllib.request.urlopen(url + "/models", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{alias} server did not start: {(logs / f'{alias}.log').read_text()[-2000:]}") from None
                time.sleep(0.3)
    yield {alias: url for alias, (_, url) in started.items()}
    for proc, _ in started.values():
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def local_gemma():
    from lctk.models.loader import load_language_model

    return load_language_model("gemma3-270m", "score", "llama")[0]


CODE = "def add(a, b):\n    return a + b\n"


def test_server_prompt_logprobs_equal_in_process(llama_servers, local_gemma):
    """Same token ids -> same numbers: echo + logprobs on a BOS model matches llama.cpp in process."""
    remote = OpenAIServerModel(ServerTarget(llama_servers["gemma3-270m"]))
    ids = remote.tokenize(CODE)
    assert ids == local_gemma.tokenize(CODE)
    assert remote.tokenize_with_offsets(CODE, add_special=False) == local_gemma.tokenize_with_offsets(CODE, add_special=False)
    theirs, ours = remote.token_logprobs(ids), local_gemma.token_logprobs(ids)
    both = ~np.isnan(theirs) & ~np.isnan(ours)
    assert both.sum() >= len(ids) - 2  # the server leaves out the first token after BOS
    assert np.allclose(theirs[both], ours[both], atol=1e-3)
    assert remote._scoring == "echo logprobs"


def test_server_generation_equals_in_process(llama_servers, llama_lm, local_gemma):
    smol = OpenAIServerModel(ServerTarget(llama_servers["smollm2-135m"]))
    chat = [{"role": "user", "content": "Name a fruit."}]
    assert smol.generate(chat, max_tokens=16).text() == llama_lm.generate(chat, max_tokens=16).text()
    assert smol.generate("def fib(n):", max_tokens=16).text() == llama_lm.generate("def fib(n):", max_tokens=16).text()
    gemma = OpenAIServerModel(ServerTarget(llama_servers["gemma3-270m"]))
    assert gemma.generate("The capital of France is", max_tokens=8).text() == \
        local_gemma.generate("The capital of France is", max_tokens=8).text()


def test_server_without_bos_refuses_misaligned_logprobs(llama_servers):
    """llama-cpp-python's server misaligns echoed log-probs when no BOS leads the prompt: one clear line, no wrong numbers."""
    smol = OpenAIServerModel(ServerTarget(llama_servers["smollm2-135m"]))
    with pytest.raises(ServerError, match="misaligns echoed prompt log-probs"):
        smol.token_logprobs(smol.tokenize(CODE))


def test_cli_generate_on_the_server_matches_local(llama_servers):
    remote = run_lctk("generate", "--base-url", llama_servers["smollm2-135m"], "--max-tokens", "12", "Say hello.")
    local = run_lctk("generate", "--backend", "llama", "--max-tokens", "12", "Say hello.")
    assert remote.exit_code == local.exit_code == 0, remote.stderr + local.stderr
    assert remote.stdout == local.stdout and remote.stdout.strip()


def test_server_settings_come_from_a_project_file(tmp_path, monkeypatch):
    from lctk.config import forget_config_files
    from lctk.models.server import server_target

    (tmp_path / ".git").mkdir()
    (tmp_path / "lctk.toml").write_text('base_url = "http://gpu-box:8000/v1"\nserved_model = "coder"\n')
    monkeypatch.chdir(tmp_path)
    for name in ("LCTK_BASE_URL", "LCTK_SERVED_MODEL", "LCTK_SERVER_TOKENIZER"):
        monkeypatch.delenv(name, raising=False)
    forget_config_files()
    try:
        target = server_target()
        assert target is not None and (target.root, target.served_model) == ("http://gpu-box:8000", "coder")
        assert server_target("http://localhost:9/v1", "other").served_model == "other"  # flags win
    finally:
        forget_config_files()


@pytest.mark.slow
def test_ask_retrieves_locally_and_answers_on_the_server(fake_server, tmp_path):
    """Evidence is found by the local attention model; only the answer request goes to the server, redacted."""
    doc = tmp_path / "notes.txt"
    doc.write_text("The deploy key is " + SECRET + ".\n\nThe vault opens with code 4417. The garden has three gates.\n")
    result = run_lctk("ask", str(doc), "Which code opens the vault?", "--no-check", "--format", "json", "-n", "16",
                      "--base-url", fake_server)
    assert result.exit_code == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["answer"] == "Hello from the server."
    paths = [path for path, _ in FakeVllm.requests]
    assert "/v1/chat/completions" in paths and "/v1/completions" not in paths  # no scoring, no attention remotely
    sent = json.dumps([body for path, body in FakeVllm.requests if path == "/v1/chat/completions"])
    assert "4417" in sent and SECRET not in sent
