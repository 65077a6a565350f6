"""Documents for `ask`: extraction with page/section maps, the cache, sentences and windows."""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from lctk.documents.load import document_from_text, load_document
from lctk.documents.sentences import Sentence, pack_windows, split_sentences
from lctk.errors import InputError

DATA = SHARED_DATA
POLICY_PDF = DATA / "pdf" / "debian-policy.pdf"


def _words(text: str) -> Counter:
    return Counter(w.lower() for w in re.findall(r"[A-Za-z]{3,}", text))


def test_pdf_text_matches_the_shipped_text_version():
    document = load_document(POLICY_PDF)
    reference = (DATA / "pdf" / "debian-policy.txt").read_text(encoding="utf-8")
    pdf_words, txt_words = _words(document.text), _words(reference)
    shared = sum((pdf_words & txt_words).values())
    assert shared / sum(txt_words.values()) > 0.93
    assert document.kind == "pdf" and len(document.marks) == 193


def test_pdf_page_marks_point_at_each_page_text():
    import pypdfium2 as pdfium

    document = load_document(POLICY_PDF)
    pdf = pdfium.PdfDocument(str(POLICY_PDF))
    for number in (0, 1, 57, 120, 192):
        page = pdf[number]
        text = page.get_textpage().get_text_range().replace("\r\n", "\n").strip()
        offset = document.text.index(text[:80], document.marks[number][0])
        assert offset == document.marks[number][0]
        assert document.label_at(offset) == document.label_at(offset + max(len(text) - 1, 0)) == str(number + 1)
    phrase = document.text.index("Priority")
    assert 1 <= int(document.label_at(phrase)) <= 193


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    import lctk.documents.load as load

    first = load_document(POLICY_PDF, cache_dir=tmp_path)
    monkeypatch.setattr(load, "_pdf", lambda *a: (_ for _ in ()).throw(AssertionError("extracted again")))
    second = load_document(POLICY_PDF, cache_dir=tmp_path)
    assert second == first


def _refused(path: Path, data: bytes, match: str) -> None:
    path.write_bytes(data)
    with pytest.raises(InputError, match=match):
        load_document(path)


def test_bad_pdfs_get_clear_errors(tmp_path):
    import pypdfium2 as pdfium

    _refused(tmp_path / "truncated.pdf", POLICY_PDF.read_bytes()[:2000], "not a readable PDF")
    _refused(tmp_path / "empty.pdf", b"", "empty")
    blank = pdfium.PdfDocument.new()
    blank.new_page(595, 842)
    image_only = tmp_path / "scan.pdf"
    with open(image_only, "wb") as handle:
        blank.save(handle)
    with pytest.raises(InputError, match="no text layer"):
        load_document(image_only)
    with pytest.raises(InputError, match="no such file"):
        load_document(tmp_path / "missing.pdf")


def test_encrypted_pdfs(tmp_path):
    """Fixtures made with pikepdf (AES-256 with a user password; RC4/AES-128 with an owner password only)."""
    fixtures = Path(__file__).parent / "data"
    with pytest.raises(InputError, match="encrypted PDF; decrypt it first") as caught:
        load_document(fixtures / "encrypted.pdf")
    assert "\n" not in str(caught.value)
    # an owner password alone restricts editing, not reading: the text comes out
    document = load_document(fixtures / "owner-password-only.pdf")
    assert "The vault code is 4417." in document.text and document.label_at(5) == "1"


def test_epub_in_spine_order_with_sections():
    document = load_document(DATA / "pdf" / "debian-policy.epub")
    assert document.kind == "epub"
    scope = next(offset for offset, label in document.marks if label == "1.1. Scope")
    assert document.text[scope:].startswith("1.1. Scope") and document.label_at(scope + 20) == "1.1. Scope"
    assert document.text.index("About this manual") < document.text.index("The Debian Archive")


def _docx_bytes(paragraphs: list[str], break_after: int) -> bytes:
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    page_break = '<w:r><w:br w:type="page"/></w:r>'
    body = "".join(
        f"<w:p><w:r><w:t>{p}</w:t></w:r>{page_break if i == break_after else ''}</w:p>" for i, p in enumerate(paragraphs)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", f'<?xml version="1.0"?><w:document xmlns:w="{w}"><w:body>{body}</w:body></w:document>')
    return buffer.getvalue()


def test_docx_paragraphs_and_page_breaks(tmp_path):
    path = tmp_path / "memo.docx"
    path.write_bytes(_docx_bytes(["First page text.", "Still first.", "Second page text."], break_after=1))
    document = load_document(path)
    assert document.text == "First page text.\nStill first.\nSecond page text.\n"
    assert document.label_at(document.text.index("Still")) == "1"
    assert document.label_at(document.text.index("Second")) == "2"


def test_zip_bombs_are_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<x>" + "a" * (8 << 20) + "</x>")
    _refused(tmp_path / "bomb.docx", buffer.getvalue(), "zip bomb")
    _refused(tmp_path / "broken.epub", b"PK\x03\x04 not really", "bad zip")


def test_html_markdown_and_encodings(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><head><script>var x = 1;</script></head><body><h1>Intro</h1><p>Hello &amp; welcome.</p>"
                    "<h2>Usage</h2><p>Run it.</p></body></html>")
    document = load_document(page)
    assert "var x" not in document.text and "Hello & welcome." in document.text
    assert document.label_at(document.text.index("Run it")) == "Usage"
    notes = tmp_path / "notes.md"
    notes.write_text("# Setup\n\nInstall it.\n\n## Config\n\nSet the key.\n")
    assert load_document(notes).label_at(load_document(notes).text.index("Set the key")) == "Config"
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Café crème brûlée, déjà vu. Voilà une phrase française très accentuée.".encode("latin-1"))
    assert "Café crème" in load_document(latin).text
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("Timeout at 12:03.".encode("utf-16"))
    assert load_document(utf16).text == "Timeout at 12:03."
    assert document_from_text("<stdin>", "# A\n\ntext").label_at(5) == "A"
    with pytest.raises(InputError, match="empty"):
        document_from_text("<stdin>", "  \n ")


def test_sentences_keep_offsets_and_round_trip():
    text = (DATA / "haystack" / "jargon.txt").read_text(encoding="utf-8")[200_000:260_000]
    sentences = split_sentences(text)
    assert len(sentences) > 200
    previous_end = 0
    for sentence in sentences:
        piece = text[sentence.start : sentence.end]
        assert piece and piece == piece.strip() and sentence.start >= previous_end
        assert not text[previous_end : sentence.start].strip()  # only whitespace between sentences
        previous_end = sentence.end
    assert not text[previous_end:].strip()


def test_sentence_boundaries_respect_abbreviations():
    text = "See e.g. the manual by Dr. Smith and J. R. Hacker. It ended. Then 3 more came!\n\nNew paragraph"
    pieces = [text[s.start : s.end] for s in split_sentences(text)]
    assert pieces == ["See e.g. the manual by Dr. Smith and J. R. Hacker.", "It ended.", "Then 3 more came!", "New paragraph"]


def test_windows_hold_whole_sentences_within_the_budget():
    def count(texts):
        return [len(t.split()) for t in texts]

    text = "Short one. " * 30 + "Long " + "word " * 250 + "end. Tail sentence here."
    fitted, windows = pack_windows(text, split_sentences(text), 64, count)
    assert all(w.tokens <= 64 for w in windows)
    assert windows[0].first == 0 and windows[-1].last == len(fitted)
    assert all(a.last == b.first for a, b in zip(windows, windows[1:]))
    assert max(count([text[s.start : s.end] for s in fitted])) <= 64
    rebuilt = " ".join(text[s.start : s.end] for s in fitted)
    assert rebuilt.split() == text.split()
    with pytest.raises(ValueError):
        pack_windows(text, [Sentence(0, 5)], 0, count)
