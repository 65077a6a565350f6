"""Lazy package exports: a package names its public API in `__all__` without importing it.

`import lctk.ask` must stay cheap (the CLI imports packages to build `--help`), so a package's
`__getattr__` imports the submodule that defines a name on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose public names live in the submodules `where` maps them to."""

    def getattr_(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def dir_() -> list[str]:
        return sorted(where)

    return getattr_, dir_
