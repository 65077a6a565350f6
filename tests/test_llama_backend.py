"""llama.cpp backend on the real default model."""

import random

import numpy as np
import pytest

from lctk.errors import ModelError


def perplexity(logprobs: np.ndarray) -> float:
    return float(np.exp(-np.nanmean(logprobs)))


def test_tokenize_offsets_point_into_the_text(llama_lm):
    text = "def héllo(wörld):\n    return wörld  # ünïcode ✓"
    tok = llama_lm.tokenize_with_offsets(text, add_special=False)
    assert list(tok.ids) == llama_lm.tokenize(text, add_special=False)
    assert "".join(text[s:e] for s, e in tok.offsets) == text
    assert llama_lm.detokenize(tok.ids) == text
    assert llama_lm.count_tokens(text) == len(tok.ids)


def test_real_code_scores_far_lower_perplexity_than_shuffled(llama_lm, real_code):
    ids = llama_lm.tokenize(real_code)
    shuffled = ids[:1] + random.Random(0).sample(ids[1:], len(ids) - 1)
    real = llama_lm.token_logprobs(ids)
    assert real.shape == (len(ids),) and np.isnan(real[0]) and np.all(real[1:] <= 0)
    assert perplexity(real) < 10 and perplexity(llama_lm.token_logprobs(shuffled)) > 10 * perplexity(real)


def test_chunked_decoding_matches_one_chunk(llama_lm, real_code):
    ids = llama_lm.tokenize(real_code * 2)
    whole = llama_lm.token_logprobs(ids)
    saved = llama_lm._chunk
    try:
        llama_lm._chunk = 37  # force many decode calls with odd boundaries
        chunked = llama_lm.token_logprobs(ids)
    finally:
        llama_lm._chunk = saved
    assert np.nanmax(np.abs(whole - chunked)) < 0.02
    assert llama_lm.token_logprobs_batch([ids[:10], ids])[1].shape == (len(ids),)


def test_edge_lengths_and_too_long_input(llama_lm):
    assert llama_lm.token_logprobs([]).shape == (0,)
    one = llama_lm.token_logprobs(llama_lm.tokenize("x", add_special=False)[:1])
    assert one.shape == (1,) and np.isnan(one[0])
    with pytest.raises(ModelError, match="exceed the context"):
        llama_lm.token_logprobs([42] * (llama_lm.max_context_tokens + 1))


def test_greedy_generation_is_reproducible_and_bounded(llama_lm):
    messages = [{"role": "user", "content": "List three fruits."}]
    first = llama_lm.generate(messages, max_tokens=12)
    text = first.text()
    assert text == llama_lm.generate(messages, max_tokens=12).text()
    assert 0 < first.stats.completion_tokens <= 12
    assert first.stats.prompt_tokens == len(llama_lm.tokenize(llama_lm.format_chat(messages), add_special=False))
    assert llama_lm.generate("Hello", max_tokens=3).stats.completion_tokens <= 3


def test_sampling_depends_on_seed(llama_lm):
    texts = {llama_lm.generate("Once upon a time", max_tokens=16, temperature=1.5, seed=s).text() for s in range(3)}
    assert len(texts) > 1
