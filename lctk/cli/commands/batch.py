"""`lctk batch index|compress|ask`: run a tasks.jsonl on Ray Data, one result row per task in --out.

stdout stays empty: the results are the files in --out (results.jsonl, and results.parquet with
--format parquet; row schema in lctk.batch.tasks). stderr gets progress, each failed task, and
the counts. Exit status 1 when any task failed (its error is in its row; a re-run retries it).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lctk.batch.results import ResultsFormat
from lctk.cli.options import BackendOption, EmbedModelOption, ModelOption

batch_app = typer.Typer(
    help="Run many index, compress or ask tasks from a manifest on Ray (this machine, or a cluster with --address).",
    no_args_is_help=True,
)

ManifestOption = Annotated[str, typer.Option("--manifest", help="tasks.jsonl: one JSON task per line; paths relative to its directory.", show_default=False)]
OutOption = Annotated[str, typer.Option("--out", help="Results directory: results.jsonl gets one row per task as it finishes; a re-run skips the tasks already ok.", show_default=False)]
AddressOption = Annotated[Optional[str], typer.Option("--address", help="Run on this Ray cluster (ray://host:10001, host:6379 or auto); without it a local Ray runs on this machine's cores.", show_default=False)]
WorkersOption = Annotated[Optional[int], typer.Option("--workers", "-w", min=1, help="Workers (each loads the models once and gets an equal share of the cores); by default one per 2 cores, or one per --gpus-per-worker GPUs.", show_default=False)]
GpusOption = Annotated[Optional[float], typer.Option("--gpus-per-worker", help="GPUs each worker reserves (fractions share a GPU); by default none.", show_default=False)]


FormatOption = Annotated[ResultsFormat, typer.Option("--format", "-f", case_sensitive=False, help="jsonl, or parquet to also write results.parquet (the latest row of each task) at the end.")]


@batch_app.command("compress")
def compress(
    manifest: ManifestOption,
    out: OutOption,
    address: AddressOption = None,
    workers: WorkersOption = None,
    gpus_per_worker: GpusOption = None,
    output_format: FormatOption = ResultsFormat.jsonl,
    model: ModelOption = None,
    backend: BackendOption = None,
) -> None:
    """Compress many inputs. Task fields: path, and optionally id, query, budget, rate, format, candidates, retrieval, no_fine, tree (as lctk compress's options)."""
    _run("compress", manifest, out, address, workers, gpus_per_worker, output_format, model=model, backend=backend)


@batch_app.command("index")
def index(
    manifest: ManifestOption,
    out: OutOption,
    address: AddressOption = None,
    workers: WorkersOption = None,
    gpus_per_worker: GpusOption = None,
    output_format: FormatOption = ResultsFormat.jsonl,
    embed_model: EmbedModelOption = None,
) -> None:
    """Build or refresh many search indexes. Task fields: path, and optionally id."""
    _run("index", manifest, out, address, workers, gpus_per_worker, output_format, embed_model=embed_model)


@batch_app.command("ask")
def ask(
    manifest: ManifestOption,
    out: OutOption,
    address: AddressOption = None,
    workers: WorkersOption = None,
    gpus_per_worker: GpusOption = None,
    output_format: FormatOption = ResultsFormat.jsonl,
    model: ModelOption = None,
    backend: BackendOption = None,
) -> None:
    """Answer many questions from documents. Task fields: document, question, and optionally id, mode, max_tokens, check (as lctk ask's options)."""
    _run("ask", manifest, out, address, workers, gpus_per_worker, output_format, model=model, backend=backend)


def _run(kind: str, manifest: str, out: str, address, workers, gpus_per_worker, output_format, *, model=None, backend=None, embed_model=None) -> None:
    import logging

    from rich.markup import escape

    from lctk.batch.runner import run_batch
    from lctk.cli.console import err_console, progress_callback
    from lctk.cli.options import backend_value
    from lctk.errors import LctkError

    log = logging.getLogger("lctk")

    def on_row(row: dict) -> None:
        if row.get("status") != "ok":
            log.warning("task %s failed: %s", row.get("id"), row.get("error"))

    chosen_backend = backend_value(backend) if kind != "index" else "auto"
    with progress_callback(f"{kind} tasks", log_every=30.0) as on_progress:
        summary = run_batch(manifest, kind, out=out, workers=workers, gpus_per_worker=gpus_per_worker, address=address,
                            output_format=output_format, model=model, backend=chosen_backend, embed_model=embed_model,
                            on_progress=on_progress, on_row=on_row)
    written = summary.parquet or summary.results
    err_console().print(
        f"[dim]lctk:[/dim] {summary.tasks} {kind} tasks: {summary.done_before} done before, {summary.run_now} run now "
        f"({summary.ok} ok, {summary.failed} failed) in {summary.seconds:.1f} s; results in {escape(written)}",
        markup=True, highlight=False,
    )
    if summary.failed:
        raise LctkError(f"{summary.failed} of {summary.run_now} tasks failed (errors in {summary.results}); run the same command again to retry them")
