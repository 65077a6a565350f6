"""Talking to an OpenAI-compatible model server: where it is, the HTTP calls, and one-line errors.

The model built on it (`lctk.models.openai_backend`) needs only JSON requests and a server-sent
event stream, so this uses the standard library (no SDK): `post`, `get` and `stream` raise
`ServerError` with one line that names the server (credentials in the URL never shown), the
path, and what went wrong: down, slow, an HTTP error with the server's own message, or a reply
that is not JSON. The API key comes from the environment only (LCTK_API_KEY, else OPENAI_API_KEY).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lctk.config import ENV_BASE_URL, ENV_SERVED_MODEL, ENV_SERVER_TOKENIZER, resolve_setting
from lctk.errors import BackendUnavailableError, UsageError

log = logging.getLogger("lctk")

ENV_SERVER_TIMEOUT = "LCTK_SERVER_TIMEOUT"
API_KEY_ENVS = ("LCTK_API_KEY", "OPENAI_API_KEY")
DEFAULT_TIMEOUT_S = 300.0  # one request; a 7B model scoring 8k tokens on a busy GPU takes seconds, not minutes
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "ip6-localhost"}
_noticed: set[str] = set()


class ServerError(BackendUnavailableError):
    """A model server is down, too slow, refused a request, or cannot do what lctk needs."""


@dataclass(frozen=True)
class ServerTarget:
    """Which server, which of its models, and (optionally) a local copy of that model's tokenizer."""

    base_url: str  # as given: http://host:8000 or http://host:8000/v1
    served_model: str | None = None  # None: the server's only model
    tokenizer: str | None = None  # a .gguf, tokenizer.json or transformers directory of the same model
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def root(self) -> str:
        """The URL without a trailing /v1 (the OpenAI routes are root/v1/..., vLLM's /tokenize is root/tokenize)."""
        url = self.base_url.strip().rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    @property
    def shown(self) -> str:
        """The URL as messages show it: user and password replaced, path kept."""
        return display_url(self.root)

    @property
    def is_local(self) -> bool:
        host = urllib.parse.urlsplit(self.root).hostname or ""
        return host.lower() in LOCAL_HOSTS or host.startswith("127.")


def display_url(url: str) -> str:
    """`url` with any user:password@ replaced by ***@ (messages and logs never show credentials)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = "***@" + (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def server_target(base_url: str | None = None, served_model: str | None = None,
                  tokenizer: str | None = None) -> ServerTarget | None:
    """The server in effect: each value from its flag, else LCTK_* environment, else the config files; None without a URL."""
    url = resolve_setting(base_url, ENV_BASE_URL, None).value
    if not url:
        if served_model or tokenizer:
            raise UsageError("--served-model and --server-tokenizer need a server: pass --base-url (or set LCTK_BASE_URL)")
        return None
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--base-url must be an http(s) URL such as http://localhost:8000/v1, not '{display_url(url)}'")
    raw_timeout = os.environ.get(ENV_SERVER_TIMEOUT, "").strip()
    try:
        timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT_S
    except ValueError:
        raise UsageError(f"{ENV_SERVER_TIMEOUT}={raw_timeout!r} is not a number of seconds") from None
    if timeout <= 0:
        raise UsageError(f"{ENV_SERVER_TIMEOUT} must be above 0 seconds")
    return ServerTarget(
        url.strip(), resolve_setting(served_model, ENV_SERVED_MODEL, None).value or None,
        resolve_setting(tokenizer, ENV_SERVER_TOKENIZER, None).value or None, timeout,
    )


def api_key() -> str | None:
    """The bearer token for the server, from the environment only (never a flag or a file)."""
    for name in API_KEY_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def notice_remote(target: ServerTarget) -> None:
    """Say once per process that text leaves this machine when the server is not on it."""
    if target.is_local or target.root in _noticed:
        return
    _noticed.add(target.root)
    log.warning("the model server %s is not on this machine: the code and documents lctk sends it leave this machine "
                "(likely secrets are redacted first)", target.shown)


class ServerClient:
    """JSON over HTTP to one server; every failure is a ServerError with one line."""

    def __init__(self, target: ServerTarget):
        self.target = target
        self._key = api_key()

    def get(self, path: str) -> Any:
        return self._json(self._open(path, None), path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self._open(path, body), path)

    def try_post(self, path: str, body: dict[str, Any]) -> Any | None:
        """post(), but None when the server has no such route or rejects the request's shape (a probe)."""
        try:
            return self.post(path, body)
        except ServerError as exc:
            status = getattr(exc, "status", None)
            # a route or request shape it lacks; a 500 is a real failure unless it is llama-cpp-python's
            # way of rejecting a field it does not know ("N validation errors")
            if status in (400, 404, 405, 422, 501) or (status == 500 and "validation error" in str(exc)):
                return None
            raise

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST with stream=true and yield each server-sent event's JSON until [DONE]."""
        response = self._open(path, {**body, "stream": True})
        with response:
            try:
                for raw in response:
                    line = raw.decode("utf-8", errors="replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:"):].strip()
                    if data == "[DONE]":
                        return
                    event = self._parse(data, path)
                    if isinstance(event, dict) and event.get("error"):
                        raise self._error(path, f"it reported an error mid-answer: {_message(event)}")
                    yield event
            except TimeoutError:
                raise self._error(path, f"it stopped sending for {self.target.timeout_s:g} s "
                                        f"(raise {ENV_SERVER_TIMEOUT} for a slow server)") from None
            except (ConnectionError, urllib.error.URLError) as exc:
                raise self._error(path, f"the connection broke mid-answer ({_reason(exc)})") from None

    # --- internals ----------------------------------------------------------------------
    def _open(self, path: str, body: dict[str, Any] | None):
        import urllib.request  # here: its import (http.client, email) cost ~25 ms of every CLI search

        url = self.target.root + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
        try:
            return urllib.request.urlopen(request, timeout=self.target.timeout_s)  # noqa: S310 (http(s) checked)
        except urllib.error.HTTPError as exc:
            detail = _message(self._parse_quietly(exc.read()))
            fix = "; set LCTK_API_KEY (or OPENAI_API_KEY) to the server's key" if exc.code in (401, 403) else ""
            error = self._error(path, f"it answered HTTP {exc.code}" + (f": {detail}" if detail else "") + fix)
            error.status = exc.code  # type: ignore[attr-defined]
            raise error from None
        except TimeoutError:
            raise self._error(path, f"no answer within {self.target.timeout_s:g} s "
                                    f"(raise {ENV_SERVER_TIMEOUT} for a slow server)") from None
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            raise ServerError(f"cannot reach the model server at {self.target.shown}: {_reason(exc)}; "
                              "is it running, and is --base-url right?") from None

    def _json(self, response, path: str) -> Any:
        with response:
            try:
                raw = response.read()
            except TimeoutError:
                raise self._error(path, f"no answer within {self.target.timeout_s:g} s "
                                        f"(raise {ENV_SERVER_TIMEOUT} for a slow server)") from None
            except (ConnectionError, OSError) as exc:
                raise self._error(path, f"the connection broke ({_reason(exc)})") from None
        return self._parse(raw, path)

    def _parse(self, raw: bytes | str, path: str) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            raise self._error(path, f"the reply is not JSON ({text.strip()[:80]!r})") from None

    @staticmethod
    def _parse_quietly(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace").strip()[:200]

    def _error(self, path: str, what: str) -> ServerError:
        return ServerError(f"the model server at {self.target.shown} failed on {path}: {what}")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    text = str(reason).strip()
    return text.splitlines()[0] if text else type(reason).__name__


def _message(payload: Any) -> str:
    """The human part of an error body: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the text."""
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if isinstance(error, list) and error and isinstance(error[0], dict):  # FastAPI validation errors
            error = "; ".join(str(item.get("msg", item)) for item in error[:3])
        payload = error if error is not None else json.dumps(payload)[:200]
    text = str(payload).strip()
    return text.splitlines()[0][:300] if text else ""
