"""lctk search / index: SEA splitting, the incremental index, ranking, filters, CLI behaviour."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_lctk
from test_chunking import SAMPLES

from lctk.models.fake import FakeEmbedder
from lctk.retrieval import api
from lctk.retrieval.indexer import build_index
from lctk.retrieval.ranking import Filters, Searcher, is_symbol_query
from lctk.retrieval.store import aggregate, index_location, load_index, matvec
from lctk.retrieval.units import FILE, split_file
from lctk.sources.chunking import parse_text, text_lines

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="session")
def wordpiece():
    """The default embedder's tokenizer (via the NumPy runtime: no torch needed)."""
    from lctk.models.numpy_bert import NumpyBertEmbedder
    from lctk.models.registry import resolve_model

    return NumpyBertEmbedder(resolve_model("minilm-l6-v2", "embed").path, "minilm-l6-v2")


def _real_files():
    files = [(STDLIB / name, "python") for name in ("argparse.py", "json/decoder.py", "textwrap.py", "fractions.py")]
    return [(path.read_text(), language) for path, language in files] + [(text, lang) for lang, (text, _) in SAMPLES.items()]


@pytest.mark.parametrize("limit", [24, 128])
def test_blocks_stay_within_the_bound_and_cover_every_unit(wordpiece, limit):
    for text, language in _real_files():
        split = split_file(parse_text(text, language), limit, wordpiece.count_tokens, wordpiece.cut_text)
        lines = text_lines(text)
        assert split.units[-1].kind == FILE and split.units[-1].block_end == len(split.blocks)
        for block in split.blocks:
            assert block.tokens <= limit
            assert wordpiece.count_tokens([block.text])[0] <= limit + 2, block.text  # re-tokenised cut pieces
        for unit in split.units:
            covered = set()
            for block in split.blocks[unit.block_start : unit.block_end]:
                covered.update(range(block.start_line, block.end_line + 1))
            wanted = {n for n in range(unit.start_line, unit.end_line + 1) if lines[n - 1].strip()}
            assert wanted <= covered, (language, unit)
        kinds = {u.kind for u in split.units}
        assert "function" in kinds or "method" in kinds


def test_splitting_follows_the_syntax_tree(wordpiece):
    """A statement that fits the bound is never cut: it lies inside one block."""
    text = (STDLIB / "textwrap.py").read_text()
    limit = 64
    parsed = parse_text(text, "python")
    split = split_file(parsed, limit, wordpiece.count_tokens, wordpiece.cut_text)
    counts = wordpiece.count_tokens(text_lines(text))
    checked = 0
    stack = [parsed.tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if not node.type.endswith("_statement") or node.start_point.row == node.end_point.row:
            continue
        first, last = node.start_point.row + 1, node.end_point.row + 1
        if sum(counts[first - 1 : last]) > limit:
            continue
        checked += 1
        assert any(b.start_line <= first and last <= b.end_line for b in split.blocks), (node.type, first, last)
    assert checked > 20


def test_deep_nesting_and_huge_lines_do_not_crash(wordpiece):
    deep = "x = " + "[" * 5000 + "]" * 5000 + "\n"
    long_line = "y = '" + "word " * 3000 + "'\n"
    for text in (deep, long_line):
        split = split_file(parse_text(text, "python"), 32, wordpiece.count_tokens, wordpiece.cut_text)
        assert split.blocks and all(b.tokens <= 32 for b in split.blocks)
        assert "".join(b.text for b in split.blocks).replace(" ", "") != ""


def test_aggregations_are_unit_vectors():
    rng = np.random.default_rng(0)
    blocks = rng.normal(size=(10, 8)).astype(np.float32)
    ranges = np.array([[0, 3], [3, 10], [5, 6]])
    for how in ("mean", "max", "attention"):
        vectors = aggregate(blocks, ranges, how)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    mean = aggregate(blocks, ranges, "mean")
    expected = blocks[3:10].mean(0)
    assert np.allclose(mean[1], expected / np.linalg.norm(expected), atol=1e-5)
    assert np.allclose(aggregate(blocks, ranges, "attention")[2], blocks[5] / np.linalg.norm(blocks[5]), atol=1e-5)


# ------------------------------------------------------------------ the index


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "http.py").write_text(
        "def parse_http_date(header):\n    \"\"\"Parse an HTTP date header into a timestamp.\"\"\"\n    return header.strip()\n\n\n"
        "class Client:\n    def get(self, url):\n        return fetch(url)\n\n    def retry_with_backoff(self, call):\n        return call()\n"
    )
    (root / "src" / "store.go").write_text(
        "package store\n\n// Save writes the record to disk.\nfunc Save(record string) error {\n\treturn nil\n}\n"
    )
    (root / "lib").mkdir()
    (root / "lib" / "util.py").write_text("def slugify(title):\n    return title.lower().replace(' ', '-')\n")
    (root / "README.md").write_text("# Demo\n\nParse dates and save records.\n")
    return root


def test_index_round_trip_and_search(tmp_path):
    root = _repo(tmp_path)
    embedder = FakeEmbedder()
    stats = build_index(root, embedder)
    assert (stats.files, stats.added, stats.embedded_blocks > 0) == (4, 4, True)
    assert (root / ".lctk" / ".gitignore").read_text().strip().endswith("*")
    data = load_index(root.resolve())
    assert [f.path for f in data.files] == ["README.md", "lib/util.py", "src/http.py", "src/store.go"]
    assert {"parse_http_date", "Client", "Client.get", "Save", "slugify"} <= set(data.unit_name)
    # vectors are stored as float16 and mapped as they are; matvec multiplies them in float32
    assert data.block_vectors.dtype == np.float16 and isinstance(data.block_vectors, np.memmap)
    query = embedder.embed(["parse http date header"])[0]
    np.testing.assert_allclose(matvec(data.block_vectors, query), data.block_vectors.astype(np.float32) @ query, rtol=1e-6)
    hits = Searcher(data, embedder).search("parse http date header", k=3)
    assert hits[0].symbol == "parse_http_date" and hits[0].path == "src/http.py" and hits[0].start_line == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        hits[0].score = 0  # type: ignore[misc]


def test_incremental_update_embeds_only_changed_files(tmp_path):
    root = _repo(tmp_path)
    embedder = FakeEmbedder()
    build_index(root, embedder)
    first = embedder.embedded
    again = build_index(root, embedder)
    assert (again.embedded_blocks, again.wrote, embedder.embedded) == (0, False, first)
    (root / "lib" / "util.py").write_text("def slugify(title):\n    return title.lower()\n\n\ndef camel(name):\n    return name.title()\n")
    (root / "src" / "store.go").unlink()
    (root / "src" / "new.py").write_text("def brand_new():\n    return 1\n")
    os.utime(root / "README.md", ns=(1, 1))  # touched, same content: not re-embedded
    stats = build_index(root, embedder)
    assert (stats.added, stats.changed, stats.removed, stats.unchanged) == (1, 1, 1, 2)
    data = load_index(root.resolve())
    changed_blocks = sum(f.block_end - f.block_start for f in data.files if f.path in ("lib/util.py", "src/new.py"))
    assert stats.embedded_blocks == embedder.embedded - first == changed_blocks
    assert "camel" in data.unit_name and "Save" not in data.unit_name
    # the reused rows are the same as a fresh build's
    fresh_root = tmp_path / "fresh"
    shutil.copytree(root, fresh_root, ignore=shutil.ignore_patterns(".lctk"))
    build_index(fresh_root, FakeEmbedder())
    fresh = load_index(fresh_root.resolve())
    assert data.unit_name == fresh.unit_name and np.array_equal(data.block_vectors, fresh.block_vectors)
    assert np.array_equal(data.unit_vectors, fresh.unit_vectors)
    query = "slugify title"
    assert Searcher(data, embedder).search(query) == Searcher(fresh, embedder).search(query)


def test_failed_write_keeps_the_previous_index(tmp_path, monkeypatch):
    root = _repo(tmp_path)
    build_index(root, FakeEmbedder())
    before = load_index(root.resolve())
    (root / "lib" / "util.py").write_text("def other():\n    pass\n")
    import lctk.retrieval.store as store

    real_save = np.save

    def dying_save(handle, array, allow_pickle=False):
        if getattr(handle, "name", "").endswith("unit_vectors.npy"):
            raise OSError(28, "No space left on device")
        return real_save(handle, array, allow_pickle=allow_pickle)

    monkeypatch.setattr(store.np, "save", dying_save)
    with pytest.raises(Exception, match="No space left"):
        build_index(root, FakeEmbedder())
    monkeypatch.undo()
    after = load_index(root.resolve())
    assert after.unit_name == before.unit_name and after.directory == before.directory
    assert len(list(index_location(root.resolve()).glob("g-*"))) == 1  # the torn generation was removed


def test_corrupt_index_is_rebuilt_with_a_warning(tmp_path):
    root = _repo(tmp_path)
    assert run_lctk("index", str(root)).exit_code == 0
    current = index_location(root.resolve()) / (index_location(root.resolve()) / "CURRENT").read_text().strip()
    (current / "unit_vectors.npy").write_bytes(b"garbage")
    result = run_lctk("search", "slugify", str(root), "-k", "1")
    assert result.exit_code == 0, result.stderr
    assert "damaged" in result.stderr and "lib/util.py:1-2" in result.stdout


def test_killed_indexer_leaves_a_loadable_index(tmp_path):
    root = tmp_path / "big"
    shutil.copytree(STDLIB / "email", root / "email", ignore=shutil.ignore_patterns("__pycache__"))
    assert run_lctk("index", str(root)).exit_code == 0
    previous = load_index(root.resolve())
    for target in sorted((root / "email").glob("*.py"))[:12]:
        target.write_text(target.read_text() + "\n# touched\n")
    for delay in (0.3, 0.8, 1.5):
        proc = subprocess.Popen([sys.executable, "-m", "lctk", "index", str(root), "--rebuild"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = load_index(root.resolve())
        assert data is not None and data.n_units > 0
        assert data.unit_name == previous.unit_name or data.directory != previous.directory
    assert run_lctk("index", str(root)).exit_code == 0
    assert len(list(index_location(root.resolve()).glob("g-*"))) == 1


def test_concurrent_indexers_are_serialised(tmp_path):
    root = tmp_path / "pkg"
    shutil.copytree(STDLIB / "json", root / "json", ignore=shutil.ignore_patterns("__pycache__"))
    procs = [subprocess.Popen([sys.executable, "-m", "lctk", "index", str(root), "-f", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    stats = [json.loads(o[0]) for o in outputs]
    assert sorted(s["added"] for s in stats) == [0, stats[0]["files"]]  # the second found the first's work
    data = load_index(root.resolve())
    assert len(data.files) == stats[0]["files"] and len(list(index_location(root.resolve()).glob("g-*"))) == 1


def test_filters_apply_before_top_k(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(30):
        (root / f"m{i}.py").write_text(f"def parse_header_{i}(value):\n    return parse(value)\n")
    (root / "tail.go").write_text("package x\n\n// unrelated words only\nfunc Zebra() {}\n")
    embedder = FakeEmbedder()
    build_index(root, embedder)
    searcher = Searcher(load_index(root.resolve()), embedder)
    assert all(h.language == "python" for h in searcher.search("parse header", k=5))
    go = searcher.search("parse header", k=1, filters=Filters(languages=("go",)))
    assert len(go) == 1 and go[0].path == "tail.go"
    only = searcher.search("parse header", k=50, filters=Filters(globs=("m1*.py",)))
    assert only and {h.path for h in only} <= {f"m{i}.py" for i in [1, *range(10, 20)]}
    assert searcher.search("parse", filters=Filters(paths=("nowhere",))) == ()
    kinds = searcher.search("parse header", k=50, filters=Filters(kinds=("file",)))
    assert kinds and all(h.kind == "file" for h in kinds)


def test_hybrid_symbol_queries_lean_lexical(tmp_path):
    assert is_symbol_query("Depends") and is_symbol_query("http.client.HTTPConnection") and not is_symbol_query("parse a date")
    root = _repo(tmp_path)
    embedder = FakeEmbedder()
    build_index(root, embedder)
    searcher = Searcher(load_index(root.resolve()), embedder)
    assert searcher.search("retry_with_backoff", k=1)[0].symbol == "Client.retry_with_backoff"
    assert searcher.search("Save", k=1, mode="lexical")[0].symbol == "Save"


def test_changing_the_embedder_rebuilds(tmp_path, caplog):
    root = _repo(tmp_path)
    build_index(root, FakeEmbedder())
    stats = build_index(root, FakeEmbedder(dim=32, model_id="other-embed"))
    assert stats.rebuilt and "embedder changed" in stats.rebuilt and stats.embedded_blocks > 0
    assert load_index(root.resolve()).meta["model"] == "other-embed"


def test_index_dir_from_environment(tmp_path, monkeypatch):
    root = _repo(tmp_path)
    monkeypatch.setenv("LCTK_INDEX_DIR", str(tmp_path / "indexes"))
    build_index(root, FakeEmbedder())
    assert not (root / ".lctk").exists()
    assert load_index(root.resolve()) is not None and index_location(root.resolve()).parent == tmp_path / "indexes"


# ------------------------------------------------------------------ real models


def test_numpy_bert_equals_transformers(wordpiece, embedder):
    texts = ["def parse_http_date(header):\n    return header", "retry with exponential backoff", "x" * 3000, ""]
    a, b = wordpiece.embed(texts), embedder.embed(texts)
    assert np.all((a * b).sum(1)[:3] > 0.99999)


def test_static_embedder_is_fast_and_normalised():
    from lctk.models.loader import load_embedder

    static = load_embedder("minilm-l6-v2-static")
    texts = [f"def function_{i}(value):\n    return value * {i}\n" for i in range(2000)]
    started = time.perf_counter()
    vectors = static.embed(texts)
    assert time.perf_counter() - started < 2.0
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, static.embed(texts))


def test_docstring_queries_find_their_function_with_the_default_models(tmp_path):
    root = tmp_path / "pkg"
    shutil.copytree(STDLIB / "json", root / "json", ignore=shutil.ignore_patterns("__pycache__"))
    queries = {
        "Serialize obj to a JSON formatted str": "dumps",
        "Return the Python representation of s (a str instance containing a JSON document)": "JSONDecoder.decode",
        "Scan the string s for a JSON string": "py_scanstring",
    }
    for query, symbol in queries.items():
        hits = api.search(query, root, k=3)
        assert symbol in [h.symbol for h in hits], (query, hits)
    assert api.search("Serialize obj to a JSON formatted str", root, k=3) == api.search("Serialize obj to a JSON formatted str", root, k=3)


# ------------------------------------------------------------------ CLI


def test_cli_output_formats_and_stream_separation(tmp_path):
    root = _repo(tmp_path)
    result = run_lctk("search", "parse an HTTP date header", str(root), "-k", "2")
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{root}/src/http.py:1-3  ") and first.endswith("parse_http_date")
    assert "indexed" in result.stderr and "indexed" not in result.stdout
    jsonl = run_lctk("search", "save record", str(root), "--format", "jsonl", "--lang", "go", "-n", "0")
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert rows and rows[0]["path"].endswith("src/store.go") and rows[0]["code"]["lines"]
    assert set(rows[0]) >= {"rank", "path", "start_line", "end_line", "score", "symbol", "kind", "language"}
    files = run_lctk("search", "slugify", str(root), "-l")
    assert files.stdout.splitlines()[0].endswith("lib/util.py") and all(":" not in line for line in files.stdout.splitlines())
    payload = json.loads(run_lctk("search", "Client", str(root), "--format", "json", "--mode", "lexical").stdout)
    assert payload["mode"] == "lexical" and payload["results"][0]["symbol"] == "Client"
    within = run_lctk("search", "parse", str(root / "lib"), "-k", "5")
    assert within.exit_code == 0 and within.stdout and all("lib/" in line for line in within.stdout.splitlines())


def test_cli_bad_input(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_lctk("search", "anything", str(empty)), 1, "nothing to index")
    binary = tmp_path / "binary"
    binary.mkdir()
    (binary / "blob.bin").write_bytes(b"\x00\x01" * 100)
    (binary / "gone.py").symlink_to(binary / "missing.py")
    assert_one_line_error(run_lctk("index", str(binary)), 1, "nothing to index")
    root = _repo(tmp_path)
    assert_one_line_error(run_lctk("search", "   ", str(root)), 1, "empty query")
    assert_one_line_error(run_lctk("search", "x", str(tmp_path / "nope")), 1, "no such file")
    assert_one_line_error(run_lctk("search", "x", str(root), "--lang", "cobol"), 1, "unknown --lang")
    assert_one_line_error(run_lctk("search", "x", str(root), "--kind", "module"), 1, "unknown --kind")
    assert run_lctk("search", "x", str(root), "-k", "0").exit_code == 2


class CallRecorder(FakeEmbedder):
    """A fake embedder that keeps the texts of each embed call."""

    def __init__(self):
        super().__init__()
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return super().embed(texts)


def test_reranker_reads_exactly_what_the_index_embedded(tmp_path):
    root = _repo(tmp_path)
    recorder = CallRecorder()
    build_index(root, recorder)
    data = load_index(root.resolve())
    searcher = Searcher(data, recorder)
    rebuilt = [searcher._block_text(b) for b in range(len(data.block_lines))]
    assert sorted(rebuilt) == sorted(text for call in recorder.calls for text in call)
    first_http = next(f for f in data.files if f.path == "src/http.py")
    assert rebuilt[first_http.block_start].startswith("src/http.py parse_http_date\n")


def test_a_default_query_imports_neither_torch_nor_transformers(tmp_path):
    """The default query path (static first stage, full MiniLM re-score) runs in NumPy: a fresh
    process searching a built index never imports torch or transformers (models built here first)."""
    root = _repo(tmp_path)
    assert api.CodeIndex.open(root).search("parse an http date")[0].symbol == "parse_http_date"  # builds what is missing
    code = ("import sys; from lctk.retrieval.api import CodeIndex; "
            "hit = CodeIndex.open(sys.argv[1], refresh=False).search('parse an http date')[0]; "
            "print(hit.symbol, 'torch' in sys.modules, 'transformers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["parse_http_date", "False", "False"]


def test_a_warm_index_reranks_without_embedding_code(tmp_path):
    """After Searcher.warm every block's full vector is stored: a query embeds only itself."""
    from lctk.score_cache import MemoryScoreCache

    root = _repo(tmp_path)
    build_index(root, FakeEmbedder())
    data = load_index(root.resolve())
    reranker, cache = CallRecorder(), MemoryScoreCache()
    blocks, embedded = Searcher(data, FakeEmbedder(), reranker, cache).warm(batch=2)
    assert blocks == embedded == len(data.block_lines) and sum(map(len, reranker.calls)) == blocks
    assert Searcher(data, FakeEmbedder(), reranker, cache).warm() == (blocks, 0)  # nothing twice
    reranker.calls.clear()
    searcher = Searcher(data, FakeEmbedder(), reranker, cache)
    rebuilt = [searcher._block_text(b) for b in range(blocks)]
    assert [bytes(row).hex() for row in data.block_keys] == [hashlib.sha256(t.encode()).hexdigest() for t in rebuilt]
    searcher._block_text = None  # a warm query reads no file: the keys are stored in the index
    cold = searcher.search("parse http date header", k=3)
    assert reranker.calls == [["parse http date header"]]
    assert cold[0].symbol == "parse_http_date"
    assert Searcher(data, FakeEmbedder(), CallRecorder(), MemoryScoreCache()).search("parse http date header", k=3) == cold


def test_a_searcher_reuses_what_its_earlier_queries_read(tmp_path):
    """A searcher's second query reads every stored full-model vector at once and makes float32
    copies of the index's vectors; later queries read nothing again and rank as a fresh searcher."""
    from lctk.score_cache import MemoryScoreCache

    class CountingCache(MemoryScoreCache):
        reads = 0

        def get_many(self, model, kind, keys):
            self.reads += 1
            return super().get_many(model, kind, keys)

    root = _repo(tmp_path)
    build_index(root, FakeEmbedder())
    data = load_index(root.resolve())
    cache = CountingCache()
    Searcher(data, FakeEmbedder(), FakeEmbedder(), cache).warm()
    searcher = Searcher(data, FakeEmbedder(), FakeEmbedder(), cache)
    cache.reads = 0
    first = searcher.search("parse http date header", k=3)
    assert cache.reads == 1 and not searcher._float32  # a one-query process makes no copies
    assert searcher.search("parse http date header", k=3) == first
    assert cache.reads == 2 and len(searcher._full_memo) == len({bytes(row) for row in data.block_keys})  # all, once
    for query in ("retry with backoff", "parse http date header"):
        assert searcher.search(query, k=3) == Searcher(data, FakeEmbedder(), FakeEmbedder(), cache).search(query, k=3)
    assert cache.reads == 4  # the two fresh searchers' reads: `searcher` read nothing more
    assert {name: matrix.dtype for name, matrix in searcher._float32.items()} == {"unit_vectors": np.float32, "block_vectors": np.float32}


def test_a_cold_query_embeds_a_bounded_number_of_blocks_and_warms_with_use(tmp_path):
    """Without stored vectors a query embeds at most `cold_blocks` code blocks; repeated, it
    completes its head and then ranks exactly as a query allowed to embed every candidate."""
    from lctk.score_cache import MemoryScoreCache

    query = "parse http date header"
    root = _repo(tmp_path)
    build_index(root, FakeEmbedder())
    data = load_index(root.resolve())
    unbounded = Searcher(data, FakeEmbedder(), FakeEmbedder(), MemoryScoreCache()).search(query, k=5, cold_blocks=None)
    reranker = CallRecorder()
    searcher = Searcher(data, FakeEmbedder(), reranker, MemoryScoreCache())
    embedded = []
    for _ in range(len(data.block_lines) + 1):
        reranker.calls.clear()
        hits = searcher.search(query, k=5, cold_blocks=2)
        code = [text for call in reranker.calls for text in call if text != query]
        assert len(code) <= 2
        embedded.append(len(code))
        if not code:
            break
    assert embedded[0] == 2 and embedded[-1] == 0 and len(embedded) > 2  # it took several queries to warm
    assert hits == unbounded


def test_search_help_states_the_cold_budget():
    from lctk.retrieval.ranking import COLD_BLOCKS

    assert f"at most {COLD_BLOCKS} blocks" in " ".join(run_lctk("search", "--help").stdout.replace("│", " ").split())


def test_cli_index_warm_stores_every_block_once(tmp_path):
    root = _repo(tmp_path)
    first = run_lctk("index", str(root), "--warm", "--format", "json")
    assert first.exit_code == 0, first.stderr
    warm = json.loads(first.stdout)["warm"]
    assert warm["blocks"] == warm["embedded"] > 0
    again = run_lctk("index", str(root), "--warm")
    assert again.exit_code == 0 and f"warm: 0 of {warm['blocks']} blocks embedded" in again.stdout


def test_an_index_without_stored_block_keys_still_reranks(tmp_path):
    """Indexes written before block keys were stored hash the block texts instead."""
    from lctk.score_cache import MemoryScoreCache

    root = _repo(tmp_path)
    build_index(root, FakeEmbedder())
    data = load_index(root.resolve())
    expected = Searcher(data, FakeEmbedder(), FakeEmbedder(), MemoryScoreCache()).search("parse http date header", k=3)
    (data.directory / "block_keys.npy").unlink()
    old = load_index(root.resolve())
    assert old is not None and old.block_keys is None
    assert Searcher(old, FakeEmbedder(), FakeEmbedder(), MemoryScoreCache()).search("parse http date header", k=3) == expected
    (root / "lib" / "util.py").write_text("def slugify(title):\n    return title.lower()\n")
    build_index(root, FakeEmbedder())  # a refresh keeps unchanged files' missing keys as zero rows
    mixed = load_index(root.resolve())
    changed = next(f for f in mixed.files if f.path == "lib/util.py")
    assert mixed.block_keys[changed.block_start].any() and not mixed.block_keys[0].any()
    hits = Searcher(mixed, FakeEmbedder(), FakeEmbedder(), MemoryScoreCache()).search("parse http date header", k=3)
    assert hits[0].symbol == "parse_http_date"


def test_a_default_query_on_a_warm_index_imports_no_torch(tmp_path):
    """The default query path runs the static model and NumPy only: no torch, transformers or llama.cpp."""
    root = _repo(tmp_path)
    assert run_lctk("index", str(root), "--warm").exit_code == 0
    code = (
        "import sys\nfrom lctk.cli import main\n"
        f"try:\n    main(['search', 'parse an HTTP date header', {str(root)!r}, '-k', '2'])\n"
        "except SystemExit as e:\n    code = e.code\n"
        "print('HEAVY', [m for m in ('torch', 'transformers', 'llama_cpp') if m in sys.modules], code, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert "HEAVY [] 0" in proc.stderr, proc.stderr
    assert "parse_http_date" in proc.stdout
