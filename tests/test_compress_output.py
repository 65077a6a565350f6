"""`lctk compress -o FILE` and `--tree`, and shell completion of the `lctk` command."""

import os
import subprocess
import sys

import pytest
from conftest import assert_one_line_error, run_lctk
from test_compress_cli import make_repo

from lctk.compress.header import fit_tree


def test_output_file_written_atomically_with_tree_and_nothing_on_stdout(tmp_path):
    make_repo(tmp_path)
    target = tmp_path / "out" / "context.md"
    target.parent.mkdir()
    target.write_text("old contents\n")
    os.chmod(target, 0o640)
    result = run_lctk("compress", str(tmp_path / "pkg"), "-B", "300", "--tree", "--format", "markdown", "--no-cache",
                      "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    written = target.read_text()
    assert written.startswith(f"## Directory tree\n\n```\n{tmp_path}/pkg/\n  net.py\n```\n\n## {tmp_path}/pkg/net.py")
    assert f"written to {target}" in result.stderr
    assert os.stat(target).st_mode & 0o777 == 0o640  # an existing file keeps its mode
    assert sorted(p.name for p in target.parent.iterdir()) == ["context.md"]  # no temporary file left behind


def test_output_refuses_inputs_and_unwritable_places(tmp_path):
    make_repo(tmp_path)
    source = tmp_path / "pkg" / "net.py"
    before = source.read_text()
    assert_one_line_error(run_lctk("compress", str(tmp_path / "pkg"), "-B", "100", "-o", str(source)), 1,
                          "refusing to write the output over an input file")
    assert source.read_text() == before
    assert_one_line_error(run_lctk("compress", str(source), "-B", "100", "-o", str(tmp_path / "no" / "such" / "x.txt")), 1,
                          "no such directory")
    assert_one_line_error(run_lctk("compress", str(source), "-B", "100", "-o", str(tmp_path)), 1, "it is a directory")


def test_tree_folds_to_its_share_of_the_budget():
    paths = [f"pkg/mod{i}/file{j}.py" for i in range(30) for j in range(5)]
    chars = lambda text: len(text) // 4  # noqa: E731 - a stand-in tokenizer: 4 characters a token
    full = fit_tree(paths, 10_000, chars)
    assert "  mod7/\n    file0.py\n" in full and full.count("\n") == 1 + 30 * 6
    folded = fit_tree(paths, 200, chars)
    assert chars(folded) <= 200 and "  mod7/ (5 files)\n" in folded
    assert fit_tree(paths, 20, chars) == "pkg/ (150 files)\n"
    flat = [f"file{i:03}.py" for i in range(200)]  # nothing to fold: the last entries are cut
    cut = fit_tree(flat, 30, chars)
    assert chars(cut) <= 30 and cut.startswith("file000.py\n") and cut.endswith("more entries\n")


def test_help_lists_the_completion_options():
    result = run_lctk("--help")
    assert result.exit_code == 0 and "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_completion_script_and_completions_through_the_real_command():
    source = run_lctk(env={"_LCTK_COMPLETE": "source_bash"})  # what `lctk --show-completion` prints for bash
    assert source.exit_code == 0 and "_lctk_completion()" in source.stdout and "complete " in source.stdout
    words = run_lctk(env={"_LCTK_COMPLETE": "complete_bash", "COMP_WORDS": "lctk comp", "COMP_CWORD": "1"})
    assert words.exit_code == 0 and "compress" in words.stdout.split()
    options = run_lctk(env={"_LCTK_COMPLETE": "complete_bash", "COMP_WORDS": "lctk compress --di", "COMP_CWORD": "2"})
    assert {"--diff", "--diff-base"} <= set(options.stdout.split())


def test_show_completion_prints_the_script_for_the_detected_shell():
    import shellingham

    try:
        shell, _ = shellingham.detect_shell()
    except shellingham.ShellDetectionFailure:
        pytest.skip("no parent shell to detect (Typer's --show-completion names the shell it runs under)")
    if shell not in ("bash", "zsh", "fish", "powershell", "pwsh"):
        pytest.skip(f"Typer has no completion script for {shell}")
    proc = subprocess.run([sys.executable, "-m", "lctk", "--show-completion"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "lctk" in proc.stdout and "_LCTK_COMPLETE" in proc.stdout
