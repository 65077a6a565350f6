"""Load a document as plain text with a map from character offset to page (or section).

PDF (pypdfium2, page by page), plain text (encoding detected), Markdown and HTML (sections from
headings), EPUB (spine order, sections per chapter file) and DOCX (paragraphs; pages from the
page breaks Word recorded). Extracted text is cached by the file's SHA-256, so asking a second
question about the same file skips extraction. Bad input (encrypted, corrupt, empty,
image-only PDFs; archives that would expand beyond sane limits) raises InputError.
"""

from __future__ import annotations

import bisect
import html.parser
import json
import logging
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lctk.errors import InputError
from lctk.score_cache import content_hash
from lctk.sources.encoding import decode_text
from lctk.storage import atomic_write_bytes

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
MAX_DOCUMENT_BYTES = 1 << 30  # read whole into memory: beyond this, a document is almost surely not text
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024  # EPUB/DOCX members, uncompressed, in total
MAX_COMPRESSION_RATIO = 200  # a member that expands more than this is treated as a zip bomb
KINDS = ("pdf", "text", "markdown", "html", "epub", "docx")


@dataclass(frozen=True)
class Document:
    """Extracted text; `marks` are (offset, label) pairs, sorted, the first at offset 0."""
    name: str
    kind: str
    text: str
    marks: tuple[tuple[int, str], ...]  # page numbers ("12") for PDF/DOCX, section titles otherwise

    def label_at(self, offset: int) -> str:
        """The page number or section title holding character `offset`."""
        if not self.marks:
            return ""
        index = bisect.bisect_right([m[0] for m in self.marks], offset) - 1
        return self.marks[max(index, 0)][1]


def detect_kind(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if head.startswith(b"%PDF") or suffix == ".pdf":
        return "pdf"
    if suffix == ".epub":
        return "epub"
    if suffix == ".docx":
        return "docx"
    if suffix in (".html", ".htm", ".xhtml"):
        return "html"
    if suffix in (".md", ".markdown", ".rst"):
        return "markdown"
    return "text"


def load_document(path: str | os.PathLike[str], cache_dir: Path | None = None) -> Document:
    """Load `path` ('-' is not handled here: see `document_from_text`)."""
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block forever, a device never ends
            raise InputError(f"{path} is not a regular file (a pipe, socket or device); save it to a file first")
        if info.st_size > MAX_DOCUMENT_BYTES:
            raise InputError(f"{path} is too large ({info.st_size:,} bytes; lctk reads documents up to {MAX_DOCUMENT_BYTES:,})")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory; ask about one document") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise InputError(f"{path} is empty")
    kind = detect_kind(path, data[:8])
    digest = content_hash(data)
    cached = _read_cache(cache_dir, digest) if cache_dir else None
    if cached is not None:
        return Document(str(path), cached["kind"], cached["text"], tuple((int(offset), str(label)) for offset, label in cached["marks"]))
    extract = {"pdf": _pdf, "epub": _epub, "docx": _docx, "html": _html_document, "markdown": _markdown, "text": _text}[kind]
    text, marks = extract(path, data)
    if not text.strip():
        raise InputError(f"{path}: no text could be extracted")
    document = Document(str(path), kind, text, tuple(marks))
    if cache_dir:
        _write_cache(cache_dir, digest, document)
    return document


def document_from_text(name: str, text: str) -> Document:
    """A document from text already in memory (stdin): sections from Markdown headings, if any."""
    if not text.strip():
        raise InputError(f"{name} is empty")
    return Document(name, "text", text, tuple(_heading_marks(text)))


# ------------------------------------------------------------------ formats


def _pdf(path: Path, data: bytes):
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        message = str(exc).lower()
        if "password" in message:
            raise InputError(f"{path} is an encrypted PDF; decrypt it first (e.g. qpdf --decrypt)") from None
        raise InputError(f"{path} is not a readable PDF ({exc})") from None
    try:
        if len(pdf) == 0:
            raise InputError(f"{path} is a PDF without pages")
        parts, marks, offset = [], [], 0
        for number in range(len(pdf)):
            page = pdf[number]
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
            finally:
                textpage.close()
                page.close()
            marks.append((offset, str(number + 1)))
            text = text.rstrip() + "\n\n"
            parts.append(text)
            offset += len(text)
    finally:
        pdf.close()
    joined = "".join(parts)
    if not joined.strip():
        raise InputError(f"{path}: the PDF has no text layer (scanned images?); run OCR on it first")
    return joined, marks


def _text(path: Path, data: bytes):
    if b"\x00" in data[:65536] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path} looks binary, not a document lctk can read")
    return _normalise(decode_text(data)), [(0, "")]


def _markdown(path: Path, data: bytes):
    text, _ = _text(path, data)
    return text, _heading_marks(text)


def _heading_marks(text: str) -> list[tuple[int, str]]:
    marks = [(0, "")]
    for match in re.finditer(r"(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$", text):
        marks.append((match.start(), match.group(1).strip()))
    return marks


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _HTMLText(html.parser.HTMLParser):
    """Visible text of an HTML page, one line per block element; headings become section marks."""
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "section",
              "article", "header", "footer", "table", "ul", "ol", "dt", "dd", "hr", "title"}
    HIDDEN = {"script", "style", "noscript", "template", "head"}

    def __init__(self, base_offset: int = 0):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = base_offset
        self.marks: list[tuple[int, str]] = []
        self._hidden = 0
        self._heading: list[str] | None = None
        self._heading_at = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BLOCKS:
            self._newline()
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6") and not self._hidden:
            self._heading, self._heading_at = [], self.length

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self._hidden = max(self._hidden - 1, 0)
        elif tag in self.BLOCKS:
            self._newline()
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6") and self._heading is not None:
            title = " ".join("".join(self._heading).split())
            if title:
                self.marks.append((self._heading_at, title))
            self._heading = None

    def handle_data(self, data):
        if self._hidden:
            return
        text = re.sub(r"[ \t\r\n]+", " ", data)
        if not text.strip() and (not self.parts or self.parts[-1].endswith("\n")):
            return
        self._add(text)
        if self._heading is not None:
            self._heading.append(text)

    def _newline(self):
        if self.parts and not self.parts[-1].endswith("\n"):
            self._add("\n")

    def _add(self, text: str):
        self.parts.append(text)
        self.length += len(text)


def _html_to_text(markup: str, base_offset: int = 0) -> tuple[str, list[tuple[int, str]]]:
    parser = _HTMLText(base_offset)
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    return text, parser.marks


def _html_document(path: Path, data: bytes):
    text, marks = _html_to_text(decode_text(data))
    return text, [(0, ""), *marks]


def _open_archive(path: Path, data: bytes) -> zipfile.ZipFile:
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(f"{path} is not a valid {path.suffix.lstrip('.').upper()} file (bad zip archive)") from None
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO and info.file_size > 1 << 20:
            raise InputError(f"{path}: member {info.filename} expands {info.file_size // info.compress_size}x; refusing a likely zip bomb")
    if total > MAX_ARCHIVE_BYTES:
        raise InputError(f"{path} expands to {total:,} bytes (limit {MAX_ARCHIVE_BYTES:,}); refusing a likely zip bomb")
    return archive


def _read_member(path: Path, archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise InputError(f"{path}: missing {name}; the file is damaged") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read {name} ({exc})") from None


def _epub(path: Path, data: bytes):
    import xml.etree.ElementTree as ET

    archive = _open_archive(path, data)
    try:
        container = ET.fromstring(_read_member(path, archive, "META-INF/container.xml"))
        rootfile = next((el.get("full-path") for el in container.iter() if el.tag.endswith("rootfile")), None)
        if not rootfile:
            raise InputError(f"{path}: no package document in META-INF/container.xml")
        package = ET.fromstring(_read_member(path, archive, rootfile))
    except ET.ParseError as exc:
        raise InputError(f"{path}: malformed EPUB metadata ({exc})") from None
    base = PurePosixPath(rootfile).parent
    manifest = {el.get("id"): el.get("href") for el in package.iter() if el.tag.endswith("}item") or el.tag == "item"}
    spine = [el.get("idref") for el in package.iter() if el.tag.endswith("itemref") or el.tag == "itemref"]
    parts, marks, offset = [], [(0, "")], 0
    for idref in spine:
        href = manifest.get(idref)
        if not href:
            continue
        member = str(base / href.split("#")[0]) if str(base) != "." else href.split("#")[0]
        text, chapter_marks = _html_to_text(decode_text(_read_member(path, archive, member)), offset)
        if not text.strip():
            continue
        marks.append((offset, chapter_marks[0][1] if chapter_marks else PurePosixPath(member).stem))
        marks.extend(m for m in chapter_marks[1:])
        text = text.rstrip() + "\n\n"
        parts.append(text)
        offset += len(text)
    return "".join(parts), sorted(set(marks))


def _docx(path: Path, data: bytes):
    import xml.etree.ElementTree as ET

    archive = _open_archive(path, data)
    try:
        root = ET.fromstring(_read_member(path, archive, "word/document.xml"))
    except ET.ParseError as exc:
        raise InputError(f"{path}: malformed word/document.xml ({exc})") from None
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    parts, marks, offset, page = [], [(0, "1")], 0, 1
    for paragraph in root.iter(f"{w}p"):
        pieces = []
        for element in paragraph.iter():
            if element.tag == f"{w}t" and element.text:
                pieces.append(element.text)
            elif element.tag == f"{w}tab":
                pieces.append("\t")
            elif (element.tag == f"{w}br" and element.get(f"{w}type") == "page") or element.tag == f"{w}lastRenderedPageBreak":
                page += 1
                marks.append((offset + len("".join(pieces)), str(page)))
        text = "".join(pieces).strip()
        if text:
            parts.append(text + "\n")
            offset += len(text) + 1
    return "".join(parts), sorted(set(marks), key=lambda m: (m[0], int(m[1])))


# ------------------------------------------------------------------ cache


def _read_cache(directory: Path, digest: str) -> dict | None:
    try:
        data = json.loads((directory / f"{digest}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("format") != CACHE_FORMAT or data.get("kind") not in KINDS:
        return None
    return data


def _write_cache(directory: Path, digest: str, document: Document) -> None:
    payload = {"format": CACHE_FORMAT, "kind": document.kind, "text": document.text, "marks": list(document.marks)}
    try:
        atomic_write_bytes(directory / f"{digest}.json", json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    except OSError as exc:
        log.warning("could not cache extracted text in %s (%s)", directory, exc.strerror or exc)
