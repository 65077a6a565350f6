"""Find likely credentials in source text and replace them with a marker, line structure kept.

What counts (each match is reported by kind, never by value):
- private keys: PEM/OpenSSH/PGP `-----BEGIN … PRIVATE KEY-----` blocks (the body; header and footer stay);
- tokens with a known prefix: AWS access key ids, GitHub, GitLab, Slack, Stripe, OpenAI, Anthropic,
  Google API, Hugging Face, npm, PyPI, SendGrid, JSON Web Tokens, Azure storage account keys;
- passwords inside URLs (`scheme://user:password@host`);
- values assigned to secret-looking names (`aws_secret_access_key = "…"`, `"api_key": "…"`,
  `password: …` in config files) when the value looks random (not a placeholder, not prose);
- every value in `.env` files (`.env`, `.env.local`, `prod.env`; `.env.example`/`.sample`/`.template`
  only get the rules above).

A marker never contains a newline and a private key keeps its line count, so line numbers in
search results and compress headers still point at the original file.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

REDACTION_VERSION = 1  # bump when the rules change: the search index stores redacted text


def marker(kind: str) -> str:
    """The text that replaces a secret of `kind`."""
    return f"[REDACTED:{kind}]"


@dataclass(frozen=True)
class Redaction:
    """One replaced secret: where it was (1-based line) and what kind it looked like."""

    path: str
    line: int
    kind: str


@dataclass(frozen=True)
class RedactedText:
    """Text with its secrets replaced, and what was replaced."""

    text: str
    redactions: tuple[Redaction, ...]


# Tokens whose prefix says what they are; the whole match is replaced. Each rule runs only on text
# that contains one of its literal needles (a C-speed `in` test), so most files cost nothing here.
_PREFIXED = [
    ("aws-access-key-id", ("AKIA", "ASIA", "ABIA", "ACCA"), r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    ("github-token", ("gh", "github_pat_"), r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    ("gitlab-token", ("glpat-",), r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    ("slack-token", ("xox",), r"\bxox[baprs]-[A-Za-z0-9\-]{10,}"),
    ("slack-webhook", ("hooks.slack.com",), r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"),
    ("stripe-key", ("_live_",), r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}"),
    ("anthropic-key", ("sk-ant-",), r"\bsk-ant-[a-z]+\d*-[A-Za-z0-9_\-]{20,}"),
    ("openai-key", ("sk-",), r"\bsk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9_\-]{32,}"),
    ("google-api-key", ("AIza",), r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"),
    ("huggingface-token", ("hf_",), r"\bhf_[A-Za-z0-9]{34,}\b"),
    ("npm-token", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi-token", ("pypi-",), r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    ("sendgrid-key", ("SG.",), r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b"),
    ("json-web-token", ("eyJ",), r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),
    ("azure-storage-key", ("AccountKey=",), r"(?<=AccountKey=)[A-Za-z0-9+/]{80,}={0,2}"),
]
_PREFIXED_RES = [(kind, needles, re.compile(pattern)) for kind, needles, pattern in _PREFIXED]
_KEY_BODY = re.compile(r"[A-Za-z0-9+/=]{32,}")

_PRIVATE_KEY = re.compile(
    r"(-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----)(.*?)(-----END \2-----|\Z)", re.DOTALL
)
_URL_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^\s:/@'\"]{1,100}:([^\s@/'\"]{3,200})@")
# Names that say "secret"; matched from the word itself (no leading wildcard), so scanning stays linear.
_SECRET_WORD = (r"(?:[Pp]ass(?:word|wd|phrase)|PASS(?:WORD|WD|PHRASE)|[Pp]wd|PWD|[Ss]ecret|SECRET|[Tt]oken|TOKEN"
                r"|[Aa]pi[_\-]?[Kk]ey|API[_\-]?KEY|[Aa]pikey|APIKEY|[Aa]ccess[_\-]?[Kk]ey|ACCESS[_\-]?KEY"
                r"|[Pp]rivate[_\-]?[Kk]ey|PRIVATE[_\-]?KEY|[Cc]redential|CREDENTIAL)")
_QUOTED_ASSIGNMENT = re.compile(
    rf"""(?P<name>{_SECRET_WORD})[A-Za-z0-9_.\-]*["']?[ \t]*(?::=|=>|[:=])[ \t]*(?:[rbu]{{0,2}})(?P<q>["'`])(?P<value>[^"'`\n]{{6,400}})(?P=q)"""
)
_CONFIG_ASSIGNMENT = re.compile(
    rf"""(?m)^[ \t]*(?:export[ \t]+)?["']?[A-Za-z0-9_.\-]*?(?P<name>{_SECRET_WORD})[A-Za-z0-9_.\-]*["']?[ \t]*[:=][ \t]*(?P<value>[^\s"'#;][^\s#;]{{5,400}})[ \t]*$"""
)
_ENV_LINE = re.compile(r"(?m)^[ \t]*(?:export[ \t]+)?[A-Za-z_][A-Za-z0-9_.\-]*[ \t]*=[ \t]*(.*?)[ \t]*$")
_PLACEHOLDER = re.compile(
    r"""(?ix)^(?:<[^>]*>|\$\{[^}]*\}|\$[A-Z_][A-Z0-9_]*|\{\{.*\}\}|%\(.*\)s|\{[a-z_]*\}|x+|\*+|\.+|
    (?:your|my|some|example|sample|dummy|fake|test|changeme|replace|placeholder|todo|xxx)[\w\-.]*|none|null|true|false|
    pass|password|passwd|pwd|pw|secret|token|key|foo|bar|baz|user|username|hunter2)$"""
)
_CONFIG_SUFFIXES = {".ini", ".cfg", ".conf", ".properties", ".yaml", ".yml", ".toml", ".env"}
_ENV_EXAMPLES = ("example", "sample", "template", "dist", "defaults")


def is_env_file(path: str) -> bool:
    """`.env`, `.env.local`, `prod.env` — but not `.env.example` and its kin."""
    name = PurePosixPath(path).name.lower()
    if not (name == ".env" or name.startswith(".env.") or name.endswith(".env")):
        return False
    return not any(word in name for word in _ENV_EXAMPLES)


def _looks_random(value: str) -> bool:
    """True for key-like values: no spaces, not a placeholder, several character classes or high entropy."""
    value = value.strip()
    if len(value) < 8 or " " in value or _PLACEHOLDER.match(value) or not re.search(r"\d", value):
        return False  # real keys and tokens (base64, hex) carry digits; identifiers and regexes mostly do not
    if value.startswith(("http://", "https://", "/", "./", "~", "arn:")) or "{" in value:
        return False  # a path, a URL, an ARN or a template (f"{user}:{password}"), not a secret
    classes = sum(bool(re.search(pattern, value)) for pattern in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.0 and (classes >= 3 or (classes >= 2 and len(value) >= 16))


def _looks_secret(name: str, value: str) -> bool:
    """A password is often a word and a digit; other secret-named values must look random."""
    if re.search(r"(?i)pass|pwd", name):
        value = value.strip()
        # identifiers (`password_input`) are not passwords: `_ - .` do not count as symbols here
        classes = sum(bool(re.search(p, value)) for p in (r"[A-Za-z]", r"\d", r"[^A-Za-z0-9_.\-]"))
        return len(value) >= 6 and " " not in value and not _PLACEHOLDER.match(value) and classes >= 2 and "{" not in value
    return _looks_random(value)


def find_secrets(text: str, path: str = "") -> list[tuple[int, int, str]]:
    """Spans (start, end, kind) to replace, sorted and non-overlapping."""
    spans: list[tuple[int, int, str]] = []
    if "PRIVATE KEY" in text:
        for match in _PRIVATE_KEY.finditer(text):
            if _KEY_BODY.search(match.group(3)):  # a key, not prose that names the header
                spans.append((match.start(3), match.end(3), "private-key"))
    for kind, needles, pattern in _PREFIXED_RES:
        if any(needle in text for needle in needles):
            spans.extend((match.start(), match.end(), kind) for match in pattern.finditer(text))
    for match in _URL_PASSWORD.finditer(text) if "://" in text else ():
        if not _PLACEHOLDER.match(match.group(1)):
            spans.append((match.start(1), match.end(1), "url-password"))
    env_file = is_env_file(path)
    assignments = [_QUOTED_ASSIGNMENT]
    if env_file or PurePosixPath(path).suffix.lower() in _CONFIG_SUFFIXES:
        assignments.append(_CONFIG_ASSIGNMENT)  # unquoted `password: …` only where config lives
    for pattern in assignments:
        for match in pattern.finditer(text):
            if _looks_secret(match.group("name"), match.group("value")):
                spans.append((match.start("value"), match.end("value"), "secret-value"))
    if env_file:
        for match in _ENV_LINE.finditer(text):
            value = match.group(1).strip("\"'")
            if value and not _PLACEHOLDER.match(value):
                spans.append((match.start(1), match.end(1), "env-value"))
    return _merge(spans)


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Drop spans inside an earlier, larger one; the first rule to claim text names it."""
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
        if merged and start < merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end, merged[-1][2])
            continue
        merged.append((start, end, kind))
    return merged


def redact_text(text: str, path: str = "") -> RedactedText:
    """Replace likely secrets in `text` (of file `path`) by markers; newlines inside a secret are kept."""
    spans = find_secrets(text, path)
    if not spans:
        return RedactedText(text, ())
    line_starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]
    pieces, redactions, position = [], [], 0
    for start, end, kind in spans:
        pieces.append(text[position:start])
        newlines = text.count("\n", start, end)
        # A multi-line key keeps its line count: the marker on its first line, the rest left blank.
        if newlines and text[start] == "\n":
            pieces.append("\n" + marker(kind) + "\n" * (newlines - 1))
        else:
            pieces.append(marker(kind) + "\n" * newlines)
        redactions.append(Redaction(path, bisect.bisect_right(line_starts, start + (text[start] == "\n")), kind))
        position = end
    pieces.append(text[position:])
    return RedactedText("".join(pieces), tuple(redactions))


def summarize(redactions: Iterable[Redaction], shown: int = 5) -> str:
    """One line for stderr: how many, of which kinds, and where the first few were."""
    redactions = list(redactions)
    kinds = Counter(r.kind for r in redactions)
    where = ", ".join(f"{r.path}:{r.line}" for r in redactions[:shown]) + (", ..." if len(redactions) > shown else "")
    what = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    files = len({r.path for r in redactions})
    return f"redacted {len(redactions)} likely secrets in {files} files ({what}) at {where}; --no-redact keeps them"


def with_redacted_sources(sources, redact: bool = True):
    """SourceText items with secrets replaced, and the redactions (nothing changes when `redact` is off)."""
    if not redact:
        return list(sources), ()
    out: list = []
    found: list[Redaction] = []
    for source in sources:
        result = redact_text(source.text, source.path)
        out.append(replace(source, text=result.text) if result.redactions else source)
        found.extend(result.redactions)
    return out, tuple(found)
