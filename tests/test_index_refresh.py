"""`CodeIndex.refresh()`, as a long-lived front end (the MCP server) calls it before every search:
nothing read again when nothing changed, edits and other writers' generations always picked up."""

from __future__ import annotations

import pytest

from lctk.models.fake import FakeEmbedder
from lctk.retrieval.api import CodeIndex


@pytest.fixture()
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("LCTK_INDEX_DIR", str(tmp_path / "indexes"))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dates.py").write_text("def parse_http_date(header):\n    return header.strip()\n")
    (repo / "slugs.py").write_text("def slugify(title):\n    return title.lower().replace(' ', '-')\n")
    return repo


def _open(root) -> CodeIndex:
    return CodeIndex.open(root, embedder=FakeEmbedder(), rerank=False)


def test_an_unchanged_tree_keeps_the_loaded_index_and_its_searcher(root):
    opened = _open(root)
    data, searcher = opened.data, opened.searcher
    stats = opened.refresh()
    assert not stats.wrote and stats.unchanged == 2
    assert opened.data is data and opened.searcher is searcher  # its caches survive


def test_an_edit_is_picked_up(root):
    opened = _open(root)
    searcher = opened.searcher
    (root / "retry.py").write_text("def retry_with_backoff(call):\n    return call()\n")
    stats = opened.refresh()
    assert stats.wrote and stats.added == 1 and opened.searcher is not searcher
    assert opened.search("retry with backoff", k=1, mode="lexical")[0].symbol == "retry_with_backoff"


def test_a_generation_written_by_another_process_is_loaded(root):
    server, other = _open(root), _open(root)
    (root / "retry.py").write_text("def retry_with_backoff(call):\n    return call()\n")
    assert other.refresh().wrote  # e.g. `lctk search` in a terminal indexes the edit first
    stats = server.refresh()
    assert not stats.wrote  # nothing left to index...
    assert server.data.directory == other.data.directory  # ...but the newer generation is loaded
    assert server.search("retry with backoff", k=1, mode="lexical")[0].symbol == "retry_with_backoff"
