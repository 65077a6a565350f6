"""Repository URLs as inputs: shallow clones cached by (URL, commit), reused, refreshed, never prompting.

Every repository is a local `file://` one made with `git init` in a temporary directory.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_lctk

from lctk.errors import InputError
from lctk.sources import remote
from lctk.sources.remote import checkout, is_remote, redact_url

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_CONFIG_NOSYSTEM": "1"}

UTIL_V1 = '''def slugify(title):
    """Lower-case a title and join its words with dashes."""
    return "-".join(title.lower().split())
'''
UTIL_V2 = UTIL_V1 + '''

def word_count(text):
    """Number of whitespace-separated words."""
    return len(text.split())
'''


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` with a fixed identity; return its stdout."""
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def commit_file(repo: Path, relative: str, text: str, message: str) -> str:
    (repo / relative).parent.mkdir(parents=True, exist_ok=True)
    (repo / relative).write_text(text)
    git(repo, "add", relative)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path):
    """A repository with two commits on main, an annotated tag v1 on the first, and a branch `feature`."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    first = commit_file(repo, "src/util.py", UTIL_V1, "first")
    git(repo, "tag", "-a", "v1", "-m", "version 1")
    git(repo, "checkout", "-q", "-b", "feature")
    commit_file(repo, "src/feature.py", "FEATURE = True\n", "feature")
    git(repo, "checkout", "-q", "main")
    second = commit_file(repo, "src/util.py", UTIL_V2, "second")
    return {"path": repo, "url": repo.as_uri(), "first": first, "second": second}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache directory of this test's own (the library reads LCTK_CACHE_DIR on every call)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("LCTK_CACHE_DIR", str(directory))
    return directory


def test_urls_are_told_from_paths():
    assert is_remote("https://github.com/owner/repo.git") and is_remote("ssh://git@host/owner/repo")
    assert is_remote("git@github.com:owner/repo.git") and is_remote("file:///tmp/repo")
    assert not is_remote("repo/") and not is_remote("./a:b") and not is_remote("-") and not is_remote("src/a.py")


def test_default_branch_is_cloned_once_then_read_offline(origin, cache):
    first = checkout(origin["url"])
    assert first.cloned and first.commit == origin["second"] and first.ref == "HEAD"
    assert (first.path / "src" / "util.py").read_text() == UTIL_V2
    assert first.path.parent.parent == cache / "repos"
    # the second call clones nothing and does not even ask the remote: it works with the origin gone
    origin["path"].rename(origin["path"].with_name("moved"))
    again = checkout(origin["url"])
    assert not again.cloned and again.path == first.path and again.commit == first.commit
    assert sorted(p.name for p in first.path.parent.iterdir() if not p.name.startswith(".")) == [first.commit, "lock", "refs.json"]


def test_refresh_picks_up_a_new_commit_and_keeps_the_old_checkout(origin, cache):
    before = checkout(origin["url"], ref="main")
    third = commit_file(origin["path"], "src/util.py", UTIL_V2 + "\nVERSION = 3\n", "third")
    assert checkout(origin["url"], ref="main").commit == before.commit  # cached until asked
    after = checkout(origin["url"], ref="main", refresh=True)
    assert after.cloned and after.commit == third and after.path != before.path
    assert "VERSION = 3" in (after.path / "src" / "util.py").read_text()
    assert (before.path / "src" / "util.py").read_text() == UTIL_V2  # a reader of the old commit is undisturbed
    assert checkout(origin["url"], ref="main").commit == third  # the refreshed resolution is what is cached now


def test_tag_branch_and_commit_refs(origin, cache):
    tagged = checkout(origin["url"], ref="v1")
    assert tagged.commit == origin["first"]  # the annotated tag is peeled to its commit
    assert (tagged.path / "src" / "util.py").read_text() == UTIL_V1
    assert (checkout(origin["url"], ref="feature").path / "src" / "feature.py").is_file()
    by_sha = checkout(origin["url"], ref=origin["first"])  # not a branch tip: fetched by its SHA
    assert by_sha.commit == origin["first"] and not by_sha.cloned  # the tag's checkout is that commit already
    short = checkout(origin["url"], ref=origin["second"][:10])  # an abbreviated SHA: found after a full fetch
    assert short.commit == origin["second"] and (short.path / "src" / "util.py").read_text() == UTIL_V2


def test_commit_is_fetched_by_sha_shallowly(origin, cache):
    got = checkout(origin["url"], ref=origin["first"])
    assert got.cloned and (got.path / "src" / "util.py").read_text() == UTIL_V1
    assert git(got.path, "rev-list", "--count", "HEAD") == "1"  # depth 1: no history came with it


def test_commit_falls_back_to_a_full_fetch_when_the_server_refuses(origin, cache, monkeypatch, caplog):
    # Protocol v0 servers refuse a commit that is no branch or tag tip (uploadpack.allowReachableSHA1InWant is off).
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.version")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "0")
    with caplog.at_level(logging.INFO, logger="lctk"):
        got = checkout(origin["url"], ref=origin["first"])
    assert got.commit == origin["first"] and (got.path / "src" / "util.py").read_text() == UTIL_V1
    assert "would not send commit" in caplog.text


def test_two_processes_clone_once(origin, cache):
    script = ("import json, sys; from lctk.sources.remote import checkout; "
              "c = checkout(sys.argv[1]); print(json.dumps([str(c.path), c.cloned]))")
    procs = [subprocess.Popen([sys.executable, "-c", script, origin["url"]], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert results[0][0] == results[1][0]
    assert sorted(cloned for _, cloned in results) == [False, True]  # the second waited on the lock, then reused


def test_bad_urls_and_refs_are_one_line_errors(origin, cache, tmp_path):
    with pytest.raises(InputError, match="does not appear to be a git repository"):
        checkout((tmp_path / "missing").as_uri())
    with pytest.raises(InputError, match="no branch or tag 'nope'"):
        checkout(origin["url"], ref="nope")
    with pytest.raises(InputError, match="not a branch, tag or commit name"):
        checkout(origin["url"], ref="--upload-pack=touch /tmp/x")
    with pytest.raises(InputError, match="not a repository URL"):
        checkout("ext::sh -c touch% /tmp/pwned")


def test_credentials_are_redacted_and_never_stored(origin, cache):
    assert redact_url("fetch https://user:s3cret@host/r.git failed") == "fetch https://***@host/r.git failed"
    assert redact_url("https://ghp_token@host/r.git") == "https://***@host/r.git"  # a bare http user is often a token
    assert redact_url("ssh://git@host/r.git") == "ssh://git@host/r.git"  # an ssh login is not a secret
    assert redact_url("git:pw@host:owner/r.git") == "***@host:owner/r.git"
    # A URL with credentials: git gets it without them, so they reach neither .git/config nor refs.json nor output.
    with_secret = origin["url"].replace("file://", "file://user:s3cret@")
    got = checkout(with_secret)
    assert "s3cret" not in got.url and got.url.startswith("file://***@")
    for path in [got.path / ".git" / "config", got.path.parent / "refs.json"]:
        assert "s3cret" not in path.read_text()
    # Over http the credentials reach git through a helper reading the environment, not the command line.
    parsed = remote._parse("https://user:s3cret@example.com/owner/r.git")
    args = remote._network_args(parsed)
    assert parsed.url == "https://example.com/owner/r.git" and not any("s3cret" in a for a in args)
    proc = subprocess.run(["git", *args, "credential", "fill"], input="protocol=https\nhost=example.com\n\n", text=True,
                          capture_output=True, env=remote._environment(parsed), timeout=30)
    assert "username=user" in proc.stdout and "password=s3cret" in proc.stdout


def test_unreachable_url_fails_fast_without_showing_the_password(cache):
    with pytest.raises(InputError) as caught:
        checkout("http://user:s3cret@127.0.0.1:9/owner/r.git")  # nothing listens on port 9: refused at once
    message = str(caught.value)
    assert "s3cret" not in message and "http://***@127.0.0.1:9/owner/r.git" in message and "\n" not in message


# ---------------------------------------------------------------- through the CLI


def test_search_and_index_a_url_with_paths_from_the_repository_root(origin):
    first = run_lctk("index", origin["url"], "--ref", "v1")
    assert first.exit_code == 0, first.stderr
    assert "cloning" in first.stderr and f"at {origin['first']} (v1)" in first.stdout
    index_line = next(line for line in first.stdout.splitlines() if line.strip().startswith("index:"))
    assert index_line.split("index:", 1)[1].strip().startswith(os.environ["LCTK_CACHE_DIR"])  # never in the cwd
    found = run_lctk("search", "slugify a title", origin["url"], "--ref", "v1", "--format", "json", "-k", "1")
    assert found.exit_code == 0, found.stderr
    assert "cloning" not in found.stderr and "reading" in found.stderr  # reused, not cloned again
    data = json.loads(found.stdout)
    assert data["results"][0]["path"] == "src/util.py"  # from the repository root, not the cache
    assert data["repository"] == {"url": origin["url"], "ref": "v1", "commit": origin["first"]}
    listed = run_lctk("search", "slugify", origin["url"], "--ref", "v1", "-l")
    assert listed.stdout == "src/util.py\n"


def test_cli_errors_for_urls(origin, tmp_path):
    assert_one_line_error(run_lctk("search", "x", (tmp_path / "missing").as_uri()), 1, "does not appear to be a git repository")
    bad = run_lctk("index", "http://user:s3cret@127.0.0.1:9/owner/r.git")
    assert_one_line_error(bad, 1, "cannot read http://***@127.0.0.1:9/owner/r.git")
    assert "s3cret" not in bad.stderr
    assert_one_line_error(run_lctk("search", "x", str(tmp_path), "--ref", "main"), 2, "--ref applies to a repository URL")
    assert_one_line_error(run_lctk("compress", origin["url"], str(tmp_path), "-B", "100"), 2, "must be the only input")
    assert_one_line_error(run_lctk("compress", origin["url"], "--diff", "-B", "100"), 2, "--diff needs a local git work tree")


def test_compress_a_url_at_a_tag(origin):
    result = run_lctk("compress", origin["url"], "--ref", "v1", "-B", "200", "--format", "json", "--no-cache")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [f["path"] for f in data["files"]] == ["src/util.py"]
    assert data["text"].startswith("==> src/util.py") and "slugify" in data["text"] and "word_count" not in data["text"]
    assert data["repository"] == {"url": origin["url"], "ref": "v1", "commit": origin["first"]}
