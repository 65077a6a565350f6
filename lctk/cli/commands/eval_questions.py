"""`lctk eval ask --questions FILE.jsonl`: evidence recall, accuracy and refusals of `lctk ask` on real questions."""

from __future__ import annotations

from pathlib import Path

from lctk.cli.options import OutputFormat


def eval_questions(path: str, document: str | None, max_tokens: int, retrieval_model: str | None, model: str | None,
                   backend: str, output_format: OutputFormat) -> None:
    """Ask every question of `path` (grouped by document, each read once) and print the scores."""
    import json

    from lctk.ask.qa import REFUSAL, ask_many
    from lctk.cli.console import progress_callback, write_stdout
    from lctk.config import writable_cache_subdir
    from lctk.documents.load import load_document
    from lctk.errors import InputError
    from lctk.evaluation.questions import load_questions, score, summarize

    questions = load_questions(path)
    groups: dict[str, list] = {}
    for question in questions:
        where = document or question.document
        if not where:
            raise InputError(f"{path}: question {question.id or question.question!r} names no document; pass --document")
        resolved = Path(where) if document or Path(where).is_absolute() else Path(path).parent / where
        groups.setdefault(str(resolved), []).append(question)
    loaded = {name: load_document(name, writable_cache_subdir("documents")) for name in groups}  # bad paths fail first
    rows = []
    with progress_callback("eval ask (questions)", log_every=30.0) as on_progress:
        for name, asked in groups.items():
            results = ask_many(loaded[name], [q.question for q in asked], model=model, backend=backend, retrieval_model=retrieval_model,
                               max_tokens=max_tokens)
            for question, result in zip(asked, results):
                evidence = "\n".join(e.text for e in result.evidence)
                rows.append({"id": question.id, "document": name, "question": question.question,
                             "answers": list(question.answers), "answer": result.answer,
                             "pages": sorted({e.page for e in result.evidence}),
                             **score(question, result.answer, evidence, result.answer.startswith(REFUSAL)),
                             "seconds": result.timings["total_s"]})
                if on_progress is not None:
                    on_progress(len(rows), len(questions))
    summary = summarize(rows)
    if output_format == OutputFormat.json:
        write_stdout(json.dumps({"questions_file": path, **summary, "results": rows}, indent=2, ensure_ascii=False) + "\n")
        return
    pct = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
    write_stdout(
        f"{summary['answerable']} answerable questions: evidence recall {pct(summary['evidence_recall'])}, "
        f"accuracy {pct(summary['accuracy'])} ({pct(summary['accuracy_when_evidence_holds'])} where the evidence "
        f"holds the answer), F1 {summary['f1'] if summary['f1'] is not None else '-'}, false refusals "
        f"{pct(summary['false_refusals'])}\n"
        f"{summary['absent']} questions the document does not answer: refused {pct(summary['refusal_rate_absent'])}\n")
