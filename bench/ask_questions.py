"""Benchmark `lctk ask` on real questions over real manuals: evidence recall, answer accuracy, refusals.

Usage:
  python bench/ask_questions.py [--systems lctk,hybrid,plain,excerpt] [--ablation] [--answerers A/B,...]
                                [--split dev|heldout|all] [--report]

Questions: bench/data/ask-questions.jsonl (written from ../shared/data/pdf; `split` dev = tuned on,
heldout = kept aside and reported separately; `answers: []` = the manual does not say). Documents:
each question's own manual (Debian Policy ~110k tokens, Developer's Reference ~70k), and every
question again over the two manuals concatenated (~180k tokens). Scoring is `lctk eval ask
--questions`' (lctk/evaluation/questions.py): normalised substring and F1; evidence recall = the
answer is in the kept sentences.

Systems, side by side in one run:
- lctk: `lctk ask` defaults (the prior, re-read by the full embedder), answered by each of --answerers
  from the same evidence;
- hybrid: `--mode hybrid` (the attention model also reads the best candidates);
- plain: the answer model given the manual's head cut to its 8,192-token window (what plain CLIs do);
- excerpt: a ~6k-token excerpt holding the answer at a depth set by the question id, read by
  lctk (defaults), by InfiniRetri as published (`--mode attention`: the model reads every window,
  attention alone picks the evidence; too slow for whole manuals on a CPU) and by the plain model
  with the whole excerpt in its window.
plain and excerpt run on every ninth question (their CPU cost); `--ablation` measures evidence recall (no answers) of retrieval variants on the dev split.
Results are cached in bench/.data/ask-questions.json; `--report` rewrites the BENCHMARKS.md section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import write_section  # noqa: E402

from lctk.ask.prior import SentencePrior  # noqa: E402
from lctk.ask.qa import REFUSAL, answer, answer_messages, prepare, rerank_embedder  # noqa: E402
from lctk.ask.settings import RetrievalMode, RetrievalSettings  # noqa: E402
from lctk.documents.load import Document, document_from_text, load_document  # noqa: E402
from lctk.evaluation.questions import load_questions, score, summarize  # noqa: E402

DATA = ROOT / "bench" / ".data"
RESULTS = DATA / "ask-questions.json"
LOOKUP_RESULTS = DATA / "ask-lookup.json"  # apart from RESULTS, so the two runs can go side by side
QUESTIONS = ROOT / "bench" / "data" / "ask-questions.jsonl"
SHARED = Path(os.environ.get("LCTK_SHARED_DATA", ROOT.parent / "shared" / "data"))
MANUALS = ("developers-reference.pdf", "debian-policy.pdf")
CONCAT = "+".join(MANUALS)
PLAIN_CONTEXT = 8192
EXCERPT_TOKENS = 6000
MAX_TOKENS = 48


class Models:
    def __init__(self):
        self._cache: dict = {}

    def lm(self, alias: str, backend: str, role: str = "generate"):
        from lctk.models.loader import load_language_model

        if (alias, backend) not in self._cache:
            self._cache[(alias, backend)] = load_language_model(alias, role, backend)[0]
        return self._cache[(alias, backend)]

    def embedder(self):
        from lctk.models.loader import load_embedder
        from lctk.models.registry import role_model

        if "embed" not in self._cache:
            self._cache["embed"] = load_embedder(role_model("embed").value)
        return self._cache["embed"]


def manuals() -> dict[str, Document]:
    from lctk.config import writable_cache_subdir

    docs = {name: load_document(SHARED / "pdf" / name, writable_cache_subdir("documents")) for name in MANUALS}
    text, marks = "", []
    for name in MANUALS:  # the concatenation keeps each manual's pages, labelled with its name
        marks += [(len(text) + offset, f"{name} p. {label}") for offset, label in docs[name].marks]
        text += docs[name].text + "\n\n"
    docs[CONCAT] = Document(CONCAT, "pdf", text, tuple(marks))
    return docs


def excerpt(document: Document, question, counter) -> Document:
    """~EXCERPT_TOKENS of the manual around the question's page, the page at a depth set by its id."""
    if question.page is None:
        start = int(hashlib.sha256(question.id.encode()).hexdigest(), 16) % max(len(document.text) - 30000, 1)
    else:
        page_at = next(o for o, label in document.marks if label == str(question.page))
        depth = int(hashlib.sha256(question.id.encode()).hexdigest(), 16) % 100 / 100
        start = max(0, page_at - int(depth * EXCERPT_TOKENS * 3.6))
    text = document.text[start : start + EXCERPT_TOKENS * 5]
    while counter(text) > EXCERPT_TOKENS:
        text = text[: int(len(text) * 0.95)]
    return document_from_text(f"{document.name}@{start}", text)


def refused(text: str) -> bool:
    return text.strip().startswith(REFUSAL)


def run_lctk(models, prepared, question, settings, answerers, retrieval) -> dict:
    """One question through `answer` with the first answerer; the others answer from the same evidence."""
    first = models.lm(*answerers[0])
    result = answer(prepared, question.question, retriever=models.lm(retrieval, "torch", "attention"), answerer=first, answer_backend=answerers[0][1],
                    settings=settings, max_tokens=MAX_TOKENS)
    evidence = "\n".join(e.text for e in result.evidence)
    answers = {"/".join(answerers[0]): result.answer}
    for alias, backend in answerers[1:]:
        model = models.lm(alias, backend)
        answers[f"{alias}/{backend}"] = answer_with(model, result.evidence, question.question)
    return {"answers": answers, "evidence": evidence, "tokens_read": result.tokens_read,
            "tokens_kept": result.tokens_kept, "retrieval_s": result.timings["retrieval_s"],
            "answer_s": result.timings["answer_s"], "document_tokens": result.document_tokens}


def answer_with(model, evidence, question: str) -> str:
    from lctk.ask.qa import best_evidence, respond

    return respond(model, best_evidence(evidence, RetrievalSettings().answer_sentences), question, MAX_TOKENS)[0]


def run_plain(models, document: Document, question, alias: str, backend: str) -> dict:
    """The answer model given the document's head, cut to fit its window."""
    model = models.lm(alias, backend)
    room = min(PLAIN_CONTEXT, model.max_context_tokens) - MAX_TOKENS - 96
    ids = model.tokenize(document.text, add_special=False)
    text = model.detokenize(ids[:room]) if len(ids) > room else document.text
    messages = answer_messages([text], question.question)
    while len(model.tokenize(model.format_chat(messages), add_special=True)) > room + 64:
        text = text[: int(len(text) * 0.97)]
        messages = answer_messages([text], question.question)
    started = time.perf_counter()
    reply = "".join(model.generate(messages, max_tokens=MAX_TOKENS, temperature=0.0)).strip()
    return {"answers": {f"{alias}/{backend}": reply}, "evidence": text, "answer_s": round(time.perf_counter() - started, 2)}


def sweep(args, questions, results) -> None:
    models, docs = Models(), manuals()
    answerers = [tuple(a.split("/")) for a in args.answerers.split(",")]
    retriever = models.lm(args.retrieval, "torch", "attention")
    embedder = models.embedder()
    prepared: dict = {}

    def ready(document: Document, settings: RetrievalSettings):
        key = (document.name, settings.window_tokens)
        if key not in prepared:
            prepared[key] = prepare(document, retriever, settings, embedder, rerank_embedder(embedder))
        return prepared[key]

    default = RetrievalSettings()
    jobs = []
    for number, q in enumerate(questions):
        sampled = number % 9 == 0  # the slow baselines run on every ninth question (CPU time)
        if "lctk" in args.systems:
            jobs += [("lctk", q.document, q, default)]
            if number % 4 == 0:
                jobs += [("lctk", CONCAT, q, default)]
        if "hybrid" in args.systems:
            jobs += [("hybrid", q.document, q, replace(default, mode=RetrievalMode.hybrid))]
            if number % 4 == 0:
                jobs += [("hybrid", CONCAT, q, replace(default, mode=RetrievalMode.hybrid))]
        if "plain" in args.systems and sampled:
            jobs += [("plain", q.document, q, None)]
        if "excerpt" in args.systems and sampled:
            jobs += [("excerpt-lctk", q.document, q, default), ("excerpt-whole", q.document, q, None),
                     ("excerpt-attention", q.document, q, replace(default, mode=RetrievalMode.attention))]
    jobs.sort(key=lambda job: ["lctk", "hybrid", "plain", "excerpt-lctk", "excerpt-whole", "excerpt-attention"].index(job[0]))
    for system, doc_name, q, settings in jobs:
        key = f"{system}|{doc_name}|{q.id}"
        if key in results and all("/".join(a) in results[key]["answers"] for a in answerers if system != "plain"
                                   and not system.endswith("whole")):
            continue
        started = time.perf_counter()
        document = docs[doc_name]
        if system.startswith("excerpt"):
            document = excerpt(docs[doc_name], q, retriever.count_tokens)
        if system.endswith("whole") or system == "plain":
            row = run_plain(models, document, q, *answerers[0])
        else:
            row = run_lctk(models, ready(document, settings), q, settings, answerers, args.retrieval)
        row["seconds"] = round(time.perf_counter() - started, 2)
        results[key] = row
        save(results)
        verdict = {name: score(q, text, row["evidence"], refused(text))["correct"] for name, text in row["answers"].items()}
        print(f"{system:18s} {doc_name[:24]:24s} {q.id:20s} evidence={score(q, '', row['evidence'], False)['evidence']!s:5s} "
              f"{verdict} {row['seconds']:.1f}s", flush=True)


def ablation(args, questions, results) -> None:
    """Evidence recall of retrieval variants (no answers) on the dev split."""
    from lctk.ask.hybrid import hybrid_select
    from lctk.ask.prior import RERANK_SPAN, ContextReranker

    models, docs = Models(), manuals()
    retriever = models.lm(args.retrieval, "torch", "attention")
    embedder = models.embedder()
    full = rerank_embedder(embedder)
    default = RetrievalSettings()
    prior_only = replace(default, mode=RetrievalMode.prior)
    hybrid = replace(default, mode=RetrievalMode.hybrid)
    plain = replace(prior_only, rerank_sentences=0)  # the prior before the full model's re-read
    variants = {  # label -> (dense weight, neighbour weight, settings, re-read span)
        "lexical only (BM25, no neighbours)": (0.0, 0.0, plain, RERANK_SPAN),
        "lexical + neighbours": (0.0, 0.35, plain, RERANK_SPAN),
        "dense only (static MiniLM) + neighbours": (1.0, 0.35, plain, RERANK_SPAN),
        "lexical + dense, no neighbours": (0.3, 0.0, plain, RERANK_SPAN),
        "lexical + dense + neighbours (prior)": (0.3, 0.35, plain, RERANK_SPAN),
        "prior, kept sentences bring the next one": (0.3, 0.35, replace(plain, context=(1,)), RERANK_SPAN),
        "prior, kept sentences bring both neighbours": (0.3, 0.35, replace(plain, context=(-1, 1)), RERANK_SPAN),
        "prior, kept cap 1,024": (0.3, 0.35, replace(plain, kept_tokens=1024), RERANK_SPAN),
        "prior, dense 0.5": (0.5, 0.35, plain, RERANK_SPAN),
        "prior + re-read (full MiniLM, previous + sentence + next, best 100, weight 2; the default)": (0.3, 0.35, prior_only, RERANK_SPAN),
        "prior + re-read, sentence alone": (0.3, 0.35, prior_only, (0, 0)),
        "prior + re-read, previous + sentence": (0.3, 0.35, prior_only, (1, 0)),
        "prior + re-read, weight 1": (0.3, 0.35, replace(prior_only, rerank_weight=1.0), RERANK_SPAN),
        "prior + re-read, weight 4": (0.3, 0.35, replace(prior_only, rerank_weight=4.0), RERANK_SPAN),
        "prior + re-read, best 50": (0.3, 0.35, replace(prior_only, rerank_sentences=50), RERANK_SPAN),
        "prior + re-read, best 200": (0.3, 0.35, replace(prior_only, rerank_sentences=200), RERANK_SPAN),
        "prior + attention 0.5 (hybrid before the re-read)": (0.3, 0.35, replace(hybrid, rerank_sentences=0, attention_weight=0.5), RERANK_SPAN),
        "prior + re-read + attention 0.5": (0.3, 0.35, replace(hybrid, attention_weight=0.5), RERANK_SPAN),
        "prior + re-read + attention 0.25 (--mode hybrid)": (0.3, 0.35, hybrid, RERANK_SPAN),
        "prior + re-read + attention 1.0": (0.3, 0.35, replace(hybrid, attention_weight=1.0), RERANK_SPAN),
    }
    if args.variants:
        variants = {k: v for k, v in variants.items() if any(word in k for word in args.variants.split("|"))}
    prepared = {name: prepare(docs[name], retriever, default, None) for name in MANUALS}
    texts = {name: p.texts() for name, p in prepared.items()}
    priors = {name: SentencePrior(texts[name], embedder) for name in MANUALS}
    rerankers: dict = {}  # (manual, span) -> ContextReranker: window vectors embedded once per span
    for label, (dense_w, neighbour_w, settings, span) in variants.items():
        key = f"ablation|{label}"
        if key in results:
            continue
        rows, started = [], time.perf_counter()
        for q in questions:
            p = prepared[q.document]
            prior = priors[q.document]
            prior.dense_weight, prior.neighbour_weight = dense_w, neighbour_w
            p.prior = prior
            p.reranker = rerankers.setdefault((q.document, span), ContextReranker(texts[q.document], full, span))
            sel = hybrid_select(retriever if settings.mode == RetrievalMode.hybrid else None, p.document.text,
                                p.sentences, p.counts, p.relevance(q.question, settings), q.question, settings)
            evidence = "\n".join(e.text for e in p.evidence(sel.kept, sel.scores))
            rows.append(score(q, "", evidence, False)["evidence"])
        results[key] = {"recall": sum(rows) / len(rows), "n": len(rows),
                        "seconds": round((time.perf_counter() - started) / len(rows), 2)}
        save(results)
        print(f"{label:50s} recall {results[key]['recall']:.3f} ({len(rows)}) {results[key]['seconds']} s/question", flush=True)


def lookup_speed(args, questions, results) -> None:
    """Answer tokens/s with and without prompt-lookup drafts, same evidence, same answers (must be equal)."""
    from lctk.ask.qa import best_evidence, respond

    models, docs = Models(), manuals()
    retriever = models.lm(args.retrieval, "torch", "attention")
    settings = replace(RetrievalSettings(), mode=RetrievalMode.prior)  # evidence as lctk keeps it, minus attention
    prepared = {name: prepare(docs[name], retriever, settings, models.embedder()) for name in MANUALS}
    for alias, backend in [tuple(a.split("/")) for a in args.answerers.split(",")]:
        model = models.lm(alias, backend)
        for lookup in (0, 10):
            key = f"lookup|{alias}/{backend}|{lookup}"
            if key in results:
                continue
            tokens = seconds = proposed = accepted = 0
            answers = []
            for q in questions:
                p = prepared[q.document]
                scores = p.prior_scores(q.question)
                from lctk.ask.hybrid import hybrid_select

                sel = hybrid_select(None, p.document.text, p.sentences, p.counts, scores, q.question, settings)
                evidence = best_evidence(p.evidence(sel.kept, sel.scores), settings.answer_sentences)
                started = time.perf_counter()
                text, stats = respond(model, evidence, q.question, 64, check=False, lookup_tokens=lookup)
                wall = time.perf_counter() - started  # the stream is closed at the answer's first line
                answers.append(text)
                if stats is not None:
                    tokens += stats.completion_tokens
                    seconds += wall - stats.prompt_s
                    proposed += stats.draft_proposed
                    accepted += stats.draft_accepted
            results[key] = {"tokens": tokens, "seconds": round(seconds, 3), "proposed": proposed,
                            "accepted": accepted, "answers": answers, "n": len(questions)}
            save(results, LOOKUP_RESULTS)
            print(key, results[key]["tokens"], f"{tokens / max(seconds, 1e-9):.1f} tok/s", flush=True)


def save(results: dict, path: Path = RESULTS) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True))
    tmp.replace(path)


def render(results: dict, questions, answerers) -> str:
    by_id = {q.id: q for q in questions}
    lines = []
    systems = [
        ("lctk ask (default: prior + re-read), own manual", "lctk", "own"),
        ("lctk ask (default: prior + re-read), both manuals concatenated", "lctk", CONCAT),
        ("lctk ask --mode hybrid (+ gemma3-270m attention), own manual", "hybrid", "own"),
        ("lctk ask --mode hybrid (+ gemma3-270m attention), both manuals concatenated", "hybrid", CONCAT),
        ("plain model, manual head-truncated to 8,192 tokens", "plain", "own"),
        ("lctk ask (default), 6k-token excerpt", "excerpt-lctk", "own"),
        ("InfiniRetri as published (attention only, every window), 6k-token excerpt", "excerpt-attention", "own"),
        ("plain model, whole 6k-token excerpt in its window", "excerpt-whole", "own"),
    ]
    for split in ("dev", "heldout"):
        lines.append(f"### {split} questions ({sum(q.split == split and bool(q.answers) for q in questions)} answerable, "
                     f"{sum(q.split == split and not q.answers for q in questions)} absent)\n")
        lines.append("| system | answerer | questions (answerable + absent) | evidence recall | accuracy | accuracy when evidence holds | F1 | refusals (absent) | false refusals | s per question |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for name, system, where in systems:
            for answerer in (answerers if system in ("lctk", "hybrid", "excerpt-lctk") else answerers[:1]):
                answer_name = "/".join(answerer)
                rows, seconds = [], []
                for key, row in results.items():
                    parts = key.split("|")
                    if len(parts) != 3 or parts[0] != system or parts[2] not in by_id:
                        continue
                    q = by_id[parts[2]]
                    if q.split != split or (where == "own") != (parts[1] == q.document) or (where != "own" and parts[1] != where):
                        continue
                    text = row["answers"].get(answer_name)
                    if text is None:
                        continue
                    rows.append(score(q, text, row["evidence"], refused(text)))
                    seconds.append(row["seconds"])
                if not rows:
                    continue
                s = summarize(rows)
                fmt = lambda v: "—" if v is None else f"{v:.0%}"  # noqa: E731
                lines.append(f"| {name} | {answer_name} | {s['answerable']} + {s['absent']} | {fmt(s['evidence_recall'])} | {fmt(s['accuracy'])} | "
                             f"{fmt(s['accuracy_when_evidence_holds'])} | {s['f1']:.2f} | {fmt(s['refusal_rate_absent'])} | "
                             f"{fmt(s['false_refusals'])} | {sum(seconds) / len(seconds):.1f} |")
        lines.append("")
    lookups = {k: v for k, v in results.items() if k.startswith("lookup|")}
    if lookups:
        lines.append("### Prompt-lookup decoding of the answers (same evidence; decode time after the prompt)\n")
        lines.append("| answerer | draft tokens | answers | generated tokens | tokens/s | drafts accepted | same answers as plain greedy |")
        lines.append("|---|---|---|---|---|---|---|")
        for key, row in lookups.items():
            _, name, lookup = key.split("|")
            plain = results.get(f"lookup|{name}|0", {}).get("answers")
            same = "—" if lookup == "0" or plain is None else f"{sum(a == b for a, b in zip(row['answers'], plain))}/{row['n']}"
            rate = row["accepted"] / row["proposed"] if row["proposed"] else 0.0
            lines.append(f"| {name} | {lookup} | {row['n']} | {row['tokens']} | {row['tokens'] / max(row['seconds'], 1e-9):.1f} | "
                         f"{row['accepted']}/{row['proposed']} ({rate:.0%}) | {same} |")
        lines.append("")
    ablations = {k.split("|", 1)[1]: v for k, v in results.items() if k.startswith("ablation|")}
    if ablations:
        lines.append("### Which change bought what: evidence recall on the dev questions (own manual, no answers)\n")
        lines.append("| retrieval | evidence recall | s per question (re-read windows embedded by the first variant of each span, reused after) |")
        lines.append("|---|---|---|")
        for label, row in ablations.items():
            lines.append(f"| {label} | {row['recall']:.0%} ({row['n']}) | {row.get('seconds', '—')} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default="lctk,hybrid,plain,excerpt")
    parser.add_argument("--answerers", default="gemma3-270m/llama,smollm2-135m/llama")
    parser.add_argument("--retrieval", default="gemma3-270m")
    parser.add_argument("--split", default="all")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--variants", help="with --ablation: only variants whose label holds one of these |-separated words")
    parser.add_argument("--lookup", action="store_true", help="answer speed with and without prompt-lookup drafts")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    questions = load_questions(QUESTIONS)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    answerers = [tuple(a.split("/")) for a in args.answerers.split(",")]
    chosen = [q for q in questions if args.split == "all" or q.split == args.split][: args.limit]
    if args.ablation:
        ablation(args, [q for q in questions if q.split == "dev" and q.answers], results)
    elif args.lookup:
        lookup_speed(args, [q for q in questions if q.answers],
                     json.loads(LOOKUP_RESULTS.read_text()) if LOOKUP_RESULTS.exists() else {})
    elif not args.report:
        sweep(args, chosen, results)
    if LOOKUP_RESULTS.exists():
        results.update(json.loads(LOOKUP_RESULTS.read_text()))
    body = render(results, questions, answerers)
    print(body)
    if args.report:
        write_section(ROOT / "BENCHMARKS.md", "ask-questions", "## ask on real questions — `python bench/ask_questions.py`\n\n" + body)


if __name__ == "__main__":
    main()
