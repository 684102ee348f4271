"""Names a package exports, loaded when first used (PEP 562): importing
the package costs nothing, and a command loads only the modules it runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def attributes(package: str, where: Mapping[str, Sequence[str]]) -> Callable[[str], Any]:
    """The package's module __getattr__: each name in where[module] is
    looked up in package.module when first asked for."""
    modules = {name: module for module, names in where.items() for name in names}

    def lookup(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{module}", package), name)

    return lookup
