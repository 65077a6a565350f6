"""Prompt rendering shared by both backends, so the same messages give the same tokens."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from datetime import datetime

from lctk.errors import ModelError
from lctk.models.protocols import GenerationStats, Message

# Tokens that end an assistant turn in common chat formats, besides the model's own EOS.
END_OF_TURN_TOKENS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>")


# Text shaped like a control token of a common chat format. Both backends tokenize prompts with
# special tokens recognised (the template's own markers must be), so a document that contains
# "<|im_end|>\n<|im_start|>system" would otherwise open a real system turn.
_SPECIAL_LOOKALIKE = re.compile(
    r"<\|[A-Za-z0-9_.:\-]{1,40}\|>|<(?:start_of_turn|end_of_turn|bos|eos|pad|unk|mask)>|</?s>|\[/?INST\]|<</?SYS>>"
)
_ZERO_WIDTH_SPACE = "\u200b"


def defuse_special_tokens(text: str) -> str:
    """Break control-token look-alikes in user text with a zero-width space, so they stay text."""
    return _SPECIAL_LOOKALIKE.sub(lambda m: m.group(0)[0] + _ZERO_WIDTH_SPACE + m.group(0)[1:], text)


def render_chat(
    template: str | None,
    messages: Sequence[Message],
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """Render messages with a Jinja chat template (sandboxed), or a plain layout without one.

    A base model has no template: its prompt is the messages' contents separated by blank lines,
    which is how one prompts a completion model. Message contents are data: control-token
    look-alikes in them are defused (see `defuse_special_tokens`).
    """
    messages = [{**m, "content": defuse_special_tokens(m["content"])} for m in messages]
    if not template:
        return "\n\n".join(m["content"] for m in messages if m["content"])
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(template).render(
            messages=list(messages),
            add_generation_prompt=True,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except TemplateError as exc:
        raise ModelError(f"the model's chat template rejected the messages: {exc}") from None


def prompt_text(
    prompt: str | Sequence[Message], template: str | None, bos_token: str, eos_token: str
) -> str:
    """Return the prompt text for a raw prompt string or a list of chat messages."""
    if isinstance(prompt, str):
        return prompt
    return render_chat(template, prompt, bos_token, eos_token)


class IncrementalDetokenizer:
    """Turn a growing list of token ids into text pieces that never split a character.

    Decodes a short window (ids since the last emitted piece) rather than the whole sequence,
    and holds back text that ends in U+FFFD (an incomplete UTF-8 sequence).
    """

    def __init__(self, decode):
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, token_id: int) -> str:
        """Add one token; return the new text it completes (may be empty)."""
        self._ids.append(token_id)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """Return any text still held back at the end of generation."""
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return after[len(before) :] if len(after) > len(before) else ""


def stream_text(
    token_ids: Iterable[int], stop_ids: Container[int], decode: Callable[[Sequence[int]], str], max_tokens: int,
    stats: GenerationStats, started: float,
) -> Iterator[str]:
    """Turn generated ids into text pieces, ending at a stop id or after `max_tokens`; fill `stats`.

    Both backends generate ids their own way and stream them through this one loop, so stop
    handling, the token budget and the counters mean the same on each. `started` is when
    generation began (for `prompt_s` and `generate_s`).
    """
    detok = IncrementalDetokenizer(decode)
    for token_id in token_ids:
        if stats.completion_tokens == 0:
            stats.prompt_s = time.perf_counter() - started
        if token_id in stop_ids:
            stats.finish_reason = "stop"
            break
        stats.completion_tokens += 1
        piece = detok.push(token_id)
        if piece:
            yield piece
        if stats.completion_tokens >= max_tokens:
            break
    tail = detok.flush()
    if tail:
        yield tail
    stats.generate_s = time.perf_counter() - started
