"""The one error hierarchy: the CLI prints any LctkError as one `error: …` line."""


class LctkError(Exception):
    """A failure the user can act on; printed as one line, exit status 1."""

    exit_code = 1


class UsageError(LctkError):
    """The command line itself is wrong; exit status 2."""

    exit_code = 2


class InputError(LctkError):
    """An input (prompt, file, stdin) cannot be used as given."""


class ModelError(LctkError):
    """A model cannot be resolved, located or loaded."""


class BackendUnavailableError(ModelError):
    """An inference backend is not installed or cannot run this model."""


class CacheError(LctkError):
    """The cache directory cannot be used."""


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
