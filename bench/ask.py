"""Benchmark `lctk ask`: needle-in-a-haystack and passkey retrieval at 4k-64k tokens, beside the
plain answer model given the document truncated to its window and the reference `infini-retri`
package with the same retrieval model; cost per window; peak RSS as the document grows.

Usage:
  python bench/ask.py [--lengths 4k,8k,16k,32k] [--depths 5] [--systems lctk,plain,reference]
                      [--tasks needle,passkey] [--tune] [--cost] [--rss] [--report]

Needles are inserted at sentence boundaries of the Jargon File (../shared/data/haystack); lengths
are counted in retrieval-model tokens; an answer is right when it contains the needle's value
(substring scoring). "kept" says whether the needle sentence survived retrieval. Every result is
cached in bench/.data/ask-results.json, so a rerun only computes what is missing; `--report`
rewrites the "ask" section of BENCHMARKS.md from the cache.

The reference package needs `pip install infini-retri==0.0.3 tiktoken matplotlib seaborn` (its
imports); it answers with the retrieval model itself (Gemma 3 270M base), as it is built to.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import write_section  # noqa: E402

from lctk.ask.qa import answer as ask  # noqa: E402
from lctk.ask.qa import answer_messages  # noqa: E402
from lctk.ask.settings import RetrievalMode, RetrievalSettings  # noqa: E402
from lctk.documents.load import document_from_text  # noqa: E402
from lctk.evaluation.haystack import Haystack, parse_lengths  # noqa: E402  (the tasks and --lengths of `lctk eval ask`)
from lctk.evaluation.metrics import answer_score  # noqa: E402  (and the same scoring)

DATA = ROOT / "bench" / ".data"
RESULTS = DATA / "ask-results.json"
HAYSTACK = Path(os.environ.get("LCTK_SHARED_DATA", ROOT.parent / "shared" / "data")) / "haystack" / "jargon.txt"
PLAIN_CONTEXT = 8192  # SmolLM2-135M-Instruct's trained window (what `--backend llama` opens)
MAX_TOKENS = 32
TUNE = [  # (retrieval model, K, kept cap, weight question rows)
    ("gemma3-270m", 300, 768, False), ("gemma3-270m", 300, 768, True), ("gemma3-270m", 300, 384, False),
    ("smollm2-135m", 300, 1536, False), ("gemma3-270m", 300, 1536, False),
]


# ------------------------------------------------------------------ tasks


HAYSTACKS = {  # name -> file under ../shared/data (three different real texts)
    "jargon": "haystack/jargon.txt", "policy": "pdf/debian-policy.pdf", "devref": "pdf/developers-reference.pdf",
}


class Haystacks:
    """A real text past its title block, as `lctk eval ask` tasks (lctk.evaluation.haystack)."""

    def __init__(self, model, longest: int, name: str = "jargon"):
        from lctk.documents.load import load_document

        text = load_document(HAYSTACK.parent.parent / HAYSTACKS[name]).text
        text = text[text.index("\n\n", 2000) :]  # past the title block
        self.text = text[: longest * 6]
        self._tasks = Haystack(self.text, model.count_tokens)

    def document(self, task: str, length: int, depth: float, seed: int) -> tuple[str, str, str]:
        """Return (document, question, expected value) with the needle at `depth` of `length` tokens."""
        made = self._tasks.task(task, length, depth, seed)
        return made.document, made.question, made.expected[0]


# ------------------------------------------------------------------ systems


class Models:
    def __init__(self):
        from lctk.models.loader import load_language_model

        self._load = load_language_model
        self._cache: dict = {}

    def embedder(self):
        from lctk.models.loader import load_embedder
        from lctk.models.registry import role_model

        if "embed" not in self._cache:
            self._cache["embed"] = load_embedder(role_model("embed").value)
        return self._cache["embed"]

    def get(self, alias: str, backend: str, role: str = "generate"):
        key = (alias, backend)
        if key not in self._cache:
            self._cache[key] = self._load(alias, role, backend)[0]
        return self._cache[key]


def generate(model, messages, max_tokens=MAX_TOKENS) -> tuple[str, float]:
    started = time.perf_counter()
    text = "".join(model.generate(messages, max_tokens=max_tokens, temperature=0.0))
    return text.strip(), time.perf_counter() - started


def run_lctk(models: Models, document: str, question: str, value: str, settings: RetrievalSettings,
             retrieval: str, answerers: list[tuple[str, str]]) -> dict:
    retriever = models.get(retrieval, "torch", "attention")
    first = models.get(*answerers[0])
    result = ask(document_from_text("haystack", document), question, retriever=retriever, answerer=first, answer_backend=answerers[0][1], settings=settings,
                 max_tokens=MAX_TOKENS, embedder=models.embedder())
    evidence = [e.text for e in result.evidence]
    answers = {f"{answerers[0][0]}/{answerers[0][1]}": result.answer}
    answer_s = {f"{answerers[0][0]}/{answerers[0][1]}": result.timings["answer_s"]}
    for alias, backend in answerers[1:]:
        text, seconds = generate(models.get(alias, backend), answer_messages(evidence, question))
        answers[f"{alias}/{backend}"], answer_s[f"{alias}/{backend}"] = text, round(seconds, 2)
    ranked = sorted(result.evidence, key=lambda e: -e.score)
    rank = next((i + 1 for i, e in enumerate(ranked) if value in e.text), None)
    return {
        "kept": rank is not None, "needle_rank": rank, "kept_sentences": len(evidence),
        "answers": answers, "answer_s": answer_s,
        "windows": result.windows_total, "tokens_read": result.tokens_read, "tokens_kept": result.tokens_kept,
        "retrieval_s": result.timings["retrieval_s"],
    }


def run_plain(models: Models, document: str, question: str, value: str, alias: str, backend: str) -> dict:
    """The answer model given the document's head, cut to fit its window (what plain CLIs do)."""
    model = models.get(alias, backend)
    room = min(PLAIN_CONTEXT, model.max_context_tokens) - MAX_TOKENS - 64
    ids = model.tokenize(document, add_special=False)
    text = model.detokenize(ids[:room]) if len(ids) > room else document
    messages = answer_messages([text], question)
    while len(model.tokenize(model.format_chat(messages), add_special=True)) > room + 48:  # template overhead
        ids = ids[: int(len(ids) * 0.97)]
        messages = answer_messages([model.detokenize(ids)], question)
    answer, seconds = generate(model, messages)
    return {"kept": value in messages[0]["content"], "answers": {f"{alias}/{backend}": answer},
            "answer_s": {f"{alias}/{backend}": round(seconds, 2)}, "tokens_read": min(len(ids), room)}


class Reference:
    """The reference package (infini-retri 0.0.3) on the retrieval model's transformers weights."""

    def __init__(self, alias: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from lctk.models.registry import _cached_torch_checkpoint, find_alias

        folder = _cached_torch_checkpoint(find_alias(alias))  # the cached GGUF -> transformers folder
        if folder is None:
            raise SystemExit(f"run lctk once with {alias} on torch first (it converts the GGUF)")
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if not self.tokenizer.chat_template:  # base model: the same plain layout lctk uses
            self.tokenizer.chat_template = "{% for m in messages %}{% if m['content'] %}{{ m['content'] }}\n\n{% endif %}{% endfor %}"
        self.model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
        self.model.eval()

    def run(self, document: str, question: str, value: str) -> dict:
        from infini_retri import InfiniRetri

        started = time.perf_counter()
        ir = InfiniRetri(model=self.model, tokenizer=self.tokenizer, topk=300, answer_length=8, window_length=1024)
        answer, info = ir.ir.generate2(
            data_dict={"context": document, "question": question}, gen_name="InfiniRetri",
            prompt="Read the book and answer the question. Be very concise in your answer.\n\n{context}\n\nQuestion:\n\n{question}\n\nAnswer:",
            chunk_size=1024, topk=300, phrase_token_num=8, temperature=None, max_new_tokens=MAX_TOKENS,
        )
        context = info["input_text"]
        return {"kept": value in context.split("Question:")[0], "answers": {"reference": answer.strip()},
                "tokens_kept": len(self.tokenizer.encode(context)), "seconds": round(time.perf_counter() - started, 2)}


# ------------------------------------------------------------------ runs and cache


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def save_results(results: dict) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True))
    tmp.replace(RESULTS)


def depths_of(count: int) -> list[float]:
    return [round(i / (count - 1), 3) for i in range(count)] if count > 1 else [0.5]


def sweep(args, results: dict) -> None:
    models = Models()
    retriever = models.get(args.retrieval, "torch", "attention")
    lengths = parse_lengths(args.lengths)
    hay = Haystacks(retriever, max(lengths), args.haystack)
    settings = settings_of(args)
    answerers = [tuple(a.split("/")) for a in args.answerers.split(",")]
    reference = None
    for task in args.tasks.split(","):
        for length in lengths:
            for depth in depths_of(args.depths):
                document, question, value = hay.document(task, length, depth, args.seed)
                digest = hashlib.sha256(document.encode()).hexdigest()[:12]
                for system in args.systems.split(","):
                    if system == "lctk":
                        tag = lctk_tag(args)
                    elif system == "plain":
                        tag = f"plain:{answerers[0][0]}/{answerers[0][1]}"
                    else:
                        tag = f"reference:{args.retrieval}"
                    if system == "plain":
                        tag += haystack_tag(args)
                    key = f"{tag}|{task}|{length}|{depth}|{digest}"
                    if key in results and not (system == "lctk" and _stale(results[key], answerers)):
                        continue
                    started = time.perf_counter()
                    if system == "lctk":
                        row = run_lctk(models, document, question, value, settings, args.retrieval, answerers)
                    elif system == "plain":
                        row = run_plain(models, document, question, value, *answerers[0])
                    else:
                        reference = reference or Reference(args.retrieval)
                        row = reference.run(document, question, value)
                    row.update(value=value, seconds=round(time.perf_counter() - started, 2))
                    row["correct"] = {name: answer_score(text, [value]) == 1.0 for name, text in row["answers"].items()}
                    results[key] = row
                    save_results(results)
                    print(f"{tag:55s} {task:8s} {length:6d} {depth:5.2f} kept={row['kept']!s:5s} "
                          f"correct={row['correct']} {row['seconds']:.1f}s", flush=True)


def settings_of(args) -> RetrievalSettings:
    return RetrievalSettings(mode=RetrievalMode(args.mode), window_tokens=args.window, top_k=args.top_k,
                             phrase=args.phrase, kept_tokens=args.kept_tokens, weight_rows=args.weight_rows)


def lctk_tag(args) -> str:
    mode = "" if args.mode == "attention" else f":{args.mode}"  # attention-only rows keep their old tags
    return (f"lctk:{args.retrieval}:W{args.window}:K{args.top_k}:k{args.phrase}:C{args.kept_tokens}"
            + (":qw" if args.weight_rows else "") + mode + haystack_tag(args))


def haystack_tag(args) -> str:
    return "" if args.haystack == "jargon" else f"@{args.haystack}"


def _stale(row: dict, answerers) -> bool:
    return "needle_rank" not in row or any(f"{a}/{b}" not in row["answers"] for a, b in answerers)


# ------------------------------------------------------------------ cost and memory


def cost_per_window(args) -> dict:
    """Seconds for one InfiniRetri step (kept cap + window + question, last-layer rows captured)
    vs a plain forward pass of the window alone and with the LM head (what log-prob scoring costs)."""
    import torch

    models = Models()
    model = models.get(args.retrieval, "torch", "attention")
    hay = Haystacks(model, 8192)
    ids = model.tokenize(hay.text, add_special=True)
    window, cap, question = args.window, args.kept_tokens, 24
    rows = {}

    def timed(fn, repeat=3):
        fn()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    step = ids[: cap + window + question + 40]
    rows["InfiniRetri step (kept cap + window + question), last-layer rows"] = (len(step), timed(
        lambda: model.last_layer_attention(step, list(range(len(step) - question, len(step))))))
    hybrid = ids[: window + question + 40]
    rows["hybrid step (candidate window + question), last-layer rows"] = (len(hybrid), timed(
        lambda: model.last_layer_attention(hybrid, list(range(len(hybrid) - question, len(hybrid))))))
    plain = ids[:window]
    with torch.inference_mode():
        rows["plain forward of the window (no LM head)"] = (len(plain), timed(
            lambda: model._base(input_ids=torch.tensor([plain]), use_cache=False)))
        rows["plain forward of the window with logits (LM head)"] = (len(plain), timed(
            lambda: model.model(input_ids=torch.tensor([plain]), use_cache=False)))
        rows["plain forward of the same step input (no capture)"] = (len(step), timed(
            lambda: model._base(input_ids=torch.tensor([step]), use_cache=False)))
    return {name: {"tokens": n, "seconds": round(s, 3)} for name, (n, s) in rows.items()}


def peak_rss(args) -> dict:
    """Peak RSS of a whole `lctk.retrieval.ask` run in a fresh process, per document length."""
    out = {}
    for length in parse_lengths(args.rss_lengths):
        child = subprocess.Popen([sys.executable, __file__, "--rss-child", str(length), "--retrieval", args.retrieval,
                                  "--kept-tokens", str(args.kept_tokens), "--top-k", str(args.top_k), "--mode", args.mode]
                                 + (["--weight-rows"] if args.weight_rows else ["--no-weight-rows"]),
                                 stdout=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        report = json.loads(child.stdout.read())
        out[f"{args.mode}:{length}"] = {"peak_rss_mb": round(usage.ru_maxrss / 1024), **report}
        print(f"rss {length}: {out[f'{args.mode}:{length}']}", flush=True)
    return out


def rss_child(length: int, args) -> None:
    models = Models()
    retriever = models.get(args.retrieval, "torch", "attention")
    answerer = models.get("gemma3-270m", "llama")
    hay = Haystacks(retriever, length)
    document, question, value = hay.document("needle", length, 0.5, args.seed)
    settings = settings_of(args)
    started = time.perf_counter()
    result = ask(document_from_text("haystack", document), question, retriever=retriever, answerer=answerer, answer_backend="llama", settings=settings, max_tokens=MAX_TOKENS,
                 embedder=models.embedder())
    seconds = time.perf_counter() - started
    print(json.dumps({"windows": result.windows, "tokens_read": result.tokens_read, "tokens_kept": result.tokens_kept,
                      "document_tokens": result.document_tokens, "mode": result.mode, "seconds": round(seconds, 1),
                      "tokens_per_s": round(result.document_tokens / seconds), "correct": value in result.answer}))


# ------------------------------------------------------------------ report


def table(results: dict, prefix: str, task: str, answer: str | None) -> tuple[list[str], dict]:
    """Rows of length x depth for one system: 'A/K' cells (answer right / needle kept)."""
    cells: dict = {}
    for key, row in results.items():
        tag, row_task, length, depth, _ = key.split("|")
        if tag != prefix or row_task != task:
            continue
        if answer and answer not in row["correct"]:
            continue  # this answerer did not run on this row
        right = row["correct"][answer] if answer else any(row["correct"].values())
        cells.setdefault(int(length), {})[float(depth)] = (right, row["kept"])
    return sorted({d for v in cells.values() for d in v}), cells


def render(results: dict, meta: dict) -> str:
    lines = []
    lctk_tag = meta["lctk_tag"]
    titles = {"jargon": "Jargon File", "policy": "Debian Policy", "devref": "Developer's Reference"}
    systems = []
    for name, title in titles.items():
        tag = lctk_tag.split("@")[0] + ("" if name == "jargon" else f"@{name}")
        systems += [(f"lctk ask ({meta['mode']}), {title}, answer {a}", tag, a) for a in meta["answerers"]]
    systems += [
        ("plain gemma3-270m, Jargon File head-truncated to 8,192 tokens", "plain:gemma3-270m/llama", None),
        ("plain smollm2-135m, Jargon File head-truncated to 8,192 tokens", "plain:smollm2-135m/llama", None),
        (f"reference infini-retri 0.0.3 ({meta['retrieval']} retrieves and answers)", f"reference:{meta['retrieval']}", None),
    ]
    for task in ("needle", "passkey"):
        summary = []
        for name, tag, answer in systems:
            depths, cells = table(results, tag, task, answer)
            if not cells:
                continue
            right = sum(c[0] for v in cells.values() for c in v.values())
            kept = sum(c[1] for v in cells.values() for c in v.values())
            total = sum(len(v) for v in cells.values())
            summary.append((name, right, kept, total, depths, cells))
        if not summary:
            continue
        lines.append(f"### {'Needle in a haystack (three real texts)' if task == 'needle' else 'Passkey (digits in repeated noise)'}\n")
        lines.append("Cell = answer correct / needle kept in the evidence (✓ or ·), per depth 0%→100%.\n")
        lines.append("| system | " + " | ".join(f"{k // 1024}k" for k in sorted({k for s in summary for k in s[5]})) + " | answers right | needle kept |")
        lines.append("|---|" + "---|" * (len({k for s in summary for k in s[5]}) + 2))
        lengths = sorted({k for s in summary for k in s[5]})
        for name, right, kept, total, _depths, cells in summary:
            row = []
            for length in lengths:
                marks = cells.get(length, {})
                row.append(" ".join(("✓" if marks[d][0] else "·") + ("✓" if marks[d][1] else "·") for d in sorted(marks)) or "—")
            lines.append(f"| {name} | " + " | ".join(row) + f" | {right}/{total} | {kept}/{total} |")
        lines.append("")
    if meta.get("tune"):
        lines.append("### Tuning (needle, 8k tokens, 5 depths): answers right / needle kept\n")
        lines.append("Needle rank = its place among the kept sentences by attention score, per depth (— = lost).\n")
        lines.append("| retrieval model | K | kept cap | question rows | smollm2 answers | gemma3 answers | kept | needle rank | s per run |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for stats in meta["tune"].values():
            lines.append(f"| {stats['retrieval']} | {stats['K']} | {stats['cap']} | {stats.get('rows', 'equal')} | {stats['smollm2']} | "
                         f"{stats['gemma3']} | {stats['kept']} | {' '.join(str(r or '—') for r in stats.get('ranks', []))} | {stats['seconds']:.0f} |")
        lines.append("")
    if meta.get("cost"):
        lines.append(f"### Cost per window ({meta['retrieval']}, torch fp32, threads as the run had them; median of 3)\n")
        lines.append("| pass | tokens | seconds | tokens/s |")
        lines.append("|---|---|---|---|")
        for name, row in meta["cost"].items():
            lines.append(f"| {name} | {row['tokens']:,} | {row['seconds']:.2f} | {row['tokens'] / row['seconds']:,.0f} |")
        lines.append("")
    if meta.get("rss"):
        lines.append("### Peak RSS and speed of a whole ask run (fresh process, needle at 50%; seconds exclude model loading)\n")
        lines.append("| mode | document tokens | windows the model read | peak RSS (MB) | kept tokens | seconds | document tokens/s | answer right |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for key, row in meta["rss"].items():
            length = key.split(":")[-1]
            lines.append(f"| {row.get('mode', 'attention')} | {int(length):,} | {row['windows']} | {row['peak_rss_mb']:,} | "
                         f"{row['tokens_kept']:,} | {row['seconds']} | {row.get('tokens_per_s', '—')} | {row['correct']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="4k,8k,16k,32k")
    parser.add_argument("--depths", type=int, default=5)
    parser.add_argument("--tasks", default="needle,passkey")
    parser.add_argument("--systems", default="lctk,plain,reference")
    parser.add_argument("--retrieval", default="gemma3-270m")
    parser.add_argument("--mode", default=RetrievalSettings().mode.value, choices=[m.value for m in RetrievalMode])
    parser.add_argument("--haystack", default="jargon", choices=sorted(HAYSTACKS))
    parser.add_argument("--answerers", default="gemma3-270m/llama,smollm2-135m/llama")
    defaults = RetrievalSettings()
    parser.add_argument("--window", type=int, default=defaults.window_tokens)
    parser.add_argument("--top-k", type=int, default=defaults.top_k)
    parser.add_argument("--phrase", type=int, default=defaults.phrase)
    parser.add_argument("--kept-tokens", type=int, default=defaults.kept_tokens)
    parser.add_argument("--weight-rows", action=argparse.BooleanOptionalAction, default=defaults.weight_rows)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tune", action="store_true", help="sweep K and the kept cap at 8k, both retrieval models")
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--rss", action="store_true")
    parser.add_argument("--rss-lengths", default="8k,32k")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args)
        return
    results = load_results()
    meta_path = DATA / "ask-meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if args.tune:
        tune = meta.setdefault("tune", {})
        for retrieval, k, cap, weight_rows in TUNE:
            if True:
                tuned = argparse.Namespace(**{**vars(args), "retrieval": retrieval, "top_k": k, "kept_tokens": cap,
                                              "weight_rows": weight_rows, "lengths": "8k", "tasks": "needle",
                                              "systems": "lctk"})
                sweep(tuned, results)
                tag = lctk_tag(tuned)
                rows = [r for key, r in results.items() if key.startswith(tag + "|needle|8192|")]
                tune[tag] = {"retrieval": retrieval, "K": k, "cap": cap, "rows": "weighted" if weight_rows else "equal",
                             "smollm2": f"{sum(r['correct'].get('smollm2-135m/llama', False) for r in rows)}/{len(rows)}",
                             "gemma3": f"{sum(r['correct'].get('gemma3-270m/llama', False) for r in rows)}/{len(rows)}",
                             "kept": f"{sum(r['kept'] for r in rows)}/{len(rows)}",
                             "ranks": [r.get("needle_rank") for r in rows],
                             "seconds": statistics.mean(r["seconds"] for r in rows)}
        meta_path.write_text(json.dumps(meta, indent=1))
    elif not (args.cost or args.rss or args.report):
        sweep(args, results)
    if args.cost:
        meta["cost"] = cost_per_window(args)
        meta_path.write_text(json.dumps(meta, indent=1))
    if args.rss:
        meta["rss"] = {**meta.get("rss", {}), **peak_rss(args)}
        meta_path.write_text(json.dumps(meta, indent=1))
    meta.update(retrieval=args.retrieval, lctk_tag=lctk_tag(args), mode=args.mode, answerers=args.answerers.split(","))
    body = render(results, meta)
    print(body)
    if args.report:
        write_section(ROOT / "BENCHMARKS.md", "ask", "## ask — `python bench/ask.py`\n\n" + body)


if __name__ == "__main__":
    main()
