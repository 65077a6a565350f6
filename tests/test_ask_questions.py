"""Real-question ask: the questions file, scoring, the prior, hybrid retrieval, refusals and many questions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA, assert_one_line_error, run_lctk
from test_infiniretri import EchoAnswer, WordAttention, _haystack

from lctk.ask.hybrid import candidate_sentences, keep_best
from lctk.ask.prior import ContextReranker, SentencePrior, content_terms, with_neighbours
from lctk.ask.qa import REFUSAL, answer, prepare, read_questions, rerank_embedder
from lctk.ask.settings import RetrievalMode, RetrievalSettings
from lctk.documents.load import document_from_text
from lctk.errors import InputError
from lctk.evaluation.questions import contains, f1, load_questions, normalize, score, summarize
from lctk.models.fake import FakeEmbedder

POLICY = SHARED_DATA / "pdf" / "debian-policy.pdf"


# ---------------------------------------------------------------- the questions file and its scores


def test_questions_file_loads_and_bad_lines_name_file_and_line(tmp_path):
    good = tmp_path / "q.jsonl"
    good.write_text('{"question": "Where?", "answers": ["/usr/share/doc"], "id": "a", "page": 3, "split": "dev"}\n\n'
                    '{"question": "Who?", "answers": []}\n')
    first, second = load_questions(good)
    assert (first.id, first.page, first.answers, first.split) == ("a", 3, ("/usr/share/doc",), "dev")
    assert second.answers == () and second.page is None
    for line, message in [("not json", "not JSON"), ('["a"]', "expected an object"), ('{"question": " ", "answers": []}', "non-empty"),
                          ('{"question": "q", "answers": "x"}', "list of non-empty strings"), ('{"question": "q"}', "answers")]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text(good.read_text().splitlines()[0] + "\n" + line + "\n")
        with pytest.raises(InputError, match=rf"bad.jsonl:2: .*{message}"):
            load_questions(bad)
    with pytest.raises(InputError, match="no such questions file"):
        load_questions(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no questions"):
        load_questions(tmp_path / "empty.jsonl")


def test_answers_are_compared_after_squad_normalisation():
    assert normalize("The  /usr/share/doc  directory!") == "usr share doc directory"
    assert contains("They go in /usr/share/doc/PACKAGE.", ["/usr/share/doc"])
    assert not contains("field 14 days", ["4 days"])  # on word boundaries, not inside a number
    assert f1("within 14 days", ["14 days"]) == pytest.approx(0.8) and f1("nothing", ["14 days"]) == 0.0
    present = score(load_q("x", ["14 days"]), "It takes 14 days.", "... 14 days ...", refused=False)
    assert present == {"absent": False, "refused": False, "correct": True, "f1": pytest.approx(0.6667, abs=1e-3), "evidence": True}
    absent = score(load_q("y", []), REFUSAL, "", refused=True)
    assert absent["correct"] and absent["absent"]
    report = summarize([present, absent, score(load_q("z", ["Quito"]), REFUSAL, "nothing", refused=True)])
    assert report["evidence_recall"] == 0.5 and report["accuracy"] == 0.5 and report["refusal_rate_absent"] == 1.0
    assert report["false_refusals"] == 0.5 and report["accuracy_when_evidence_holds"] == 1.0


def load_q(question: str, answers: list[str]):
    from lctk.evaluation.questions import Question

    return Question(question, tuple(answers))


def test_the_benchmark_questions_are_well_formed():
    """bench/data/ask-questions.jsonl: >= 40 answerable questions over both manuals, some absent, a held-out split."""
    from pathlib import Path

    questions = load_questions(Path(__file__).resolve().parent.parent / "bench" / "data" / "ask-questions.jsonl")
    answerable = [q for q in questions if q.answers]
    assert len(answerable) >= 40 and len([q for q in questions if not q.answers]) >= 8
    assert {q.document for q in questions} == {"debian-policy.pdf", "developers-reference.pdf"}
    assert {q.split for q in questions} == {"dev", "heldout"} and len({q.id for q in questions}) == len(questions)


def test_questions_for_many_mode_come_from_lines_or_json_lines(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("# my questions\nWhat is the vault code?\n\n{\"question\": \"Who wrote it?\", \"answers\": []}\n")
    assert read_questions(path) == ["What is the vault code?", "Who wrote it?"]
    path.write_text('{"answers": []}\n')
    with pytest.raises(InputError, match=r"q.txt:1: .*question"):
        read_questions(path)
    path.write_text("# only a comment\n")
    with pytest.raises(InputError, match="no questions"):
        read_questions(path)


# ---------------------------------------------------------------- the prior and the hybrid selection


def test_prior_ranks_the_sentence_that_shares_the_question_s_rare_words_first():
    texts = ["The grass is green.", "Uploaded packages wait in the queue for fourteen days.", "Policy is long.",
             "This field names the maintainer.", "Packages must list it."]
    prior = SentencePrior(texts)
    scores = prior.scores("How many days does an upload wait in the queue?")
    assert int(np.argmax(scores)) == 1
    assert content_terms("Uploading the files") == ["upload", "file"]
    # a sentence whose neighbour matches is lifted: "This field ..." gets a share of its neighbour's score
    assert with_neighbours(np.array([0.0, 1.0, 0.0]), 0.5).tolist() == [0.5, 1.0, 0.5]


def test_the_full_embedder_re_reads_the_prior_s_best_sentences_with_their_neighbours():
    texts = ["Debian package names are described here.", "They must be at least two characters long.",
             "The grass is green.", "Long names are hard to type.", "Names of files must be short.", "Nothing here."]
    prior = np.array([0.2, 0.1, 0.0, 0.9, 0.5, 0.0])
    embedder = FakeEmbedder()
    reranker = ContextReranker(texts, embedder)
    assert reranker.window(1) == " ".join(texts[:3]) and reranker.window(0) == " ".join(texts[:2])
    question = "How long must Debian package names be?"
    rescored = reranker.rescore(prior, question, top=4, weight=2.0)
    # the answer sentence names its subject only in the sentence before: read in context it rises to the top
    assert int(np.argmax(rescored)) in (0, 1) and rescored[1] > rescored[4]
    assert rescored[2] == rescored[5] == 0.0 and rescored[3] >= prior[3] / prior.max()  # outside the top: prior / best
    assert reranker.rescore(prior, question, top=0, weight=2.0) is prior  # off: the prior as it was
    assert reranker.rescore(np.zeros(6), question, top=4, weight=2.0).tolist() == [0.0] * 6
    embedded = embedder.embedded
    reranker.rescore(prior, "Which colour is the grass?", top=4, weight=2.0)
    assert embedder.embedded == embedded + 1  # window vectors are kept per document: only the question is new
    assert rerank_embedder(embedder) is embedder and rerank_embedder(None) is None  # a full model re-reads itself


def test_a_prepared_document_re_reads_with_the_full_model_only_when_asked():
    document = document_from_text("hay.txt", _haystack("The vault code is 4417.", 0.4, words=600))
    embedder = FakeEmbedder()
    prepared = prepare(document, WordAttention(), RetrievalSettings(), embedder)
    off = prepared.relevance("What is the vault code?", RetrievalSettings(rerank_sentences=0))
    assert prepared.reranker is None and np.array_equal(off, prepared.prior_scores("What is the vault code?"))
    on = prepared.relevance("What is the vault code?", RetrievalSettings(rerank_sentences=5))
    assert prepared.reranker is not None and prepared.rerank_model is embedder
    needle = next(i for i, text in enumerate(prepared.texts()) if "4417" in text)
    assert int(np.argmax(off)) == needle and abs(int(np.argmax(on)) - needle) <= 1  # the best window holds the needle
    assert float(on.max()) > 1.0  # prior / best prior, plus the re-read cosine


def test_candidates_take_neighbours_and_stop_at_the_read_budget():
    prior = np.array([0.0, 0.1, 0.9, 0.0, 0.0, 0.5, 0.0])
    assert candidate_sentences(prior, [10] * 7, 30) == [1, 2, 3]
    assert candidate_sentences(prior, [10] * 7, 60) == [1, 2, 3, 4, 5, 6]
    assert candidate_sentences(np.zeros(3), [10] * 3, 60) == []  # nothing relevant: nothing read
    assert keep_best({0: 0.2, 1: 0.9, 2: 0.5}, [10, 10, 10], 20) == [(1, 0.9), (2, 0.5)]


def test_hybrid_reads_only_the_candidates_whatever_the_document_length():
    needle, question = "The vault code is 4417.", "What is the vault code?"
    settings = RetrievalSettings(mode=RetrievalMode.hybrid, window_tokens=250, read_tokens=200, kept_tokens=120, top_k=20, phrase=4)
    reads = []
    for words in (3000, 12000):
        model = WordAttention()
        result = answer(document_from_text("hay.txt", _haystack(needle, 0.7, words=words)), question, retriever=model,
                        answerer=EchoAnswer(), answer_backend="fake", settings=settings)
        assert "4417" in result.answer and any(needle in e.text for e in result.evidence)
        assert result.mode == "hybrid" and result.document_tokens > words and result.tokens_read < result.document_tokens / 8
        reads.append(max(model.calls))
    assert max(reads) - min(reads) <= 150  # the model's input does not grow with the document


def test_one_prepared_document_answers_many_questions_without_re_reading():
    document = document_from_text("hay.txt", _haystack("The vault code is 4417. The door code is 9981.", 0.4))
    model = WordAttention()
    prepared = prepare(document, model, RetrievalSettings())
    splits = []
    for question, value in (("What is the vault code?", "4417"), ("What is the door code?", "9981")):
        result = answer(prepared, question, retriever=model, answerer=EchoAnswer(), answer_backend="fake", settings=RetrievalSettings(kept_tokens=60))
        assert value in "\n".join(e.text for e in result.evidence)
        splits.append(result.timings["split_s"])
    assert splits[0] == splits[1] == round(prepared.split_s, 3)  # the split and counts were made once
    assert prepared.prior is not None  # and the prior built once, on the first question


def test_no_evidence_means_the_refusal_without_running_the_answer_model():
    class Unused:
        model_id = "unused"

        def generate(self, *args, **kwargs):
            raise AssertionError("the answer model must not run without evidence")

    document = document_from_text("hay.txt", "The grass is green. The sky is blue.")
    result = answer(document, "Quantum chromodynamics?", retriever=WordAttention(), answerer=Unused(), answer_backend="fake",
                    settings=RetrievalSettings(mode=RetrievalMode.prior))
    assert result.answer == REFUSAL and result.evidence == ()


# ---------------------------------------------------------------- real models, end to end


@pytest.mark.slow
def test_many_questions_cli_reads_once_and_writes_one_json_line_per_question(tmp_path):
    doc = tmp_path / "hay.txt"
    doc.write_text(_haystack("The vault code is 4417. The ferry to Lundy leaves at 7:15.", 0.6, words=1500))
    questions = tmp_path / "questions.txt"
    questions.write_text("What is the vault code?\n# skipped\nWhen does the ferry to Lundy leave?\n")
    result = run_lctk("ask", str(doc), "-Q", str(questions), "--format", "jsonl", "-n", "24")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["question"] for line in lines] == ["What is the vault code?", "When does the ferry to Lundy leave?"]
    assert "4417" in json.dumps(lines[0]["evidence"]) and "7:15" in json.dumps(lines[1]["evidence"])
    assert "4417" in lines[0]["answer"] or lines[0]["answer"] == REFUSAL  # Gemma 270M may refuse (BENCHMARKS.md); never invent
    text = run_lctk("ask", str(doc), "-Q", str(questions), "-n", "24")
    assert text.stdout.startswith("Q: What is the vault code?\nA: ") and "\n\nQ: When does the ferry" in text.stdout
    assert_one_line_error(run_lctk("ask", str(doc), "q?", "-Q", str(questions)), 2, "not both")
    assert_one_line_error(run_lctk("ask", str(doc)), 2, "give one question")
    assert_one_line_error(run_lctk("ask", str(doc), "-Q", str(tmp_path / "none.txt")), 1, "no such questions file")


@pytest.mark.slow
def test_a_question_the_manual_does_not_answer_is_refused_and_one_it_answers_is_not():
    result = run_lctk("ask", str(POLICY), "Into which directory must a package install its systemd service unit files?",
                      "-n", "32", "--format", "json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["answer"] == REFUSAL, payload["answer"]
    answered = json.loads(run_lctk("ask", str(POLICY), "What is the name of the field that states the most recent version "
                                   "of the standards a source package complies with?", "-n", "32", "--format", "json").stdout)
    assert answered["answer"] != REFUSAL and "Standards-Version" in json.dumps(answered["evidence"])


@pytest.mark.slow
def test_eval_ask_questions_reports_recall_accuracy_and_refusals(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"question": "Which field holds the most recent version of the standards the package complies with?",
                    "answers": ["Standards-Version"], "document": str(POLICY)}) + "\n"
        + json.dumps({"question": "What is the capital of Mongolia?", "answers": [], "document": str(POLICY)}) + "\n")
    result = run_lctk("eval", "ask", "--questions", str(questions), "--format", "json", "-n", "24")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["answerable"] == 1 and report["absent"] == 1 and report["evidence_recall"] == 1.0
    assert len(report["results"]) == 2 and report["results"][0]["pages"]
    assert_one_line_error(run_lctk("eval", "ask", "--questions", str(questions), "--haystack", str(POLICY)), 2, "not both")


@pytest.mark.slow
def test_answers_with_prompt_lookup_are_the_plain_greedy_answers():
    from lctk.ask.qa import Evidence, respond
    from lctk.models.loader import load_language_model
    from lctk.models.registry import role_model

    # torch: llama.cpp accepts lookup_tokens but never drafts (its batched decode is not exact)
    answerer, _ = load_language_model(role_model("answer").value, "generate", "torch")
    evidence = [Evidence(text, "1", 0, len(text), 1.0) for text in (
        "Uploads to the DELAYED queue wait between one and fifteen days before they are processed.",
        "The Maintainer field of an orphaned package should be set to Debian QA Group <packages@qa.debian.org>.",
        "Every package must be accompanied by a verbatim copy of its copyright information in /usr/share/doc/PACKAGE/copyright.")]
    drafted = 0
    for question in ("What should the Maintainer field of an orphaned package be set to?",
                     "Where is a package's copyright information installed?", "How long can a delayed upload wait?"):
        plain, _ = respond(answerer, evidence, question, 32, check=False, lookup_tokens=0)
        looked, stats = respond(answerer, evidence, question, 32, check=False, lookup_tokens=10)
        assert looked == plain, (question, plain, looked)
        drafted += stats.draft_accepted
    assert drafted > 0  # the drafts were really used
