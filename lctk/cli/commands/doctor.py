"""`lctk doctor`: is this machine ready? Exit 1 with the reason and the fix when it is not."""

from __future__ import annotations

from typing import Annotated

import typer

from lctk.cli.options import BackendOption, EmbedModelOption, FormatOption, ModelOption, OutputFormat


def doctor(
    quick: Annotated[bool, typer.Option("--quick", help="Check installs only; do not load models.")] = False,
    model: ModelOption = None,
    embed_model: EmbedModelOption = None,
    backend: BackendOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Show each setting and its source; check backends, hardware, cache and each role's model (loads it, asks for 5 tokens)."""
    from lctk.cli import render
    from lctk.cli.console import print_error, write_stdout
    from lctk.cli.options import backend_value
    from lctk.diagnostics import run_doctor

    report = run_doctor(
        load_models=not quick, model=model, embed_model=embed_model, backend=backend_value(backend),
        backend_flag=backend.value if backend else None,
    )
    write_stdout(render.doctor_json(report) if output_format == OutputFormat.json else render.doctor_text(report))
    if not report.ok:
        failed = [check.name for check in report.checks if check.status == "fail"]
        print_error(f"doctor found problems: {', '.join(failed)} (see the fixes above)")
        raise typer.Exit(1)
