"""`lctk doctor`: is this machine ready? Exit 1 with the reason and the fix when it is not."""

from __future__ import annotations

from typing import Annotated

import typer

from lctk.options import FormatOption, OutputFormat


def doctor(
    quick: Annotated[bool, typer.Option("--quick", help="Check installs only; do not load models.")] = False,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Check backends, hardware, cache and default models (each loads and answers 5 tokens)."""
    from lctk import render
    from lctk.console import print_error, write_stdout
    from lctk.diagnostics import run_doctor

    report = run_doctor(load_models=not quick)
    write_stdout(render.doctor_json(report) if output_format == OutputFormat.json else render.doctor_text(report))
    if not report.ok:
        failed = [check.name for check in report.checks if check.status == "fail"]
        print_error(f"doctor found problems: {', '.join(failed)} (see the fixes above)")
        raise typer.Exit(1)
