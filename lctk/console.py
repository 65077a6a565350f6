"""stderr for humans (progress, logs, warnings, errors), stdout only for results."""

from __future__ import annotations

import logging
import sys

from rich.console import Console

_err = Console(stderr=True, highlight=False, soft_wrap=True)


def err_console() -> Console:
    """Return the shared stderr console (resolves sys.stderr at print time)."""
    return _err


class OutputClosedError(Exception):
    """stdout's reader went away (e.g. `| head`); not an OSError, so nothing swallows it on the way up."""


def write_stdout(text: str) -> None:
    """Write a result to stdout and flush it (piped consumers see it at once)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise OutputClosedError() from None


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
            _err.print(f"[dim]lctk:[/dim] {prefix}{record.getMessage()}", markup=True, highlight=False)
        except Exception:  # a log line must never take the command down
            self.handleError(record)


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Show INFO by default, DEBUG with --verbose, only warnings with --quiet."""
    logger = logging.getLogger("lctk")
    logger.handlers[:] = [_StderrHandler()]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
