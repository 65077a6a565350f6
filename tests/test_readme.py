"""The README's two opening commands are what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_commands_verbatim():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    install, test = blocks[0].strip(), blocks[1].strip()
    assert "torch" not in install or "torch==2.13.0" in (ROOT / "pyproject.toml").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [line.strip() for line in ci.splitlines()]
    assert install in ci_lines
    assert any(line.startswith(test) for line in ci_lines)
    assert "-eq 5" in ci  # pytest's "no tests collected" must fail CI
    assert readme.index(blocks[0]) < 200  # the README opens with them
