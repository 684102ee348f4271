"""make lint: no module imports another package's private modules.

A module whose name starts with "_" (pouch.age._stream, pouch.letter._format)
is private to the package that holds it: only that package's own modules
may import it. What another package needs is public API of its package.

- Within src/pouch, the rule holds for every package.
- Outside (tests, bench, fuzz, demo), it holds for pouch.age, whose engine
  is closed (SPEC.md 1): tests of the other layers may look inside them,
  to build the hostile inputs they are tested with.

Usage: python tools/private_imports.py DIR...; exits 1 and lists every
violation as file:line: module.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

CLOSED_OUTSIDE_SRC = ("pouch", "age")


def _module_of(path: Path) -> tuple[str, ...] | None:
    """The dotted name of a module under src/ (None for any other file)."""
    parts = path.with_suffix("").parts
    if "src" not in parts:
        return None
    name = parts[parts.index("src") + 1 :]
    return name[:-1] if name[-1] == "__init__" else name


def _imports(path: Path, module: tuple[str, ...] | None) -> Iterator[tuple[int, tuple[str, ...]]]:
    """Every module path an import in path names, made absolute; for
    `from a import b`, a.b too (b may be a module)."""
    package = (module or ())[:-1] if path.name != "__init__.py" else (module or ())
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, tuple(alias.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                base += tuple(node.module.split(".")) if node.module else ()
            else:
                base = tuple((node.module or "").split("."))
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, (*base, alias.name)


def violations(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, module, its owner) for each import of a private module that
    path may not import."""
    module = _module_of(path)
    for line, name in _imports(path, module):
        if name[:1] != ("pouch",):
            continue
        private = next((i for i, part in enumerate(name) if part.startswith("_")), None)
        if private is None:
            continue
        owner = name[:private]  # the package the private module belongs to
        if module is None:
            forbidden = owner[: len(CLOSED_OUTSIDE_SRC)] == CLOSED_OUTSIDE_SRC
        else:
            forbidden = module[: len(owner)] != owner
        if forbidden:
            yield line, ".".join(name[: private + 1]), ".".join(owner)


def main(dirs: list[str]) -> int:
    """Print every violation once, as path:line: module is private to package."""
    found = {
        f"{path}:{line}: {name} is private to {owner}": None
        for d in dirs
        for path in sorted(Path(d).rglob("*.py"))
        for line, name, owner in violations(path)
    }
    for v in found:
        print(v)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
