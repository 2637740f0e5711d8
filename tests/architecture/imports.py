"""The import graph of the installed ``twinhub`` package, read from its source with ``ast``.

Every import counts, wherever it is written: at module level, inside a function (a "lazy" import),
or named in a string (``importlib.import_module("twinhub.x")``, a registry entry
``"twinhub.x.y:Name"``). import-linter sees the first two; the string form is this module's addition.
"""

from __future__ import annotations

import ast
import pathlib
import re
from collections.abc import Iterator

STRING_MODULE = re.compile(r"^(twinhub(?:\.[A-Za-z_]\w*)+)(?::\w+)?$")


def modules() -> dict[str, pathlib.Path]:
    """Every module of the package: dotted name -> file, found through the packages' own __path__."""
    found: dict[str, pathlib.Path] = {}

    def walk(package: str, directory: pathlib.Path) -> None:
        for path in sorted(directory.iterdir()):
            if path.suffix == ".py":
                name = package if path.stem == "__init__" else f"{package}.{path.stem}"
                found[name] = path
            elif (path / "__init__.py").exists():
                walk(f"{package}.{path.name}", path)

    import importlib

    for top in ("twinhub", "twinhub.catalog", "twinhub.connectors", "twinhub.standards", "twinhub.pipelines"):
        walk(top, pathlib.Path(importlib.import_module(top).__path__[0]))
    return found


def _resolve(name: str, known: dict[str, pathlib.Path]) -> str | None:
    """The module an imported name lives in (``twinhub.catalog.lake.Lake`` -> ``twinhub.catalog.lake``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: pathlib.Path, known: dict[str, pathlib.Path]) -> Iterator[tuple[str, int, str]]:
    """(imported module, line, how) for each import of module ``name``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if target := _resolve(alias.name, known):
                    yield target, node.lineno, "import"
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}", known) if base else None
                if target and target != name:
                    yield target, node.lineno, "import"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = STRING_MODULE.match(node.value)
            if match and (target := _resolve(match.group(1), known)):
                yield target, node.lineno, "string"


def graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (itself and its own package __init__ left out)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        edges[name] = {t for t, _, _ in imports_of(name, path, known) if t != name}
    # Importing a.b.c runs a/__init__ and a/b/__init__ first: that is Python's doing, not a choice
    # of the importer, so parent packages are not counted as imported by their own children.
    for name, targets in edges.items():
        targets -= {p for p in targets if name.startswith(p + ".")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found
