"""stderr for humans (progress, logs, warnings, errors), stdout only for results."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console
from rich.markup import escape

from lctk.cli.state import check_interrupt

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def err_console() -> Console:
    """Return the shared stderr console (resolves sys.stderr at print time)."""
    return _err


def read_stdin_text() -> str:
    """All of stdin decoded as UTF-8, or an InputError naming the first bad byte."""
    from lctk.errors import InputError

    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"stdin is not UTF-8 text (invalid byte at offset {exc.start})") from None


class OutputClosedError(Exception):
    """stdout's reader went away (e.g. `| head`); not an OSError, so nothing swallows it on the way up."""


def write_stdout(text: str) -> None:
    """Write a result to stdout and flush it (piped consumers see it at once)."""
    check_interrupt()  # never print a result after Ctrl-C, even if a library swallowed the interrupt
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise OutputClosedError() from None
    except OSError as exc:  # e.g. `> /dev/full`, a full disk or quota: say so instead of a traceback
        from lctk.errors import LctkError

        raise LctkError(f"cannot write the output: {exc.strerror or exc}") from None


def print_error(message: str) -> None:
    """Print the one-line `error: …` form on stderr."""
    one_line = " ".join(str(message).split())
    sys.stderr.write(f"error: {one_line}\n")
    sys.stderr.flush()


class _StderrHandler(logging.Handler):
    """Route the library's log records to stderr as `lctk: message` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            prefix = "warning: " if record.levelno >= logging.WARNING else ""
            # The message carries user text (paths, queries): escaped, so "[red]" in a file name stays text.
            _err.print(f"[dim]lctk:[/dim] {prefix}{escape(record.getMessage())}", markup=True, highlight=False)
        except Exception:  # a log line must never take the command down
            self.handleError(record)


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Show INFO by default, DEBUG with --verbose, only warnings with --quiet."""
    logger = logging.getLogger("lctk")
    logger.handlers[:] = [_StderrHandler()]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


class progress_callback:  # noqa: N801 - used as a context manager, named like one
    """A transient progress bar on stderr; yields on_progress(done, total[, description]).

    When stderr is not a terminal it is silent, unless `log_every` is set: then a plain INFO line
    (done/total, ETA) is logged at most that often, so a long run redirected to a file still
    shows where it is (`--quiet` hides it).
    """

    def __init__(self, description: str, log_every: float | None = None):
        self.description = description
        self.log_every = log_every
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return self._plain() if self.log_every is not None else (lambda *args, **kwargs: check_interrupt())
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=_err, transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=None)

        def update(done: int, total: int, description: str | None = None) -> None:
            check_interrupt()
            fields: dict[str, Any] = {"description": description} if description is not None else {}
            progress, task = cast("Progress", self._progress), cast("TaskID", self._task)  # both set above
            progress.update(task, completed=done, total=total, **fields)

        return update

    def _plain(self):
        import time

        started, last = time.monotonic(), [time.monotonic()]
        logger = logging.getLogger("lctk")

        def update(done: int, total: int, description: str | None = None) -> None:
            check_interrupt()
            now = time.monotonic()
            if now - last[0] < self.log_every or done <= 0 or done >= total:
                return
            last[0] = now
            eta = (now - started) / done * (total - done)
            logger.info("%s: %d/%d, about %s left", description or self.description, done, total, _duration(eta))

        return update

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
