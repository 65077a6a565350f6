"""LM scores on the real default scoring model: AMI ranking, per-line losses, the on-disk cache."""

import ast
import inspect
import textwrap

import numpy as np

from lctk.compress.scoring import ami_scores, line_losses
from lctk.score_cache import MemoryScoreCache, ScoreCache


def textwrap_functions_without_docstrings() -> dict[str, str]:
    """Public functions of the stdlib textwrap module, docstrings removed (so the query is not in them)."""
    out = {}
    for node in ast.parse(inspect.getsource(textwrap)).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            if ast.get_docstring(node):
                node.body = node.body[1:]
            out[node.name] = ast.unparse(node)
    return out


def test_ami_ranks_the_described_function_above_unrelated_ones(llama_lm):
    functions = textwrap_functions_without_docstrings()
    names = sorted(functions)
    assert names == ["dedent", "fill", "indent", "shorten", "wrap"]
    chunks = [functions[n] for n in names]
    cache = MemoryScoreCache()
    scores, stats = ami_scores(llama_lm, chunks, "Add a prefix to the beginning of selected lines in text.", cache)
    assert names[int(np.argmax(scores))] == "indent", dict(zip(names, scores.round(2)))
    assert stats.sequences_scored == len(names) + 1  # every chunk plus the query alone
    scores, _ = ami_scores(llama_lm, chunks, "Remove any common leading whitespace from every line in text.", cache)
    by_name = dict(zip(names, scores))
    # dedent beats the unrelated wrapping functions (indent, its mirror image, may tie with it)
    assert by_name["dedent"] > max(by_name["fill"], by_name["shorten"], by_name["wrap"]), by_name


def test_cache_avoids_every_lm_call_on_the_second_run(llama_lm, tmp_path):
    functions = textwrap_functions_without_docstrings()
    chunks = list(functions.values())
    cache = ScoreCache(tmp_path / "scores.sqlite")
    first, stats1 = ami_scores(llama_lm, chunks, "indent each line", cache)
    cache.close()
    reopened = ScoreCache(tmp_path / "scores.sqlite")  # a new process would see the same file
    second, stats2 = ami_scores(llama_lm, chunks, "indent each line", reopened)
    assert stats1.sequences_scored == len(chunks) + 1 and stats2.sequences_scored == 0
    assert stats2.cache_hits == len(chunks) + 1 and stats2.tokens_scored == 0
    np.testing.assert_array_equal(first, second)
    changed, stats3 = ami_scores(llama_lm, [*chunks[:-1], chunks[-1] + "\n# edited\n"], "indent each line", reopened)
    assert stats3.sequences_scored == 1  # only the edited chunk is scored again


def test_line_losses_come_from_one_pass_and_mark_surprising_lines(llama_lm):
    code = "def area(radius):\n    pi = 3.14159\n\n    return pi * radius * radius\n"
    cache = MemoryScoreCache()
    losses = line_losses(llama_lm, code, cache)
    assert losses.shape == (4,) and losses[2] == 0.0  # the blank line
    assert np.all(losses[[0, 1, 3]] > 0)
    assert line_losses(llama_lm, code, cache) is not losses  # served from the cache, equal values
    np.testing.assert_allclose(line_losses(llama_lm, code, cache), losses)


def test_the_ami_pass_leaves_line_losses_so_no_token_is_scored_twice(llama_lm):
    code = "def area(radius):\n    pi = 3.14159\n\n    return pi * radius * radius\n"
    shared, alone = MemoryScoreCache(), MemoryScoreCache()
    ami_scores(llama_lm, [code], "Compute the area of a circle.", shared)
    calls = []
    original = llama_lm.token_logprobs
    llama_lm.token_logprobs = lambda ids: calls.append(ids) or original(ids)
    try:
        reused = line_losses(llama_lm, code, shared)
    finally:
        del llama_lm.token_logprobs
    assert calls == []  # found in the cache the AMI pass filled
    np.testing.assert_allclose(reused, line_losses(llama_lm, code, alone), atol=1e-3)


def test_a_window_scores_long_chunks_by_their_head(llama_lm):
    functions = textwrap_functions_without_docstrings()
    cache = MemoryScoreCache()
    _, whole = ami_scores(llama_lm, [functions["wrap"], functions["shorten"]], "Wrap a paragraph.", cache)
    _, head = ami_scores(llama_lm, [functions["wrap"], functions["shorten"]], "Wrap a paragraph.", cache, window=8)
    assert head.cache_hits == 1 and head.sequences_scored == 2  # the no-context row is shared; windowed rows are new
    assert head.tokens_scored < whole.tokens_scored - 2 * 8
