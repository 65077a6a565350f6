"""Repository URLs as inputs: a shallow clone per (URL, commit) in the cache, reused until refreshed.

`checkout(url, ref=..., refresh=...)` returns a directory holding the repository at one commit.
URLs: `https://`, `http://`, `ssh://`, `git://`, `file://` and scp-style `user@host:owner/repo.git`.

Layout under `<cache>/repos/`:

    <name>-<digest>/            one per URL (credentials removed before hashing)
        lock                    serialises resolving and cloning this URL; a second process waits
        refs.json               {"<ref>": {"commit": "<sha>", "fetched": <unix s>}}: what each ref
                                ("HEAD" = the default branch) resolved to when last fetched
        <commit>/               the repository at that commit (`git fetch --depth 1`), renamed into
                                place complete and never changed afterwards, except for a search
                                index in its `.lctk/` (which git ignores)
        .clone.<random>.tmp/    a clone in progress (swept once stale)

A ref is resolved over the network (`git ls-remote`) the first time only, or on `refresh`;
afterwards `refs.json` answers, so a repository once fetched is read offline and the same
command prints the same bytes until the user asks for newer code. A full commit SHA needs no
resolving at all. A commit is fetched by its SHA (`git fetch --depth 1 origin <sha>`); when the
server refuses that (older protocol, unadvertised commit), and for an abbreviated SHA, the
branches and tags are fetched in full instead.

Credentials come from git itself (credential helpers, `GIT_ASKPASS`, ssh keys and agent) or from
the URL: `https://user:token@host/…` is split, git is given the URL without them (that is also
what `.git/config` in the cache stores), and the user name and password reach git through a
one-shot credential helper that reads them from the child's environment — never from its command
line, which any user can read in `ps`. Every URL shown (messages, logs, JSON) has its
`user:password@` replaced by `***@` (for http(s) any user part, often a token on its own).
Nothing prompts: see lctk.sources.gitcmd.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

from lctk.config import writable_cache_subdir
from lctk.errors import InputError
from lctk.score_cache import content_hash
from lctk.sources.gitcmd import failure_line, git_environment, run_git
from lctk.storage import atomic_write_bytes, sweep_stale_temps, waiting_lock

log = logging.getLogger(__name__)

CACHE_SUBDIR = "repos"
REFS_FILE = "refs.json"
DEFAULT_REF = "HEAD"
RESOLVE_TIMEOUT_S = 120.0  # git ls-remote
CLONE_TIMEOUT_S = 900.0  # each fetch; a shallow fetch of a large repository takes minutes
LOCAL_TIMEOUT_S = 120.0  # init, checkout, rev-parse: local work

_SCHEME_URL = re.compile(r"^(?:https?|ssh|git|file|git\+ssh|ssh\+git)://", re.IGNORECASE)
_SCP_URL = re.compile(
    r"^(?P<user>[A-Za-z0-9._~%+-]+)(?::(?P<password>[^@/\s]*))?@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<path>(?!//)\S+)$"
)
_URL_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)([^/@\s]+)@")
_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{4,63}$")
_BAD_REF = re.compile(r"[\s\x00-\x1f\x7f~^:?*\[\\]|\.\.|@\{|^[-/]|/$|\.lock$|^$")
_AUTH_FAILURES = ("terminal prompts disabled", "could not read username", "could not read password",
                  "authentication failed", "permission denied (publickey", "host key verification failed",
                  "invalid username or password", "access denied")
_ENV_USERNAME, _ENV_PASSWORD = "LCTK_GIT_USERNAME", "LCTK_GIT_PASSWORD"
# Reads the credentials from the environment git passes on; only the variable names are on a command line.
_HELPER = f'!f() {{ test "$1" = get && printf "username=%s\\npassword=%s\\n" "${_ENV_USERNAME}" "${_ENV_PASSWORD}"; }}; f'


@dataclass(frozen=True)
class RemoteCheckout:
    """A repository URL checked out at one commit in the cache."""

    url: str  # as shown: credentials redacted
    ref: str  # as asked; "HEAD" for the default branch
    commit: str  # full SHA
    path: Path  # the checkout (the repository root)
    cloned: bool  # False when an existing checkout was reused
    fetched_at: float  # unix time the ref was last resolved (the clone's time for a SHA)


@dataclass(frozen=True)
class _Remote:
    url: str  # what git is given: no password, and no user part for http(s)
    shown: str
    key: str  # what the cache directory is named after
    username: str | None
    password: str | None


@dataclass(frozen=True)
class _Resolved:
    commit: str | None  # None: an abbreviated SHA, known only after a full fetch
    fetch: str | None  # the ref name to fetch, or None to fetch `commit` by its SHA
    abbreviated: str | None = None  # the abbreviated SHA asked for


def is_remote(name: str) -> bool:
    """Whether a command-line input names a repository URL rather than a local path."""
    return bool(_SCHEME_URL.match(name) or _SCP_URL.match(name))


def redact_url(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***`."""

    def hide(match: re.Match) -> str:
        scheme, info = match.group(1), match.group(2)
        return f"{scheme}***@" if ":" in info or scheme.lower().startswith("http") else match.group(0)

    scp = _SCP_URL.match(text)
    if scp and scp.group("password") is not None:
        return f"***@{scp.group('host')}:{scp.group('path')}"
    return _URL_USERINFO.sub(hide, text)


def checkout(
    url: str,
    *,
    ref: str | None = None,
    refresh: bool = False,
    timeout_s: float = CLONE_TIMEOUT_S,
    on_wait: Callable[[], None] | None = None,
    on_clone: Callable[[str, str], None] | None = None,
) -> RemoteCheckout:
    """The repository at `url` checked out at `ref` (default branch when None), cloned once.

    Args:
        url: a repository URL (see `is_remote`).
        ref: a branch, tag, full ref name (`refs/pull/1/head`) or commit SHA.
        refresh: resolve the ref over the network again (a new commit is cloned beside the old).
        timeout_s: the longest one fetch may take.
        on_wait: called once if another process holds this URL's lock (it is cloning).
        on_clone: called with (shown URL, ref) before a clone starts.
    Returns:
        A frozen RemoteCheckout; its `path` is a complete checkout.
    """
    remote = _parse(url)
    wanted = _checked_ref(ref)
    repo_dir = writable_cache_subdir(CACHE_SUBDIR) / _directory_name(remote)
    with waiting_lock(repo_dir / "lock", on_wait):
        refs = _read_refs(repo_dir)
        known = refs.get(wanted)
        is_sha = bool(_FULL_SHA.match(wanted.lower()))
        if (is_sha or not refresh) and known and _is_checkout(repo_dir / known["commit"], known["commit"]):
            # a SHA names the same tree forever; a branch or tag stays as fetched until refreshed
            return RemoteCheckout(remote.shown, wanted, known["commit"], repo_dir / known["commit"], False, known["fetched"])
        resolved = _Resolved(wanted.lower(), None) if is_sha else _resolve(remote, wanted)
        if resolved.commit is not None and _is_checkout(repo_dir / resolved.commit, resolved.commit):
            commit, cloned = resolved.commit, False  # the ref moved to a commit already here
        else:
            if on_clone is not None:
                on_clone(remote.shown, wanted)
            commit, cloned = _clone(remote, repo_dir, resolved, timeout_s)
        fetched = time.time()
        refs[wanted] = {"commit": commit, "fetched": fetched}
        atomic_write_bytes(repo_dir / REFS_FILE, (json.dumps(refs, indent=1, sort_keys=True) + "\n").encode())
    return RemoteCheckout(remote.shown, wanted, commit, repo_dir / commit, cloned, fetched)


def _parse(url: str) -> _Remote:
    shown = redact_url(url)
    if not is_remote(url) or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InputError(f"not a repository URL: {shown!r} (use https://, ssh://, git://, file:// or user@host:path)")
    scp = _SCP_URL.match(url)
    if scp:  # ssh: a password in the URL is never used, so it is dropped
        clean = f"{scp.group('user')}@{scp.group('host')}:{scp.group('path')}"
        return _Remote(clean, shown, clean.rstrip("/"), None, None)
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    scheme = parts.scheme.lower()
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if scheme.startswith("http"):
        netloc, secret_user, secret_password = host, username, password
    else:  # ssh's user name is the login, not a secret; file:// and git:// have no use for either
        netloc = f"{parts.username}@{host}" if parts.username and scheme != "file" else host
        secret_user = secret_password = None
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return _Remote(clean, shown, clean.rstrip("/"), secret_user, secret_password)


def _checked_ref(ref: str | None) -> str:
    if ref is None:
        return DEFAULT_REF
    ref = ref.strip()
    if _BAD_REF.search(ref):
        raise InputError(f"not a branch, tag or commit name: {ref!r}")
    return ref


def _directory_name(remote: _Remote) -> str:
    scp = _SCP_URL.match(remote.key)
    path = scp.group("path") if scp else urlsplit(remote.key).path
    name = PurePosixPath(path).name.removesuffix(".git")
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:40] or "repo"
    return f"{readable}-{content_hash(remote.key)[:12]}"


def _network_args(remote: _Remote) -> list[str]:
    """Config for commands that talk to the remote: URL credentials through the env-reading helper."""
    if remote.username is None and remote.password is None:
        return []
    # The empty value first clears the user's helpers: credentials in the URL take precedence.
    return ["-c", "credential.helper=", "-c", f"credential.helper={_HELPER}"]


def _environment(remote: _Remote) -> dict[str, str]:
    extra = {}
    if remote.username is not None or remote.password is not None:
        extra = {_ENV_USERNAME: remote.username or "", _ENV_PASSWORD: remote.password or ""}
    return git_environment(extra)


_LOCAL_ARGS = ["-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false", "-c", "init.defaultBranch=lctk"]


def _git(remote: _Remote, args: list[str], what: str, cwd: Path | None = None, timeout_s: float = LOCAL_TIMEOUT_S, network: bool = False):
    prefix = _LOCAL_ARGS + (_network_args(remote) if network else [])
    return run_git([*prefix, *args], cwd=cwd, timeout_s=timeout_s, what=what, env=_environment(remote))


def _failure(remote: _Remote, action: str, stderr: str) -> InputError:
    reason = redact_url(failure_line(stderr)).rstrip(".")
    hint = ""
    if any(marker in stderr.lower() for marker in _AUTH_FAILURES):
        hint = ("; lctk never prompts for credentials: set up a git credential helper, GIT_ASKPASS or an ssh key "
                "(ssh-agent), or put a token in the URL")
    return InputError(f"cannot {action} {remote.shown}: {reason}{hint}")


def _resolve(remote: _Remote, ref: str) -> _Resolved:
    """The commit `ref` names on the remote (`git ls-remote`), and the ref name to fetch it by."""
    if ref == DEFAULT_REF:
        patterns = [DEFAULT_REF]
    elif ref.startswith("refs/"):
        patterns = [ref, f"{ref}^{{}}"]
    else:
        patterns = [f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}", f"refs/heads/{ref}"]
    out = _git(remote, ["ls-remote", "--", remote.url, *patterns], f"reading {remote.shown}", timeout_s=RESOLVE_TIMEOUT_S, network=True)
    if not out.ok:
        raise _failure(remote, "read", out.stderr)
    table = {}
    for line in out.stdout.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition("\t")
        if sha and name:
            table[name.strip()] = sha.strip().lower()
    # git's own order for a short name: a tag before a branch; an annotated tag is peeled to its commit
    names = [ref] if ref == DEFAULT_REF or ref.startswith("refs/") else [f"refs/tags/{ref}", f"refs/heads/{ref}"]
    for name in names:
        if name in table:
            return _Resolved(table.get(f"{name}^{{}}", table[name]), name)
    if ref == DEFAULT_REF:
        raise InputError(f"{remote.shown} has no commits")
    if _SHORT_SHA.match(ref.lower()):
        return _Resolved(None, None, ref.lower())  # an abbreviated commit: found after a full fetch
    raise InputError(f"{remote.shown} has no branch or tag {ref!r} (a commit needs its SHA)")


def _clone(remote: _Remote, repo_dir: Path, resolved: _Resolved, timeout_s: float) -> tuple[str, bool]:
    """Fetch the commit into a temporary directory and rename it to `<repo_dir>/<commit>`.

    Returns the commit, and False when it turned out to be checked out already.
    """
    sweep_stale_temps(repo_dir / "clone")
    tmp = Path(tempfile.mkdtemp(prefix=".clone.", suffix=".tmp", dir=repo_dir))
    try:
        for args in (["init", "-q", str(tmp)], ["-C", str(tmp), "remote", "add", "origin", remote.url]):
            out = _git(remote, args, "preparing a clone")
            if not out.ok:
                raise InputError(f"cannot prepare a clone of {remote.shown} in {tmp}: {failure_line(out.stderr)}")
        commit = _fetch(remote, tmp, resolved, timeout_s)
        target = repo_dir / commit
        if _is_checkout(target, commit):  # an abbreviated SHA (or a moved branch) led to a commit already here
            return commit, False
        out = _git(remote, ["-C", str(tmp), "checkout", "-q", "--detach", commit], f"checking out {remote.shown}")
        if not out.ok:
            raise _failure(remote, f"check out {commit[:12]} of", out.stderr)
        if target.exists():  # a damaged checkout (failed the check in `checkout`): replaced
            log.warning("replacing the damaged clone %s", target)
            shutil.rmtree(target)
        os.rename(tmp, target)
        return commit, True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fetch(remote: _Remote, tmp: Path, resolved: _Resolved, timeout_s: float) -> str:
    """Fetch what `resolved` names into the repository at `tmp`; return the commit fetched."""
    what = f"fetching {remote.shown}"
    if resolved.fetch is not None:
        out = _git(remote, ["-C", str(tmp), "fetch", "-q", "--depth", "1", "--no-tags", "origin", resolved.fetch],
                   what, timeout_s=timeout_s, network=True)
        if not out.ok:
            raise _failure(remote, "fetch", out.stderr)
        return _rev_parse(remote, tmp, "FETCH_HEAD")
    if resolved.commit is not None:
        out = _git(remote, ["-C", str(tmp), "fetch", "-q", "--depth", "1", "--no-tags", "origin", resolved.commit],
                   what, timeout_s=timeout_s, network=True)
        if out.ok:
            return _rev_parse(remote, tmp, "FETCH_HEAD")
        log.info("the server would not send commit %s alone (%s); fetching all branches and tags",
                 resolved.commit[:12], redact_url(failure_line(out.stderr)))
    out = _git(remote, ["-C", str(tmp), "fetch", "-q", "--no-tags", "origin", "+refs/heads/*:refs/remotes/origin/*",
                        "+refs/tags/*:refs/tags/*"], what, timeout_s=timeout_s, network=True)
    if not out.ok:
        raise _failure(remote, "fetch", out.stderr)
    wanted = resolved.commit or resolved.abbreviated or ""
    return _rev_parse(remote, tmp, wanted, missing=f"{remote.shown} has no commit {wanted}")


def _rev_parse(remote: _Remote, repository: Path, name: str, missing: str | None = None) -> str:
    out = _git(remote, ["-C", str(repository), "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"],
               "reading the clone")
    if not out.ok:
        raise InputError(missing or f"cannot read {name} of the clone of {remote.shown}")
    return out.stdout.decode().strip().lower()


def _is_checkout(path: Path, commit: str | None) -> bool:
    """Whether `path` is a complete checkout of `commit` (a damaged one is reported and cloned again)."""
    if not commit or not path.is_dir():
        return False
    try:
        out = run_git(["-C", str(path), "rev-parse", "--verify", "--quiet", "HEAD"], timeout_s=LOCAL_TIMEOUT_S, what="reading a clone")
    except InputError:
        return False
    if out.ok and out.stdout.decode().strip().lower() == commit:
        return True
    log.warning("the cached clone %s is damaged; cloning again", path)
    return False


def _read_refs(repo_dir: Path) -> dict[str, dict]:
    """refs.json, or {} when missing or damaged (the refs are then resolved again)."""
    path = repo_dir / REFS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("ignoring the damaged %s", path)
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items()
            if isinstance(v, dict) and isinstance(v.get("commit"), str) and isinstance(v.get("fetched"), (int, float))}
