"""Language-model scores for compression: AMI of a chunk with a query, and per-line losses.

AMI(c, q) = PPL(q) - PPL(q | c): how much reading the chunk first makes the query easier to
predict. PPL is exp(mean negative log-likelihood) over the query's tokens only. Per-line losses
come from ONE forward pass over a function (not one per line).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lctk.compress.cache import content_hash
from lctk.models.protocols import LanguageModel
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


def _conditioned_ids(model: LanguageModel, context: str, query_len: int, separator: list[int]) -> list[int]:
    """BOS + the context's tokens (head kept if it must be cut to fit) + separator."""
    bos = model.tokenize("", add_special=True)
    room = model.max_context_tokens - len(bos) - len(separator) - query_len
    context_ids = model.tokenize(context, add_special=False)[: max(room, 0)] if context else []
    return bos + context_ids + separator


def query_nll(
    model: LanguageModel, contexts: Sequence[str], query: str, cache, on_progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, ScoringStats]:
    """Mean NLL (nats/token) of the query's tokens after each context ("" for none), cached."""
    started = time.perf_counter()
    separator, q_ids = _query_ids(model, query)
    q_hash = content_hash(query)
    keys = [(content_hash(c), q_hash) for c in contexts]
    found = cache.get_many(model_key(model), "query-nll", set(keys))
    missing = sorted({k: c for k, c in zip(keys, contexts) if k not in found}.items(), key=lambda kv: kv[0])
    computed: dict[tuple[str, str], np.ndarray] = {}
    tokens = 0
    for start in range(0, len(missing), BATCH_SEQUENCES):
        group = missing[start : start + BATCH_SEQUENCES]
        batch = [_conditioned_ids(model, context, len(q_ids), separator) + q_ids for _, context in group]
        tokens += sum(len(ids) for ids in batch)
        for (key, _), logprobs in zip(group, model.token_logprobs_batch(batch)):
            computed[key] = np.array([-float(np.mean(logprobs[-len(q_ids):]))], dtype=np.float32)
        if on_progress is not None:
            on_progress(min(start + BATCH_SEQUENCES, len(missing)), len(missing))
    if computed:
        cache.put_many(model_key(model), "query-nll", computed)
    found.update(computed)
    values = np.array([found[key][0] for key in keys], dtype=np.float64)
    stats = ScoringStats(len(computed), len(keys) - len(computed), tokens, time.perf_counter() - started)
    return values, stats


def ami_scores(
    model: LanguageModel, chunks: Sequence[str], query: str, cache, on_progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, ScoringStats]:
    """AMI of each chunk with the query: PPL(q) - PPL(q | chunk); higher means more relevant."""
    if not query.strip():
        raise ValueError("AMI needs a non-empty query")
    nll, stats = query_nll(model, ["", *chunks], query, cache, on_progress)
    perplexity = np.exp(nll)
    return perplexity[0] - perplexity[1:], stats


def line_losses(model: LanguageModel, text: str, cache) -> np.ndarray:
    """Mean NLL of each line's tokens from one forward pass over `text`; blank lines get 0.

    Returns float64 (number of lines,), lines as `text.split("\\n")` without a trailing empty one.
    """
    key = (content_hash(text), NO_QUERY)
    found = cache.get_many(model_key(model), "line-nll", [key])
    if key in found:
        return found[key].astype(np.float64)
    encoded = model.tokenize_with_offsets(text, add_special=True)
    logprobs = model.token_logprobs(list(encoded.ids))
    line_starts = np.cumsum([0] + [len(line) + 1 for line in text.split("\n")])
    n_lines = len(text_lines(text))
    sums = np.zeros(max(n_lines, 1))
    counts = np.zeros(max(n_lines, 1))
    for (start, end), logprob in zip(encoded.offsets, logprobs):
        if end <= start or np.isnan(logprob):
            continue  # special tokens and the first token have no loss
        line = min(int(np.searchsorted(line_starts, start, side="right")) - 1, len(sums) - 1)
        sums[line] -= logprob
        counts[line] += 1
    losses = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)[:n_lines]
    cache.put_many(model_key(model), "line-nll", {key: losses})
    return losses
