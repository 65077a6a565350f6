"""The languages lctk parses with tree-sitter: file extensions, grammar wheels, node roles."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import PurePath


@dataclass(frozen=True)
class LanguageSpec:
    """How to find definitions in one language's syntax tree."""

    name: str
    extensions: tuple[str, ...]
    grammar_module: str  # the per-language wheel, e.g. tree_sitter_python
    grammar_function: str  # the function in it returning the language pointer
    functions: frozenset[str]  # function-like nodes (methods when inside a container)
    containers: frozenset[str]  # class-like nodes whose body holds members
    types: frozenset[str]  # other definitions kept whole (struct, interface, enum, type alias)
    wrappers: frozenset[str] = frozenset()  # decorators/export/template around a definition
    attachments: frozenset[str] = frozenset({"comment"})  # stick to the definition that follows
    variable_functions: bool = False  # `const f = () => …` defines a function
    transparent: frozenset[str] = frozenset()  # looked through, no scope: `#ifdef` blocks, `extern "C" {}`
    line_comment: str = "//"


_C_LIKE_COMMENTS = frozenset({"comment"})
_PREPROCESSOR = frozenset({"preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef"})

def _typescript(name: str, extensions: tuple[str, ...], grammar_function: str) -> LanguageSpec:
    """TypeScript and TSX share one grammar wheel and the same node roles."""
    return LanguageSpec(
        name, extensions, "tree_sitter_typescript", grammar_function,
        functions=frozenset({"function_declaration", "generator_function_declaration", "method_definition", "function_signature"}),
        containers=frozenset({"class_declaration", "abstract_class_declaration", "class"}),
        types=frozenset({"interface_declaration", "type_alias_declaration", "enum_declaration"}),
        wrappers=frozenset({"export_statement"}),
        attachments=_C_LIKE_COMMENTS | {"decorator"},
        variable_functions=True,
    )


LANGUAGES: dict[str, LanguageSpec] = {
    spec.name: spec
    for spec in (
        LanguageSpec(
            "python", (".py", ".pyi"), "tree_sitter_python", "language",
            functions=frozenset({"function_definition"}),
            containers=frozenset({"class_definition"}),
            types=frozenset(),
            wrappers=frozenset({"decorated_definition"}),
            line_comment="#",
        ),
        LanguageSpec(
            "javascript", (".js", ".mjs", ".cjs", ".jsx"), "tree_sitter_javascript", "language",
            functions=frozenset({"function_declaration", "generator_function_declaration", "method_definition"}),
            containers=frozenset({"class_declaration", "class"}),
            types=frozenset(),
            wrappers=frozenset({"export_statement"}),
            attachments=_C_LIKE_COMMENTS | {"decorator"},
            variable_functions=True,
        ),
        _typescript("typescript", (".ts", ".mts", ".cts"), "language_typescript"),
        _typescript("tsx", (".tsx",), "language_tsx"),
        LanguageSpec(
            "go", (".go",), "tree_sitter_go", "language",
            functions=frozenset({"function_declaration", "method_declaration"}),
            containers=frozenset(),
            types=frozenset({"type_declaration"}),
        ),
        LanguageSpec(
            "rust", (".rs",), "tree_sitter_rust", "language",
            functions=frozenset({"function_item", "function_signature_item"}),
            containers=frozenset({"impl_item", "trait_item", "mod_item"}),
            types=frozenset({"struct_item", "enum_item", "union_item", "type_item", "macro_definition"}),
            attachments=frozenset({"line_comment", "block_comment", "attribute_item", "inner_attribute_item"}),
        ),
        LanguageSpec(
            "java", (".java",), "tree_sitter_java", "language",
            functions=frozenset({"method_declaration", "constructor_declaration"}),
            containers=frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}),
            types=frozenset({"annotation_type_declaration"}),
            attachments=frozenset({"line_comment", "block_comment"}),
        ),
        LanguageSpec(
            "c", (".c", ".h"), "tree_sitter_c", "language",
            functions=frozenset({"function_definition"}),
            containers=frozenset(),
            types=frozenset({"struct_specifier", "enum_specifier", "union_specifier", "type_definition"}),
            transparent=_PREPROCESSOR,
        ),
        LanguageSpec(
            "cpp", (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".ipp"), "tree_sitter_cpp", "language",
            functions=frozenset({"function_definition"}),
            containers=frozenset({"class_specifier", "struct_specifier", "namespace_definition"}),
            types=frozenset({"enum_specifier", "union_specifier", "type_definition", "alias_declaration"}),
            wrappers=frozenset({"template_declaration"}),
            transparent=_PREPROCESSOR | {"linkage_specification"},
        ),
        LanguageSpec(
            "ruby", (".rb", ".rake", ".gemspec"), "tree_sitter_ruby", "language",
            functions=frozenset({"method", "singleton_method"}),
            containers=frozenset({"class", "module", "singleton_class"}),
            types=frozenset(),
            line_comment="#",
        ),
    )
}

_BY_EXTENSION = {ext: spec.name for spec in LANGUAGES.values() for ext in spec.extensions}
_SHEBANGS = {"python": "python", "ruby": "ruby", "node": "javascript"}


def language_for_path(path: str | PurePath, first_line: str = "") -> str | None:
    """Return the language of a file from its extension (or shebang line), None when unknown."""
    suffix = PurePath(path).suffix.lower()
    if suffix in _BY_EXTENSION:
        return _BY_EXTENSION[suffix]
    if first_line.startswith("#!"):
        for word, language in _SHEBANGS.items():
            if word in first_line:
                return language
    return None


@functools.cache
def parser_for(language: str):
    """Return a tree-sitter Parser for `language`, or None when its grammar wheel is missing."""
    spec = LANGUAGES[language]
    try:
        import tree_sitter

        grammar = importlib.import_module(spec.grammar_module)
    except ImportError:
        return None
    return tree_sitter.Parser(tree_sitter.Language(getattr(grammar, spec.grammar_function)()))
