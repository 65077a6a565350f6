"""`lctk eval`: measure ask and search on the user's own documents and repositories, offline.

Results go to stdout (a table, or JSON with --format json), progress to stderr. Low scores
still exit 0: this is a measurement, not a test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional, cast

import typer

from lctk.cli.options import BackendOption, EmbedModelOption, FormatOption, ModelOption, OutputFormat

if TYPE_CHECKING:
    from lctk.models.protocols import AttentionLanguageModel

eval_app = typer.Typer(
    name="eval", help="Evaluate ask and search on your own data (needle tests, docstring and annotated queries).",
    no_args_is_help=True, add_completion=False,
)


def python_files(root):
    """The repository's Python files (lctk's walker: ignores, binaries, size limits, links that lead
    outside `root` skipped), each with its posix path relative to `root`."""
    import os
    from pathlib import Path

    from lctk.sources.walk import walk_sources

    return [(f.path, Path(os.path.relpath(f.path, root)).as_posix()) for f in walk_sources([Path(root)]).files
            if f.language == "python"]


@eval_app.command("ask")
def eval_ask(
    haystack: Annotated[Optional[str], typer.Option("--haystack", help="Text, PDF, Markdown, HTML, EPUB or DOCX whose text the needles go into.", show_default=False)] = None,
    questions: Annotated[Optional[str], typer.Option("--questions", help="Real questions instead of needles: JSONL of {\"question\", \"answers\": [...]} (answers [] = not in the document); see --document.", show_default=False)] = None,
    document: Annotated[Optional[str], typer.Option("--document", help="With --questions: the document every question is asked of (default: each line's \"document\", relative to the questions file).", show_default=False)] = None,
    task: Annotated[str, typer.Option("--task", help="needle, passkey, multi-needle or thread.")] = "needle",
    lengths: Annotated[str, typer.Option("--lengths", help="Document lengths in retrieval-model tokens, e.g. 4k,8k,16k.")] = "4k,8k",
    depths: Annotated[int, typer.Option("--depths", min=1, help="Needle depths, evenly from 0% to 100%.")] = 5,
    needles: Annotated[int, typer.Option("--needles", min=1, help="Facts per multi-needle task.")] = 3,
    hops: Annotated[int, typer.Option("--hops", min=1, help="Assignments after the first in a thread task.")] = 3,
    scoring: Annotated[str, typer.Option("--scoring", help="substring or exact (whole words).")] = "substring",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated needles.")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Run at most N of the length x depth tasks.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", "-n", min=1, help="Most tokens per answer.")] = 48,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Also write a depth x length heat map of the scores to this .png.", show_default=False)] = None,
    retrieval_model: Annotated[Optional[str], typer.Option("--retrieval-model", help="Model whose attention picks sentences; always on torch (default: gemma3-270m).", show_default=False)] = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Needle-in-a-haystack, passkey, multi-needle or thread tasks — or your own questions — through `lctk ask`."""
    import json
    import time
    from pathlib import Path

    from lctk.ask.qa import answer, prior_embedder
    from lctk.ask.settings import RetrievalSettings
    from lctk.cli.console import progress_callback, write_stdout
    from lctk.cli.options import backend_value
    from lctk.config import writable_cache_subdir
    from lctk.documents.load import document_from_text, load_document
    from lctk.errors import UsageError
    from lctk.evaluation.haystack import KINDS, Haystack
    from lctk.evaluation.haystack import depths as depth_list
    from lctk.evaluation.metrics import answer_score
    from lctk.models.loader import load_language_model
    from lctk.models.registry import role_model

    if (haystack is None) == (questions is None):
        raise UsageError("give --haystack (needle tasks) or --questions FILE.jsonl (real questions), not both")
    if questions is not None:
        from lctk.cli.commands.eval_questions import eval_questions

        eval_questions(questions, document, max_tokens, retrieval_model, model, backend_value(backend), output_format)
        return
    if task not in KINDS:
        raise UsageError(f"--task must be one of {', '.join(KINDS)} (got {task!r})")
    if scoring not in ("substring", "exact"):
        raise UsageError(f"--scoring must be substring or exact (got {scoring!r})")
    from lctk.evaluation.haystack import parse_lengths

    sizes = parse_lengths(lengths)
    if plot is not None and not plot.lower().endswith(".png"):
        raise UsageError(f"--plot {plot}: give a .png file name")
    source = load_document(cast(str, haystack), writable_cache_subdir("documents"))  # given: --questions was not
    loaded, _ = load_language_model(retrieval_model or role_model("attention").value, "attention", "torch")
    retriever = cast("AttentionLanguageModel", loaded)  # loaded for the attention operation
    answerer, choice = load_language_model(role_model("answer", model).value, "generate", backend_value(backend))
    embedder = prior_embedder(RetrievalSettings())
    hay = Haystack(source.text, retriever.count_tokens)
    plan = [(length, depth) for length in sizes for depth in depth_list(depths)][:limit]
    rows: list[dict[str, Any]] = []
    with progress_callback(f"eval ask ({task})", log_every=30.0) as on_progress:
        for done, (length, depth) in enumerate(plan):
            made = hay.task(task, length, depth, seed, needles=needles, hops=hops)
            started = time.perf_counter()
            result = answer(document_from_text(f"{task}-{length}-{depth}", made.document), made.question, retriever=retriever,
                            answerer=answerer, answer_backend=choice.backend, max_tokens=max_tokens, embedder=embedder)
            evidence = "\n".join(e.text for e in result.evidence)
            rows.append({
                "length": length, "depth": depth, "tokens": made.tokens,
                "score": answer_score(result.answer, made.expected, scoring),
                "kept": answer_score(evidence, made.expected, "substring"),
                "answer": result.answer, "expected": list(made.expected), "windows": result.windows_total,
                "seconds": round(time.perf_counter() - started, 2),
            })
            if on_progress is not None:
                on_progress(done + 1, len(plan))
    summary = {
        "task": task, "haystack": source.name, "scoring": scoring, "seed": seed,
        "retrieval_model": retriever.model_id, "answer_model": answerer.model_id, "answer_backend": choice.backend,
        "mean_score": round(sum(r["score"] for r in rows) / len(rows), 4) if rows else 0.0,
        "mean_kept": round(sum(r["kept"] for r in rows) / len(rows), 4) if rows else 0.0,
        "results": rows,
    }
    if plot is not None and rows:
        from lctk.evaluation.plot import heatmap

        heatmap(rows, plot, f"lctk ask, {task} in {Path(source.name).name}: {summary['mean_score']:.0%} right "
                            f"({retriever.model_id} retrieval, {answerer.model_id} answers)")
        summary["plot"] = plot
    if output_format == OutputFormat.json:
        write_stdout(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        return
    write_stdout(render_grid(rows, "score") + "\n")
    write_stdout(f"{task}: answers {summary['mean_score']:.0%} right, facts kept in the evidence "
                 f"{summary['mean_kept']:.0%} ({len(rows)} tasks, {retriever.model_id} retrieval, "
                 f"{answerer.model_id} answers)\n")


def render_grid(rows: list[dict], field: str) -> str:
    """A length x depth table of one field (0..1 shown as percentages)."""
    lengths = sorted({r["length"] for r in rows})
    depths = sorted({r["depth"] for r in rows})
    cells = {(r["length"], r["depth"]): r[field] for r in rows}
    header = "tokens  " + " ".join(f"{d:>6.0%}" for d in depths)
    lines = [header]
    for length in lengths:
        values = [cells.get((length, d)) for d in depths]
        lines.append(f"{length:>6}  " + " ".join(f"{v:>6.0%}" if v is not None else f"{'-':>6}" for v in values))
    return "\n".join(lines)


@eval_app.command("search")
def eval_search(
    path: Annotated[str, typer.Argument(help="Repository to evaluate on.")] = ".",
    docstrings: Annotated[bool, typer.Option("--docstrings", help="Docstring summary -> function tasks from the repository's Python (the default).")] = False,
    annotations: Annotated[Optional[str], typer.Option("--annotations", help="semble-style JSON: [{query, relevant, secondary, category}]; NDCG@10 by semble's protocol.", show_default=False)] = None,
    modes: Annotated[str, typer.Option("--modes", help="Comma-separated search modes.")] = "lexical,dense,hybrid",
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most N queries (a fixed random subset).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --limit subset.")] = 0,
    embed_model: EmbedModelOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """MRR, R@1/5/10 and NDCG@10 of search on docstring tasks or your own annotated queries."""
    import json
    import tempfile
    from pathlib import Path

    from lctk.cli.console import err_console, progress_callback, write_stdout
    from lctk.errors import InputError, UsageError
    from lctk.evaluation.annotations import read_annotations
    from lctk.evaluation.search_eval import (
        SEMBLE_TOP_K,
        build_docstring_corpus,
        docstring_relevance,
        evaluate,
        evaluate_annotations,
        sample,
    )
    from lctk.retrieval.api import CodeIndex

    if docstrings and annotations:
        raise UsageError("use --docstrings or --annotations, not both")
    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"no such directory: {path}")
    with tempfile.TemporaryDirectory(prefix="lctk-eval-") as scratch, progress_callback("eval search", log_every=30.0) as on_progress:
        if annotations:
            items = sample(read_annotations(annotations), limit, seed)
            opened = CodeIndex.open(root, embed_model=embed_model)
            report = evaluate_annotations(opened.searcher, items, chosen, within=opened.target.within, progress=on_progress)
            source = f"annotations {annotations}"
        else:
            files = python_files(root)
            tasks = sample(build_docstring_corpus(files, Path(scratch) / "corpus"), limit, seed)
            if not tasks:
                raise InputError(f"{path}: no Python function with a docstring summary of 4+ words; use --annotations")
            searcher = CodeIndex.open(Path(scratch) / "corpus", embed_model=embed_model).searcher
            report = evaluate(searcher, [t.query for t in tasks], lambda i, hits: docstring_relevance(tasks[i], hits),
                              chosen, progress=on_progress)
            source = "docstrings"
    payload: dict[str, Any] = {"path": path, "tasks": source, "modes": report}
    if annotations:  # their NDCG@10 is semble's binary one (search_eval.semble_ndcg), comparable with semble's table
        payload = {"path": path, "tasks": source, "protocol": "semble", "top_k": SEMBLE_TOP_K, "modes": report}
    if output_format == OutputFormat.json:
        write_stdout(json.dumps(payload, indent=2) + "\n")
        return
    write_stdout(f"{'mode':<8} {'MRR':>6} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'NDCG@10':>8}\n")
    for mode, row in report.items():
        write_stdout(f"{mode:<8} {row['MRR']:>6.3f} {row['R@1']:>6.3f} {row['R@5']:>6.3f} {row['R@10']:>6.3f} {row['NDCG@10']:>8.3f}\n")
    first = next(iter(report.values()))
    note = ""
    if annotations:
        note = (f"; NDCG@10 by semble's protocol (binary, each target at its first hit in the top {SEMBLE_TOP_K})"
                + (f"; {first['no_target_in_index']} queries have no target in the index and score 0"
                   if first["no_target_in_index"] else ""))
    err_console().print(f"lctk: {first['queries']} queries from {source}{note}", markup=False, highlight=False)


@eval_app.command("compress")
def eval_compress(
    path: Annotated[str, typer.Argument(help="Repository to evaluate on (its Python files make the tasks).")] = ".",
    ratios: Annotated[str, typer.Option("--ratios", help="Compression ratios: budget = whole context / ratio.")] = "2,4,8",
    tasks: Annotated[str, typer.Option("--tasks", help="needle, dependency or both.")] = "needle,dependency",
    limit: Annotated[int, typer.Option("--limit", min=1, help="Tasks per kind (a fixed random choice for --seed).")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the task choice.")] = 0,
    methods: Annotated[str, typer.Option("--methods", help="Methods compared in the same run.")] = "lctk,lctk --no-fine,bm25,tail,random",
    candidates: Annotated[int, typer.Option("--candidates", min=0, help="Chunks the LM scores per task (after retrieval).")] = 32,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Also write a retention-vs-ratio chart to this .png.", show_default=False)] = None,
    model: ModelOption = None,
    backend: BackendOption = None,
    output_format: FormatOption = OutputFormat.text,
) -> None:
    """Needle and dependency retention of compress vs BM25, tail truncation and random chunks."""
    import json
    from pathlib import Path

    from lctk.cli.console import err_console, progress_callback, write_stdout
    from lctk.cli.options import backend_value
    from lctk.errors import InputError, UsageError
    from lctk.evaluation.compress_eval import KINDS, METHODS, dependency_tasks, evaluate_task, needle_tasks, summarize
    from lctk.models.loader import load_language_model
    from lctk.models.registry import role_model
    from lctk.score_cache import open_score_cache
    from lctk.sources.text import SourceText
    from lctk.sources.walk import read_text

    try:
        chosen_ratios = [float(r) for r in ratios.split(",") if r.strip()]
    except ValueError:
        raise UsageError(f"--ratios: {ratios!r} is not a list of numbers (e.g. 2,4,8)") from None
    if not chosen_ratios or any(r <= 1 for r in chosen_ratios):
        raise UsageError("--ratios must be numbers above 1 (budget = whole context / ratio)")
    kinds = [k.strip() for k in tasks.split(",") if k.strip()]
    if not kinds or any(k not in KINDS for k in kinds):
        raise UsageError(f"--tasks must be needle, dependency or both (got {tasks!r})")
    chosen_methods = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in chosen_methods if m not in METHODS]
    if unknown or not chosen_methods:
        raise UsageError(f"--methods: unknown {unknown[0] if unknown else 'empty'!r}; use {', '.join(METHODS)}")
    if plot is not None and not plot.lower().endswith(".png"):
        raise UsageError(f"--plot {plot}: give a .png file name")
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"no such directory: {path}")
    sources = []
    for found, relative in python_files(root):
        try:
            sources.append(SourceText(relative, "python", read_text(found)))
        except (OSError, UnicodeDecodeError):
            continue
    if not sources:
        raise InputError(f"{path}: no Python files to make tasks from")
    lm, _ = load_language_model(role_model("score", model).value, "score", backend_value(backend))
    made = (needle_tasks(sources, limit, seed) if "needle" in kinds else []) + (
        dependency_tasks(sources, lm.count_tokens, limit, seed) if "dependency" in kinds else [])
    if not made:
        raise InputError(f"{path}: no function qualifies (needle: a docstring summary of 5+ words; "
                         "dependency: a short function after 4,000+ tokens of its file)")
    cache = open_score_cache()
    retriever = None
    if any(m in ("lctk", "lctk --no-fine", "hybrid", "dense") for m in chosen_methods):
        from lctk.retrieval.candidates import default_retriever

        retriever = default_retriever(cache)
    rows = []
    with progress_callback("eval compress", log_every=30.0) as on_progress:
        for done, task in enumerate(made):
            rows += evaluate_task(task, lm, cache, chosen_ratios, chosen_methods, candidates, retriever)
            if on_progress is not None:
                on_progress(done + 1, len(made))
    summary = summarize(rows)
    if plot is not None:
        from lctk.evaluation.plot import retention_chart

        retention_chart(summary, plot, f"lctk compress retention on {root.resolve().name} ({lm.model_id})")
    if output_format == OutputFormat.json:
        write_stdout(json.dumps({"path": path, "model": lm.model_id, "ratios": chosen_ratios, "summary": summary,
                                 "tasks": rows}, indent=2) + "\n")
        return
    for kind, by_method in summary.items():
        count = len({r["id"] for r in rows if r["kind"] == kind})
        write_stdout(f"{kind} retention ({count} tasks)\n")
        write_stdout(f"{'method':<16}" + "".join(f"{f'{r:g}x':>8}" for r in chosen_ratios) + f"{'over budget':>13}{'achieved':>10}\n")
        for method, entry in by_method.items():
            cells = "".join(f"{entry['retention'].get(r, float('nan')):>8.0%}" for r in chosen_ratios)
            write_stdout(f"{method:<16}{cells}{entry['violations']:>13}{entry['achieved']:>9.2f}x\n")
        write_stdout("\n")
    err_console().print(f"lctk: {len(made)} tasks from {len(sources)} Python files, scored by {lm.model_id}",
                        markup=False, highlight=False)
