"""Global CLI flags, set once by the root callback, and the sticky Ctrl-C flag."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class CliState:
    """--verbose and --quiet as given on the command line."""

    verbose: bool = False
    quiet: bool = False


cli_state = CliState()


# Set by lctk's SIGINT handler. Some native extensions check for signals and then clear the
# resulting KeyboardInterrupt; the flag keeps a Ctrl-C from being lost that way: every progress
# update and every write of a result checks it again.
interrupt_requested = threading.Event()


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, even if the first one was swallowed."""
    if interrupt_requested.is_set():
        raise KeyboardInterrupt
