"""Questions over long documents: InfiniRetri attention retrieval fused with a sentence prior, then a grounded answer.

`ask(document, question, ...)` returns a frozen `AskResult` (answer + cited evidence);
`ask_many` reads the document once for many questions; `prepare` + `answer` take loaded models.
Submodules: settings (retrieval knobs), infiniretri (attention over windows), prior (sentence
BM25 + embeddings), hybrid (their fusion), grounding (is the answer in the evidence?), qa (the pipeline).
"""

from lctk.exports import lazy_exports

_WHERE = {
    "ask": "qa",
    "ask_many": "qa",
    "answer": "qa",
    "prepare": "qa",
    "AskResult": "qa",
    "Evidence": "qa",
    "RetrievalSettings": "settings",
    "RetrievalMode": "settings",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
