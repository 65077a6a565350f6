"""The `lctk` command: root Typer app, global options, and error-to-exit-code mapping.

The top layer: commands, shared options, console and rendering live here and nothing below imports them.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from lctk import __version__
from lctk.cli.commands.ask import ask
from lctk.cli.commands.batch import batch_app
from lctk.cli.commands.compress import compress
from lctk.cli.commands.doctor import doctor
from lctk.cli.commands.eval import eval_app
from lctk.cli.commands.generate import generate
from lctk.cli.commands.mcp import mcp
from lctk.cli.commands.models import models
from lctk.cli.commands.search import index, search
from lctk.cli.state import cli_state, interrupt_requested

__all__ = ["app", "main"]

try:  # typer >= 0.26 vendors click; older releases use click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]

app = typer.Typer(
    name="lctk",
    help="Long-context toolkit: local models for compressing, searching and asking long inputs, offline.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        sys.stdout.write(f"lctk {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details (backend choice, timings) and show tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """Long-context toolkit: local models for compressing, searching and asking long inputs, offline."""
    from lctk.cli.console import setup_logging

    cli_state.verbose, cli_state.quiet = verbose, quiet and not verbose
    setup_logging(cli_state.verbose, cli_state.quiet)


app.command("compress")(compress)
app.command("search")(search)
app.command("index")(index)
app.command("ask")(ask)
app.command("generate")(generate)
app.command("models")(models)
app.command("doctor")(doctor)
app.command("mcp")(mcp)
app.add_typer(eval_app, name="eval")
app.add_typer(batch_app, name="batch")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to one `error:` line and an exit status (1 error, 2 usage, 130 interrupt)."""
    from lctk.cli.console import OutputClosedError, print_error
    from lctk.errors import LctkError

    args = sys.argv[1:] if argv is None else list(argv)
    if not args:  # bare `lctk` shows the help, like `lctk --help`
        args = ["--help"]
    _install_sigint_handler()
    try:
        command = typer.main.get_command(app)
        result = command.main(args=args, prog_name="lctk", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == 130:  # typer turns Ctrl-C into a bare exit status 130
            print_error("interrupted")
    except typer.Exit as exc:
        code = exc.exit_code
    except UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        print_error(exc.format_message() + hint)
        code = 2
    except ClickException as exc:
        print_error(exc.format_message())
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print_error("interrupted")
        code = 130
    except (OutputClosedError, BrokenPipeError):
        # The reader went away (e.g. `| head`): stop quietly with SIGPIPE's status, as grep does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 141
    except LctkError as exc:
        _traceback_if_verbose()
        print_error(str(exc))
        code = exc.exit_code
    except MemoryError:
        print_error("out of memory; try a smaller input, --budget or --window")
        code = 1
    except OSError as exc:  # a full disk, a quota, a read-only mount met where no caller expected it
        _traceback_if_verbose()
        where = f" ({exc.filename})" if exc.filename else ""
        print_error(f"{exc.strerror or exc}{where}")
        code = 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        _traceback_if_verbose()
        print_error(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for the traceback)")
        code = 1
    if code == 0 and interrupt_requested.is_set():  # a library swallowed the KeyboardInterrupt on its way up
        print_error("interrupted")
        code = 130
    sys.exit(code)


def _traceback_if_verbose() -> None:
    if cli_state.verbose:
        import traceback

        traceback.print_exc()


def _install_sigint_handler() -> None:
    """Ctrl-C raises KeyboardInterrupt as usual and also sets a sticky flag (see lctk.cli.state).

    An inherited SIG_IGN (`lctk … &` from a script) is kept.
    """
    import signal

    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return

    def on_sigint(signum, frame):
        interrupt_requested.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
