"""torch backend on the real default models: log-probs, attention rows, generation, conversion cache."""

import time

import numpy as np
import pytest
import torch


def test_logprobs_agree_with_llama_cpp(torch_lm, llama_lm, real_code):
    ids = torch_lm.tokenize(real_code)
    assert ids == llama_lm.tokenize(real_code)  # same tokenizer on both backends
    a, b = torch_lm.token_logprobs(ids), llama_lm.token_logprobs(ids)
    assert np.nanmean(np.abs(a - b)) < 0.15  # Q4 activations in llama.cpp explain small gaps only
    assert np.corrcoef(a[1:], b[1:])[0, 1] > 0.99


def test_batch_matches_single_sequences(torch_lm, real_code):
    short, long = torch_lm.tokenize(real_code[:200]), torch_lm.tokenize(real_code)
    batched = torch_lm.token_logprobs_batch([short, long])
    assert batched[0].shape == (len(short),) and batched[1].shape == (len(long),)
    assert np.nanmax(np.abs(batched[0] - torch_lm.token_logprobs(short))) < 1e-3
    assert np.nanmax(np.abs(batched[1] - torch_lm.token_logprobs(long))) < 1e-3


def test_attention_rows_equal_full_eager_attention(attention_lm, real_code):
    ids = attention_lm.tokenize(real_code[:400])
    rows = [3, len(ids) // 2, len(ids) - 1]
    got = attention_lm.last_layer_attention(ids, rows)
    assert got.shape == (3, len(ids)) and got.dtype == np.float32
    # Each head's row is a distribution over the positions it can see: summed over heads -> num_heads.
    np.testing.assert_allclose(got.sum(axis=1), attention_lm.num_heads, rtol=1e-4)
    assert np.all(got[0, 4:] == 0)  # a query never sees later tokens
    model = attention_lm.model
    implementation = model.config._attn_implementation
    try:
        model.set_attn_implementation("eager")
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids]), output_attentions=True)
        reference = out.attentions[-1][0][:, rows].sum(0).numpy()  # (rows, T)
    finally:
        model.set_attn_implementation(implementation)
    np.testing.assert_allclose(got, reference, atol=1e-4)


def test_attention_finds_a_needle_line(attention_lm):
    lines = [f"record {i}: the value of field {i} is unremarkable." for i in range(40)]
    lines[23] = "record 23: the secret launch code is PELICAN-42."
    context = "\n".join(lines)
    question = "\nQuestion: what is the secret launch code?"
    enc = attention_lm.tokenize_with_offsets(context + question)
    q_start = next(i for i, (s, _) in enumerate(enc.offsets) if s >= len(context) + 1)
    att = attention_lm.last_layer_attention(enc.ids, list(range(q_start, len(enc.ids)))).sum(0)
    line_of = np.array([context.count("\n", 0, s) if s < len(context) else -1 for s, _ in enc.offsets])
    scores = [att[(line_of == n) & (np.arange(len(att)) > 0)].sum() for n in range(40)]  # skip the sink token
    assert int(np.argmax(scores)) == 23


def test_greedy_generation_is_reproducible(torch_lm):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    first = torch_lm.generate(messages, max_tokens=10)
    text = first.text()
    assert text and text == torch_lm.generate(messages, max_tokens=10).text()
    assert first.stats.completion_tokens <= 10 and first.stats.prompt_s > 0


def test_conversion_is_cached_and_reused(torch_lm):
    from lctk.models.convert import converted_checkpoint_path, ensure_converted
    from lctk.models.registry import resolve_model

    gguf = resolve_model("smollm2-135m").path
    target = converted_checkpoint_path(gguf)
    started = time.perf_counter()
    assert ensure_converted(gguf) == target
    assert time.perf_counter() - started < 1.0  # no second conversion
    assert (target / "config.json").is_file() and (target / "model.safetensors").is_file()
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]  # no half-written copies


def test_conversion_key_follows_content_not_path(tmp_path, monkeypatch):
    """A reinstalled or copied GGUF reuses its conversion; a changed one does not."""
    import os

    from lctk.models.convert import conversion_key

    monkeypatch.setenv("LCTK_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "converted").mkdir(parents=True)
    first, copy = tmp_path / "a" / "m.gguf", tmp_path / "b" / "m.gguf"
    for path in (first, copy):
        path.parent.mkdir()
        path.write_bytes(b"GGUF" + bytes(range(256)) * 1000)
    os.utime(copy, ns=(1, 1))
    assert conversion_key(first) == conversion_key(copy)
    assert (tmp_path / "cache" / "converted" / "keys.json").is_file()  # remembered by path, size, mtime
    copy.write_bytes(b"GGUF" + bytes(range(255, -1, -1)) * 1000)
    assert conversion_key(copy) != conversion_key(first)


def test_too_long_input_is_refused(torch_lm):
    from lctk.errors import ModelError

    with pytest.raises(ModelError, match="exceed the context"):
        torch_lm.token_logprobs([1] * (torch_lm.max_context_tokens + 1))
