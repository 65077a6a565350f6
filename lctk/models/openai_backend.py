"""The `openai` backend: a LanguageModel served by an OpenAI-compatible server (vLLM, SGLang, llama.cpp, ollama).

What each operation needs from the server, and how it is asked:

- generation: `/v1/chat/completions` for messages, `/v1/completions` for a plain prompt, streamed.
- compress scoring: per-token log-probs of the *prompt*. The server is probed once, on first
  use, in this order: vLLM's `prompt_logprobs` on token-id prompts (`/v1/completions`), SGLang's
  `/generate` with `return_logprob` and `logprob_start_len=0`, then `echo` + `logprobs`
  (llama-cpp-python's server; the echoed tokens are aligned back to lctk's by their text
  offsets). A server that does none (llama.cpp's llama-server, ollama, OpenAI) fails with one
  line naming the servers that can.
- tokens: a local tokenizer of the same model when one is named (`--server-tokenizer`) or the
  served model id is a file on this machine (llama-cpp-python's server names its model by path),
  else the server's own route: vLLM `/tokenize`, llama-cpp-python `/extras/tokenize`.
- attention (InfiniRetri): no server returns attention weights, so `ask` keeps its retrieval on a
  local torch model and only the answer goes to the server.

Scores are cached under `<served model id>@openai`, never mixed with a local model's. Likely
secrets are replaced before a chat message or prompt text is sent (compress redacts its sources
before it scores them).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lctk.errors import ModelError, UsageError
from lctk.models.chat import prompt_text
from lctk.models.protocols import GenerationStats, GenerationStream, Message, Tokenization
from lctk.models.server import ServerClient, ServerError, ServerTarget, notice_remote
from lctk.sources.secrets import redact_text

log = logging.getLogger("lctk")

DEFAULT_CONTEXT_TOKENS = 8192  # when the server does not say (vLLM reports max_model_len; others do not)
PARALLEL_REQUESTS = 8  # sequences scored at once: vLLM/SGLang batch them on the GPU; llama.cpp queues them
PROBE_TEXT = "x = 1\n"  # short: llama-cpp-python spends ~0.5 s per echoed token on a 262k vocabulary
CAN_SCORE = "vLLM, SGLang and llama-cpp-python's server return them (llama.cpp's llama-server, ollama and OpenAI do not)"
VLLM, SGLANG, ECHO = "vllm prompt_logprobs", "sglang return_logprob", "echo logprobs"


class OpenAIServerModel:
    """A model on an OpenAI-compatible server, implementing the LanguageModel protocol."""

    backend = "openai"

    def __init__(self, target: ServerTarget):
        self.target = target
        self.client = ServerClient(target)
        notice_remote(target)
        served, context = self._pick_model()
        self.model_id = served  # the score cache keys by f"{model_id}@openai": never a local model's scores
        self.max_context_tokens = context or DEFAULT_CONTEXT_TOKENS
        self.chat_template = None
        self._lock = threading.RLock()  # the probe tokenizes while it holds the lock
        self._scoring: str | None = None
        self._tokens: _Tokens | None = None

    # --- which model -------------------------------------------------------------------
    def _pick_model(self) -> tuple[str, int | None]:
        listing = self.client.get("/v1/models")
        models = [m for m in (listing.get("data") or []) if isinstance(m, dict) and m.get("id")] if isinstance(listing, dict) else []
        ids = [str(m["id"]) for m in models]
        wanted = self.target.served_model
        if wanted is None:
            if len(ids) != 1:
                listed = ", ".join(ids[:8]) if ids else "none"
                raise UsageError(f"the model server at {self.target.shown} serves {len(ids)} models ({listed}); "
                                 "pick one with --served-model (or LCTK_SERVED_MODEL)")
            wanted = ids[0]
        elif ids and wanted not in ids:
            raise UsageError(f"the model server at {self.target.shown} does not serve '{wanted}'; it serves {', '.join(ids[:8])}")
        entry = next((m for m in models if m["id"] == wanted), {})
        context = entry.get("max_model_len") or entry.get("context_length") or (entry.get("meta") or {}).get("n_ctx_train")
        return wanted, int(context) if isinstance(context, (int, float)) and context > 0 else None

    @functools.cached_property
    def is_llama_cpp_python(self) -> bool:
        """Whether the server is llama-cpp-python's (its /extras routes), whose quirks lctk works around."""
        reply = self.client.try_post("/extras/tokenize", {"model": self.model_id, "input": ""})
        return isinstance(reply, dict) and isinstance(reply.get("tokens"), list)

    # --- tokens -------------------------------------------------------------------------
    @property
    def tokens(self) -> _Tokens:
        with self._lock:
            if self._tokens is None:
                self._tokens = _tokens_for(self)
            return self._tokens

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return self.tokens.ids(text, add_special)

    def tokenize_with_offsets(self, text: str, add_special: bool = True) -> Tokenization:
        ids = self.tokens.ids(text, add_special)
        raw = text.encode("utf-8")
        spans = _align(raw, self.tokens.pieces(ids))
        return Tokenization(tuple(ids), tuple(_char_spans(raw, spans)))

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokens.text(list(ids))

    def count_tokens(self, text: str) -> int:
        return len(self.tokens.ids(text, False))

    def format_chat(self, messages: Sequence[Message]) -> str:
        """A plain layout: the server applies its own chat template to chat requests."""
        return prompt_text(messages, None, "", "")

    # --- scoring ------------------------------------------------------------------------
    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """log p(ids[i] | ids[:i]) from the server; position 0 (and any the server leaves out) is NaN."""
        ids = [int(i) for i in ids]
        if not ids:
            return np.full(0, np.nan, dtype=np.float32)
        if len(ids) > self.max_context_tokens:
            raise ModelError(f"{len(ids)} tokens exceed the context of {self.model_id} on the server ({self.max_context_tokens} tokens)")
        mode = self._scoring_mode()
        if mode == VLLM:
            return self._vllm(ids)
        if mode == SGLANG:
            return self._sglang(ids)
        return self._echo(ids)

    def token_logprobs_batch(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Score the sequences concurrently: a batching server (vLLM, SGLang) runs them together."""
        if len(batch) <= 1:
            return [self.token_logprobs(ids) for ids in batch]
        self._scoring_mode()  # probe once, before the threads
        with ThreadPoolExecutor(min(PARALLEL_REQUESTS, len(batch))) as pool:
            return list(pool.map(self.token_logprobs, batch))

    def _scoring_mode(self) -> str:
        with self._lock:
            if self._scoring is None:
                self._scoring = self._probe()
                log.debug("prompt log-probs from %s via %s", self.target.shown, self._scoring)
            return self._scoring

    def _probe(self) -> str:
        """Find how this server returns prompt log-probs (once)."""
        ids = self.tokenize(PROBE_TEXT, add_special=True)
        reply = self.client.try_post("/v1/completions", self._vllm_body(ids))
        if _vllm_rows(reply) is not None:
            return VLLM
        reply = self.client.try_post("/generate", _sglang_body(ids))
        if isinstance(reply, dict) and isinstance(reply.get("meta_info", {}).get("input_token_logprobs"), list):
            return SGLANG
        reply = self.client.try_post("/v1/completions", self._echo_body(PROBE_TEXT))
        if _echo_rows(reply) is not None:
            if self.is_llama_cpp_python and not self.tokens.adds_bos:
                # llama-cpp-python's server (<= 0.3.36) pairs echoed token i with the distribution that
                # predicts token i+1 unless the prompt starts with BOS: its numbers would be wrong.
                raise ServerError(
                    f"llama-cpp-python's server at {self.target.shown} misaligns echoed prompt log-probs for models "
                    f"without a BOS token ({self.model_id}); score with vLLM or SGLang, a BOS model, or a local model")
            return ECHO
        raise ServerError(f"the model server at {self.target.shown} returns no prompt log-probs, which compress scoring "
                          f"needs; {CAN_SCORE}; or score with a local model (--backend auto)")

    def _vllm_body(self, ids: list[int]) -> dict[str, Any]:
        return {"model": self.model_id, "prompt": ids, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}

    def _echo_body(self, text: str) -> dict[str, Any]:
        # max_tokens 1, not 0: llama-cpp-python reads 0 as "until the context is full"
        return {"model": self.model_id, "prompt": text, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 0}

    def _vllm(self, ids: list[int]) -> np.ndarray:
        rows = _vllm_rows(self.client.post("/v1/completions", self._vllm_body(ids)))
        if rows is None:
            raise ServerError(f"the model server at {self.target.shown} stopped returning prompt_logprobs")
        return parse_vllm_prompt_logprobs(rows, ids)

    def _sglang(self, ids: list[int]) -> np.ndarray:
        reply = self.client.post("/generate", _sglang_body(ids))
        rows = reply.get("meta_info", {}).get("input_token_logprobs") if isinstance(reply, dict) else None
        if not isinstance(rows, list):
            raise ServerError(f"the model server at {self.target.shown} stopped returning input_token_logprobs")
        return parse_sglang_input_logprobs(rows, ids)

    def _echo(self, ids: list[int]) -> np.ndarray:
        """Send the text of `ids`, let the server tokenize it again, and map its tokens back onto ours by offset."""
        bos = self.tokens.bos
        body_ids = ids[1:] if bos is not None and ids[0] == bos else ids
        pieces = self.tokens.pieces(body_ids)
        raw = b"".join(pieces)
        text = raw.decode("utf-8", errors="replace")
        rows = _echo_rows(self.client.post("/v1/completions", self._echo_body(text)))
        if rows is None:
            raise ServerError(f"the model server at {self.target.shown} stopped returning echoed log-probs")
        ours = np.cumsum([len(p) for p in pieces])  # byte end of each of our tokens
        values = parse_echo_logprobs(rows, text, ours, first_scored=bos is not None and ids[0] == bos)
        out = np.full(len(ids), np.nan, dtype=np.float32)
        out[len(ids) - len(body_ids):] = values
        return out

    # --- generation ---------------------------------------------------------------------
    def generate(self, prompt: str | Sequence[Message], max_tokens: int = 256, temperature: float = 0.0, seed: int = 0,
                 *, lookup_tokens: int = 0) -> GenerationStream:
        """Stream the server's continuation; lookup_tokens is the server's business (accepted, unused)."""
        if lookup_tokens < 0:
            raise UsageError(f"lookup tokens must be 0 or more, not {lookup_tokens}")
        body: dict[str, Any] = {"model": self.model_id, "max_tokens": max_tokens, "temperature": temperature,
                                "seed": seed, "stream_options": {"include_usage": True}}
        if self.is_llama_cpp_python:
            body["repeat_penalty"] = 1.0  # its default is 1.1; lctk decodes plainly (same text as the llama backend)
        if isinstance(prompt, str):
            path, body["prompt"] = "/v1/completions", redact_text(prompt).text
        else:
            path = "/v1/chat/completions"
            body["messages"] = [{"role": m["role"], "content": redact_text(m["content"]).text} for m in prompt]
        stats = GenerationStats()
        return GenerationStream(self._stream(path, body, stats), stats)

    def _stream(self, path: str, body: dict[str, Any], stats: GenerationStats) -> Iterator[str]:
        started = time.perf_counter()
        stats.finish_reason = "length"
        if body["max_tokens"] <= 0:
            stats.generate_s = time.perf_counter() - started
            return
        pieces = 0
        for event in self.client.stream(path, body):
            usage = event.get("usage") if isinstance(event, dict) else None
            if isinstance(usage, dict):
                stats.prompt_tokens = int(usage.get("prompt_tokens") or stats.prompt_tokens)
                stats.completion_tokens = int(usage.get("completion_tokens") or stats.completion_tokens)
            for choice in (event.get("choices") or []) if isinstance(event, dict) else []:
                delta = choice.get("delta") or {}
                piece = delta.get("content") if "delta" in choice else choice.get("text")
                if piece:
                    if pieces == 0:
                        stats.prompt_s = time.perf_counter() - started
                    pieces += 1
                    yield piece
                reason = choice.get("finish_reason")
                if reason:
                    stats.finish_reason = "stop" if reason in ("stop", "eos", "end_turn") else "length"
        stats.completion_tokens = stats.completion_tokens or pieces
        stats.generate_s = time.perf_counter() - started

    def close(self) -> None:
        """Nothing to free: the server keeps the model."""


# --- parsers (pure functions: the fixtures in tests/test_openai_backend.py pin them) ----------------


def _vllm_rows(reply: Any) -> list | None:
    try:
        rows = reply["choices"][0]["prompt_logprobs"]
    except (KeyError, IndexError, TypeError):
        return None
    return rows if isinstance(rows, list) else None


def parse_vllm_prompt_logprobs(rows: list, ids: Sequence[int]) -> np.ndarray:
    """vLLM's prompt_logprobs: per prompt token None (the first) or {"<token id>": {"logprob": x, ...}, ...}.

    Each dict holds the prompt token itself plus the top-k others; the prompt token's entry is taken.
    """
    if len(rows) != len(ids):
        raise ServerError(f"the server returned {len(rows)} prompt log-probs for {len(ids)} tokens")
    out = np.full(len(ids), np.nan, dtype=np.float32)
    for i, (row, token) in enumerate(zip(rows, ids)):
        if not row:
            continue
        entry = row.get(str(token), row.get(token)) if isinstance(row, dict) else None
        value = entry.get("logprob") if isinstance(entry, dict) else entry
        if isinstance(value, (int, float)):
            out[i] = value
    return out


def _sglang_body(ids: list[int]) -> dict[str, Any]:
    return {"input_ids": ids, "sampling_params": {"max_new_tokens": 0, "temperature": 0.0},
            "return_logprob": True, "logprob_start_len": 0}


def parse_sglang_input_logprobs(rows: list, ids: Sequence[int]) -> np.ndarray:
    """SGLang's meta_info.input_token_logprobs: [logprob, token_id, text?] per prompt token from logprob_start_len."""
    out = np.full(len(ids), np.nan, dtype=np.float32)
    offset = len(ids) - len(rows)  # rows cover the last len(rows) tokens
    if offset < 0:
        raise ServerError(f"the server returned {len(rows)} prompt log-probs for {len(ids)} tokens")
    for i, row in enumerate(rows):
        value = row[0] if isinstance(row, (list, tuple)) and row else None
        if isinstance(value, (int, float)):
            out[offset + i] = value
    return out


def _echo_rows(reply: Any) -> dict | None:
    try:
        logprobs = reply["choices"][0]["logprobs"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(logprobs, dict) or not isinstance(logprobs.get("token_logprobs"), list):
        return None
    return logprobs


def parse_echo_logprobs(rows: dict, text: str, our_ends: np.ndarray, first_scored: bool) -> np.ndarray:
    """Map an echo reply ({tokens, token_logprobs, text_offset}, prompt first) onto our tokens.

    `our_ends` holds the byte end of each of our tokens in `text`. Each server token's log-prob
    goes to our token holding the server token's last byte, so the log-prob of any span of text
    is the same on both sides; when both tokenize alike (the usual case) it is one to one. The
    reply goes one token past the prompt (max_tokens 1), which is cut off. Our first token
    has no context (NaN) unless a BOS token came before it (`first_scored`).
    """
    raw = text.encode("utf-8")
    chars_before = _chars_to_bytes(text)
    values = rows.get("token_logprobs") or []
    offsets = rows.get("text_offset") or []
    tokens = rows.get("tokens") or []
    out = np.zeros(len(our_ends), dtype=np.float32)
    for i, value in enumerate(values):
        if i >= len(offsets) or i >= len(tokens):
            break
        start = chars_before[min(int(offsets[i]), len(text))]
        if start >= len(raw):
            break  # the generated token after the prompt
        end = min(start + len(str(tokens[i]).encode("utf-8")), len(raw))
        ours = int(np.searchsorted(our_ends, max(end, start + 1), side="left"))
        if ours >= len(our_ends):
            continue
        # None: the server gives no number (the first token); a token of ours inside a longer server
        # token keeps 0.0, its share having gone to the token that holds the end
        out[ours] = np.nan if value is None else out[ours] + float(value)
    if len(out) and not first_scored:
        out[0] = np.nan
    return out


def _chars_to_bytes(text: str) -> list[int]:
    """Byte offset in UTF-8 of each character offset 0..len(text)."""
    positions, total = [0], 0
    for char in text:
        total += len(char.encode("utf-8"))
        positions.append(total)
    return positions


def _align(raw: bytes, pieces: Sequence[bytes]) -> list[tuple[int, int]]:
    """Byte span of each token piece in `raw`, tolerant of pieces that do not match (unknown or merged bytes)."""
    spans, position = [], 0
    for piece in pieces:
        if piece and raw.startswith(piece, position):
            spans.append((position, position + len(piece)))
            position += len(piece)
        elif piece.startswith(b" ") and raw.startswith(piece[1:], position) and len(piece) > 1:
            spans.append((position, position + len(piece) - 1))  # SentencePiece's leading space at text start
            position += len(piece) - 1
        else:
            found = raw.find(piece, position, position + len(piece) + 8) if piece else -1
            if found >= 0:
                spans.append((position, found + len(piece)))  # bytes skipped belong to this token
                position = found + len(piece)
            else:
                spans.append((position, position))
    return spans


def _char_spans(raw: bytes, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    is_start = (np.frombuffer(raw, dtype=np.uint8) & 0xC0) != 0x80
    before = np.concatenate([[0], np.cumsum(is_start)])
    return [(int(before[s]), int(before[e])) for s, e in spans]


# --- tokenizers ------------------------------------------------------------------------------------


class _Tokens:
    """Token ids and the bytes of each token for the served model."""

    kind = "local"
    bos: int | None = None

    @property
    def adds_bos(self) -> bool:
        return self.bos is not None

    def ids(self, text: str, add_special: bool) -> list[int]:
        raise NotImplementedError

    def pieces(self, ids: Sequence[int]) -> list[bytes]:
        raise NotImplementedError

    def text(self, ids: list[int]) -> str:
        return b"".join(self.pieces([i for i in ids if i != self.bos])).decode("utf-8", errors="replace")


class _LocalGguf(_Tokens):
    def __init__(self, path: Path, model_id: str):
        from lctk.models.llama_backend import LlamaLanguageModel

        self._model = LlamaLanguageModel(path, model_id, vocab_only=True)
        bos = self._model.tokenize("", add_special=True)
        self.bos = bos[0] if bos else None

    def ids(self, text: str, add_special: bool) -> list[int]:
        return self._model.tokenize(text, add_special)

    def pieces(self, ids: Sequence[int]) -> list[bytes]:
        return [self._model._piece(i) for i in ids]


class _LocalTokenizerJson(_Tokens):
    def __init__(self, path: Path):
        from lctk.models.weights import read_tokenizer_json

        self._tok = read_tokenizer_json(path)
        with_special = self._tok.encode("", add_special_tokens=True).ids
        self.bos = with_special[0] if with_special else None

    def ids(self, text: str, add_special: bool) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special).ids)

    def pieces(self, ids: Sequence[int]) -> list[bytes]:
        return [_piece_bytes(self._tok.id_to_token(i) or "") if i != self.bos else b"" for i in ids]


class _ServerTokens(_Tokens):
    """The server's tokenize route: vLLM's /tokenize (with token strings) or llama-cpp-python's /extras/tokenize."""

    def __init__(self, model: OpenAIServerModel):
        self._model = model
        self._client = model.client
        self._pieces: dict[int, bytes] = {}
        reply = self._client.try_post("/tokenize", {"model": model.model_id, "prompt": "", "add_special_tokens": True})
        if isinstance(reply, dict) and isinstance(reply.get("tokens"), list):
            self.kind = "vllm"
            first = reply["tokens"]
        else:
            reply = self._client.try_post("/extras/tokenize", {"model": model.model_id, "input": ""})
            if not (isinstance(reply, dict) and isinstance(reply.get("tokens"), list)):
                raise ServerError(
                    f"the model server at {model.target.shown} has no tokenize route (vLLM's /tokenize, llama-cpp-python's "
                    "/extras/tokenize); pass the served model's tokenizer with --server-tokenizer (a .gguf, tokenizer.json "
                    "or transformers directory)")
            self.kind = "llama-cpp-python"
            first = reply["tokens"]
        self.bos = int(first[0]) if first else None

    def ids(self, text: str, add_special: bool) -> list[int]:
        if self.kind == "vllm":
            reply = self._client.post("/tokenize", {"model": self._model.model_id, "prompt": text,
                                                    "add_special_tokens": add_special, "return_token_strs": True})
            tokens = [int(t) for t in reply.get("tokens", [])]
            for token, piece in zip(tokens, reply.get("token_strs") or []):
                self._pieces.setdefault(token, _piece_bytes(str(piece)))
            return tokens
        tokens = [int(t) for t in self._client.post("/extras/tokenize", {"model": self._model.model_id, "input": text})["tokens"]]
        if not add_special and self.bos is not None and tokens[:1] == [self.bos]:
            tokens = tokens[1:]  # the route always adds BOS for a model that uses one
        return tokens

    def pieces(self, ids: Sequence[int]) -> list[bytes]:
        missing = sorted({int(i) for i in ids} - self._pieces.keys())
        if missing:
            with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
                for token, piece in zip(missing, pool.map(self._detokenize_one, missing)):
                    self._pieces[token] = piece
        return [b"" if i == self.bos else self._pieces[int(i)] for i in ids]

    def _detokenize_one(self, token: int) -> bytes:
        if self.kind == "vllm":
            reply = self._client.try_post("/detokenize", {"model": self._model.model_id, "tokens": [token]})
            text = reply.get("prompt") if isinstance(reply, dict) else None
        else:
            reply = self._client.try_post("/extras/detokenize", {"model": self._model.model_id, "tokens": [token]})
            text = reply.get("text") if isinstance(reply, dict) else None
        return text.encode("utf-8") if isinstance(text, str) else b""  # part of a character: aligned by position


def _tokens_for(model: OpenAIServerModel) -> _Tokens:
    """A local tokenizer when one is named or the served model is a file here; else the server's route."""
    name = model.target.tokenizer
    if name is None:
        path = Path(model.model_id).expanduser()
        if path.is_file() and path.suffix.lower() == ".gguf":
            name = str(path)  # llama-cpp-python's server names its model by the path it loaded
    if name is None:
        return _ServerTokens(model)
    path = Path(name).expanduser()
    if path.is_dir() and (path / "tokenizer.json").is_file():
        path = path / "tokenizer.json"
    if path.is_file() and path.suffix.lower() == ".json":
        return _LocalTokenizerJson(path)
    from lctk.models import registry

    source = registry.resolve_model(name, registry.LM)
    if source.fmt == registry.GGUF:
        return _LocalGguf(source.path, source.model_id)
    tokenizer_json = Path(source.path) / "tokenizer.json"
    if tokenizer_json.is_file():
        return _LocalTokenizerJson(tokenizer_json)
    raise ModelError(f"cannot use {name} as the served model's tokenizer: pass a .gguf, a tokenizer.json or a directory holding one")


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet: the printable character standing for each byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes)}


def _piece_bytes(token: str) -> bytes:
    """The bytes a vocabulary entry stands for: byte-level BPE (Ġ for space), SentencePiece (▁, <0x0A>) or plain text."""
    if token.startswith("<0x") and token.endswith(">") and len(token) == 6:
        try:
            return bytes([int(token[3:5], 16)])
        except ValueError:
            pass
    if "▁" in token:
        return token.replace("▁", " ").encode("utf-8")
    decoder = _byte_decoder()
    if all(char in decoder for char in token):
        return bytes(decoder[char] for char in token)
    return token.encode("utf-8")
