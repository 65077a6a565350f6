"""llama.cpp backend (llama-cpp-python): GGUF models, fast CPU generation, streamed log-probs."""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lctk.errors import BackendUnavailableError, ModelError, UsageError, first_line
from lctk.models.chat import prompt_text, stream_text
from lctk.models.gguf import gguf_architecture
from lctk.models.hardware import cpu_count
from lctk.models.protocols import GenerationStats, GenerationStream, Message, Tokenization

DEFAULT_CONTEXT_TOKENS = 8192
MAX_BATCH_TOKENS = 512
LOGITS_BUFFER_FLOATS = 1 << 26  # cap on llama.cpp's per-decode logits buffer: 256 MB of float32
SOFTMAX_ROWS = 32  # rows of logits turned into log-probs at once: bounds the exp() temporary


def import_llama_cpp():
    """Import llama_cpp, or raise BackendUnavailableError with the fix."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the llama backend needs llama-cpp-python ({exc}); fix: pip install llama-cpp-python, "
            "or use --backend torch"
        ) from None
    return llama_cpp


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence llama.cpp's native logging on fd 2 while a model loads."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class LlamaLanguageModel:
    """A GGUF model on llama.cpp implementing the LanguageModel protocol."""

    backend = "llama"

    def __init__(self, path: Path, model_id: str, context_tokens: int | None = None, threads: int | None = None,
                 *, vocab_only: bool = False):
        """Load a GGUF; with vocab_only only its tokenizer (0.1 s, no weights): tokenize, detokenize and chat work."""
        llama_cpp = import_llama_cpp()
        self.model_id = model_id
        self.path = Path(path)
        threads = threads or cpu_count()
        n_ctx = context_tokens or DEFAULT_CONTEXT_TOKENS
        with _quiet_native_stderr():
            try:
                self._llm = llama_cpp.Llama(
                    str(path),
                    n_ctx=n_ctx,
                    n_batch=MAX_BATCH_TOKENS,
                    n_ubatch=MAX_BATCH_TOKENS,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=-1 if llama_cpp.llama_supports_gpu_offload() else 0,
                    logits_all=False,
                    vocab_only=vocab_only,
                    verbose=False,
                )
            except Exception as exc:  # llama.cpp reports every load failure as a bare ValueError
                architecture = gguf_architecture(Path(path)) or "unknown"
                raise ModelError(
                    f"llama.cpp cannot load {path} (architecture '{architecture}'): {first_line(exc)}; "
                    "is the GGUF complete, and is its architecture one llama.cpp supports?"
                ) from None
        n_vocab = self._llm.n_vocab()
        self.max_context_tokens = min(_context_length(self._llm.metadata) or n_ctx, n_ctx)
        # llama.cpp sizes its logits buffer by the outputs a decode asks for: scoring decodes
        # `_chunk` tokens at a time so that buffer stays under LOGITS_BUFFER_FLOATS.
        self._chunk = int(max(32, min(MAX_BATCH_TOKENS, LOGITS_BUFFER_FLOATS // n_vocab)))
        self._llama_cpp = llama_cpp
        self._n_vocab = n_vocab
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm._model.model)
        meta = self._llm.metadata
        self.chat_template = meta.get("tokenizer.chat_template")
        self.bos_token = self._token_text(self._llm.token_bos())
        self.eos_token = self._token_text(self._llm.token_eos())

    def _token_text(self, token_id: int) -> str:
        if token_id < 0:
            return ""
        return self._llm._model.token_get_text(token_id)

    # --- tokens -------------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Return token ids (BOS added when add_special and the model asks for it)."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True)

    def tokenize_with_offsets(self, text: str, add_special: bool = True) -> Tokenization:
        """Return ids and character spans, from the byte length of each token's piece."""
        ids = self.tokenize(text, add_special)
        raw = text.encode("utf-8")
        offsets, byte_pos = [], 0
        for token_id in ids:
            piece = self._piece(token_id)
            start = byte_pos
            if piece and raw.startswith(piece, byte_pos):
                byte_pos += len(piece)
            elif piece.startswith(b" ") and raw.startswith(piece[1:], byte_pos):
                byte_pos += len(piece) - 1  # SentencePiece's leading space at text start
            offsets.append((start, byte_pos))
        return Tokenization(tuple(ids), tuple(_byte_to_char_spans(raw, offsets)))

    def _piece(self, token_id: int) -> bytes:
        """Return the UTF-8 bytes a token stands for (empty for special tokens)."""
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = self._llama_cpp.llama_token_to_piece(self._vocab, token_id, buf, size, 0, False)
            if n >= 0:
                return buf.raw[:n]
            size = -n

    def detokenize(self, ids: Sequence[int]) -> str:
        """Return the text of `ids`, special tokens dropped."""
        return self._llm.detokenize(list(ids), special=False).decode("utf-8", errors="replace")

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens of `text` without BOS."""
        return len(self.tokenize(text, add_special=False))

    # --- scoring ------------------------------------------------------------------------
    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """Return float32 (len(ids),) log p(ids[i] | ids[:i]); index 0 is NaN.

        Decodes in chunks of at most `self._chunk` tokens and reduces each chunk's logits,
        read in place from llama.cpp's buffer, to one log-prob per row: memory stays at one
        chunk of logits whatever the length.
        """
        ids = [int(i) for i in ids]
        n = len(ids)
        out = np.full(n, np.nan, dtype=np.float32)
        if n == 0:
            return out
        self._check_length(n)
        ctx = self._llm._ctx
        batch = self._llm._batch
        ctx.kv_cache_clear()
        self._llm.n_tokens = 0
        try:
            for start in range(0, n, self._chunk):
                chunk = ids[start : start + self._chunk]
                batch.set_batch(batch=chunk, n_past=start, logits_all=True)
                ctx.decode(batch)
                logits = np.ctypeslib.as_array(ctx.get_logits(), shape=(len(chunk), self._n_vocab))
                targets = ids[start + 1 : start + 1 + len(chunk)]  # row r predicts ids[start + r + 1]
                out[start + 1 : start + 1 + len(targets)] = _rows_logprob(logits[: len(targets)], targets)
        finally:
            ctx.kv_cache_clear()
        return out

    def token_logprobs_batch(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Return token_logprobs of each sequence (sequential: llama.cpp gains little from batching here)."""
        return [self.token_logprobs(ids) for ids in batch]

    def _check_length(self, n: int) -> None:
        if n > self.max_context_tokens:
            raise ModelError(
                f"{n} tokens exceed the context of {self.model_id} on llama.cpp ({self.max_context_tokens} tokens)"
            )

    # --- generation ---------------------------------------------------------------------
    def format_chat(self, messages: Sequence[Message]) -> str:
        """Render messages with the model's chat template (plain layout if it has none)."""
        return prompt_text(messages, self.chat_template, self.bos_token, self.eos_token)

    def generate(
        self,
        prompt: str | Sequence[Message],
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        *,
        lookup_tokens: int = 0,
    ) -> GenerationStream:
        """Stream a continuation; greedy when temperature is 0.

        lookup_tokens is accepted and changes nothing here. Drafts checked in one multi-token
        decode would not reproduce one-token greedy decoding: llama.cpp's one-token decode is not
        bit-identical to a multi-token one (the V it writes to the f16 cache rounds differently,
        and with an f32 V cache some positions still differ), and logits move by up to ~1 on
        smollm2-135m. Decoding every step as two or more rows makes drafts exact for its Q4_1
        weights (not for gemma3-270m's Q4_K), but halves greedy speed on CPU, where a decode of
        k+1 tokens costs about k/2+1 one-token decodes.
        """
        if lookup_tokens < 0:
            raise UsageError(f"lookup tokens must be 0 or more, not {lookup_tokens}")
        text = prompt_text(prompt, self.chat_template, self.bos_token, self.eos_token)
        add_bos = not (self.bos_token and text.startswith(self.bos_token))
        ids = self.tokenize(text, add_special=add_bos)
        if len(ids) + max_tokens > self.max_context_tokens:
            raise ModelError(
                f"prompt ({len(ids)} tokens) + max tokens ({max_tokens}) exceed the context of "
                f"{self.model_id} ({self.max_context_tokens} tokens)"
            )
        stats = GenerationStats(prompt_tokens=len(ids))
        return GenerationStream(self._stream(ids, max_tokens, temperature, seed, stats), stats)

    def _stream(self, ids, max_tokens, temperature, seed, stats) -> Iterator[str]:
        started = time.perf_counter()
        self._llm.set_seed(seed)
        self._llm.reset()
        stats.finish_reason = "length"
        if max_tokens <= 0:
            stats.generate_s = time.perf_counter() - started
            return
        tokens = self._llm.generate(
            ids, temp=temperature, top_k=0 if temperature > 0 else 1, top_p=1.0, min_p=0.0,
            repeat_penalty=1.0, reset=True,
        )
        yield from stream_text(tokens, _EndOfGeneration(self._llama_cpp, self._vocab), self.detokenize, max_tokens,
                               stats, started)

    def close(self) -> None:
        """Free the llama.cpp model and context."""
        self._llm.close()


class _EndOfGeneration:
    """`token_id in ...` asks llama.cpp whether the id ends generation (end of text or of turn)."""

    def __init__(self, llama_cpp, vocab):
        self._llama_cpp, self._vocab = llama_cpp, vocab

    def __contains__(self, token_id: object) -> bool:  # Container's signature; a token id in practice
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token_id))


def _context_length(metadata: dict[str, str]) -> int:
    """Return the trained context length recorded in GGUF metadata (0 if absent)."""
    arch = metadata.get("general.architecture", "")
    try:
        return int(metadata.get(f"{arch}.context_length", 0))
    except ValueError:
        return 0


def _rows_logprob(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """Return log_softmax(logits)[r, targets[r]] for each row, a few rows at a time."""
    out = np.empty(len(targets), dtype=np.float32)
    target_arr = np.asarray(targets, dtype=np.int64)
    for start in range(0, len(targets), SOFTMAX_ROWS):
        rows = logits[start : start + SOFTMAX_ROWS]  # (r, V) view into llama.cpp memory
        peak = rows.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(rows - peak).sum(axis=1)) + peak[:, 0]
        picked = rows[np.arange(len(rows)), target_arr[start : start + SOFTMAX_ROWS]]
        out[start : start + len(rows)] = picked - log_norm
    return out


def _byte_to_char_spans(raw: bytes, byte_spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Map byte spans in UTF-8 `raw` to character spans."""
    is_char_start = (np.frombuffer(raw, dtype=np.uint8) & 0xC0) != 0x80
    chars_before = np.concatenate([[0], np.cumsum(is_char_start)])  # (len(raw) + 1,)
    return [(int(chars_before[s]), int(chars_before[e])) for s, e in byte_spans]
