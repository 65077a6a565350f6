"""Hybrid evidence: the prior proposes, the attention model reads the proposals, both decide.

1. `SentencePrior` scores every sentence of the document (BM25 + dense cosine, with neighbours);
   `ContextReranker` re-reads its best with the full embedder, each inside its neighbours (the
   caller passes that score in as `prior`).
2. The best sentences, each with the sentence before and after it, are taken best first until
   `read_tokens`; in document order they are packed into windows of at most `window_tokens`.
3. The attention model reads each window + the question once (InfiniRetri's reading: last-layer
   attention of the question rows, phrase-smoothed); a sentence's attention is its best smoothed
   score over its window's best, so every window contributes on the same 0..1 scale.
4. final = prior / best prior + `attention_weight` x attention; the best sentences by final score
   are kept up to `kept_tokens`, then put back in document order.

The model reads `read_tokens` (+ prompt) per question however long the document is, so the cost
of a question is flat in the document's length once the prior is built; the prior itself is a
tokenizer pass and a sum of vectors per sentence, done once per document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lctk.ask.infiniretri import prompt_parts, sentence_attention
from lctk.ask.settings import RetrievalSettings
from lctk.documents.sentences import Sentence, windows_of


@dataclass(frozen=True)
class HybridSelection:
    kept: tuple[int, ...]  # sentence indexes, document order
    scores: tuple[float, ...]  # fused score of each kept sentence
    tokens_read: int  # tokens the attention model read (candidate windows)
    windows_read: int


def candidate_sentences(prior: np.ndarray, counts: Sequence[int], read_tokens: int) -> list[int]:
    """The best prior sentences with their neighbours, best first until `read_tokens`; document order."""
    chosen: set[int] = set()
    total = 0
    for index in np.argsort(-prior, kind="stable"):
        if prior[index] <= 0:
            break
        group = [j for j in (index - 1, index, index + 1) if 0 <= j < len(counts) and j not in chosen]
        cost = sum(counts[j] for j in group)
        if chosen and total + cost > read_tokens:
            break
        chosen.update(int(j) for j in group)
        total += cost
    return sorted(chosen)


def hybrid_select(
    model,
    text: str,
    sentences: Sequence[Sentence],
    counts: Sequence[int],
    prior: np.ndarray,
    question: str,
    settings: RetrievalSettings,
) -> HybridSelection:
    """Fuse the prior with the attention of `model` over the candidate windows (see the module doc)."""
    members = candidate_sentences(prior, counts, settings.read_tokens)
    top_prior = float(prior.max()) if len(prior) else 0.0
    final = {m: float(prior[m]) / top_prior for m in members} if top_prior > 0 else {}
    tokens_read = windows = 0
    if model is not None and members and settings.attention_weight > 0:
        parts = prompt_parts(model, question)
        for window in windows_of([counts[m] for m in members], settings.window_tokens):
            group = members[window.first : window.last]
            best, _ = sentence_attention(model, text, sentences, group, parts, settings)
            top = float(best.max()) if len(best) else 0.0
            for member, score in zip(group, best):
                final[member] += settings.attention_weight * (float(score) / top if top > 0 else 0.0)
            tokens_read += window.tokens
            windows += 1
            parts.sentence_ids.clear()  # token ids are needed for one window only
    kept = keep_best(final, counts, settings.kept_tokens, tuple(settings.context))
    return HybridSelection(tuple(m for m, _ in kept), tuple(round(s, 4) for _, s in kept), tokens_read, windows)


def keep_best(scores: dict[int, float], counts: Sequence[int], cap_tokens: int,
              context: tuple[int, ...] = ()) -> list[tuple[int, float]]:
    """Sentences best first (ties: earlier first) while they fit `cap_tokens`; returned in document order.

    Each kept sentence brings the sentences at the offsets in `context` (e.g. (1,) the one after
    it, whose "They must ..." often holds the answer to what it introduces), each while it fits.
    """
    kept: dict[int, float] = {}
    total = 0
    for member, score in sorted(scores.items(), key=lambda item: (-item[1], item[0])):
        if member in kept:
            continue
        if kept and total + counts[member] > cap_tokens:
            continue
        kept[member] = score
        total += counts[member]
        for offset in context:
            other = member + offset
            if 0 <= other < len(counts) and other not in kept and total + counts[other] <= cap_tokens:
                kept[other] = scores.get(other, 0.0)
                total += counts[other]
    return sorted(kept.items())
