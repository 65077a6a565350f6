"""`CodeIndex.related(file, line)`: the code most like a unit, by its vector, never the unit or what overlaps it."""

from __future__ import annotations

import shutil
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from lctk.errors import InputError
from lctk.retrieval.api import CodeIndex

STDLIB = Path(sysconfig.get_paths()["stdlib"])
CONVERSIONS = {"rgb_to_yiq", "yiq_to_rgb", "rgb_to_hls", "hls_to_rgb", "rgb_to_hsv", "hsv_to_rgb"}

SHAPES = '''"""Shapes."""


class Circle:
    """A circle."""

    def __init__(self, radius):
        self.radius = radius

    def area(self):
        return 3.14159 * self.radius ** 2

    def perimeter(self):
        return 2 * 3.14159 * self.radius
'''


@pytest.fixture(scope="module")
def opened(tmp_path_factory) -> Iterator[CodeIndex]:
    """The real default (static) index over four stdlib modules and a small class, without the reranker."""
    work = tmp_path_factory.mktemp("related")
    root = work / "repo"
    root.mkdir()
    for name in ("bisect.py", "colorsys.py", "fnmatch.py", "keyword.py"):
        shutil.copy(STDLIB / name, root / name)
    (root / "shapes.py").write_text(SHAPES)
    (root / "notes.bin").write_bytes(b"\x00\x01\x02binary")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LCTK_INDEX_DIR", str(work / "indexes"))
        yield CodeIndex.open(root, rerank=False)


def _line_of(path: Path, prefix: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(prefix))


def _overlaps(hit, path: Path, first: int, last: int) -> bool:
    return Path(hit.path).resolve() == path.resolve() and hit.start_line <= last and first <= hit.end_line


def test_a_function_finds_its_siblings_and_never_itself(opened):
    colorsys = opened.target.root / "colorsys.py"
    start = _line_of(colorsys, "def rgb_to_hsv")
    hits = opened.related(colorsys, start + 2, k=5)
    assert len(hits) == 5 and [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(not (h.symbol == "rgb_to_hsv" and h.path.endswith("colorsys.py")) for h in hits)
    assert {h.symbol for h in hits[:3]} <= CONVERSIONS, hits  # the other colour conversions come first
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.lexical is None and h.dense == h.score for h in hits)
    assert opened.related(colorsys, start + 2, k=5) == hits  # deterministic


def test_units_around_and_inside_the_unit_are_left_out(opened):
    shapes = opened.target.root / "shapes.py"
    method = _line_of(shapes, "    def area")
    hits = opened.related(shapes, method + 1, k=50)
    assert hits and not any(_overlaps(h, shapes, method, method + 1) for h in hits)  # not the method, its class or its file
    assert {"Circle.__init__", "Circle.perimeter"} & {h.symbol for h in hits}  # other methods of the class are elsewhere
    whole_class = opened.related(shapes, _line_of(shapes, "class Circle"), k=50)
    assert not any(h.path.endswith("shapes.py") for h in whole_class)  # the class holds every unit of this file
    module_level = opened.related(shapes, 1, k=50)  # between definitions: the file is the unit
    assert module_level and not any(h.path.endswith("shapes.py") for h in module_level)


def test_filters_apply_before_the_top_k(opened):
    colorsys = opened.target.root / "colorsys.py"
    line = _line_of(colorsys, "def rgb_to_hls") + 1
    elsewhere = opened.related(colorsys, line, k=3, filters=opened.filters(globs=["fnmatch.py"]))
    assert len(elsewhere) == 3 and all(h.path.endswith("fnmatch.py") for h in elsewhere)
    functions = opened.related(colorsys, line, k=20, filters=opened.filters(kinds=["function"]))
    assert functions and all(h.kind == "function" for h in functions)
    assert opened.related(colorsys, line, filters=opened.filters(paths=["nowhere"])) == ()


@pytest.mark.parametrize(("name", "line", "message"), [
    ("colorsys.py", 0, "line must be at least 1"),
    ("colorsys.py", 10_000, "past the end of"),
    ("missing.py", 3, "no such file"),
    ("notes.bin", 1, "is not in the index"),
])
def test_bad_file_or_line_is_one_input_error(opened, name, line, message):
    with pytest.raises(InputError, match=message):
        opened.related(opened.target.root / name, line)


def test_a_file_outside_the_index_or_a_bad_k_is_refused(opened, tmp_path):
    outside = tmp_path / "other.py"
    outside.write_text("def f():\n    return 1\n")
    with pytest.raises(InputError, match="outside the index"):
        opened.related(outside, 1)
    with pytest.raises(InputError, match="k must be at least 1"):
        opened.related(opened.target.root / "bisect.py", 5, k=0)
