"""Split source files into chunks along the syntax tree; the chunks of a file concatenate back to it.

A chunk is a function, a method (with its class header as context), a class header, a type
definition, or the module-level code between them. Comments, decorators and attributes directly
above a definition stay with it. Files in languages without a grammar fall back to blocks
separated by blank lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from lctk.sources.languages import LANGUAGES, LanguageSpec, parser_for

if TYPE_CHECKING:
    from tree_sitter import Tree

FUNCTION, METHOD, CLASS, TYPE, MODULE, BLOCK = "function", "method", "class", "type", "module", "block"
MAX_CONTAINER_DEPTH = 32  # deeper class/namespace nesting is kept whole (tree-sitter trees can be 10k deep)


@dataclass(frozen=True)
class Chunk:
    """One contiguous span of a file."""

    kind: str  # FUNCTION, METHOD, CLASS (header and class-level code), TYPE, MODULE or BLOCK
    name: str  # qualified name ("Client.get"); "" for module code and blocks
    text: str
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    signature_lines: int  # leading lines up to the body (decorators and comments included); 0 if none
    context: str  # first line of each enclosing class, for methods; "" otherwise
    context_lines: tuple[int, ...] = ()  # 1-based line numbers of those class lines


@dataclass(frozen=True)
class _Boundary:
    position: int  # byte offset where a chunk starts (always a line start)
    kind: str
    name: str
    context: str
    context_lines: tuple[int, ...]
    body_position: int  # byte offset where the definition's body starts (== position if none)
    is_definition: bool


def text_lines(text: str) -> list[str]:
    """The lines of a text without their newlines (a final newline adds no empty line)."""
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


@dataclass(frozen=True)
class ParsedText:
    """A text with its syntax tree (None when the language has no grammar here)."""

    text: str
    data: bytes  # the text as UTF-8 (surrogateescape), what the tree's byte offsets refer to
    spec: LanguageSpec | None
    tree: Tree | None


def parse_text(text: str, language: str | None) -> ParsedText:
    """Parse `text` once; chunking and block splitting both read the same tree."""
    spec = LANGUAGES.get(language or "")
    parser = parser_for(spec.name) if spec else None
    data = text.encode("utf-8", "surrogateescape")
    if spec is None or parser is None:
        return ParsedText(text, data, None, None)
    return ParsedText(text, data, spec, parser.parse(data))


def chunk_text(text: str, language: str | None) -> list[Chunk]:
    """Split `text` into chunks; unknown languages (or missing grammars) give blank-line blocks."""
    return chunk_parsed(parse_text(text, language))


def chunk_parsed(parsed: ParsedText) -> list[Chunk]:
    """Chunks of an already parsed text."""
    if parsed.tree is None:
        return blank_line_blocks(parsed.text)
    boundaries: list[_Boundary] = [_Boundary(0, MODULE, "", "", (), 0, False)]
    _collect(parsed.tree.root_node, parsed.data, parsed.spec, boundaries, scope=(), context=("", ()), depth=0)
    return _spans_to_chunks(parsed.data, boundaries)


def blank_line_blocks(text: str) -> list[Chunk]:
    """Split text into blocks that end after a run of blank lines."""
    if not text:
        return []
    pieces = [m.group(0) for m in re.finditer(r"(?:[^\n]*\S[^\n]*(?:\n|$))+(?:[ \t]*\n)*|(?:[ \t]*\n)+|[^\n]+$", text)]
    chunks, line = [], 1
    for piece in pieces:
        lines = piece.count("\n") + (0 if piece.endswith("\n") else 1)
        chunks.append(Chunk(BLOCK, "", piece, line, line + max(lines, 1) - 1, 0, ""))
        line += piece.count("\n")
    return chunks


def _line_start(data: bytes, position: int) -> int:
    return data.rfind(b"\n", 0, position) + 1


def _next_line_start(data: bytes, position: int) -> int:
    newline = data.find(b"\n", max(position - 1, 0) if position and data[position - 1 : position] == b"\n" else position)
    return len(data) if newline < 0 else newline + 1


def _text(data: bytes, node) -> str:
    return data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _definition(node, spec: LanguageSpec):
    """Return (kind, inner definition node) when `node` defines something, else None."""
    if node.type in spec.wrappers:
        for child in node.named_children:
            found = _definition(child, spec)
            if found:
                return found
        return None
    if node.type in spec.functions:
        return FUNCTION, node
    if node.type in spec.containers:
        return CLASS, node
    if node.type in spec.types:
        return TYPE, node
    if spec.variable_functions and node.type in ("lexical_declaration", "variable_declaration"):
        for declarator in node.named_children:
            value = declarator.child_by_field_name("value")
            if value is not None and value.type in ("arrow_function", "function_expression", "function", "generator_function"):
                return FUNCTION, declarator
    return None


def _name(node, data: bytes) -> str:
    """The defined name: the `name` field, a C declarator's identifier, or a Rust impl's type."""
    named = node.child_by_field_name("name")
    if named is not None:
        name = _text(data, named)
        receiver = node.child_by_field_name("receiver")  # Go methods: qualify by receiver type
        if receiver is not None:
            types = [t for t in re.findall(r"[A-Za-z_]\w*", _text(data, receiver))]
            name = f"{types[-1]}.{name}" if types else name
        return name
    declarator = node.child_by_field_name("declarator")
    while declarator is not None:
        if declarator.type in ("identifier", "field_identifier", "qualified_identifier", "destructor_name", "operator_name", "type_identifier"):
            return _text(data, declarator)
        declarator = declarator.child_by_field_name("declarator")
    for field in ("type", "trait"):  # Rust impl blocks
        typed = node.child_by_field_name(field)
        if typed is not None:
            return _text(data, typed)
    for child in node.named_children:  # e.g. Go type_declaration -> type_spec -> name
        inner = child.child_by_field_name("name")
        if inner is not None:
            return _text(data, inner)
    return ""


def _signature_end(data: bytes, body) -> int:
    """Where the signature ends: the line after the token just before the body (`:`, `)`, `{`)."""
    before = body.prev_sibling
    while before is not None and "comment" in before.type:  # a comment between `:` and the block
        before = before.prev_sibling
    if before is None:
        return _line_start(data, body.start_byte)
    return _next_line_start(data, before.end_byte)


def _body(node):
    body = node.child_by_field_name("body")
    if body is None:
        for child in node.named_children:
            if child.type in ("class_body", "declaration_list", "field_declaration_list", "body_statement", "block"):
                return child
    return body


def _collect(parent, data, spec, boundaries, scope, context: tuple[str, tuple[int, ...]], depth) -> None:
    """Add a boundary at each definition among `parent`'s children (recursing into containers).

    `context` is (enclosing class lines as text, their 1-based line numbers).
    """
    attached_from: int | None = None  # start of a run of comments/decorators directly above what follows
    previous_end_row = -2
    for child in parent.children:
        if child.type in spec.attachments:
            if attached_from is None or child.start_point.row > previous_end_row + 1:
                attached_from = child.start_byte
            previous_end_row = child.end_point.row
            continue
        if child.type in spec.transparent and depth < MAX_CONTAINER_DEPTH:
            inner = child.child_by_field_name("body") or child
            _collect(inner, data, spec, boundaries, scope, context, depth + 1)
            attached_from = None
            previous_end_row = child.end_point.row
            continue
        found = _definition(child, spec)
        if found is None:
            attached_from = None
            previous_end_row = child.end_point.row
            continue
        kind, inner = found
        adjacent = attached_from is not None and child.start_point.row <= previous_end_row + 1
        start = _line_start(data, cast(int, attached_from) if adjacent else child.start_byte)
        name = _name(inner, data)
        qualified = ".".join((*scope, name)) if name else ".".join(scope)
        if kind == FUNCTION and scope:
            kind = METHOD
        body = _body(inner)
        body_position = _signature_end(data, body) if body is not None else start
        method_context = context if kind == METHOD else ("", ())
        boundaries.append(_Boundary(start, kind, qualified, *method_context, max(body_position, start), True))
        if kind == CLASS and body is not None and depth < MAX_CONTAINER_DEPTH:
            header = _text(data, inner).split("\n", 1)[0].strip()
            inner_context = (f"{context[0]}\n{header}".strip("\n"), (*context[1], inner.start_point.row + 1))
            _collect(body, data, spec, boundaries, (*scope, name) if name else scope, inner_context, depth + 1)
            # Code after the last member (closing brace, class-level statements) stays in the class.
        after = _next_line_start(data, child.end_byte)
        filler_kind = CLASS if scope else MODULE
        boundaries.append(_Boundary(after, filler_kind, ".".join(scope), *(context if scope else ("", ())), after, False))
        attached_from = None
        previous_end_row = child.end_point.row


def _spans_to_chunks(data: bytes, boundaries: list[_Boundary]) -> list[Chunk]:
    """Turn boundaries into contiguous chunks; whitespace-only spans join the chunk before them."""
    by_position: dict[int, _Boundary] = {}
    for boundary in boundaries:
        if boundary.position > len(data):
            continue
        current = by_position.get(boundary.position)
        # A definition wins its position; among fillers the outer scope (added last) wins.
        if current is None or boundary.is_definition or not current.is_definition:
            by_position[boundary.position] = boundary
    ordered = [by_position[p] for p in sorted(by_position)]
    spans: list[list] = []
    for index, boundary in enumerate(ordered):
        end = ordered[index + 1].position if index + 1 < len(ordered) else len(data)
        if end <= boundary.position:
            continue
        start = boundary.position
        if spans and not boundary.is_definition:
            blank = cast("re.Match[bytes]", re.match(rb"(?:[ \t]*\n)*", data[start:end])).end()  # matches "" at worst
            spans[-1][1] = start = start + blank  # blank lines after a definition belong to it
        if start >= end:
            continue
        spans.append([start, end, boundary])
    if len(spans) > 1 and not data[spans[0][0] : spans[0][1]].strip():
        spans[1][0] = spans[0][0]  # leading blank lines join the first real chunk
        spans.pop(0)
    chunks = []
    for start, end, boundary in spans:
        text = data[start:end].decode("utf-8", "surrogateescape")
        start_line = data.count(b"\n", 0, start) + 1
        end_line = start_line + max(text.count("\n") - (1 if text.endswith("\n") else 0), 0)
        signature = data.count(b"\n", start, boundary.body_position) if boundary.is_definition else 0
        chunks.append(Chunk(boundary.kind, boundary.name, text, start_line, end_line, signature, boundary.context, boundary.context_lines))
    return chunks
