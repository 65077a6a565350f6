"""Real-question evaluation of `ask`: a JSONL file of questions with short known answers.

One JSON object per line: `{"question": str, "answers": [str, ...]}`; optional `id`, `document`
(a file name, resolved by the caller), `page`, `split`. `answers: []` marks a question whose
answer the document does not hold: the right response is a refusal. Answers are compared after
SQuAD-style normalisation (lower case, punctuation and the articles a/an/the dropped, whitespace
collapsed): `contains` (a gold answer is a substring of the response) and token `f1`, as in the
long-context QA literature (SQuAD, LongBench). Evidence recall asks the same `contains` of the
kept sentences: did retrieval hand the answer to the answer model at all?
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lctk.errors import InputError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "‘’“”–—"})


@dataclass(frozen=True)
class Question:
    question: str
    answers: tuple[str, ...]  # empty: the document does not hold the answer
    id: str = ""
    document: str = ""
    page: int | None = None
    split: str = ""


def load_questions(path: str | Path) -> list[Question]:
    """Read and validate a questions file (InputError naming file and line on the first bad line)."""
    from lctk.ask.qa import question_lines

    questions = [_parse(line, f"{path}:{number}") for number, line in question_lines(path)]
    if not questions:
        raise InputError(f"{path}: no questions (one JSON object per line: {{\"question\": ..., \"answers\": [...]}})")
    return questions


def _parse(line: str, where: str) -> Question:
    try:
        item = json.loads(line)
    except ValueError as error:
        raise InputError(f"{where}: not JSON ({error.args[0] if error.args else error})") from None
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected an object with \"question\" and \"answers\"")
    question, answers = item.get("question"), item.get("answers")
    if not isinstance(question, str) or not question.strip():
        raise InputError(f"{where}: \"question\" must be a non-empty string")
    if not isinstance(answers, list) or not all(isinstance(a, str) and normalize(a) for a in answers):
        raise InputError(f"{where}: \"answers\" must be a list of non-empty strings ([] when the document has no answer)")
    page = item.get("page")
    return Question(question.strip(), tuple(answers), str(item.get("id", "")), str(item.get("document", "") or ""),
                    page if isinstance(page, int) else None, str(item.get("split", "") or ""))


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, articles dropped, whitespace collapsed."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def contains(response: str, answers: Sequence[str]) -> bool:
    """True when a normalised gold answer occurs in the normalised response, on word boundaries."""
    padded = f" {normalize(response)} "
    return any(f" {normalize(answer)} " in padded for answer in answers)


def f1(response: str, answers: Sequence[str]) -> float:
    """Best token F1 of the response against the gold answers."""
    got = normalize(response).split()
    best = 0.0
    for answer in answers:
        want = normalize(answer).split()
        common = sum((Counter(got) & Counter(want)).values())
        if common:
            precision, recall = common / len(got), common / len(want)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def score(question: Question, response: str, evidence: str, refused: bool) -> dict:
    """One question's scores: answered right, F1, evidence held the answer, refused (and rightly so)."""
    if not question.answers:
        return {"absent": True, "refused": refused, "correct": refused, "f1": float(refused), "evidence": None}
    return {"absent": False, "refused": refused, "correct": contains(response, question.answers) and not refused,
            "f1": 0.0 if refused else round(f1(response, question.answers), 4),
            "evidence": contains(evidence, question.answers)}


def summarize(rows: Sequence[dict]) -> dict:
    """Evidence recall and accuracy over answerable questions; refusal rate over absent ones."""
    present = [r for r in rows if not r["absent"]]
    absent = [r for r in rows if r["absent"]]
    held = [r for r in present if r["evidence"]]
    share = lambda part, whole: round(len(part) / len(whole), 4) if whole else None  # noqa: E731
    return {
        "questions": len(rows), "answerable": len(present), "absent": len(absent),
        "evidence_recall": share(held, present),
        "accuracy": share([r for r in present if r["correct"]], present),
        "accuracy_when_evidence_holds": share([r for r in held if r["correct"]], held),
        "f1": round(sum(r["f1"] for r in present) / len(present), 4) if present else None,
        "refusal_rate_absent": share([r for r in absent if r["refused"]], absent),
        "false_refusals": share([r for r in present if r["refused"]], present),
    }
