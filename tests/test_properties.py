"""Properties that must hold for any input (hypothesis), on generated text and on real files."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pathspec import GitIgnoreSpec

from lctk.compress.api import BudgetError, compress
from lctk.compress.render import budgeted_context
from lctk.documents.sentences import pack_windows, split_sentences
from lctk.models.fake import FakeEmbedder, FakeLanguageModel
from lctk.retrieval.indexer import build_index
from lctk.retrieval.ranking import Filters, Searcher
from lctk.retrieval.store import load_index
from lctk.sources.chunking import chunk_text
from lctk.sources.languages import LANGUAGES
from lctk.sources.secrets import redact_text
from lctk.sources.text import SourceText

STDLIB = Path(sysconfig.get_paths()["stdlib"])
LANGUAGE_NAMES = sorted(LANGUAGES)
FAST = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Code-like text: identifiers, brackets, quotes, comments, indentation and stray unicode.
code_pieces = st.sampled_from([
    "def f(x):\n", "    return x\n", "class A:\n", "    def m(self):\n", "        pass\n", "function g() {\n", "}\n",
    "func H() {}\n", "fn k() -> i32 { 1 }\n", "int main(void) { return 0; }\n", "end\n", "(", ")", "[", "]", "{", "}",
    "'", '"', '"""', "#", "//", "/*", "*/", "\n", "\n\n", "\t", "    ", "x = 1\n", "é", "😀", "\r\n", "\x00", "\\",
])
code_text = st.lists(st.one_of(code_pieces, st.text(max_size=12)), max_size=60).map("".join)
long_code_text = st.lists(st.one_of(code_pieces, code_pieces, st.text(max_size=12)), min_size=40, max_size=600).map("".join)


@FAST
@given(text=code_text, language=st.sampled_from([None, *LANGUAGE_NAMES]))
def test_chunks_give_the_text_back_byte_for_byte(text, language):
    chunks = chunk_text(text, language)
    assert "".join(chunk.text for chunk in chunks) == text
    for chunk in chunks:
        assert 1 <= chunk.start_line <= chunk.end_line


REAL_FILES = sorted(
    [p for p in (STDLIB / "json").glob("*.py")] + [p for p in (STDLIB / "email").glob("*.py")][:10]
    + [p for p in (STDLIB / "asyncio").glob("*.py")][:10]
)


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_files_round_trip_through_every_chunker(path):
    text = path.read_text(encoding="utf-8")
    for language in ("python", None, "javascript"):  # the right grammar, blank-line blocks, a wrong grammar
        assert "".join(chunk.text for chunk in chunk_text(text, language)) == text


FAKE = FakeLanguageModel()


@FAST
@given(
    texts=st.lists(long_code_text, min_size=1, max_size=3),
    budget=st.integers(min_value=1, max_value=120),
    output_format=st.sampled_from(["text", "xml", "markdown", "json"]),
    query=st.sampled_from([None, "return the value", "é 😀"]),
    fine=st.booleans(),
)
def test_compress_never_exceeds_the_budget_on_any_text(texts, budget, output_format, query, fine):
    sources = [SourceText(f"src/f{i}.py", "python", text) for i, text in enumerate(texts)]
    try:
        result = compress(sources, FAKE, query=query, budget_tokens=budget, output_format=output_format, fine=fine)
    except BudgetError:
        event("refused: the budget cannot hold the frame or the smallest unit")
        return  # refused with a reason; never an over-budget output
    event("compressed" if result.output_tokens < result.input_tokens else "everything fit")
    assert FAKE.count_tokens(budgeted_context(result.files, output_format)) <= budget


@FAST
@given(text=st.text(alphabet=st.sampled_from(list("Ab. .?!\n\n\"')e.g.Mr. 1.5 é…。")), max_size=400))
def test_sentence_offsets_always_lie_inside_the_document(text):
    sentences = split_sentences(text)
    previous_end = 0
    for sentence in sentences:
        assert previous_end <= sentence.start < sentence.end <= len(text)
        assert text[sentence.start : sentence.end].strip()  # a sentence is never only whitespace
        previous_end = sentence.end
    if not sentences:
        return
    kept, windows = pack_windows(text, sentences, 8, lambda texts: [len(t.split()) for t in texts])
    assert all(0 <= s.start < s.end <= len(text) for s in kept)
    assert [i for w in windows for i in range(w.first, w.last)] == list(range(len(kept)))  # each read once, in order
    assert all(w.tokens <= 8 for w in windows)


@pytest.fixture(scope="module")
def mixed_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    shutil.copytree(STDLIB / "json", root / "json", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "web").mkdir()
    (root / "web" / "app.js").write_text("function parseJson(text) { return JSON.parse(text); }\nclass Decoder { decode(s) { return s; } }\n")
    (root / "web" / "util.ts").write_text("export function encode(value: unknown): string { return JSON.stringify(value); }\n")
    (root / "go").mkdir()
    (root / "go" / "main.go").write_text("package main\n\n// Decode reads JSON.\nfunc Decode(b []byte) error { return nil }\n")
    (root / "notes.txt").write_text("Decoding and encoding notes.\n\nScanner details.\n")
    embedder = FakeEmbedder()
    build_index(root, embedder)
    return Searcher(load_index(root.resolve()), embedder)


@FAST
@given(
    query=st.sampled_from(["decode json", "encode", "scanner", "parse", "JSONDecoder", "é"]),
    languages=st.lists(st.sampled_from(["python", "javascript", "typescript", "go", "text"]), max_size=2, unique=True),
    globs=st.lists(st.sampled_from(["*.py", "json/*.py", "web/**", "*.go", "!*.js", "de*"]), max_size=2, unique=True),
    paths=st.lists(st.sampled_from(["", "json", "web", "go", "json/tool.py", "nowhere"]), max_size=2, unique=True),
    kinds=st.lists(st.sampled_from(["function", "method", "class", "type", "file"]), max_size=2, unique=True),
    mode=st.sampled_from(["hybrid", "dense", "lexical"]),
    k=st.integers(min_value=1, max_value=30),
)
def test_search_results_always_respect_the_filters(mixed_index, query, languages, globs, paths, kinds, mode, k):
    assume(not globs or any(not g.startswith("!") for g in globs))
    filters = Filters(tuple(languages), tuple(globs), tuple(paths), tuple(kinds))
    hits = mixed_index.search(query, k=k, mode=mode, filters=filters)
    spec = GitIgnoreSpec.from_lines(globs) if globs else None
    assert len(hits) <= k
    for hit in hits:
        assert not languages or (hit.language or "text") in languages
        assert spec is None or spec.match_file(hit.path)
        assert not paths or any(p == "" or hit.path == p or hit.path.startswith(p + "/") for p in paths)
        assert not kinds or hit.kind in kinds


@FAST
@given(text=code_text, path=st.sampled_from(["a.py", ".env", "conf.yaml", "key.pem"]))
def test_redaction_keeps_lines_and_is_stable(text, path):
    once = redact_text(text, path)
    assert once.text.count("\n") == text.count("\n")
    assert redact_text(once.text, path).text == once.text
    assert all(1 <= r.line <= text.count("\n") + 1 for r in once.redactions)
