"""lctk's package graph: layers import only downward, nothing imports in a loop, and each package's
declared public names exist (ARCHITECTURE.md draws the same layers)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lctk"

# Bottom to top; a module may import its own layer and the ones below, never one above.
LAYERS = [
    ("base", ["lctk", "lctk.errors", "lctk.config", "lctk.storage", "lctk.score_cache", "lctk.vocabulary", "lctk.exports"]),
    ("sources", ["lctk.sources", "lctk.documents"]),
    ("models", ["lctk.models"]),
    ("capabilities", ["lctk.retrieval", "lctk.ask", "lctk.generation", "lctk.diagnostics"]),
    ("compress", ["lctk.compress"]),  # its first stage is search's retriever
    ("evaluation", ["lctk.evaluation"]),
    ("batch", ["lctk.batch"]),  # Ray Data runs of the capabilities; lctk mcp shares its warm models
    ("cli", ["lctk.cli", "lctk.__main__"]),
]
PACKAGES = ["lctk", "lctk.sources", "lctk.documents", "lctk.models", "lctk.retrieval", "lctk.ask", "lctk.compress",
            "lctk.evaluation", "lctk.batch", "lctk.cli", "lctk.cli.commands"]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every lctk module `name` imports, at the top or inside a function (both count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("lctk") and target != name:
                out.add(target)
    return out


def _layer(name: str) -> int:
    best = max(((len(prefix), rank) for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
                if name == prefix or name.startswith(prefix + ".")), default=None)
    assert best is not None, f"{name} is in no layer; add it to LAYERS (and ARCHITECTURE.md)"
    return best[1]


GRAPH = {name: _imports(name, path, _modules()) for name, path in _modules().items()}


def test_every_import_points_down_or_sideways():
    upward = [f"{source} ({LAYERS[_layer(source)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
              for source, targets in GRAPH.items() for target in targets
              if _layer(target) > _layer(source) and not (source == "lctk" or target == "lctk")]
    assert not upward, "\n".join(upward)


def test_no_module_imports_itself_through_a_loop():
    # A package's __init__ re-exports from its submodules lazily; those edges point into the
    # package by design and are left out, every other edge (lazy imports included) counts.
    edges = {s: {t for t in targets if not (t.startswith(s + "."))} for s, targets in GRAPH.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_the_layer_test_sees_an_upward_import(tmp_path):
    # The checker itself must fail on the loop this layering removed (retrieval -> compress).
    source = tmp_path / "bad.py"
    source.write_text("from lctk.compress.api import compress\n")
    imports = _imports("lctk.retrieval.bad", source, {**_modules(), "lctk.retrieval.bad": source})
    assert "lctk.compress.api" in imports and _layer("lctk.compress.api") > _layer("lctk.retrieval.bad")


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_declares_public_names_that_exist(package):
    module = importlib.import_module(package)
    assert isinstance(module.__all__, list), f"{package} has no __all__"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not define: {missing}"
