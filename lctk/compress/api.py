"""`compress()`: fit sources into a token budget, keeping what a query needs (LongCodeZip).

1. Chunk every file along its syntax tree.
2. Rank chunks: with a query, the candidate retriever (search's hybrid BM25 + embeddings, or
   BM25 alone) picks the `candidates` best chunks, the language model scores their heads by
   AMI = PPL(q) - PPL(q | chunk), and AMI fused with the retrieval score orders them; the rest
   follow in retrieval order. Without a query, chunks that other chunks reference come first
   (see `references`).
3. Coarse: take whole chunks in rank order while they fit.
4. Fine: when not everything fits, take chunks for budget / R_base and shrink each kept
   LM-scored function to its rate R_i with a 0/1 knapsack over perplexity-spike blocks
   (signature kept); the line losses come from the AMI pass when it read the function whole.
5. Render, count with the tokenizer, and drop the lowest-ranked unit until the output fits.

With a diff (`diff=`), its changed chunks rank first and the chunks that use them next (a tier
ahead of any score, lctk.compress.changes), and the diff itself, like the directory tree
(`tree=True`), is rendered ahead of the code inside the budget (lctk.compress.header).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from lctk.compress import fine as fine_stage
from lctk.compress.changes import CHANGED, USES_CHANGED, change_tiers, lines_using
from lctk.compress.header import TREE_BUDGET_SHARE, directory_tree, fit_diff, fit_tree
from lctk.compress.model import DROPPED, KEPT, PARTIAL, CompressedFile, CompressResult, DiffSection, Segment, UnitDecision
from lctk.compress.render import budgeted_context, elision_marker
from lctk.compress.scoring import ami_scores, line_losses
from lctk.errors import LctkError, UsageError
from lctk.models.hardware import cpu_count
from lctk.models.protocols import LanguageModel, TokenCounter
from lctk.models.tokenizers import as_token_counter
from lctk.retrieval.candidates import CandidateRetriever, CandidateText
from lctk.score_cache import MemoryScoreCache, ScoreCache
from lctk.sources.chunking import FUNCTION, METHOD, Chunk, chunk_text, text_lines
from lctk.sources.gitdiff import GitDiff
from lctk.sources.lexical import identifier_tokens
from lctk.sources.secrets import with_redacted_sources
from lctk.sources.text import SourceText
from lctk.vocabulary import CompressFormat, parse_choice

DEFAULT_CANDIDATES = 32
MIN_CANDIDATES = 16  # the LM scores at least this many (when there are)...
CANDIDATE_FACTOR = 2  # ...and at most this many times the units the budget holds (see _rank)
FINE_BASE_RATE = 0.6  # R_base: a kept function keeps about this share of its tokens
FINE_MIN_TOKENS = 48  # smaller functions are kept whole or dropped, never cut
LOWER_BOUND_MARGIN = 0.97  # _fit: concatenated text can count a little less than the sum of its parts
FILL_ATTEMPTS = 24  # after fitting, try this many more units in rank order
PARALLEL_COUNT_TEXTS = 256  # below this many chunks, counting on one thread is already quick
# A candidate's final score is AMI_WEIGHT x AMI + the rest x its retrieval score (each min-max
# scaled over the candidates): on 9 needle tasks the needle was ranked first 67% of the time
# fused at 0.6, 44% by AMI alone and 44% by retrieval alone (BENCHMARKS.md, compress).
AMI_WEIGHT = 0.6
# AMI reads a candidate's first AMI_WINDOW tokens: fused as above, a 256- or 128-token head ranked
# the needles as well as the whole chunk at 74% / 50% of its LM tokens. 256 keeps most functions
# whole, so their per-line losses come free from the same pass.
AMI_WINDOW = 256


class BudgetError(LctkError):
    """The budget cannot hold even the mandatory part of the output."""


@dataclass
class _Unit:
    file_index: int
    chunk: Chunk
    tokens: int
    score: float | None = None
    scored_by: str = "bm25"
    lexical: float = 0.0
    kept_lines: frozenset[int] | None = None  # 0-based line indexes inside the chunk; None = whole
    order: int = 0  # rank position, 0 = best
    tier: int = 0  # lctk.compress.changes: CHANGED, USES_CHANGED or 0; ranks before any score
    pinned: frozenset[int] = frozenset()  # 0-based lines the fine stage keeps (a caller's call sites)

    @property
    def lines(self) -> int:
        return self.chunk.end_line - self.chunk.start_line + 1


@dataclass
class _Run:
    sources: Sequence[SourceText]
    model: LanguageModel
    counter: TokenCounter
    output_format: str
    cache: object
    retriever: CandidateRetriever
    units: list[_Unit] = field(default_factory=list)
    tree: str | None = None  # the header sections, fitted to the budget before any unit is chosen
    diff: DiffSection | None = None
    _lines: dict[int, list[str]] = field(default_factory=dict)

    def count(self, text: str) -> int:
        return self.counter.count_tokens(text) if text else 0

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """count() of each text; many texts are counted on every core (tokenizers release the GIL)."""
        if len(texts) < PARALLEL_COUNT_TEXTS or cpu_count() < 2:
            return [self.count(t) for t in texts]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(cpu_count()) as pool:
            return list(pool.map(self.count, texts, chunksize=64))

    def render(self, kept: Sequence[_Unit]) -> str:
        return budgeted_context(_build_files(self.sources, kept, self.lines), self.output_format, self.tree, self.diff)

    def lines(self, index: int) -> list[str]:
        """Source `index`'s lines, split once per run."""
        if index not in self._lines:
            self._lines[index] = text_lines(self.sources[index].text)
        return self._lines[index]


def compress(
    sources: Sequence[SourceText],
    model: LanguageModel,
    *,
    query: str | None = None,
    budget_tokens: int | None = None,
    rate: float | None = None,
    output_format: str = "text",
    fine: bool = True,
    candidates: int = DEFAULT_CANDIDATES,
    cache: ScoreCache | MemoryScoreCache | None = None,
    counter: TokenCounter | LanguageModel | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    redact: bool = True,
    retriever: CandidateRetriever | None = None,
    diff: GitDiff | None = None,
    tree: bool = False,
) -> CompressResult:
    """Compress `sources` to `budget_tokens` (or `rate` x their size) for `query`.

    Args:
        sources: files (path, language, text) in the order to render them.
        model: scores chunks (AMI) and lines (fine stage).
        query: the task; None uses the query-free scorer.
        budget_tokens / rate: exactly one; the rendered output never exceeds the budget.
        output_format: text, xml, markdown or json (json's `text` field is what is budgeted).
        fine: shrink kept functions to their rates (False keeps whole functions).
        candidates: at most this many chunks are scored by the language model.
        retriever: picks the candidates (default: BM25 alone; the CLI passes search's hybrid,
            `lctk.retrieval.candidates.default_retriever`).
        cache: a ScoreCache (or MemoryScoreCache); counter: the tokenizer model (default `model`).
        redact: replace likely secrets (keys, tokens, .env values) by markers before anything
            reads the text (scoring, budget, output); the result lists what was replaced.
        diff: changes to show ahead of the code (lctk.sources.gitdiff.load_diff, paths as the
            sources'): changed chunks rank first, then chunks that use what they define (see
            lctk.compress.changes); without `query`, the diff's changed lines are the query.
        tree: show a directory tree of the sources ahead of the code.
        The tree and the diff count against the budget (see lctk.compress.header).
    Returns:
        A frozen CompressResult.
    """
    started = time.perf_counter()
    output_format = parse_choice(CompressFormat, output_format, "format", UsageError).value
    if (budget_tokens is None) == (rate is None):
        raise UsageError("give exactly one of a token budget or a rate")
    sources, redactions = with_redacted_sources(sources, redact)
    if diff is not None and redact:
        diff, diff_redactions = diff.redacted()
        redactions = tuple(dict.fromkeys((*redactions, *diff_redactions)))  # a secret in both the file and its diff: once
    query_from_diff = diff is not None and not (query and query.strip())
    if diff is not None and query_from_diff:
        query = diff.query_text() or None
    run = _Run(sources, model, as_token_counter(counter or model), output_format, cache if cache is not None else MemoryScoreCache(),
               retriever if retriever is not None else CandidateRetriever())
    chunks = [(index, chunk) for index, source in enumerate(sources) for chunk in chunk_text(source.text, source.language)]
    for (index, chunk), tokens in zip(chunks, run.count_many([chunk.text for _, chunk in chunks])):
        run.units.append(_Unit(index, chunk, tokens))
    if diff is not None:
        _mark_changes(run, diff, query_from_diff)
    run.tree = "".join(f"{line}\n" for line in directory_tree([s.path for s in sources])) if tree else None
    input_tokens = run.count(run.render(run.units))
    budget = budget_tokens if budget_tokens is not None else int(math.floor(cast(float, rate) * input_tokens))  # one of the two
    _fit_header(run, budget)
    mandatory = run.count(run.render([]))
    if budget < max(mandatory, 1):
        what = " with its directory tree and diff heading" if run.tree is not None or run.diff is not None else ""
        raise BudgetError(f"a budget of {budget} tokens cannot hold the output's frame{what}: it needs at least {max(mandatory, 1)}")
    stats = _rank(run, query, candidates, on_progress, int(budget / FINE_BASE_RATE) if fine else budget)
    ranked = sorted(run.units, key=lambda u: u.order)
    kept = _coarse(run, ranked, budget, mandatory)
    if fine and len(kept) < len(ranked):
        kept = _coarse(run, ranked, int(budget / FINE_BASE_RATE), mandatory)
        _fine(run, kept, query is not None)
    kept, output_tokens = _fit(run, ranked, kept, budget, mandatory)
    if not kept and run.units and not (run.diff is not None and run.diff.lines_total):  # a diff alone is an answer
        smallest = min(run.count(run.render([u])) for u in sorted(run.units, key=lambda u: u.tokens)[:20])
        raise BudgetError(f"a budget of {budget} tokens keeps nothing: the smallest unit needs {smallest} with its header")
    files = _build_files(sources, kept, run.lines)
    kept_ids = {id(u) for u in kept}
    decisions = tuple(_decision(run, u, id(u) in kept_ids) for u in sorted(run.units, key=lambda u: (u.file_index, u.chunk.start_line)))
    return CompressResult(
        files=files, units=decisions, query=query, model=model.model_id, backend=model.backend, tokenizer=run.counter.name,
        output_format=output_format, budget_tokens=budget, input_tokens=input_tokens, output_tokens=output_tokens,
        lm_sequences_scored=stats[0], lm_cache_hits=stats[1], lm_tokens_scored=stats[2],
        seconds=time.perf_counter() - started, redactions=redactions, tree=run.tree, diff=run.diff,
    )


def _mark_changes(run: _Run, diff: GitDiff, query_from_diff: bool) -> None:
    """Give units their change tiers (and callers their call-site lines) and the run its diff section."""
    tiers, names = change_tiers([(run.sources[u.file_index].path, u.chunk) for u in run.units], diff.files)
    for u, tier in zip(run.units, tiers):
        u.tier = tier
        u.pinned = lines_using(u.chunk.text, names) if tier == USES_CHANGED else frozenset()
    text = diff.text
    lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    run.diff = DiffSection(diff.ref, text, diff.files, lines, lines, query_from_diff)


def _fit_header(run: _Run, budget: int) -> None:
    """Fold the tree into its share of the budget, then cut the diff to what the rest holds."""
    if run.tree is not None:
        run.tree = fit_tree([s.path for s in run.sources], int(TREE_BUDGET_SHARE * budget), run.count)
    if run.diff is not None:
        run.diff = fit_diff(run.diff, lambda d: run.count(budgeted_context((), run.output_format, run.tree, d)) <= budget)


def _rank(run: _Run, query: str | None, candidates: int, on_progress, room: int) -> tuple[int, int, int]:
    """Score units and set their rank order; returns (LM sequences, cache hits, LM tokens).

    The LM scores at most `candidates` units, and no more than CANDIDATE_FACTOR times as many as
    fit `room` tokens in retrieval order (at least MIN_CANDIDATES): AMI re-orders the head of the
    ranking, and scoring a small file's every chunk for a budget that holds a few bought nothing.
    """
    units = run.units
    tie = {id(u): (run.sources[u.file_index].path, u.chunk.start_line) for u in units}
    if not query or not query.strip():
        for u, score in zip(units, references(run)):
            u.score, u.scored_by = float(score), "references"
        for position, u in enumerate(sorted(units, key=lambda u: (-u.tier, -cast(float, u.score), u.tokens, tie[id(u)]))):  # all scored above
            u.order = position
        return 0, 0, 0
    ranking = run.retriever.rank(query, [CandidateText(run.sources[u.file_index].path, u.chunk.name, u.chunk.text) for u in units])
    for u, lexical in zip(units, ranking.lexical):
        u.lexical = float(round(lexical, 6))
    by_retrieval = sorted((units[i] for i in ranking.order), key=lambda u: -u.tier)  # stable: retrieval order within a tier
    retrieval = {id(units[i]): float(ranking.scores[i]) for i in range(len(units))}
    chosen = by_retrieval[: min(max(candidates, 0), max(MIN_CANDIDATES, CANDIDATE_FACTOR * _fitting(by_retrieval, room)))]
    stats = (0, 0, 0)
    if chosen:
        texts = [_scored_text(u.chunk) for u in chosen]
        ami, scoring = ami_scores(run.model, texts, query, run.cache, on_progress, window=AMI_WINDOW)
        fused = AMI_WEIGHT * _minmax(np.asarray(ami)) + (1 - AMI_WEIGHT) * _minmax(np.array([retrieval[id(u)] for u in chosen]))
        for u, score in zip(chosen, fused):
            u.score, u.scored_by = float(round(score + u.tier, 6)), "ami"  # fused is in [0, 1]: a tier outranks any score
        stats = (scoring.sequences_scored, scoring.cache_hits, scoring.tokens_scored)
    for u in by_retrieval[len(chosen) :]:
        u.score, u.scored_by = u.lexical, "retrieval"
    ordered = sorted(chosen, key=lambda u: (-u.score, tie[id(u)])) + by_retrieval[len(chosen) :]
    for position, u in enumerate(ordered):
        u.order = position
    return stats


def _fitting(ranked: Sequence[_Unit], room: int) -> int:
    """How many units, in this order, fit `room` tokens by their own size."""
    used = 0
    for count, u in enumerate(ranked):
        used += u.tokens
        if used > room:
            return count
    return len(ranked)


def _scored_text(chunk: Chunk) -> str:
    """What the LM reads of a chunk: a method with its class line."""
    return f"{chunk.context}\n{chunk.text}" if chunk.context else chunk.text


def _minmax(values: np.ndarray) -> np.ndarray:
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 0.0)
    return (values - low) / (high - low) if high > low else np.zeros_like(values, dtype=np.float64)


def references(run: _Run) -> list[int]:
    """Query-free score: how many other chunks mention this chunk's defined name.

    Definitions other code uses are the repository's working vocabulary; ties go to smaller
    chunks (more of them fit), then to file order.
    """
    bags = [set(identifier_tokens(u.chunk.text)) | set(_words(u.chunk.text)) for u in run.units]
    counts = []
    for index, u in enumerate(run.units):
        name = u.chunk.name.rsplit(".", 1)[-1] if u.chunk.name else ""
        if not name:
            counts.append(0)
            continue
        counts.append(sum(1 for other, bag in enumerate(bags) if other != index and name in bag))
    return counts


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)


def _marker_tokens(run: _Run) -> int:
    return run.count(elision_marker("python", "    ", 1000, 2000))


def _coarse(run: _Run, ranked: Sequence[_Unit], target: int, frame_tokens: int) -> list[_Unit]:
    """Whole units in rank order while an estimate of the rendered size stays within target."""
    headers: dict[int, int] = {}
    marker = _marker_tokens(run)
    used = frame_tokens
    kept = []
    for u in ranked:
        header = 0
        if u.file_index not in headers:
            headers[u.file_index] = run.count(f"==> {run.sources[u.file_index].path} (lines 1-1 of 1) <==\n\n")
            header = headers[u.file_index]
        cost = u.tokens + header + marker
        if used + cost <= target:
            kept.append(u)
            used += cost
        elif header:
            del headers[u.file_index]
    return kept


def _fine(run: _Run, kept: list[_Unit], by_score: bool) -> None:
    """Shrink kept functions to their rates with a knapsack over spike blocks.

    With a query only LM-scored functions are cut: AMI scoring already read them, so their
    per-line losses cost nothing more; the rest stay whole (scoring them would cost more LM
    time than the whole ranking). Without a query every kept function is cut.
    """
    functions = [u for u in kept if u.chunk.kind in (FUNCTION, METHOD) and u.tokens >= FINE_MIN_TOKENS
                 and (not by_score or u.scored_by == "ami") and u.tier < CHANGED]  # changed code is shown whole
    if not functions:
        return
    scores = [u.score if (by_score and u.score is not None) else 0.0 for u in functions]
    rates = fine_stage.function_budget_rates(scores, FINE_BASE_RATE)
    for u, rate in zip(functions, rates):
        lines = text_lines(u.chunk.text)
        signature = min(max(u.chunk.signature_lines, 1), len(lines))
        body = list(range(signature, len(lines)))
        if not body:
            continue
        losses = line_losses(run.model, _scored_text(u.chunk), run.cache)[len(u.chunk.context_lines) :]
        blank = [not lines[i].strip() for i in body]
        blocks = fine_stage.spike_blocks([losses[i] for i in body], blank)
        texts = ["\n".join(lines[body[a] : body[b - 1] + 1]) + "\n" for a, b in blocks]
        weights = [run.count(t) for t in texts]
        values = [float(sum(losses[body[a] : body[b - 1] + 1])) for a, b in blocks]
        signature_tokens = run.count("\n".join(lines[:signature]) + "\n")
        capacity = int(rate * u.tokens) - signature_tokens
        chosen = fine_stage.knapsack(values, weights, max(capacity, 0))
        keep = set(range(signature)) | u.pinned
        for block in chosen:
            a, b = blocks[block]
            keep.update(body[a] + offset for offset in range(b - a))
        if len(keep) < len(lines):
            u.kept_lines = frozenset(keep)


def _fit(run: _Run, ranked: Sequence[_Unit], kept: list[_Unit], budget: int, frame: int) -> tuple[list[_Unit], int]:
    """Drop the lowest-ranked units until the rendered output fits, then try a few more units.

    Sizes are the sum of per-file section counts (a pop or a trial re-counts one file, not the
    whole output, which is what kept a 400-file package from finishing); the one exact count of
    the whole rendered output at the end decides. Returns the kept units and that count.
    """
    kept = sorted(kept, key=lambda u: u.order)
    sizer = _Sizer(run)
    # Units' own tokens are a lower bound on the rendered size (headers and markers only add), so
    # popping while even that is over the budget skips what would be thousands of section counts
    # (the fine stage's larger selection, on a package); the margin covers token merges at joins.
    own = [_kept_tokens(run, u) for u in kept]
    floor = frame + sum(own)
    while kept and floor * LOWER_BOUND_MARGIN > budget:
        kept.pop()
        floor -= own.pop()
    by_file: dict[int, list[_Unit]] = {}
    for u in kept:
        by_file.setdefault(u.file_index, []).append(u)
    sizes = {index: sizer.file_tokens(index, units) for index, units in by_file.items()}
    total = frame + sum(sizes.values())
    while kept and total > budget:
        u = kept.pop()
        by_file[u.file_index].remove(u)
        size = sizer.file_tokens(u.file_index, by_file[u.file_index])
        total += size - sizes[u.file_index]
        sizes[u.file_index] = size
    kept_ids = {id(u) for u in kept}
    attempts = 0
    for u in ranked:
        if attempts >= FILL_ATTEMPTS:
            break
        if id(u) in kept_ids:
            continue
        attempts += 1
        size = sizer.file_tokens(u.file_index, [*by_file.get(u.file_index, []), u])
        if total + size - sizes.get(u.file_index, 0) <= budget:
            kept.append(u)
            kept_ids.add(id(u))
            by_file.setdefault(u.file_index, []).append(u)
            total += size - sizes.get(u.file_index, 0)
            sizes[u.file_index] = size
    kept.sort(key=lambda u: u.order)
    exact = run.count(run.render(kept))
    while kept and exact > budget:  # in case a tokenizer merges across file boundaries otherwise
        kept.pop()
        exact = run.count(run.render(kept))
    return kept, exact


def _kept_tokens(run: _Run, u: _Unit) -> int:
    """Tokens of what the unit keeps (all of it, or its kept lines after the fine stage)."""
    if u.kept_lines is None:
        return u.tokens
    lines = text_lines(u.chunk.text)
    return run.count("\n".join(lines[i] for i in sorted(u.kept_lines)) + "\n")


class _Sizer:
    """Rendered size of one file's section for a set of kept units (counted once per distinct section)."""

    def __init__(self, run: _Run):
        self.run = run
        self.frame = run.count(budgeted_context((), run.output_format))  # the bare frame: no file, no tree, no diff
        self._counts: dict[tuple, int] = {}

    def file_tokens(self, index: int, units: Sequence[_Unit]) -> int:
        if not units:
            return 0
        file = _compressed_file(self.run.sources[index], self.run.lines(index), units)
        key = (index, tuple((s.start_line, s.end_line) for s in file.segments))
        if key not in self._counts:
            # +1: a section's trailing newlines can tokenize one longer where the next section starts
            self._counts[key] = self.run.count(budgeted_context((file,), self.run.output_format)) - self.frame + 1
        return self._counts[key]


def _build_files(sources: Sequence[SourceText], kept: Sequence[_Unit], lines: Callable[[int], list[str]]) -> tuple[CompressedFile, ...]:
    """Kept lines per file, as contiguous segments in original order (`lines(i)`: source i's lines)."""
    by_file: dict[int, list[_Unit]] = {}
    for u in kept:
        by_file.setdefault(u.file_index, []).append(u)
    files = []
    for index, source in enumerate(sources):
        files.append(_compressed_file(source, lines(index), by_file.get(index, ())))
    return tuple(files)


def _compressed_file(source: SourceText, all_lines: Sequence[str], units: Sequence[_Unit]) -> CompressedFile:
    keep_set: set[int] = set()
    for u in units:
        first = u.chunk.start_line
        wanted = range(u.lines) if u.kept_lines is None else sorted(u.kept_lines)
        keep_set.update(first + i for i in wanted)
        keep_set.update(u.chunk.context_lines)  # a kept method shows its class line
    keep = sorted(n for n in keep_set if n <= len(all_lines))
    segments = []
    start = previous = None
    for n in [*keep, None]:
        if n is not None and previous is not None and n == previous + 1:
            previous = n
            continue
        if start is not None:
            segments.append(Segment(start, cast(int, previous), "\n".join(all_lines[start - 1 : previous]) + "\n"))  # set with start
        start = previous = n
    return CompressedFile(source.path, source.language, len(all_lines), tuple(segments))


def _decision(run: _Run, u: _Unit, is_kept: bool) -> UnitDecision:
    if not is_kept:
        decision, kept_tokens = DROPPED, 0
    elif u.kept_lines is None:
        decision, kept_tokens = KEPT, u.tokens
    else:
        lines = text_lines(u.chunk.text)
        decision, kept_tokens = PARTIAL, run.count("\n".join(lines[i] for i in sorted(u.kept_lines)))
    return UnitDecision(
        run.sources[u.file_index].path, u.chunk.start_line, u.chunk.end_line, u.chunk.kind, u.chunk.name,
        u.tokens, u.score, u.scored_by, decision, kept_tokens,
    )
