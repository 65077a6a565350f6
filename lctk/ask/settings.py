"""How `ask` picks its evidence: the retrieval modes and their settings (no heavy imports: the CLI reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class RetrievalMode(str, Enum):
    """How evidence is found.

    hybrid: a lexical + dense prior scores every sentence, the full embedder re-reads its best
        (`rerank_sentences`, each with its neighbours); the attention model reads the best candidates
        (`read_tokens` of them, in windows) and its attention is fused with that score.
    attention: InfiniRetri as published: the attention model reads every window of the document,
        carrying the kept sentences forward (checkpointed per window; slow on a CPU).
    prior: the lexical + dense prior and the full embedder's re-read; no language model reads the document.
    """

    hybrid = "hybrid"
    attention = "attention"
    prior = "prior"


@dataclass(frozen=True)
class RetrievalSettings:
    mode: RetrievalMode = RetrievalMode.prior  # the best evidence recall and answers on real questions, 4x faster (bench/ask_questions.py)
    window_tokens: int = 1024
    top_k: int = 300
    phrase: int = 8
    kept_tokens: int = 768  # cap on the kept sentences, in model tokens (bench/ask.py --tune)
    weight_rows: bool = False  # weight question rows by their attention to the question (measured worse)
    read_tokens: int = 2048  # hybrid: candidate tokens (best prior sentences + neighbours) the model reads
    attention_weight: float = 0.25  # hybrid: weight of the attention score beside the prior's (0..1) and the re-read (bench/ask_questions.py --ablation)
    context: tuple[int, ...] = ()  # hybrid/prior: offsets of sentences each kept sentence brings along
    rerank_sentences: int = 100  # hybrid/prior: the prior's best sentences re-read by the full embedder in context (0: off)
    rerank_weight: float = 2.0  # hybrid/prior: weight of that re-read cosine (0..1) beside prior / best prior
    answer_sentences: int = 3  # the best kept sentences the answer model reads (document order; bench/ask_questions.py)
