"""Config files: flag > environment > project (lctk.toml / [tool.lctk]) > user (config.toml) > default."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_lctk

from lctk import config
from lctk.cli.options import backend_value
from lctk.config import ENV_BACKEND, ENV_EMBED_MODEL, ENV_MODEL, resolve_setting
from lctk.diagnostics import OK, Check, ConfigLocation, DoctorReport, SettingInEffect
from lctk.errors import CacheError, UsageError
from lctk.models.registry import role_model

SETTING_ENVS = ("LCTK_MODEL", "LCTK_EMBED_MODEL", "LCTK_BACKEND", "LCTK_INDEX_DIR")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No LCTK_* setting from the caller's shell, a user file under tmp_path, tmp_path as a repository root."""
    for name in SETTING_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LCTK_CONFIG", str(tmp_path / "user" / "config.toml"))
    (tmp_path / ".git").mkdir()  # the project search never climbs above tmp_path
    config.forget_config_files()
    yield
    config.forget_config_files()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    config.forget_config_files()  # files edited in place: read them again
    return path


def _user_file(tmp_path: Path, text: str) -> Path:
    return _write(tmp_path / "user" / "config.toml", text)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def config_warnings():
    """Warnings from lctk.config, caught on its own logger (the CLI may have turned propagation off)."""
    handler = _Records()
    logger = logging.getLogger("lctk.config")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def test_precedence_across_all_five_layers(tmp_path, monkeypatch):
    deep = tmp_path / "repo" / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert resolve_setting(None, ENV_MODEL, "built-in") == config.Setting("built-in", "default")

    user = _user_file(tmp_path, 'model = "user-model"\n')
    assert resolve_setting(None, ENV_MODEL, "built-in") == config.Setting("user-model", f"user {user}")

    project = _write(tmp_path / "repo" / "lctk.toml", '# the team\'s model\nmodel = "project-model"\n')
    assert resolve_setting(None, ENV_MODEL, "built-in") == config.Setting("project-model", f"project {project}")

    monkeypatch.setenv(ENV_MODEL, "env-model")
    assert resolve_setting(None, ENV_MODEL, "built-in") == config.Setting("env-model", "env LCTK_MODEL")
    assert resolve_setting("flag-model", ENV_MODEL, "built-in") == config.Setting("flag-model", "flag")

    monkeypatch.setenv(ENV_MODEL, "  ")  # blank is unset, as before: the project file applies again
    assert role_model("generate").source == f"project {project}"
    assert role_model("generate", "x.gguf") == config.Setting("x.gguf", "flag")
    assert role_model("attention").value == "gemma3-270m"  # no setting of its own: `model` picks the generating LM


def test_each_key_is_resolved_on_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = _write(tmp_path / "lctk.toml", 'model = "gemma3-270m"\nembed_model = ""\n')  # empty: unset
    user = _user_file(tmp_path, 'model = "ignored"\nembed_model = "minilm-l6-v2"\nbackend = "llama"\n')
    assert role_model("score") == config.Setting("gemma3-270m", f"project {project}")
    assert role_model("embed") == config.Setting("minilm-l6-v2", f"user {user}")
    assert backend_value(None) == "llama"
    monkeypatch.setenv(ENV_BACKEND, "torch")
    assert backend_value(None) == "torch"
    assert [f.scope for f in config.config_files()] == ["project", "user"]


def test_pyproject_tool_lctk_and_what_is_skipped(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    pyproject = _write(repo / "pyproject.toml", '[project]\nname = "demo"\n\n[tool.lctk]\nembed_model = "minilm-l6-v2"\n')
    monkeypatch.chdir(repo)
    assert role_model("embed") == config.Setting("minilm-l6-v2", f"project {pyproject}")

    # lctk.toml wins over pyproject.toml in the same directory (no merging).
    lctk_toml = _write(repo / "lctk.toml", 'model = "gemma3-270m"\n')
    assert role_model("embed").source == "default" and role_model("generate").source == f"project {lctk_toml}"

    # A pyproject.toml without [tool.lctk] is skipped and the search goes on upward ...
    outer = _write(tmp_path / "lctk.toml", 'model = "outer"\n')
    (repo / "lctk.toml").unlink()
    _write(repo / "pyproject.toml", '[project]\nname = "lctk-demo"\n[tool.ruff]\nline-length = 100\n')
    assert role_model("generate") == config.Setting("outer", f"project {outer}")
    # ... one that never names lctk is not even parsed, so its syntax errors are not ours ...
    _write(repo / "pyproject.toml", "[project\nname = \n")
    assert role_model("generate").value == "outer"
    # ... and it stops at the repository root (the directory holding .git).
    (repo / ".git").mkdir()
    config.forget_config_files()
    assert role_model("generate").source == "default" and config.project_config_path() is None


def test_path_settings_are_relative_to_their_file(tmp_path, monkeypatch):
    monkeypatch.delenv("LCTK_CACHE_DIR")  # conftest's session cache; restored after the test
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    project = _write(tmp_path / "repo" / "lctk.toml", 'cache_dir = "build/cache"\nindex_dir = "~/indexes"\n')
    monkeypatch.chdir(tmp_path / "repo")
    assert config.cache_dir() == tmp_path / "repo" / "build" / "cache"
    assert config.cache_dir_setting().source == f"project {project}"
    assert config.index_dir() == tmp_path / "home" / "indexes"
    monkeypatch.setenv("LCTK_INDEX_DIR", "env-indexes")  # the environment's relative path stays as given
    assert config.index_dir() == Path("env-indexes")


def test_cache_dir_from_a_file_names_that_file_in_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("LCTK_CACHE_DIR")
    blocked = tmp_path / "a-file"
    blocked.write_text("a file where the cache directory should be")
    user = _user_file(tmp_path, f'cache_dir = "{blocked / "cache"}"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CacheError, match=f"change cache_dir in {user} or set LCTK_CACHE_DIR"):
        config.writable_cache_subdir("scores")


def test_unknown_keys_warn_once_with_file_and_line(tmp_path, monkeypatch, config_warnings):
    project = _write(tmp_path / "lctk.toml", '# lctk settings\nmodel = "gemma3-270m"\nmodle = "typo"\n\n[extras]\ncolour = "red"\n')
    monkeypatch.chdir(tmp_path)
    for _ in range(3):  # parsed once per process, so warned once
        assert role_model("generate").value == "gemma3-270m"
    assert config_warnings == [
        f"{project}:3: unknown setting 'modle'; did you mean 'model'? (known: backend, base_url, cache_dir, embed_model, index_dir, model, served_model, server_tokenizer)",
        f"{project}:5: unknown setting 'extras' (known: backend, base_url, cache_dir, embed_model, index_dir, model, served_model, server_tokenizer)",
    ]


def test_unknown_keys_in_pyproject_point_into_tool_lctk(tmp_path, monkeypatch, config_warnings):
    pyproject = _write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "demo"\nembed-model = "not ours"\n\n[tool.lctk]\nbackend = "torch"\n"embed-model" = "x"\n\n[tool.lctk.models]\na = 1\n',
    )
    monkeypatch.chdir(tmp_path)
    assert backend_value(None) == "torch"
    assert [message.split(" (known")[0] for message in config_warnings] == [
        f"{pyproject}:7: unknown setting 'embed-model'; did you mean 'embed_model'?",
        f"{pyproject}:9: unknown setting 'models'; did you mean 'model'?",
    ]


def test_wrong_value_types_are_errors_naming_file_and_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = _write(tmp_path / "lctk.toml", '\nmodel = 3\n')
    with pytest.raises(UsageError, match=f"^{project}:2: setting 'model' must be a string, not an integer$"):
        role_model("generate")
    _write(tmp_path / "lctk.toml", 'cache_dir = ["a", "b"]\n')
    monkeypatch.delenv("LCTK_CACHE_DIR")
    with pytest.raises(UsageError, match="lctk.toml:1: setting 'cache_dir' must be a string, not an array"):
        config.cache_dir()
    (tmp_path / "lctk.toml").unlink()
    pyproject = _write(tmp_path / "pyproject.toml", '[tool]\nlctk = "model"\n')
    with pytest.raises(UsageError, match=f"{pyproject}:2: \\[tool.lctk\\] must be a table"):
        role_model("generate")


def test_backend_from_a_file_is_validated_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = _write(tmp_path / "lctk.toml", 'backend = "cuda"\n')
    with pytest.raises(UsageError, match=f"backend = 'cuda' in {project} is not a backend; use auto, torch, llama, openai"):
        backend_value(None)


def test_malformed_toml_is_one_line_error_from_the_cli(tmp_path, monkeypatch):
    project = _write(tmp_path / "repo" / "lctk.toml", 'model = "gemma3-270m"\nbackend = \n')
    monkeypatch.chdir(tmp_path / "repo")
    assert_one_line_error(run_lctk("models"), 2, f"{project}: not valid TOML: Invalid value (at line 2")
    assert run_lctk("--help").exit_code == 0  # files are read only when a setting is

    (tmp_path / "repo" / "lctk.toml").unlink()
    user = _user_file(tmp_path, "[broken\n")
    assert_one_line_error(run_lctk("models", "--format", "json"), 2, f"{user}: not valid TOML")
    _user_file(tmp_path, "model = 1.5\n")
    assert_one_line_error(run_lctk("models"), 2, f"{user}:1: setting 'model' must be a string, not a float")


def test_cli_warns_about_unknown_keys_on_stderr_only(tmp_path, monkeypatch):
    project = _write(tmp_path / "lctk.toml", 'model = "gemma3-270m"\nembed_modle = "minilm-l6-v2"\n')
    monkeypatch.chdir(tmp_path)
    result = run_lctk("models", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("unknown setting") == 1
    assert f"lctk: warning: {project}:2: unknown setting 'embed_modle'; did you mean 'embed_model'?" in result.stderr
    defaults = json.loads(result.stdout)["defaults"]  # stdout is only the payload
    assert defaults["generate"] == {"model": "gemma3-270m", "source": f"project {project}"}
    assert defaults["embed"]["source"] == "default"


def test_doctor_json_shows_every_setting_and_its_source(tmp_path, monkeypatch):
    project = _write(tmp_path / "repo" / "lctk.toml", 'model = "gemma3-270m"\nbackend = "llama"\n')
    user = _user_file(tmp_path, 'embed_model = "minilm-l6-v2"\nmodel = "smollm2-135m"\n')
    monkeypatch.chdir(tmp_path / "repo")
    result = run_lctk("doctor", "--quick", "--format", "json", "-b", "torch", env={"LCTK_INDEX_DIR": str(tmp_path / "indexes")})
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    settings = {name: (s["value"], s["source"]) for name, s in report["settings"].items()}
    assert settings == {
        "model": ("gemma3-270m", f"project {project}"),
        "embed_model": ("minilm-l6-v2", f"user {user}"),
        "backend": ("torch", "flag"),
        "cache_dir": (str(config.cache_dir()), "env LCTK_CACHE_DIR"),
        "index_dir": (str(tmp_path / "indexes"), "env LCTK_INDEX_DIR"),
        "base_url": (None, "default"), "served_model": (None, "default"), "server_tokenizer": (None, "default"),
    }
    assert report["config_files"] == [
        {"scope": "project", "path": str(project), "found": True},
        {"scope": "user", "path": str(user), "found": True},
    ]
    checks = {c["name"]: c for c in report["checks"]}
    assert f"gemma3-270m (project {project})" in checks["generate model"]["detail"]
    assert f"minilm-l6-v2 (user {user})" in checks["embed model"]["detail"]


def test_doctor_text_lists_settings_and_files():
    report = DoctorReport(
        "0.1.0",
        (Check("python", OK, "3.11"),),
        (SettingInEffect("model", ENV_MODEL, "gemma3-270m", "project /r/lctk.toml", "each role's built-in model"),
         SettingInEffect("embed_model", ENV_EMBED_MODEL, None, "default", "the built-in embedder")),
        (ConfigLocation("project", "/r/lctk.toml", True), ConfigLocation("user", "/u/config.toml", False)),
    )
    from lctk.cli.render import doctor_text

    lines = doctor_text(report).splitlines()
    assert "  model        gemma3-270m  [project /r/lctk.toml]" in lines
    assert "  embed_model  - (the built-in embedder)  [default]" in lines
    assert "config files: project /r/lctk.toml; user /u/config.toml (not found)" in lines


def test_index_dir_from_a_project_file_moves_every_index_out_of_the_tree(tmp_path, monkeypatch):
    from lctk.models.fake import FakeEmbedder
    from lctk.retrieval.indexer import build_index
    from lctk.retrieval.store import index_location

    root = tmp_path / "code"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "util.py").write_text("def shout(text):\n    return text.upper()\n")
    _write(tmp_path / "lctk.toml", 'index_dir = "indexes"\n')
    monkeypatch.chdir(tmp_path)
    build_index(root.resolve(), FakeEmbedder())
    assert not (root / ".lctk").exists()
    assert index_location(root.resolve()).parent == (tmp_path / "indexes").resolve()
    assert (index_location(root.resolve()) / "CURRENT").is_file()
