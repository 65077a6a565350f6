"""Likely credentials never leave lctk unless asked: compress and search replace them by markers."""

import json
import subprocess

import pytest
from conftest import run_lctk

from lctk.sources.secrets import find_secrets, is_env_file, redact_text

# Test values are assembled at run time so that this file itself holds no scannable secret.
AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
GITHUB = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACBKb2tlIGtleSBmb3IgdGVzdHMgb25seSBub3QgcmVhbCBrZXkAAAAAAAAAAA"

CASES = [
    ("private-key", "key.pem", f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----\n", KEY_BODY.split("\n")[0]),
    ("private-key", "sa.json", '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n"}', "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"),
    ("aws-access-key-id", "a.py", f'KEY = "{AWS_ID}"\n', AWS_ID),
    ("secret-value", "a.py", f'aws_secret_access_key = "{AWS_SECRET}"\n', AWS_SECRET),
    ("github-token", "a.sh", f"export GH={GITHUB}\n", GITHUB),
    ("gitlab-token", "a.py", 'T = "glpat-' + 'abcdefghij0123456789xy"\n', "glpat-abcdefghij0123456789xy"),
    ("slack-token", "a.py", 'T = "xoxb-' + '123456789012-abcdefABCDEF"\n', "xoxb-123456789012-abcdefABCDEF"),
    ("stripe-key", "a.js", "const k = 'sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc';\n", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("openai-key", "a.py", 'client = OpenAI(api_key="sk-proj-' + 'abc123DEF456ghi789JKL012mno345PQR")\n', "sk-proj-abc123DEF456ghi789JKL012mno345PQR"),
    ("anthropic-key", "a.py", 'K = "sk-ant-api03-' + 'abcdefghijklmnopqrstuvwxyz0123456789"\n', "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"),
    ("google-api-key", "a.js", 'key: "AIza' + 'SyD-0123456789abcdefghijklmnopqrstu"\n', "AIzaSyD-0123456789abcdefghijklmnopqrstu"),
    ("huggingface-token", "a.py", 'HF = "hf_' + 'abcdefghijklmnopqrstuvwxyzABCDEFGH12"\n', "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH12"),
    ("json-web-token", "a.py", 'jwt = "eyJhbGciOiJIUzI1NiJ9.' + 'eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"\n', "dozjgNryP4J3jVmNHl0w5N"),
    ("url-password", "a.py", 'DB = "postgres://admin:' + 'S3cr3tPassw0rd@db:5432/app"\n', "S3cr3tPassw0rd"),
    ("secret-value", "a.py", 'password = "hunter2' + 'hunter2"\n', "hunter2hunter2"),
    ("secret-value", "settings.yaml", "db:\n  password: Zk9x!mQ2" + "pL7v\n", "Zk9x!mQ2pL7v"),
    ("env-value", ".env", "DB_PASSWORD=abc\nEMPTY=\n", "abc"),
    ("env-value", "deploy/prod.env", "SESSION_KEY=s3ss10n\n", "s3ss10n"),
]


@pytest.mark.parametrize(("kind", "path", "text", "secret"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_each_kind_is_found_and_replaced_keeping_lines(kind, path, text, secret):
    result = redact_text(text, path)
    assert secret not in result.text
    assert f"[REDACTED:{kind}]" in result.text
    assert result.text.count("\n") == text.count("\n")  # line numbers still point at the original file
    assert [r.kind for r in result.redactions] == [kind]
    assert result.redactions[0].line == text[: text.index(secret)].count("\n") + 1


@pytest.mark.parametrize("text", [
    'token_type = "identifier"\n',
    'api_key = os.environ["API_KEY"]\n',
    'PASSWORD_FIELD = "password_input"\n',
    'auth = f"{user}:{password}"\n',
    'password = "<your password>"\n',
    'secret = "${SECRET_FROM_VAULT}"\n',
    'url = "https://user:pass@example.com/"\n',
    '# "-----BEGIN RSA PRIVATE KEY-----" starts a PEM key and "-----END RSA PRIVATE KEY-----" ends it\n',
    'TOKEN_RE = r"[A-Za-z_]\\w*"\n',
])
def test_code_that_only_talks_about_secrets_is_left_alone(text):
    assert find_secrets(text, "mod.py") == []


def test_env_files_and_their_examples():
    assert is_env_file(".env") and is_env_file("app/.env.local") and is_env_file("prod.env")
    assert not is_env_file(".env.example") and not is_env_file(".env.sample") and not is_env_file("env.py")
    example = "DB_PASSWORD=changeme\nDEBUG=true\n"
    assert redact_text(example, ".env.example").text == example
    assert redact_text("DEBUG=true\nREF=${OTHER}\n", ".env").redactions == ()


def test_redaction_is_idempotent_and_deterministic():
    text = "".join(case[2] for case in CASES if not case[1].startswith(".env"))
    once = redact_text(text, "all.py")
    assert redact_text(once.text, "all.py").text == once.text
    assert redact_text(text, "all.py") == once


def _secret_repo(root):
    (root / "app").mkdir(parents=True)
    (root / ".env").write_text(f"DB_PASSWORD=s3cretpass\nAWS_ACCESS_KEY_ID={AWS_ID}\n")
    (root / "app" / "config.py").write_text(
        '"""Settings for the service."""\n\n'
        f'AWS_ACCESS_KEY_ID = "{AWS_ID}"\nGITHUB_TOKEN = "{GITHUB}"\n\n\n'
        "def database_url():\n"
        '    """Return the URL of the main database."""\n'
        '    return "postgres://admin:S3cr3tPassw0rd@db.internal:5432/app"\n'
    )
    return root


def test_compress_redacts_reports_and_keeps_them_on_request(tmp_path):
    repo = _secret_repo(tmp_path / "repo")
    result = run_lctk("compress", str(repo), "-B", "400", "--no-cache")
    assert result.exit_code == 0, result.stderr
    for secret in (AWS_ID, GITHUB, "S3cr3tPassw0rd", "s3cretpass"):
        assert secret not in result.stdout and secret not in result.stderr
    assert "[REDACTED:github-token]" in result.stdout and "[REDACTED:url-password]" in result.stdout
    assert "redacted 5 likely secrets in 2 files" in result.stderr and "--no-redact" in result.stderr
    data = json.loads(run_lctk("compress", str(repo), "-B", "400", "--no-cache", "-f", "json").stdout)
    found = {(r["path"].split("repo/")[-1], r["line"], r["kind"]) for r in data["redactions"]}
    assert ("app/config.py", 4, "github-token") in found and (".env", 2, "aws-access-key-id") in found
    assert {r["kind"] for r in data["redactions"] if r["path"].endswith(".env") and r["line"] == 1} <= {"env-value", "secret-value"}
    kept = run_lctk("compress", str(repo), "-B", "400", "--no-cache", "--no-redact")
    assert GITHUB in kept.stdout and "redacted" not in kept.stderr


def test_search_never_stores_or_shows_secrets_unless_asked(tmp_path):
    repo = _secret_repo(tmp_path / "repo")
    env = {"LCTK_INDEX_DIR": str(tmp_path / "indexes")}
    shown = run_lctk("search", "database url", str(repo), "-n", "3", "-k", "3", env=env)
    assert shown.exit_code == 0, shown.stderr
    assert "[REDACTED:url-password]" in shown.stdout and "S3cr3tPassw0rd" not in shown.stdout
    assert "redacted" in shown.stderr
    stored = subprocess.run(["grep", "-rlF", "-e", AWS_ID, "-e", GITHUB, "-e", "S3cr3tPassw0rd", str(tmp_path / "indexes")], capture_output=True)
    assert stored.stdout == b""  # nothing on disk holds a secret: vocabulary, metadata, caches
    raw = run_lctk("search", "database url", str(repo), "-n", "3", "-k", "3", "--no-redact", env=env)
    assert "S3cr3tPassw0rd" in raw.stdout and "redacted" not in raw.stderr
    jsonl = run_lctk("search", "github token", str(repo), "-n", "1", "-k", "1", "-f", "jsonl", env=env)
    code = json.loads(jsonl.stdout.splitlines()[0])["code"]
    assert {"line": 4, "kind": "github-token"} in code["redacted"]
