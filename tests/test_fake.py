"""The fake backend used by algorithm unit tests honours the protocols."""

import numpy as np

from lctk.models.fake import FakeEmbedder, FakeLanguageModel
from lctk.models.protocols import Embedder, LanguageModel


def test_fake_language_model_is_deterministic_and_protocol_complete():
    lm = FakeLanguageModel()
    assert isinstance(lm, LanguageModel)
    text = "def f(x):\n    return x + x"
    tok = lm.tokenize_with_offsets(text)
    assert lm.detokenize(tok.ids) == text and "".join(text[s:e] for s, e in tok.offsets) == text
    scores = lm.token_logprobs(tok.ids)
    assert np.isnan(scores[0]) and np.all(scores[1:] < 0)
    np.testing.assert_array_equal(scores, FakeLanguageModel().token_logprobs(FakeLanguageModel().tokenize(text)))
    assert lm.generate("a b c d", max_tokens=2).text() == " c d"


def test_fake_embedder_is_normalised_and_word_sensitive():
    embedder = FakeEmbedder()
    assert isinstance(embedder, Embedder)
    vectors = embedder.embed(["parse http date", "parse http date", "rotate log files", ""])
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-6)
    assert vectors[0] @ vectors[1] > 0.99 and vectors[0] @ vectors[2] < 0.5 and not vectors[3].any()
