"""`--diff`: git's diff parsed, shown first within the budget, and changed code and its callers ranked first."""

import dataclasses
import json

import pytest
from conftest import assert_one_line_error, run_lctk
from test_remote import commit_file, git

from lctk.compress.api import compress
from lctk.compress.header import directory_tree
from lctk.compress.model import DROPPED, KEPT
from lctk.compress.render import render, render_context
from lctk.errors import InputError
from lctk.score_cache import MemoryScoreCache
from lctk.sources.gitdiff import ADDED, DELETED, MODIFIED, RENAMED, GitDiff, load_diff, parse_diff
from lctk.sources.walk import gather_sources

APP = '''def parse_header(line):
    """Split a header line into name and value."""
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def read_headers(lines):
    """Read headers until the blank line."""
    headers = {}
    for line in lines:
        if not line.strip():
            break
        name, value = parse_header(line)
        headers[name] = value
    return headers


def format_size(n):
    """Human-readable byte count."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def checksum(data):
    """Adler-32 style checksum of bytes."""
    a, b = 1, 0
    for byte in data:
        a = (a + byte) % 65521
        b = (b + a) % 65521
    return (b << 16) | a
'''
CHANGED = APP.replace(
    '    name, _, value = line.partition(":")\n',
    '    name, _, value = line.partition(":")\n    if not name:\n        raise ValueError("header without a name")\n',
)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A committed repository (cwd = its parent, so inputs are named `repo/...`) whose parse_header was then edited."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit_file(root, "app.py", APP, "first")
    commit_file(root, "notes.md", "# Notes\n\nNothing yet.\n", "notes")
    (root / "app.py").write_text(CHANGED)
    monkeypatch.chdir(tmp_path)
    return root


@pytest.fixture(scope="module")
def scores():
    return MemoryScoreCache()  # one per module: the same chunks and query are scored once


def test_diff_lists_files_with_counts_and_changed_lines(repo):
    (repo / "new.py").write_text("def fresh():\n    return 1\n")  # untracked: a new file before `git add`
    git(repo, "mv", "notes.md", "NOTES.md")
    diff = load_diff(["repo"])
    by_path = {f.path: f for f in diff.files}
    assert set(by_path) == {"repo/app.py", "repo/new.py", "repo/NOTES.md"}
    app = by_path["repo/app.py"]
    assert (app.status, app.added, app.removed, app.changed_lines) == (MODIFIED, 2, 0, ((4, 5),))
    assert app.touches(1, 6) and not app.touches(8, 16)
    assert (by_path["repo/new.py"].status, by_path["repo/new.py"].added) == (ADDED, 2)
    assert by_path["repo/NOTES.md"].status == RENAMED and by_path["repo/NOTES.md"].old_path == "repo/notes.md"
    assert diff.text.startswith("diff --git a/repo/") and "+        raise ValueError" in diff.text
    # a file named on its own keeps its own path; a range leaves the working tree (and untracked files) out
    assert [f.path for f in load_diff(["repo/app.py"]).files] == ["repo/app.py"]
    assert [f.path for f in load_diff(["repo"], "HEAD~1..HEAD").files] == ["repo/notes.md"]


def test_parse_diff_handles_deletions_quoting_and_binary_files():
    text = (
        'diff --git "a/dir/caf\\303\\251.py" "b/dir/caf\\303\\251.py"\ndeleted file mode 100644\nindex 1..0\n'
        '--- "a/dir/caf\\303\\251.py"\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x = 1\n-y = 2\n'
        "diff --git a/img.png b/img.png\nindex 1..2 100644\nBinary files a/img.png and b/img.png differ\n"
        "diff --git a/m.py b/m.py\nindex 1..2 100644\n--- a/m.py\n+++ b/m.py\n@@ -3,3 +3,2 @@ def f():\n a\n-b\n c\n"
    )
    deleted, image, edited = parse_diff(text)
    assert (deleted.path, deleted.status, deleted.removed) == ("dir/café.py", DELETED, 2)
    assert image.binary and image.path == "img.png"
    assert edited.changed_lines == ((3, 3),) and (edited.added, edited.removed) == (0, 1)  # a removal marks the line before it


def test_diff_errors(repo, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.py").write_text("x = 1\n")
    with pytest.raises(InputError, match="not in a git work tree"):
        load_diff([str(plain)])
    with pytest.raises(InputError, match="unknown revision 'nope'"):
        load_diff(["repo"], "nope")
    with pytest.raises(InputError, match="not a git revision"):
        load_diff(["repo"], "--output=/tmp/x")


def _compress(llama_lm, scores, budget, **options):
    sources, _ = gather_sources(["repo"])
    diff = load_diff(["repo"]).restricted(s.path for s in sources)
    return compress(sources, llama_lm, budget_tokens=budget, cache=scores, diff=diff, **options)


def test_changed_function_first_then_its_caller_within_the_budget(repo, llama_lm, scores):
    result = _compress(llama_lm, scores, 330)
    text = render_context(result.files, "text", result.tree, result.diff)
    assert text.startswith("==> git diff HEAD (1 file changed, +2 -0) <==\ndiff --git a/repo/app.py")
    assert llama_lm.count_tokens(text) == result.output_tokens <= 330
    units = {u.symbol: u for u in result.units}
    assert units["parse_header"].decision == KEPT  # changed: kept whole, never cut line by line
    assert units["parse_header"].score > units["read_headers"].score > max(units["format_size"].score, units["checksum"].score)
    assert units["read_headers"].decision != DROPPED  # the caller is kept over unrelated code...
    assert units["format_size"].decision == units["checksum"].decision == DROPPED  # ...which the budget leaves out
    assert "name, value = parse_header(line)" in text  # a caller cut line by line keeps its call site
    assert result.diff.query_from_diff and 'raise ValueError("header without a name")' in result.query


def test_diff_alone_over_the_budget_is_cut_with_a_marker(repo, llama_lm, scores):
    result = _compress(llama_lm, scores, 70)
    assert result.diff.truncated and 0 < result.diff.lines_shown < result.diff.lines_total
    text = render_context(result.files, "text", result.tree, result.diff)
    assert f"[… diff truncated: {result.diff.lines_shown} of {result.diff.lines_total} lines shown" in text
    assert llama_lm.count_tokens(text) <= 70 and all(u.decision == DROPPED for u in result.units)


def test_diff_and_tree_in_every_format(repo, llama_lm, scores):
    result = _compress(llama_lm, scores, 420, tree=True, query="reject a header without a name")
    text = render_context(result.files, "text", result.tree, result.diff)
    assert text.startswith("==> directory tree <==\nrepo/\n  app.py\n  notes.md\n\n==> git diff HEAD")
    assert llama_lm.count_tokens(text) <= 420 and not result.diff.query_from_diff
    xml = render_context(result.files, "xml", result.tree, result.diff)
    assert xml.index("<directory_tree>") < xml.index('<diff ref="HEAD" files="1"') < xml.index("<file path=")
    markdown = render_context(result.files, "markdown", result.tree, result.diff)
    assert markdown.index("## Directory tree") < markdown.index("## git diff HEAD") < markdown.index("```diff") < markdown.index("## repo/app.py")
    data = json.loads(render(dataclasses.replace(result, output_format="json")))
    assert data["diff"]["files"] == [{"path": "repo/app.py", "old_path": None, "status": "modified", "added": 2, "removed": 0, "binary": False}]
    assert data["diff"]["truncated"] is False and data["text"] == text and data["tree"].startswith("repo/")


def test_directory_tree_folds_deep_directories():
    paths = ["pkg/src/core/a.py", "pkg/src/core/b.py", "pkg/src/util/c.py", "pkg/README.md", "setup.py"]
    assert directory_tree(paths) == ["pkg/", "  src/", "    core/", "      a.py", "      b.py", "    util/", "      c.py",
                                     "  README.md", "setup.py"]
    assert directory_tree(paths, 1) == ["pkg/", "  src/ (3 files)", "  README.md", "setup.py"]
    assert directory_tree(["a/b/c/d.py"]) == ["a/b/c/", "  d.py"]  # a chain of lone directories shares a line


def test_compress_diff_through_the_cli(repo):
    result = run_lctk("compress", "repo", "--diff", "-B", "330", "--retrieval", "bm25", "--format", "json", "--no-cache")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["text"].startswith("==> git diff HEAD")
    assert [(f["path"], f["added"], f["removed"]) for f in data["diff"]["files"]] == [("repo/app.py", 2, 0)]
    assert data["tokens"]["output"] <= 330
    kept = {u["symbol"]: u["decision"] for u in data["units"]}
    assert kept["parse_header"] == "kept" and kept["checksum"] == "dropped"


def test_diff_outside_git_and_on_stdin_are_one_line_errors(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.py").write_text("def f():\n    return 1\n")
    assert_one_line_error(run_lctk("compress", str(tmp_path / "plain"), "--diff", "-B", "100"), 1, "not in a git work tree")
    assert_one_line_error(run_lctk("compress", "-", "--diff", "-B", "100", input="x = 1\n"), 2, "not stdin")


def test_secrets_in_a_diff_are_redacted_with_their_line_on_the_right_side():
    key = "AKIA" + "Q3EXAMPLE7KEY2XZ"  # an AWS access key id shape
    text = (
        "diff --git a/cfg.py b/cfg.py\nindex 1..2 100644\n--- a/cfg.py\n+++ b/cfg.py\n"
        f"@@ -10,4 +10,4 @@ def settings():\n     region = 'eu'\n-    old_key = '{key}'\n+    new_key = '{key}'\n     debug = False\n"
        "\\ No newline at end of file\n"
    )
    (changed,) = parse_diff(text)
    diff = GitDiff("HEAD", (changed,))
    clean, found = diff.redacted()
    assert key not in clean.text and "[REDACTED:" in clean.text
    assert clean.text.count("\n") == text.count("\n")  # markers and lines kept
    assert sorted(r.line for r in found) == [11, 11]  # the removed line on the old side, the added one on the new
    assert "old_key" in diff.query_text() and "new_key" in diff.query_text() and "region" not in diff.query_text()
