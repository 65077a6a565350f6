"""LongCodeZip compression at repository scale: `compress(sources, model, query=..., budget_tokens=...)`.

Submodules: scoring (AMI, line losses), fine (blocks, knapsack), api (the pipeline), render
(text/xml/markdown/json), model (result objects).
"""

from lctk.exports import lazy_exports

_WHERE = {
    "compress": "api",
    "CompressResult": "model",
    "CompressedFile": "model",
    "UnitDecision": "model",
    "Segment": "model",
    "DiffSection": "model",
    "budgeted_context": "render",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
