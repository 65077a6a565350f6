"""`lctk generate`: stream a model's reply to a prompt (argument or stdin)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from lctk.cli.options import BackendOption, BaseUrlOption, FormatOption, ModelOption, OutputFormat, ServedModelOption


def read_prompt(prompt: str | None) -> str:
    """Return the prompt argument, or stdin when it is omitted or '-'."""
    from lctk.cli.console import read_stdin_text
    from lctk.errors import UsageError

    if prompt is not None and prompt != "-":
        return prompt
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("no prompt: pass PROMPT or pipe text on stdin")
    return read_stdin_text()


def generate(
    prompt: Annotated[Optional[str], typer.Argument(help="The prompt; read from stdin when omitted or '-'.", show_default=False)] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="System message (used through the model's chat template).")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", "-n", min=1, help="Most tokens to generate.")] = 256,
    temperature: Annotated[float, typer.Option("--temperature", "-t", min=0.0, help="0 is greedy (deterministic).")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed when temperature > 0.")] = 0,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print tokens as they are generated.")] = True,
    model: ModelOption = None,
    backend: BackendOption = None,
    base_url: BaseUrlOption = None,
    served_model: ServedModelOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Generate text with a local model; only the generated text goes to stdout."""
    import time

    from lctk.cli import render
    from lctk.cli.console import err_console, write_stdout
    from lctk.cli.options import backend_value, server_value
    from lctk.cli.state import cli_state
    from lctk.generation import build_messages, run_generation
    from lctk.models.loader import load_language_model
    from lctk.models.registry import role_model

    messages = build_messages(read_prompt(prompt), system)
    name = role_model("generate", model).value
    started = time.perf_counter()
    lm, choice = load_language_model(name, "generate", backend_value(backend), server=server_value(base_url, served_model))
    load_s = time.perf_counter() - started
    streaming = stream and output_format == OutputFormat.text
    result = run_generation(
        lm, messages, choice=choice, max_tokens=max_tokens, temperature=temperature, seed=seed, load_s=load_s,
        on_piece=write_stdout if streaming else None,
    )
    if output_format == OutputFormat.json:
        write_stdout(render.generation_json(result))
    else:
        if not streaming:
            write_stdout(result.text)
        if not result.text.endswith("\n"):
            write_stdout("\n")
    if cli_state.verbose:
        err_console().print(render.generation_summary(result), markup=False)
