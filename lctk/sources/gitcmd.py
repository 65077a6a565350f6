"""Run `git` as a child process: never interactive, always time-limited, errors as one line.

Every call runs with `GIT_TERMINAL_PROMPT=0` (and Git Credential Manager told not to open a
window), ssh in batch mode unless the user configured their own ssh command, stdin closed, and
the variables that point git at another repository (`GIT_DIR`, `GIT_WORK_TREE`, ...) removed,
so a missing credential or host key fails at once instead of waiting for a prompt nobody sees.
The child runs in its own process group, killed whole on a timeout or an interrupt (a clone
runs `git-remote-https` or `ssh` under it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lctk.errors import InputError

# Variables that would make git act on some other repository than the one named with -C.
_REPOSITORY_VARIABLES = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX",
)


@dataclass(frozen=True)
class GitOutput:
    """A finished git command: exit status, stdout bytes, stderr as text."""

    returncode: int
    stdout: bytes
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def git_executable() -> str:
    """The git program on PATH, or an InputError saying it is needed."""
    found = shutil.which("git")
    if found is None:
        raise InputError("git is not installed (or not on PATH); it is needed for repository URLs and --diff")
    return found


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs with: the user's, made non-interactive."""
    env = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_VARIABLES}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GCM_INTERACTIVE"] = "never"
    env["GIT_LFS_SKIP_SMUDGE"] = "1"  # leave LFS pointers as they are: no second download, no prompt
    if not env.get("GIT_SSH_COMMAND") and not env.get("GIT_SSH"):
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"  # the agent still works; passphrase and host-key prompts fail
    env.update(extra or {})
    return env


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    timeout_s: float,
    what: str,
    env: Mapping[str, str] | None = None,
) -> GitOutput:
    """Run `git ARGS` (in `cwd`); raise InputError when git is missing or runs past `timeout_s`.

    `what` names the operation in the timeout message ("cloning https://…"). A non-zero exit is
    returned, not raised: the caller knows what it means.
    """
    command = [git_executable(), *args]
    try:
        proc = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(env) if env is not None else git_environment(), start_new_session=True,
        )
    except OSError as exc:
        raise InputError(f"cannot run git: {exc.strerror or exc}") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise InputError(f"{what} took longer than {timeout_s:g} s; stopped") from None
    except BaseException:  # Ctrl-C: take git's helpers (ssh, git-remote-https) down with it
        _kill_group(proc)
        raise
    return GitOutput(proc.returncode, stdout, stderr.decode("utf-8", "replace"))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()


def failure_line(stderr: str) -> str:
    """The line of git's stderr that says what went wrong: its first `fatal:` (else `error:`) line
    that names a cause rather than git's generic "Could not read from remote repository"."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for prefix in ("fatal:", "error:"):
        marked = [line for line in lines if line.startswith(prefix)]
        if marked:
            chosen = next((m for m in marked if "could not read from remote repository" not in m.lower()), marked[-1])
            return chosen[len(prefix):].strip()
    return lines[-1] if lines else "git failed"
