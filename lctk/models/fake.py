"""Deterministic stand-ins for unit tests of pure algorithm pieces (never used by the CLI)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from lctk.models.chat import prompt_text
from lctk.models.protocols import GenerationStats, GenerationStream, Message, Tokenization

_TOKEN = re.compile(r"\s*\S+|\s+")


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class FakeLanguageModel:
    """Whitespace tokens; a token's log-prob falls when it repeats the previous token's text."""

    backend = "fake"
    max_context_tokens = 1 << 16
    chat_template = None
    bos_token = eos_token = ""

    # Shared by all instances so ids mean the same piece everywhere in a test session.
    _vocab: dict[str, int] = {}
    _text: list[str] = []

    def __init__(self, model_id: str = "fake"):
        self.model_id = model_id

    def _id(self, piece: str) -> int:
        if piece not in self._vocab:
            self._vocab[piece] = len(self._text)
            self._text.append(piece)
        return self._vocab[piece]

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Split into whitespace-led pieces."""
        return [self._id(m.group()) for m in _TOKEN.finditer(text)]

    def tokenize_with_offsets(self, text: str, add_special: bool = True) -> Tokenization:
        """Return pieces with their exact spans."""
        matches = list(_TOKEN.finditer(text))
        return Tokenization(tuple(self._id(m.group()) for m in matches), tuple(m.span() for m in matches))

    def detokenize(self, ids: Sequence[int]) -> str:
        """Join pieces back."""
        return "".join(self._text[i] for i in ids)

    def count_tokens(self, text: str) -> int:
        """Count pieces."""
        return len(self.tokenize(text))

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """Deterministic log-probs in [-8, -0.1]; a repeated previous token is likelier."""
        out = np.full(len(ids), np.nan, dtype=np.float32)
        for i in range(1, len(ids)):
            seen_before = ids[i] in ids[:i]
            base = (_stable_hash(self._text[ids[i]]) % 1000) / 1000.0
            out[i] = -0.1 - (2.0 if seen_before else 8.0) * base
        return out

    def token_logprobs_batch(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Score each sequence."""
        return [self.token_logprobs(ids) for ids in batch]

    def format_chat(self, messages: Sequence[Message]) -> str:
        """Plain layout."""
        return prompt_text(messages, None, "", "")

    def generate(
        self,
        prompt: str | Sequence[Message],
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        *,
        lookup_tokens: int = 0,
    ) -> GenerationStream:
        """Echo the prompt's last words back, up to max_tokens pieces (lookup_tokens changes nothing)."""
        text = prompt_text(prompt, None, "", "")
        pieces = [m.group() for m in _TOKEN.finditer(text)][-max_tokens:] if max_tokens > 0 else []
        stats = GenerationStats(prompt_tokens=self.count_tokens(text), completion_tokens=len(pieces), finish_reason="stop")
        return GenerationStream(iter(pieces), stats)


class FakeEmbedder:
    """Hashed bag of lower-cased words, L2-normalised."""

    def __init__(self, dim: int = 64, model_id: str = "fake-embed"):
        self.dim = dim
        self.model_id = model_id
        self.fingerprint = "fake"
        self.max_tokens = 512
        self.embedded = 0  # texts embedded so far (tests count work)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Words (runs of word characters) per text."""
        return [len(re.findall(r"\w+", text)) for text in texts]

    def cut_text(self, text: str, limit: int) -> list[tuple[str, int]]:
        """Cut after every `limit` words."""
        words = list(re.finditer(r"\w+", text))
        if len(words) <= limit:
            return [(text, len(words))]
        starts = [0] + [words[i].start() for i in range(limit, len(words), limit)]
        ends = starts[1:] + [len(text)]
        return [(text[a:b], len(re.findall(r"\w+", text[a:b]))) for a, b in zip(starts, ends)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 (len(texts), dim) unit vectors (zero text gives a zero row)."""
        self.embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, _stable_hash(word) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)
