"""Prompt-lookup decoding on the real models: drafts checked in one pass never change the greedy text."""

import pytest

from lctk.errors import UsageError
from lctk.models.protocols import lookup_draft

PARAGRAPH = (
    "The lighthouse on Skerry Point was built in 1871 by the engineer Thomas Ware. Its lamp burned "
    "whale oil until 1902, when it was converted to paraffin. The keeper's cottage now houses a small "
    "museum of shipwrecks."
)
CODE = "def area(width, height):\n    return width * height\n"

# The first prompt of each list is answered by copying the context, so drafts must be accepted there.
CHAT_PROMPTS = [
    [{"role": "user", "content": PARAGRAPH + "\n\nRepeat the second sentence exactly."}],
    [{"role": "user", "content": PARAGRAPH + "\n\nWho built the lighthouse, and when? Answer by quoting the text."}],
    [{"role": "user", "content": CODE + "\nCopy the function above exactly."}],
    [{"role": "user", "content": "Say hello."}],  # nothing to copy: drafts mostly fail
]
BASE_PROMPTS = [  # gemma3-270m is a base model without a chat template
    "Text: " + PARAGRAPH + "\nQuestion: Who built the lighthouse, and when?\nAnswer (a quote from the text):",
    PARAGRAPH + "\n\nThe second sentence of the text above, copied exactly:\n",
    CODE + "\n# The same function again:\n",
]


def generate(model, prompt, **kwargs):
    stream = model.generate(prompt, **kwargs)
    return list(stream), stream.stats


def assert_lookup_matches_greedy(model, prompt, max_tokens=40):
    """Generate with and without drafts; the pieces and counters must match. Returns the drafting stats."""
    plain_pieces, plain = generate(model, prompt, max_tokens=max_tokens)
    pieces, stats = generate(model, prompt, max_tokens=max_tokens, lookup_tokens=10)
    assert pieces == plain_pieces, ("".join(plain_pieces), "".join(pieces))  # same text, same streamed pieces
    assert (stats.prompt_tokens, stats.completion_tokens, stats.finish_reason) == (
        plain.prompt_tokens, plain.completion_tokens, plain.finish_reason
    )
    assert plain.draft_proposed == plain.draft_accepted == 0
    assert 0 <= stats.draft_accepted <= stats.draft_proposed
    return stats


# --- drafting (pure) ----------------------------------------------------------------------


def test_draft_continues_the_most_recent_match_of_the_longest_tail():
    assert lookup_draft([1, 2, 3, 4, 5, 9, 1, 2, 3], 3) == [4, 5, 9]
    assert lookup_draft([1, 2, 3, 4, 1, 2, 3, 7, 8, 1, 2, 3], 10) == [7, 8, 1, 2, 3]  # latest of two matches
    assert lookup_draft([5, 2, 3, 7, 1, 2, 3, 8, 6, 2, 3], 2) == [8, 6]  # trigram fails, bigram 2 3 matches
    assert lookup_draft([4, 9, 1, 6, 6, 1], 3) == []  # a lone matching token is too weak a hint


def test_draft_stops_at_an_end_token_and_when_nothing_matches():
    assert lookup_draft([1, 2, 3, 4, 5, 1, 2], 5, stop_ids={4}) == [3, 4]
    assert lookup_draft([9, 8, 7, 1, 2], 5) == []
    assert lookup_draft([1, 2, 1], 0) == [] and lookup_draft([1], 3) == []


# --- llama.cpp ----------------------------------------------------------------------------
# llama.cpp cannot check drafts exactly (see LlamaLanguageModel.generate): lookup_tokens must
# leave its output, its streaming and its counters exactly as they are without it.


def test_llama_lookup_gives_the_greedy_text(llama_lm):
    for prompt in CHAT_PROMPTS:
        stats = assert_lookup_matches_greedy(llama_lm, prompt, max_tokens=48)
        assert stats.draft_proposed == 0


def test_llama_lookup_keeps_max_tokens_and_stop(llama_lm):
    for max_tokens in (1, 5):
        stats = assert_lookup_matches_greedy(llama_lm, CHAT_PROMPTS[0], max_tokens=max_tokens)
        assert stats.completion_tokens == max_tokens and stats.finish_reason == "length"
    stopped = assert_lookup_matches_greedy(llama_lm, CHAT_PROMPTS[1], max_tokens=48)
    assert stopped.finish_reason == "stop" and stopped.completion_tokens < 48


def test_sampling_ignores_lookup(llama_lm):
    plain, _ = generate(llama_lm, CHAT_PROMPTS[0], max_tokens=16, temperature=0.8, seed=3)
    pieces, stats = generate(llama_lm, CHAT_PROMPTS[0], max_tokens=16, temperature=0.8, seed=3, lookup_tokens=10)
    assert pieces == plain and stats.draft_proposed == 0


def test_negative_lookup_is_refused(llama_lm):
    with pytest.raises(UsageError, match="lookup tokens"):
        llama_lm.generate("Hello", lookup_tokens=-1)


# --- torch --------------------------------------------------------------------------------


@pytest.mark.slow
def test_torch_lookup_gives_the_greedy_text(torch_lm):
    copied = assert_lookup_matches_greedy(torch_lm, CHAT_PROMPTS[0])
    assert copied.draft_accepted >= 15
    for prompt in CHAT_PROMPTS[1:3]:
        assert_lookup_matches_greedy(torch_lm, prompt)


@pytest.mark.slow
def test_torch_sampling_ignores_lookup_and_negative_is_refused(torch_lm):
    plain, _ = generate(torch_lm, CHAT_PROMPTS[0], max_tokens=8, temperature=0.8, seed=3)
    pieces, stats = generate(torch_lm, CHAT_PROMPTS[0], max_tokens=8, temperature=0.8, seed=3, lookup_tokens=10)
    assert pieces == plain and stats.draft_proposed == 0
    with pytest.raises(UsageError, match="lookup tokens"):
        torch_lm.generate("Hello", lookup_tokens=-1)


@pytest.mark.slow
def test_torch_lookup_keeps_max_tokens_and_stop(torch_lm):
    for max_tokens in (1, 3):
        stats = assert_lookup_matches_greedy(torch_lm, CHAT_PROMPTS[0], max_tokens=max_tokens)
        assert stats.completion_tokens == max_tokens and stats.finish_reason == "length"
    stopped = assert_lookup_matches_greedy(torch_lm, CHAT_PROMPTS[1], max_tokens=48)
    assert stopped.finish_reason == "stop" and stopped.completion_tokens < 48


@pytest.mark.slow
def test_torch_near_ties_replay_plain_decoding(torch_lm, monkeypatch):
    """With the tie margin raised, many rows are too close to call: replays must keep the text exact."""
    import lctk.models.torch_backend as torch_backend

    replays = []
    replay = torch_lm._replay
    monkeypatch.setattr(torch_backend, "TIE_MARGIN_LOGITS", 3.0)
    monkeypatch.setattr(torch_lm, "_replay", lambda *args: replays.append(args[3]) or replay(*args))
    stats = assert_lookup_matches_greedy(torch_lm, CHAT_PROMPTS[0])
    assert replays and stats.draft_accepted > 0


@pytest.mark.slow
def test_gemma_lookup_gives_the_greedy_text(attention_lm):
    """Gemma 3 mixes sliding-window and global layers: rollbacks must restore both exactly."""
    copied = assert_lookup_matches_greedy(attention_lm, BASE_PROMPTS[0])
    assert copied.draft_accepted >= 15
    for prompt in BASE_PROMPTS[1:]:
        assert_lookup_matches_greedy(attention_lm, prompt)


@pytest.mark.slow
def test_gemma_lookup_across_the_sliding_window(attention_lm):
    """A generation that fills the 512-token window drafts before it and decodes plainly after."""
    window = attention_lm.model.config.sliding_window
    filler = " ".join(f"Entry {i}: the lamp was checked and found in good order." for i in range(60))
    ids = attention_lm.tokenize(filler, add_special=False)
    context = attention_lm.detokenize(ids[: window - 100]) + "\n\n" + PARAGRAPH
    prompt = context + "\n\nThe second sentence, copied exactly:\n"
    stats = assert_lookup_matches_greedy(attention_lm, prompt)
    assert stats.prompt_tokens < window < stats.prompt_tokens + stats.completion_tokens
    assert stats.draft_proposed > 0
