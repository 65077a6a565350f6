"""Run one generation and report it as a frozen result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lctk.errors import InputError
from lctk.models.loader import BackendChoice
from lctk.models.protocols import LanguageModel, Message


@dataclass(frozen=True)
class GenerationResult:
    """The text generated and the numbers describing the run."""

    text: str
    model: str
    backend: str
    backend_reason: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    load_s: float
    prompt_s: float
    generate_s: float

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second after the first token."""
        decode_s = self.generate_s - self.prompt_s
        return self.completion_tokens / decode_s if decode_s > 0 and self.completion_tokens else 0.0


def build_messages(prompt: str, system: str | None) -> list[Message]:
    """Return chat messages for a prompt and an optional system message; reject empty prompts."""
    if not prompt.strip():
        raise InputError("the prompt is empty; pass PROMPT or pipe text on stdin")
    messages: list[Message] = []
    if system is not None and system.strip():
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    return messages


def run_generation(
    model: LanguageModel,
    messages: list[Message],
    *,
    choice: BackendChoice,
    max_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    load_s: float = 0.0,
    on_piece: Callable[[str], None] | None = None,
) -> GenerationResult:
    """Generate a reply to `messages`, handing each piece to `on_piece` as it arrives."""
    started = time.perf_counter()
    stream = model.generate(messages, max_tokens=max_tokens, temperature=temperature, seed=seed)
    pieces = []
    for piece in stream:
        pieces.append(piece)
        if on_piece is not None:
            on_piece(piece)
    stats = stream.stats
    return GenerationResult(
        text="".join(pieces),
        model=model.model_id,
        backend=choice.backend,
        backend_reason=choice.reason,
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        finish_reason=stats.finish_reason,
        load_s=round(load_s, 4),
        prompt_s=round(stats.prompt_s, 4),
        generate_s=round(time.perf_counter() - started, 4),
    )
