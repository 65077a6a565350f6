"""Repository URLs on the command line (compress, search, index): the shared options and checkout."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

RefOption = Annotated[
    Optional[str],
    typer.Option("--ref", help="With a repository URL: the branch, tag or commit SHA to read (the default branch when omitted).",
                 show_default=False),
]
RefreshRemoteOption = Annotated[
    bool,
    typer.Option("--refresh-remote", help="With a repository URL: fetch again to pick up new commits (a URL is otherwise "
                 "fetched once and then read from the cache)."),
]


def is_remote_input(name: str) -> bool:
    """Whether a PATH argument is a repository URL."""
    from lctk.sources.remote import is_remote

    return is_remote(name)


def check_remote_flags(remote: bool, ref: str | None, refresh_remote: bool) -> None:
    """--ref and --refresh-remote only mean something for a URL."""
    from lctk.errors import UsageError

    if not remote and (ref is not None or refresh_remote):
        flag = "--ref" if ref is not None else "--refresh-remote"
        raise UsageError(f"{flag} applies to a repository URL (https://, ssh://, git@host:…, file://); "
                         "for a local directory, check the ref out with git")


def checkout_remote(url: str, ref: str | None, refresh: bool):
    """Clone or reuse `url` at `ref` in the cache, saying on stderr which commit is read."""
    import logging
    import time

    from lctk.sources.remote import checkout

    log = logging.getLogger("lctk")
    result = checkout(
        url, ref=ref, refresh=refresh,
        on_wait=lambda: log.warning("waiting for lock: another lctk is cloning %s", url_shown(url)),
        on_clone=lambda shown, wanted: log.info("cloning %s (%s)", shown, "default branch" if wanted == "HEAD" else wanted),
    )
    if not result.cloned:
        age = time.time() - result.fetched_at
        when = f"{age / 86400:.0f} days ago" if age >= 2 * 86400 else f"{age / 3600:.0f} h ago" if age >= 3600 else "just now"
        log.info("reading %s at %s (%s, fetched %s; --refresh-remote fetches newer commits)",
                 result.url, result.commit[:12], "default branch" if result.ref == "HEAD" else result.ref, when)
    return result


def url_shown(url: str) -> str:
    """A URL as it may be printed: credentials replaced by ***."""
    from lctk.sources.remote import redact_url

    return redact_url(url)


def repository_json(result) -> dict:
    """The `repository` object of --format json: url (credentials redacted), ref and commit."""
    return {"url": result.url, "ref": result.ref, "commit": result.commit}
