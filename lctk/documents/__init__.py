"""Documents for `lctk ask`: text extraction with page/section maps (load), sentences and windows.
"""

from lctk.exports import lazy_exports

_WHERE = {
    "Document": "load",
    "load_document": "load",
    "document_from_text": "load",
    "split_sentences": "sentences",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
