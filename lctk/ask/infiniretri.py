"""InfiniRetri: the model's own last-layer attention chooses which sentences to keep.

For each window of whole sentences, the model reads (kept sentences so far + the window + the
question) in its chat layout; the attention of the question's tokens to every context token is
read from the last layer (summed over heads; question rows weighted by their attention to the
question itself), smoothed along the context
with a moving sum of width `phrase` (phrase level), and the `top_k` tokens pick the sentences
that are kept: every whole sentence holding one of them, capped at `kept_tokens` (best first),
then put back in document order. The attention sink and the prompt scaffolding are outside the
scored span by construction. Only the last layer's question rows are computed (see
`TorchLanguageModel.last_layer_attention`), and the input never exceeds kept cap + window +
prompt, so memory does not grow with the document.

Each sentence is tokenised on its own and the pieces are concatenated, so every context token
belongs to exactly one sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lctk.ask.settings import RetrievalSettings
from lctk.documents.sentences import Sentence, Window
from lctk.errors import InputError

PLACEHOLDER = "\x00CONTEXT\x00"
QUESTION_MARK = "\x00QUESTION\x00"
INSTRUCTION = "Read the text below and answer the question."


@dataclass(frozen=True)
class RetrievalState:
    """Progress after some windows: what a checkpoint stores."""

    next_window: int = 0
    kept: tuple[int, ...] = ()  # sentence indexes, document order
    scores: tuple[float, ...] = ()  # attention score of each kept sentence
    tokens_read: int = 0  # document tokens that went through the model (windows only)


@dataclass
class PromptParts:
    """Token ids around the context: [prefix] context [between] question [suffix]."""

    prefix: list[int]
    between: list[int]
    question: list[int]
    suffix: list[int]
    sentence_ids: dict[int, list[int]] = field(default_factory=dict)


def prompt_parts(model, question: str) -> PromptParts:
    """Render the chat layout once with markers, then tokenise the pieces around them."""
    layout = model.format_chat([{"role": "user", "content": f"{INSTRUCTION}\n\n{PLACEHOLDER}\n\nQuestion: {QUESTION_MARK}"}])
    if PLACEHOLDER not in layout or QUESTION_MARK not in layout:
        raise InputError("the model's chat template dropped the prompt; use another model")
    before, rest = layout.split(PLACEHOLDER, 1)
    between, after = rest.split(QUESTION_MARK, 1)
    return PromptParts(
        prefix=model.tokenize(before, add_special=True),
        between=model.tokenize(between, add_special=False),
        question=model.tokenize(question.strip(), add_special=False),
        suffix=model.tokenize(after, add_special=False),
    )


def retrieve(
    model,
    text: str,
    sentences: Sequence[Sentence],
    windows: Sequence[Window],
    question: str,
    settings: RetrievalSettings = RetrievalSettings(),
    state: RetrievalState | None = None,
    on_window: Callable[[RetrievalState], None] | None = None,
) -> RetrievalState:
    """Run InfiniRetri over `windows` (from `state.next_window` on); returns the final state."""
    if not question.strip():
        raise InputError("empty question")
    parts = prompt_parts(model, question)
    state = state or RetrievalState()
    for index in range(state.next_window, len(windows)):
        window = windows[index]
        members = sorted(set(state.kept) | set(range(window.first, window.last)))
        kept, scores = _select(model, text, sentences, members, parts, settings)
        read = sum(len(_sentence_ids(model, text, sentences, i, parts)) for i in range(window.first, window.last))
        state = RetrievalState(index + 1, kept, scores, state.tokens_read + read)
        # token ids are kept only for sentences still in play, so memory does not grow with the document
        still = set(kept)
        parts.sentence_ids = {i: ids for i, ids in parts.sentence_ids.items() if i in still}
        if on_window is not None:
            on_window(state)
    return state


def _sentence_ids(model, text, sentences, index: int, parts: PromptParts) -> list[int]:
    ids = parts.sentence_ids.get(index)
    if ids is None:
        sentence = sentences[index]
        ids = model.tokenize(text[sentence.start : sentence.end] + " ", add_special=False)
        parts.sentence_ids[index] = ids
    return ids


def _select(model, text, sentences, members, parts: PromptParts, settings: RetrievalSettings):
    """Score one input; return (kept sentence indexes in document order, their scores)."""
    best, hit = sentence_attention(model, text, sentences, members, parts, settings)
    chosen = [(float(score), member, length) for member, score, length, is_hit in
              zip(members, best, (len(_sentence_ids(model, text, sentences, m, parts)) for m in members), hit) if is_hit]
    chosen.sort(key=lambda item: (-item[0], item[1]))
    kept: list[tuple[int, float]] = []
    total = 0
    for score, member, length in chosen:
        if total + length > settings.kept_tokens and kept:
            continue
        kept.append((member, score))
        total += length
    kept.sort()
    return tuple(m for m, _ in kept), tuple(s for _, s in kept)


def sentence_attention(model, text, sentences, members, parts: PromptParts, settings: RetrievalSettings):
    """Read `members` (sentence indexes, in order) + the question once; per member, return its best
    phrase-smoothed attention score and whether one of the `top_k` context tokens falls in it."""
    context: list[int] = []
    spans: list[tuple[int, int]] = []  # per member, positions within the context
    for member in members:
        ids = _sentence_ids(model, text, sentences, member, parts)
        spans.append((len(context), len(context) + len(ids)))
        context.extend(ids)
    start = len(parts.prefix)
    ids = parts.prefix + context + parts.between + parts.question + parts.suffix
    question_start = start + len(context) + len(parts.between)
    rows = list(range(question_start, question_start + len(parts.question)))
    attention = np.asarray(model.last_layer_attention(ids, rows), dtype=np.float64)  # (len(rows), len(ids))
    weights = question_row_weights(attention, rows) if settings.weight_rows else np.ones(len(rows))
    token_scores = weights @ attention[:, start : start + len(context)]  # (len(context),)
    smoothed = phrase_scores(token_scores, settings.phrase)
    in_top = np.zeros(len(context), dtype=bool)
    in_top[np.argsort(-smoothed, kind="stable")[: settings.top_k]] = True
    best = np.array([smoothed[a:b].max() if b > a else 0.0 for a, b in spans])
    hit = np.array([bool(b > a and in_top[a:b].any()) for a, b in spans])
    return best, hit


def question_row_weights(attention: np.ndarray, rows: list[int]) -> np.ndarray:
    """Weight of each question row: its attention to the question's own tokens, mean 1.

    Rows that attend to the question (content words) say more about what to look for than rows
    of function words or punctuation, whose attention drifts to whatever is salient nearby.
    """
    own = attention[:, rows[0] : rows[-1] + 1].sum(axis=1)
    total = own.sum()
    return own * (len(rows) / total) if total > 0 else np.ones(len(rows))


def phrase_scores(scores: np.ndarray, width: int) -> np.ndarray:
    """Moving sum of `width` tokens centred on each token (phrase-level attention)."""
    if width <= 1 or len(scores) == 0:
        return scores.astype(np.float64)
    return np.convolve(scores, np.ones(width), mode="same")
