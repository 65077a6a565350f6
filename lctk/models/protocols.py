"""Backend-neutral protocols: algorithms call these and never know which backend runs."""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict, runtime_checkable

import numpy as np


class Message(TypedDict):
    """One chat message: role is system, user or assistant."""

    role: str
    content: str


@dataclass(frozen=True)
class Tokenization:
    """Token ids of a text with each token's character span in that text."""

    ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]  # (start, end) character offsets; special tokens are (0, 0)


@dataclass
class GenerationStats:
    """Counters filled in while a generation stream is consumed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "length"  # "stop" (end-of-turn token) or "length" (max_tokens reached)
    prompt_s: float = 0.0  # time to first generated token (prefill)
    generate_s: float = 0.0  # total wall time of the stream
    draft_proposed: int = 0  # prompt-lookup draft tokens checked by the model
    draft_accepted: int = 0  # of those, the ones greedy decoding would have produced anyway


@dataclass
class GenerationStream:
    """An iterator of text pieces; `stats` is complete once the iterator is exhausted."""

    pieces: Iterator[str]
    stats: GenerationStats = field(default_factory=GenerationStats)

    def __iter__(self) -> Iterator[str]:
        return self.pieces

    def text(self) -> str:
        """Consume the stream and return the whole text."""
        return "".join(self.pieces)


# Prompt lookup: the tail lengths tried, longest first (a longer match predicts better). Single
# tokens are not tried: on smollm2-135m quoting 600-token contexts, drafts after a one-token
# match were mostly wrong (16% accepted against 29% with bigrams and trigrams only) and made
# torch decoding slower overall (1.12x against 1.38x over plain decoding, 10 prompts).
LOOKUP_MAX_NGRAM = 3
LOOKUP_MIN_NGRAM = 2


def lookup_draft(ids: Sequence[int], max_tokens: int, stop_ids: Container[int] = ()) -> list[int]:
    """Return up to `max_tokens` ids that followed the latest earlier occurrence of the tail of `ids`.

    Text that copies its context continues the way the copied span did, so the ids after the
    most recent earlier match of the last n ids are a good guess at what comes next. The draft
    ends at the first id in `stop_ids`: nothing after the end of a turn would be used.
    """
    if max_tokens <= 0 or len(ids) < 2:
        return []
    seq = np.asarray(ids, dtype=np.int64)
    for n in range(min(LOOKUP_MAX_NGRAM, len(seq) - 1), LOOKUP_MIN_NGRAM - 1, -1):
        # (L-n, n): every n-gram that ends before the last id, so a match is never the tail itself
        windows = np.lib.stride_tricks.sliding_window_view(seq[:-1], n)
        hits = np.flatnonzero((windows == seq[-n:]).all(axis=1))
        if hits.size:
            start = int(hits[-1]) + n  # always < L: a match ends at L-2 at the latest
            draft = seq[start : start + max_tokens].tolist()
            stop = next((i for i, token in enumerate(draft) if token in stop_ids), None)
            return draft if stop is None else draft[: stop + 1]
    return []


@runtime_checkable
class LanguageModel(Protocol):
    """A causal language model on some backend."""

    model_id: str
    backend: str
    max_context_tokens: int

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Return token ids of `text` (with the model's BOS when add_special and it uses one)."""

    def tokenize_with_offsets(self, text: str, add_special: bool = True) -> Tokenization:
        """Return token ids with each token's character span in `text`."""

    def detokenize(self, ids: Sequence[int]) -> str:
        """Return the text of `ids` (special tokens dropped)."""

    def count_tokens(self, text: str) -> int:
        """Return how many tokens `text` takes, without special tokens."""

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """Return float32 (len(ids),): log p(ids[i] | ids[:i]); position 0 is NaN (no context)."""

    def token_logprobs_batch(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Return token_logprobs for each sequence of a batch."""

    def format_chat(self, messages: Sequence[Message]) -> str:
        """Render messages as the model's prompt text (its chat template, else a plain layout)."""

    def generate(
        self,
        prompt: str | Sequence[Message],
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        *,
        lookup_tokens: int = 0,
    ) -> GenerationStream:
        """Stream the continuation of a prompt (text, or messages through the chat template).

        With lookup_tokens > 0 and temperature 0, up to that many tokens are drafted per step by
        prompt lookup and checked in one forward pass; the text is the same as without. A backend
        that cannot check drafts exactly ignores it.
        """


@runtime_checkable
class TokenCounter(Protocol):
    """Counts text in one tokenizer: what a token budget is measured in (lctk.models.tokenizers)."""

    name: str  # what reports show: an encoding (o200k_base), a model alias, a tokenizer.json path

    def count_tokens(self, text: str) -> int:
        """Return how many tokens `text` takes, without special tokens."""


@runtime_checkable
class AttentionModel(Protocol):
    """A model that exposes last-layer attention of chosen query rows (torch only)."""

    def last_layer_attention(self, ids: Sequence[int], query_rows: Sequence[int]) -> np.ndarray:
        """Return float32 (len(query_rows), len(ids)): last-layer attention, summed over heads."""


@runtime_checkable
class AttentionLanguageModel(LanguageModel, AttentionModel, Protocol):
    """A language model whose attention can be read: what ask's retrieval runs on."""


@runtime_checkable
class Embedder(Protocol):
    """A sentence embedder returning L2-normalised float32 vectors."""

    model_id: str
    fingerprint: str  # changes when the weights change (indexes record it)
    dim: int
    max_tokens: int  # longest input it reads; longer input is truncated

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 (len(texts), dim), each row L2-normalised."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text, special tokens excluded."""

    def cut_text(self, text: str, limit: int) -> list[tuple[str, int]]:
        """Cut one text into consecutive pieces of at most `limit` tokens: (piece, tokens)."""
