"""InfiniRetri retrieval: attention picks the kept sentences, the cap holds, resuming is exact."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import SHARED_DATA

from lctk.ask.infiniretri import (
    RetrievalSettings,
    RetrievalState,
    phrase_scores,
    retrieve,
)
from lctk.ask.settings import RetrievalMode
from lctk.documents.sentences import pack_windows, split_sentences
from lctk.errors import InputError

JARGON = SHARED_DATA / "haystack" / "jargon.txt"


class WordAttention:
    """A fake model: one token per word; question tokens attend to equal context words.

    Position 0 is an attention sink soaking up most attention, as in real models; the
    retrieval must not be fooled by it.
    """

    model_id = "word-attention"

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self.calls: list[int] = []

    def count_tokens(self, text):
        return len(self.tokenize(text, False))

    def format_chat(self, messages):
        return "<bos>" + messages[0]["content"] + "\nAnswer:"

    def tokenize(self, text, add_special=True):
        words = re.findall(r"\w+|[^\w\s]", text.lower())
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in words]

    def last_layer_attention(self, ids, rows):
        self.calls.append(len(ids))
        ids = np.asarray(ids)
        out = np.full((len(rows), len(ids)), 1e-4, dtype=np.float32)
        for r, row in enumerate(rows):
            out[r, : row + 1][ids[: row + 1] == ids[row]] += 1.0
            out[r, row] = 1e-4  # not itself
            out[r, 0] = 50.0  # the sink
        return out


def _haystack(needle: str, depth: float, words: int = 3000) -> str:
    text = JARGON.read_text(encoding="utf-8")[300_000:]
    sentences = split_sentences(text)
    picked, total = [], 0
    for s in sentences:
        piece = text[s.start : s.end]
        picked.append(piece)
        total += len(piece.split())
        if total >= words:
            break
    at = int(len(picked) * depth)
    return " ".join(picked[:at]) + "\n\n" + needle + "\n\n" + " ".join(picked[at:])


NEEDLE = "The secret launch code for the zeppelin is mauve-42-kumquat."
QUESTION = "What is the secret launch code for the zeppelin?"


@pytest.mark.parametrize("depth", [0.0, 0.5, 1.0])
def test_attention_keeps_the_needle_sentence_across_windows(depth):
    model = WordAttention()
    text = _haystack(NEEDLE, depth)
    sentences, windows = pack_windows(text, split_sentences(text), 300, lambda ts: [len(model.tokenize(t, False)) for t in ts])
    assert len(windows) > 5
    settings = RetrievalSettings(window_tokens=300, top_k=20, phrase=4, kept_tokens=120)
    state = retrieve(model, text, sentences, windows, QUESTION, settings)
    kept = [text[sentences[i].start : sentences[i].end] for i in state.kept]
    assert NEEDLE in kept
    assert sum(len(model.tokenize(k + " ", False)) for k in kept) <= 120
    assert list(state.kept) == sorted(state.kept)
    assert max(model.calls) <= 300 + 120 + 40  # window + kept cap + prompt: bounded, whatever the length
    assert state.tokens_read == sum(len(model.tokenize(text[s.start : s.end] + " ", False)) for s in sentences)


def test_resuming_from_a_checkpoint_gives_the_same_kept_set():
    model = WordAttention()
    text = _haystack(NEEDLE, 0.3)
    sentences, windows = pack_windows(text, split_sentences(text), 250, lambda ts: [len(model.tokenize(t, False)) for t in ts])
    settings = RetrievalSettings(mode="attention", window_tokens=250, top_k=20, phrase=4, kept_tokens=120)
    checkpoints: list[RetrievalState] = []
    full = retrieve(model, text, sentences, windows, QUESTION, settings, on_window=checkpoints.append)
    assert len(checkpoints) == len(windows)
    resumed = retrieve(WordAttention(), text, sentences, windows, QUESTION, settings, state=checkpoints[3])
    assert resumed == full


class EchoAnswer:
    """A fake answer model: repeats the first sentence of its prompt that holds a four-digit number."""

    model_id = "echo"

    def generate(self, messages, max_tokens=256, temperature=0.0, **kwargs):
        found = re.findall(r"[^.\n:]*\b\d{4}\b[^.\n]*\.", messages[0]["content"])
        return iter([found[0].strip()] if found else ["unknown"])


def test_peak_model_input_stays_flat_when_the_document_doubles():
    settings = RetrievalSettings(window_tokens=300, top_k=20, phrase=4, kept_tokens=120)
    peaks = []
    for words in (3000, 6000, 12000):
        model = WordAttention()
        text = _haystack(NEEDLE, 0.5, words=words)
        sentences, windows = pack_windows(text, split_sentences(text), 300, lambda ts, m=model: [m.count_tokens(t) for t in ts])
        state = retrieve(model, text, sentences, windows, QUESTION, settings)
        assert NEEDLE in [text[sentences[i].start : sentences[i].end] for i in state.kept]
        peaks.append(max(model.calls))
        assert len(model.calls) == len(windows)  # one bounded forward pass per window, nothing re-read
    # the largest input is window + kept cap + prompt, whatever the length
    assert max(peaks) <= 300 + 120 + 40 and max(peaks) - min(peaks) <= 40


def test_ask_interrupted_mid_document_resumes_to_the_same_result(tmp_path):
    from lctk.ask.qa import answer as ask
    from lctk.documents.load import document_from_text

    document = document_from_text("hay.txt", _haystack("The vault code is 4417.", 0.7))
    question = "What is the vault code?"
    settings = RetrievalSettings(mode="attention", window_tokens=250, top_k=20, phrase=4, kept_tokens=120)
    full = ask(document, question, retriever=WordAttention(), answerer=EchoAnswer(), answer_backend="fake", settings=settings)
    assert "4417" in full.answer and full.windows == full.windows_total > 5

    def interrupt_after_four(done, total, tokens):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ask(document, question, retriever=WordAttention(), answerer=EchoAnswer(), answer_backend="fake", settings=settings, checkpoint_dir=tmp_path,
            on_window=interrupt_after_four)
    model = WordAttention()
    resumed = ask(document, question, retriever=model, answerer=EchoAnswer(), answer_backend="fake", settings=settings, checkpoint_dir=tmp_path, resume=True)
    assert resumed.resumed_from_window == 4 and len(model.calls) == full.windows_total - 4
    assert resumed.evidence == full.evidence and resumed.answer == full.answer
    assert resumed.tokens_read == full.tokens_read
    # a different question never picks up this checkpoint
    other = ask(document, "Who wrote it?", retriever=WordAttention(), answerer=EchoAnswer(), answer_backend="fake", settings=settings, checkpoint_dir=tmp_path,
                resume=True)
    assert other.resumed_from_window == 0


def test_phrase_scores_are_a_centred_moving_sum():
    scores = np.array([0, 0, 1, 0, 0, 0, 2], dtype=float)
    assert phrase_scores(scores, 3).tolist() == [0, 1, 1, 1, 0, 2, 2]
    assert phrase_scores(scores, 1).tolist() == scores.tolist()


@pytest.mark.slow
def test_gemma_attention_finds_a_needle_in_real_prose(attention_lm):
    text = _haystack(NEEDLE, 0.6, words=1200)

    def count(texts):
        return [attention_lm.count_tokens(t) for t in texts]

    sentences, windows = pack_windows(text, split_sentences(text), 512, count)
    state = retrieve(attention_lm, text, sentences, windows, QUESTION, RetrievalSettings(window_tokens=512, top_k=60, phrase=8, kept_tokens=300))
    kept = [text[sentences[i].start : sentences[i].end] for i in state.kept]
    assert NEEDLE in kept, kept


@pytest.mark.slow
def test_ask_cli_answers_cites_and_resumes(tmp_path):
    import json

    from conftest import assert_one_line_error, run_lctk

    doc = tmp_path / "hay.txt"
    doc.write_text(_haystack(NEEDLE, 0.5, words=900))
    args = ["ask", str(doc), QUESTION, "--mode", "attention", "--window", "512", "--top-k", "60", "--kept-tokens", "300",
            "--max-tokens", "30"]
    result = run_lctk(*args, "--show-evidence")
    assert result.exit_code == 0, result.stderr
    # the evidence (stderr in text mode) holds the needle; the 135M answer model's wording varies
    assert result.stdout.strip() and "mauve-42-kumquat" in result.stderr
    assert "read " in result.stderr and "windows" in result.stderr
    payload = json.loads(run_lctk(*args, "--format", "json", "--resume").stdout)
    assert payload["resumed_from_window"] == payload["windows_total"] and payload["windows"] == 0
    assert any("mauve-42-kumquat" in e["text"] for e in payload["evidence"])
    assert_one_line_error(run_lctk("ask", str(doc), "   "), 1, "empty question")
    assert_one_line_error(run_lctk("ask", str(tmp_path / "missing.pdf"), "q?"), 1, "no such file")


@pytest.mark.slow
def test_prior_mode_counts_tokens_with_the_gguf_vocabulary_alone(attention_lm):
    from lctk.ask.qa import retrieval_model_for
    from lctk.models.torch_backend import TorchLanguageModel

    counter = retrieval_model_for("gemma3-270m", RetrievalSettings())  # the default mode reads no attention
    assert not isinstance(counter, TorchLanguageModel) and counter.model_id == attention_lm.model_id
    text = JARGON.read_text(encoding="utf-8")[400_000:420_000]
    pieces = [text[s.start : s.end] for s in split_sentences(text)]
    assert [counter.count_tokens(p) for p in pieces] == [attention_lm.count_tokens(p) for p in pieces]
    assert isinstance(retrieval_model_for("gemma3-270m", RetrievalSettings(mode=RetrievalMode.hybrid)), TorchLanguageModel)


@pytest.fixture(scope="module")
def needle_documents(attention_lm):
    """~8k-token Jargon File documents (retrieval-model tokens) with one needle at three depths."""
    text = JARGON.read_text(encoding="utf-8")[400_000:]
    sentences = split_sentences(text)
    counts, end = 0, 0
    while counts < 8000:
        counts += attention_lm.count_tokens(text[sentences[end].start : sentences[end].end] + " ")
        end += 1
    documents = {}
    for depth, (city, value) in zip((0.1, 0.5, 0.9), (("Osaka", "5829163"), ("Quito", "7301946"), ("Riga", "2648571"))):
        cut = sentences[int(end * depth)].start
        needle = f"The special magic number for {city} is {value}."
        documents[depth] = (text[:cut] + needle + " " + text[cut : sentences[end - 1].end], city, value)
    return documents


@pytest.mark.slow
@pytest.mark.parametrize("depth", [0.1, 0.5, 0.9])
def test_default_models_find_and_answer_a_needle_in_8k_tokens(needle_documents, attention_lm, depth):
    from lctk.ask.qa import answer as ask
    from lctk.ask.qa import prior_embedder
    from lctk.documents.load import document_from_text
    from lctk.models.loader import load_language_model
    from lctk.models.registry import role_model

    text, city, value = needle_documents[depth]
    answerer, choice = load_language_model(role_model("answer").value, "generate", "auto")
    result = ask(document_from_text("jargon.txt", text), f"What is the special magic number for {city}?",
                 retriever=attention_lm, answerer=answerer, answer_backend=choice.backend, max_tokens=24, embedder=prior_embedder(RetrievalSettings()))
    assert result.document_tokens >= 7500 and result.mode == "prior"  # the default; sentences counted one by one
    assert any(value in e.text for e in result.evidence), [e.text for e in result.evidence]
    assert value in result.answer, result.answer


def test_python_api_is_lctk_ask_ask():
    import lctk.ask
    from lctk.ask import qa

    assert lctk.ask.ask is qa.ask and lctk.ask.AskResult is qa.AskResult
    with pytest.raises(InputError, match="empty question"):
        lctk.ask.ask("anything.pdf", "  ")


def test_answers_end_where_a_base_model_starts_a_new_question():
    from lctk.ask.qa import until_next_question

    def run(pieces):
        return "".join(until_next_question(iter(pieces)))

    assert run(["The code is 4417.", "\n", "Quest", "ion: What", " else?"]) == "The code is 4417."
    assert run(["A\nQuestions", " remain.", "\nQ"]) == "A\nQuestions remain.\nQ"  # held text comes out at the end
    assert run(["no stop here"]) == "no stop here" and run([]) == ""
