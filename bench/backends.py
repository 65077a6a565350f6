"""Benchmark the models layer: log-prob scoring, generation, load time, peak RSS, backend agreement,
attention needle ranks and embedding throughput, each side by side with its baseline in one run.

Usage: python bench/backends.py [--no-conversion]   (prints tables, rewrites its BENCHMARKS.md section)
Each (model, backend) runs in its own process so load time and peak RSS are its own.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from report import write_section  # noqa: E402

MODELS = ("smollm2-135m", "gemma3-270m")
BACKENDS = ("torch", "llama")
SCORE_TOKENS = 2000
GEN_TOKENS = 128
GEN_PROMPT = "Write a short story about a robot who learns to paint."


def scoring_text() -> str:
    """Real Python: the standard library's argparse module (scored: its first 2,000 tokens)."""
    import argparse as module

    return inspect.getsource(module)


def needle_haystack(depth: float, lines: int = 120) -> tuple[str, int]:
    """Code-like lines with one needle line at `depth`; returns (text, needle line index)."""
    body = [f"    config_{i} = load_setting('section_{i % 7}', key='k{i}', default={i})" for i in range(lines)]
    needle = int(depth * (lines - 1))
    body[needle] = "    api_token = 'PELICAN-7731'  # the deploy token"
    return "def settings():\n" + "\n".join(body) + "\n", needle + 1


def attention_needle_rank(model) -> list[int]:
    """Rank of the needle line among all lines by last-layer attention of the question rows."""
    ranks = []
    for depth in (0.1, 0.3, 0.5, 0.7, 0.9):
        context, needle_line = needle_haystack(depth)
        question = "\n# Question: what is the deploy token?\n# Answer:"
        enc = model.tokenize_with_offsets(context + question)
        offsets = np.array([s for s, _ in enc.offsets])
        q_rows = [i for i, s in enumerate(offsets) if s >= len(context)]
        att = model.last_layer_attention(enc.ids, q_rows).sum(0)  # (T,)
        att[0] = 0.0  # the first token is an attention sink
        line_of = np.array([context.count("\n", 0, s) if s < len(context) else -1 for s in offsets])
        n_lines = context.count("\n")
        scores = np.array([att[line_of == n].sum() for n in range(n_lines)])
        ranks.append(int((scores > scores[needle_line]).sum()) + 1)
    return ranks


def tokenizer_disagreements(a: list[int], b: list[int]) -> int:
    """Number of places where two tokenizations of one text split it differently."""
    import difflib

    return sum(op[0] != "equal" for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes())


def worker(model_name: str, backend: str, out_dir: Path) -> dict:
    """Measure one model on one backend; runs in its own process."""
    import torch

    from lctk.models.loader import load_language_model

    started = time.perf_counter()
    model, _ = load_language_model(model_name, "score", backend)
    load_s = time.perf_counter() - started
    # Both backends score the same ids (the llama.cpp tokenizer's), so positions line up.
    reference_ids = json.loads((out_dir / f"{model_name}-ids.json").read_text())
    ids = reference_ids[:SCORE_TOKENS]
    own_ids = model.tokenize(scoring_text())
    model.token_logprobs(ids[:64])  # warm-up
    started = time.perf_counter()
    logprobs = model.token_logprobs(ids)
    score_s = time.perf_counter() - started
    np.save(out_dir / f"{model_name}-{backend}.npy", logprobs)
    result = {
        "model": model_name, "backend": backend, "tokens": len(ids), "load_s": load_s,
        "score_tok_s": len(ids) / score_s, "ppl": float(np.exp(-np.nanmean(logprobs))),
        "own_tokens": len(own_ids),
        "ids_differing": tokenizer_disagreements(own_ids, reference_ids),
    }
    prompt = [{"role": "user", "content": GEN_PROMPT}] if model.chat_template else "Once upon a time, a robot"
    stream = model.generate(prompt, max_tokens=GEN_TOKENS)
    stream.text()
    stats = stream.stats
    result["gen_tokens"] = stats.completion_tokens
    result["gen_tok_s"] = stats.completion_tokens / max(1e-9, stats.generate_s - stats.prompt_s)
    # Peak RSS of load + scoring + generation, before the baselines below allocate full logits.
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if backend == "torch":
        with torch.inference_mode():
            tensor = torch.tensor([ids])
            started = time.perf_counter()
            model.model(input_ids=tensor)  # bare forward: full (T, V) logits, no log-softmax
            result["bare_forward_tok_s"] = len(ids) / (time.perf_counter() - started)
        result["needle_ranks"] = attention_needle_rank(model)
    return result


def naive_llama_worker(model_name: str, out_dir: Path) -> dict:
    """Baseline: llama-cpp-python with logits_all=True, log-softmax over its (n_ctx, vocab) scores."""
    from llama_cpp import Llama

    from lctk.models.registry import resolve_model

    ids = json.loads((out_dir / f"{model_name}-ids.json").read_text())[:SCORE_TOKENS]
    started = time.perf_counter()
    llm = Llama(str(resolve_model(model_name).path), n_ctx=4096, n_batch=512, logits_all=True, verbose=False)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    llm.eval(ids)
    scores = llm.scores[: len(ids) - 1]  # (T-1, V) float32 kept in Python
    peak = scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scores - peak).sum(axis=1)) + peak[:, 0]
    logprobs = scores[np.arange(len(ids) - 1), ids[1:]] - log_norm
    score_s = time.perf_counter() - started
    return {
        "model": model_name, "backend": "llama naive (logits_all)", "tokens": len(ids), "load_s": load_s,
        "score_tok_s": len(ids) / score_s, "ppl": float(np.exp(-np.mean(logprobs))),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_worker(model_name: str, backend: str, out_dir: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", model_name, backend, str(out_dir)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker {model_name}/{backend} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def conversion_seconds(model_name: str) -> float:
    """Time the one-time GGUF -> transformers conversion into an empty cache dir."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, LCTK_CACHE_DIR=cache)
        code = (
            "import time; from lctk.models.registry import resolve_model; from lctk.models.convert import ensure_converted;"
            f"p = resolve_model('{model_name}').path; t = time.perf_counter(); ensure_converted(p); print(time.perf_counter() - t)"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        return float(proc.stdout.strip().splitlines()[-1])


def cli_startup() -> tuple[float, list[str]]:
    """Median wall time of `lctk --help` over 5 runs, and heavy modules it imported."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lctk", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    code = "import sys, lctk.cli; print(','.join(m for m in ('torch','transformers','llama_cpp') if m in sys.modules))"
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    return statistics.median(times), [m for m in heavy.split(",") if m]


def embedding_throughput() -> dict:
    """Functions/s of lctk's embedder vs plain sentence-transformers on 200 real stdlib functions."""
    import ast

    from sentence_transformers import SentenceTransformer

    from lctk.models.loader import load_embedder
    from lctk.models.registry import resolve_model

    functions = []
    for name in ("argparse", "textwrap", "shlex", "calendar", "ipaddress", "email.utils", "json.decoder", "posixpath"):
        module = __import__(name, fromlist=["_"])
        functions += [ast.unparse(n) for n in ast.walk(ast.parse(inspect.getsource(module))) if isinstance(n, ast.FunctionDef)]
    functions = functions[:200]
    ours = load_embedder("minilm-l6-v2")
    ours.embed(functions[:8])
    started = time.perf_counter()
    a = ours.embed(functions)
    ours_s = time.perf_counter() - started
    reference = SentenceTransformer(str(resolve_model("minilm-l6-v2", "embed").path), device="cpu")
    reference.encode(functions[:8])
    started = time.perf_counter()
    b = reference.encode(functions, batch_size=32, normalize_embeddings=True)
    ref_s = time.perf_counter() - started
    return {"n": len(functions), "ours_fps": len(functions) / ours_s, "st_fps": len(functions) / ref_s,
            "min_cosine": float((a * b).sum(1).min())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-conversion", action="store_true", help="skip timing the one-time GGUF conversion")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, backend, out = args.worker
        run = naive_llama_worker(name, Path(out)) if backend == "naive" else worker(name, backend, Path(out))
        print(json.dumps(run))
        return
    from lctk.models.loader import load_language_model

    for name in MODELS:  # make sure conversions are cached so load times below are steady-state
        load_language_model(name, "score", "torch")
    out_dir = Path(tempfile.mkdtemp(prefix="lctk-bench-"))
    for name in MODELS:
        reference, _ = load_language_model(name, "score", "llama")
        ids = reference.tokenize(scoring_text())
        (out_dir / f"{name}-ids.json").write_text(json.dumps(ids))
        reference.close()
    rows = [run_worker(m, b, out_dir) for m in MODELS for b in BACKENDS]
    naive = [run_worker(m, "naive", out_dir) for m in MODELS]
    conversions = {} if args.no_conversion else {m: conversion_seconds(m) for m in MODELS}
    startup_s, heavy = cli_startup()
    embed = embedding_throughput()

    lines = ["### Log-prob scoring, generation, load and memory (2,000 tokens of argparse.py; 128 generated tokens)", ""]
    lines.append("| model | backend | load s | scoring tok/s | bare `model(ids)` tok/s | load+score s | generation tok/s | peak RSS MB | perplexity |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows + naive:
        bare = f"{r['bare_forward_tok_s']:.0f}" if "bare_forward_tok_s" in r else "-"
        total = r["load_s"] + r["tokens"] / r["score_tok_s"]
        gen = f"{r['gen_tok_s']:.0f} ({r['gen_tokens']} tok)" if "gen_tok_s" in r else "-"
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['load_s']:.2f} | {r['score_tok_s']:.0f} | {bare} | {total:.1f} | "
            f"{gen} | {r['peak_rss_mb']:.0f} | {r['ppl']:.3f} |"
        )
    lines += ["", "### Same numbers on both backends (per-token log-probs, same token ids)", ""]
    lines.append("| model | perplexity torch | perplexity llama.cpp | mean abs diff (nats) | Pearson r | argparse.py tokens: torch / llama.cpp tokenizer (places split differently) |")
    lines.append("|---|---|---|---|---|---|")
    for m in MODELS:
        a, b = (np.load(out_dir / f"{m}-{backend}.npy") for backend in BACKENDS)
        mad = float(np.nanmean(np.abs(a - b)))
        r = float(np.corrcoef(a[1:], b[1:])[0, 1])
        own = {row["backend"]: row["own_tokens"] for row in rows if row["model"] == m}
        diff = {row["backend"]: row["ids_differing"] for row in rows if row["model"] == m}
        lines.append(
            f"| {m} | {np.exp(-np.nanmean(a)):.3f} | {np.exp(-np.nanmean(b)):.3f} | {mad:.4f} | {r:.5f} | "
            f"{own['torch']} / {own['llama']} ({diff['torch']}) |"
        )
    lines += ["", "### Attention retrieval: rank of a needle line among 121 lines (last layer, sink excluded; 5 depths)", ""]
    lines.append("| model | ranks at depths 10/30/50/70/90% | mean rank |")
    lines.append("|---|---|---|")
    for r in rows:
        if "needle_ranks" in r:
            lines.append(f"| {r['model']} | {' / '.join(map(str, r['needle_ranks']))} | {np.mean(r['needle_ranks']):.1f} |")
    if conversions:
        lines += ["", "### One-time GGUF -> transformers conversion (torch backend, then cached)", ""]
        lines += ["| model | seconds |", "|---|---|"] + [f"| {m} | {s:.0f} |" for m, s in conversions.items()]
    lines += ["", "### Embedding (all-MiniLM-L6-v2, 200 real stdlib functions)", ""]
    lines.append("| implementation | functions/s | min cosine to the other |")
    lines.append("|---|---|---|")
    lines.append(f"| lctk TorchEmbedder | {embed['ours_fps']:.1f} | {embed['min_cosine']:.5f} |")
    lines.append(f"| sentence-transformers encode (baseline) | {embed['st_fps']:.1f} | {embed['min_cosine']:.5f} |")
    lines += ["", "### CLI start-up", ""]
    lines.append(f"`lctk --help`: median {startup_s * 1000:.0f} ms over 5 runs; heavy modules imported by `lctk.cli`: {heavy or 'none'}.")
    table = "\n".join(lines)
    print(table)
    write_section(ROOT / "BENCHMARKS.md", "backends", table)


if __name__ == "__main__":
    main()
