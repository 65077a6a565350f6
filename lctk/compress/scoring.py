"""Language-model scores for compression: AMI of a chunk with a query, and per-line losses.

AMI(c, q) = PPL(q) - PPL(q | c): how much reading the chunk first makes the query easier to
predict. PPL is exp(mean negative log-likelihood) over the query's tokens only. Per-line losses
come from ONE forward pass over a function (not one per line), and that pass is the AMI pass
when AMI read the function whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lctk.models.protocols import LanguageModel, Tokenization
from lctk.score_cache import content_hash
from lctk.sources.chunking import text_lines

SEPARATOR = "\n\n"  # between a chunk and the query it conditions
BATCH_SEQUENCES = 8  # sequences per token_logprobs_batch call
NO_QUERY = content_hash("")


@dataclass(frozen=True)
class ScoringStats:
    """What scoring cost: LM calls made, cache hits, tokens run through the model, seconds."""

    sequences_scored: int
    cache_hits: int
    tokens_scored: int
    seconds: float


def model_key(model: LanguageModel) -> str:
    """Cache identity of a model: scores differ slightly across backends, so both are named."""
    return f"{model.model_id}@{model.backend}"


def _query_ids(model: LanguageModel, query: str) -> tuple[list[int], list[int]]:
    """(separator ids, query ids): tokenized apart so the query's tokens are the same in every input."""
    return model.tokenize(SEPARATOR, add_special=False), model.tokenize(query, add_special=False)


def _context_ids(model: LanguageModel, context: str, query_len: int, separator: list[int], window: int | None):
    """(BOS, the context's tokens with offsets, whether all of it fits): the head is kept when it
    must be cut to fit the model's context or `window`."""
    bos = model.tokenize("", add_special=True)
    room = model.max_context_tokens - len(bos) - len(separator) - query_len
    if window is not None:
        room = min(room, window)
    encoded = model.tokenize_with_offsets(context, add_special=False) if context else Tokenization((), ())
    whole = len(encoded.ids) <= max(room, 0)
    return bos, encoded if whole else Tokenization(encoded.ids[: max(room, 0)], encoded.offsets[: max(room, 0)]), whole


def _context_key(model: LanguageModel, context: str, window: int | None) -> str:
    """The cache key of what is read of a context: itself when whole, its head otherwise."""
    if window is None or not context or len(context) <= window or model.count_tokens(context) <= window:
        return content_hash(context)
    return content_hash(f"{context}\0head:{window}")


def query_nll(
    model: LanguageModel, contexts: Sequence[str], query: str, cache, on_progress: Callable[[int, int], None] | None = None,
    window: int | None = None,
) -> tuple[np.ndarray, ScoringStats]:
    """Mean NLL (nats/token) of the query's tokens after each context ("" for none), cached.

    A context longer than `window` tokens (None: the model's context) is read by its head. The
    same forward pass predicts the context's own tokens after BOS, so for every context read
    whole the per-line losses `line_losses` would compute are stored too: the fine stage then
    scores no token twice.
    """
    started = time.perf_counter()
    separator, q_ids = _query_ids(model, query)
    q_hash = content_hash(query)
    keys = [(_context_key(model, c, window), q_hash) for c in contexts]
    found = cache.get_many(model_key(model), "query-nll", set(keys))
    missing = sorted({k: c for k, c in zip(keys, contexts) if k not in found}.items(), key=lambda kv: kv[0])
    computed: dict[tuple[str, str], np.ndarray] = {}
    tokens = 0
    for start in range(0, len(missing), BATCH_SEQUENCES):
        group = missing[start : start + BATCH_SEQUENCES]
        encoded = [_context_ids(model, context, len(q_ids), separator, window) for _, context in group]
        batch = [bos + list(ids.ids) + separator + q_ids for bos, ids, _ in encoded]
        tokens += sum(len(ids) for ids in batch)
        scored: dict[tuple[str, str], np.ndarray] = {}
        lines: dict[tuple[str, str], np.ndarray] = {}
        for (key, context), (bos, ids, whole), logprobs in zip(group, encoded, model.token_logprobs_batch(batch)):
            scored[key] = np.array([-float(np.mean(logprobs[-len(q_ids):]))], dtype=np.float32)
            if whole and context:
                lines[(content_hash(context), NO_QUERY)] = _line_means(
                    context, ids.offsets, logprobs[len(bos) : len(bos) + len(ids.ids)], first_predicted=bool(bos))
        # Stored batch by batch: a run stopped midway (Ctrl-C, a model server gone) keeps what it scored.
        cache.put_many(model_key(model), "query-nll", scored)
        if lines:
            cache.put_many(model_key(model), "line-nll", lines)
        computed.update(scored)
        if on_progress is not None:
            on_progress(min(start + BATCH_SEQUENCES, len(missing)), len(missing))
    found.update(computed)
    values = np.array([found[key][0] for key in keys], dtype=np.float64)
    stats = ScoringStats(len(computed), len(keys) - len(computed), tokens, time.perf_counter() - started)
    return values, stats


def ami_scores(
    model: LanguageModel, chunks: Sequence[str], query: str, cache, on_progress: Callable[[int, int], None] | None = None,
    window: int | None = None,
) -> tuple[np.ndarray, ScoringStats]:
    """AMI of each chunk (its first `window` tokens) with the query: PPL(q) - PPL(q | chunk); higher is more relevant."""
    if not query.strip():
        raise ValueError("AMI needs a non-empty query")
    nll, stats = query_nll(model, ["", *chunks], query, cache, on_progress, window)
    perplexity = np.exp(nll)
    return perplexity[0] - perplexity[1:], stats


def line_losses(model: LanguageModel, text: str, cache) -> np.ndarray:
    """Mean NLL of each line's tokens from one forward pass over BOS + `text`; blank lines get 0.

    Returns float64 (number of lines,), lines as `text.split("\\n")` without a trailing empty one.
    A text that AMI scoring read whole is found in the cache (see `query_nll`).
    """
    key = (content_hash(text), NO_QUERY)
    found = cache.get_many(model_key(model), "line-nll", [key])
    if key in found:
        return found[key].astype(np.float64)
    bos = model.tokenize("", add_special=True)
    encoded = model.tokenize_with_offsets(text, add_special=False)
    logprobs = model.token_logprobs(bos + list(encoded.ids))
    losses = _line_means(text, encoded.offsets, logprobs[len(bos) :], first_predicted=bool(bos))
    cache.put_many(model_key(model), "line-nll", {key: losses})
    return losses


def _line_means(text: str, offsets: Sequence[tuple[int, int]], logprobs: np.ndarray, first_predicted: bool) -> np.ndarray:
    """Mean NLL per line of `text` from its tokens' character offsets and log-probs.

    Without BOS the first token is not predicted and has no loss.
    """
    line_starts = np.cumsum([0] + [len(line) + 1 for line in text.split("\n")])
    n_lines = len(text_lines(text))
    sums = np.zeros(max(n_lines, 1))
    counts = np.zeros(max(n_lines, 1))
    for index, ((start, end), logprob) in enumerate(zip(offsets, logprobs)):
        if end <= start or np.isnan(logprob) or (index == 0 and not first_predicted):
            continue
        line = min(int(np.searchsorted(line_starts, start, side="right")) - 1, len(sums) - 1)
        sums[line] -= logprob
        counts[line] += 1
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)[:n_lines]
