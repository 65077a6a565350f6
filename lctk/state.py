"""Global CLI flags, set once by the root callback."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CliState:
    """--verbose and --quiet as given on the command line."""

    verbose: bool = False
    quiet: bool = False


cli_state = CliState()
