"""The CLI as a shell script sees it: exit codes, stdout payload only, one-line errors."""

import json
import subprocess
import sys
import time

from conftest import assert_one_line_error, run_lctk

HEAVY = ("torch", "transformers", "llama_cpp")


def test_help_lists_every_command_without_heavy_imports():
    code = (
        "import sys\n"
        "from lctk.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], code, file=sys.stderr)\n"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    assert "HEAVY [] 0" in proc.stderr
    for command in ("generate", "models", "doctor"):
        assert command in proc.stdout
    assert elapsed < 3.0  # generous for a loaded CI machine; bench/backends.py measures ~0.15 s


def test_bare_lctk_shows_help_and_version_prints():
    result = run_lctk()
    assert result.exit_code == 0 and "generate" in result.stdout
    result = run_lctk("--version")
    assert result.exit_code == 0 and result.stdout.startswith("lctk ")


def test_unknown_command_is_a_usage_error():
    assert_one_line_error(run_lctk("frobnicate"), 2, "no such command")


def test_usage_errors_exit_2():
    assert_one_line_error(run_lctk("generate", "--max-tokens", "0", "hi"), 2, "--max-tokens")
    assert_one_line_error(run_lctk("generate", "--format", "xml", "hi"), 2, "--format")
    assert_one_line_error(run_lctk("generate", "hi", env={"LCTK_BACKEND": "cuda"}), 2, "LCTK_BACKEND")


def test_generate_streams_only_the_answer_and_is_reproducible():
    first = run_lctk("generate", "What is the capital of France?", "-n", "24")
    second = run_lctk("generate", "What is the capital of France?", "-n", "24")
    assert first.exit_code == 0, first.stderr
    assert "Paris" in first.stdout or len(first.stdout.strip()) > 0
    assert first.stdout == second.stdout  # greedy decoding: same bytes
    assert "error" not in first.stderr.lower()
    assert "lctk:" not in first.stdout  # logs never reach stdout


def test_generate_json_reports_text_counts_timing_and_backend():
    result = run_lctk("generate", "Name a primary colour.", "-n", "16", "--format", "json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert payload["model"] == "smollm2-135m"
    assert payload["backend"] == "llama" and payload["backend_reason"].startswith("auto")
    assert 0 < payload["tokens"]["completion"] <= 16 and payload["tokens"]["prompt"] > 5
    assert payload["finish_reason"] in ("stop", "length")
    assert payload["timing"]["generate_s"] > 0 and payload["text"].strip()
    plain = run_lctk("generate", "Name a primary colour.", "-n", "16", "--no-stream")
    assert plain.stdout.rstrip("\n") == payload["text"].rstrip("\n")


def test_generate_reads_stdin_and_uses_system_message():
    piped = run_lctk("generate", "-n", "12", "--format", "json", input="Say the word yes.")
    argued = run_lctk("generate", "-n", "12", "--format", "json", "Say the word yes.")
    assert json.loads(piped.stdout)["text"] == json.loads(argued.stdout)["text"]
    with_system = run_lctk("generate", "-n", "12", "--format", "json", "-s", "You only speak French.", "Say the word yes.")
    # SmolLM2's template swaps its built-in system prompt for ours: the prompt changes length.
    assert json.loads(with_system.stdout)["tokens"]["prompt"] != json.loads(argued.stdout)["tokens"]["prompt"]


def test_verbose_says_which_backend_ran_on_stderr():
    result = run_lctk("-v", "generate", "Hi", "-n", "4")
    assert result.exit_code == 0
    assert "on llama" in result.stderr and "auto" in result.stderr
    assert "on llama" not in result.stdout


def test_generate_bad_inputs_give_one_line_errors(tmp_path):
    assert_one_line_error(run_lctk("generate", input=""), 1, "prompt is empty")
    assert_one_line_error(run_lctk("generate", input="  \n\t "), 1, "prompt is empty")
    assert_one_line_error(run_lctk("generate", input=b"\xff\xfe\x00bad"), 1, "not UTF-8")
    assert_one_line_error(run_lctk("generate", "-m", "no-such-model", "hi"), 1, "unknown model")
    assert_one_line_error(run_lctk("generate", "-m", str(tmp_path / "missing.gguf"), "hi"), 1, "not found")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"this is not a model")
    assert_one_line_error(run_lctk("generate", "-m", str(bad), "hi"), 1, "not a GGUF")
    from lctk.models.registry import resolve_model

    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(resolve_model("smollm2-135m").path.read_bytes()[:200_000])
    assert_one_line_error(run_lctk("generate", "-m", str(truncated), "hi"), 1, "cannot load")
    assert_one_line_error(run_lctk("generate", "-m", "minilm-l6-v2", "hi"), 1, "not a language model")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    unwritable = {"LCTK_CACHE_DIR": str(blocked / "cache")}
    assert_one_line_error(run_lctk("generate", "-b", "torch", "hi", env=unwritable), 1, "set LCTK_CACHE_DIR")
    assert_one_line_error(run_lctk("generate", "-m", "gemma3-270m", "hi", env=unwritable), 1, "set LCTK_CACHE_DIR")


def test_missing_backend_is_reported_with_the_fix(tmp_path):
    # A llama_cpp that fails to import stands in for a machine without llama-cpp-python.
    (tmp_path / "llama_cpp").mkdir()
    (tmp_path / "llama_cpp" / "__init__.py").write_text("raise ImportError('simulated: not installed')\n")
    result = run_lctk("generate", "-b", "llama", "hi", env={"PYTHONPATH": str(tmp_path)})
    assert_one_line_error(result, 1, "pip install llama-cpp-python")


def test_models_lists_aliases_and_defaults():
    text = run_lctk("models")
    assert text.exit_code == 0
    for alias in ("smollm2-135m", "gemma3-270m", "minilm-l6-v2"):
        assert alias in text.stdout
    payload = json.loads(run_lctk("models", "--format", "json", env={"LCTK_MODEL": "gemma3-270m"}).stdout)
    by_alias = {m["alias"]: m for m in payload["models"]}
    assert by_alias["smollm2-135m"]["installed"] and by_alias["smollm2-135m"]["size_bytes"] > 90e6
    assert by_alias["gemma3-270m"]["backends"] == ["torch", "llama"]
    assert payload["defaults"]["generate"] == {"model": "gemma3-270m", "source": "env LCTK_MODEL"}
    assert payload["defaults"]["attention"]["model"] == "gemma3-270m"
    assert payload["defaults"]["embed"]["model"] == "minilm-l6-v2-static"
    assert payload["backends"] == {"torch": True, "llama": True}


def test_doctor_quick_passes_and_fails_on_unwritable_cache(tmp_path):
    result = run_lctk("doctor", "--quick", "--format", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and {c["name"] for c in report["checks"]} >= {"torch", "llama.cpp", "cache dir", "generate model"}
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory should be")
    bad = run_lctk("doctor", "--quick", env={"LCTK_CACHE_DIR": str(blocked / "cache")})
    assert bad.exit_code == 1
    assert "fix: set LCTK_CACHE_DIR" in bad.stdout
    assert bad.stderr.startswith("error: doctor found problems")


def test_doctor_checks_the_models_the_user_names():
    result = run_lctk("doctor", "--quick", "-m", "gemma3-270m", "--embed-model", "nope", "--format", "json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["generate model"]["status"] == "ok" and "gemma3-270m (flag)" in checks["generate model"]["detail"]
    assert checks["embed model"]["status"] == "fail" and "unknown model 'nope'" in checks["embed model"]["detail"]


def test_doctor_loads_every_default_model(attention_lm):
    # attention_lm makes sure the Gemma conversion is cached, so this run measures loading only.
    result = run_lctk("doctor", "--format", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert "llama answered" in checks["generate model"]["detail"]
    assert "llama scored" in checks["score model"]["detail"]
    assert "torch answered" in checks["attention model"]["detail"]
    assert "384 dims" in checks["embed model"]["detail"]


def _default_sigint() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and the child
    # would inherit that; the test is about what lctk does with a Ctrl-C it can receive.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _lctk_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lctk", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=_default_sigint)


def test_closed_stdout_stops_quietly_with_sigpipe_status():
    proc = _lctk_process("generate", "-m", "gemma3-270m", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "-n", "3000")
    assert len(proc.stdout.read(8)) == 8  # like `| head -c 8`
    proc.stdout.close()
    assert proc.wait(timeout=120) == 141
    assert proc.stderr.read() == b""


def test_ctrl_c_exits_130_with_one_line():
    import signal

    proc = _lctk_process("generate", "-m", "gemma3-270m", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "-n", "3000")
    assert len(proc.stdout.read(8)) == 8  # generation is under way
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=120) == 130
    finally:
        proc.kill()  # never leave a 3,000-token generation running after a failure
    assert proc.stderr.read().decode().strip() == "error: interrupted"


def test_generate_runs_a_transformers_directory_on_torch(torch_lm):
    from lctk.models.convert import converted_checkpoint_path
    from lctk.models.registry import resolve_model

    folder = converted_checkpoint_path(resolve_model("smollm2-135m").path)  # a real HF checkpoint
    result = run_lctk("generate", "-m", str(folder), "-n", "8", "--format", "json", "What is the capital of France?")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["backend"] == "torch" and "transformers model directory" in payload["backend_reason"]
    assert_one_line_error(run_lctk("generate", "-m", str(folder), "-b", "llama", "hi"), 2, "--backend torch")
