"""The import graph of softreg, read from the source with ast (nothing is imported or run).

    python benchmarks/imports.py             # room -> room, with how many module edges
    python benchmarks/imports.py --modules   # also every module -> module edge, file:line

Why: the package is layered in "rooms" (data, model.math, model.engines, ...), and an arrow
in the wrong direction is easy to add by a lazy import inside a function. Every import
statement counts, wherever it sits. tests/test_layering.py imports `import_edges` and
`room_of` from here to enforce the directions.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = {"cli": "softreg.cli", "model": "softreg.model", "data": "softreg.data"}

# Package rooms hold every module below them; module rooms are one module each
# ("softreg.model" is only the package __init__, not everything under model/).
PACKAGE_ROOMS = ("softreg.cli", "softreg.cli.commands", "softreg.data", "softreg.model.math",
                 "softreg.model.engines", "softreg.model.solve", "softreg.model.assess", "softreg.model.run")
MODULE_ROOMS = ("softreg.model", "softreg.model.estimator", "softreg.model.gradcheck")


@dataclass(frozen=True)
class Import:
    """One imported module, as one import statement names it."""

    importer: str  # e.g. softreg.model.engines.memory
    imported: str  # e.g. softreg.model.math.linear, or numpy / os.path for third-party and stdlib
    path: str  # file of the importer, relative to the repo root
    line: int
    lazy: bool  # inside a function body, so it runs on call, not on import


def module_name(path: Path, root: Path = ROOT) -> str:
    """model/engines/memory.py -> softreg.model.engines.memory; model/__init__.py -> softreg.model."""
    top, *rest = path.relative_to(root).with_suffix("").parts
    if rest and rest[-1] == "__init__":
        rest.pop()
    return ".".join([SOURCE_DIRS[top], *rest])


def source_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for top in SOURCE_DIRS for p in (root / top).rglob("*.py"))


def room_of(module: str) -> str | None:
    """The room a softreg module belongs to, or None (not softreg, or in no room)."""
    if module in MODULE_ROOMS:
        return module
    rooms = [r for r in PACKAGE_ROOMS if module == r or module.startswith(r + ".")]
    return max(rooms, key=len, default=None)


def _imports_in(path: Path, module: str, known: set[str], root: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    rel = path.relative_to(root).as_posix()
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, alias.name, rel, node.lineno, lazy))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from ..x import y` inside package a.b.c -> a.b.x
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # `from pkg import sub` imports the submodule pkg.sub when there is one.
            targets = {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
            found.extend(Import(module, t, rel, node.lineno, lazy) for t in sorted(targets))
        lazy = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, lazy)

    visit(tree, False)
    return found


def import_edges(root: Path = ROOT) -> list[Import]:
    """Every import statement under cli/, model/, data/ (softreg, third-party and stdlib alike)."""
    files = {path: module_name(path, root) for path in source_files(root)}
    known = set(files.values())
    return [imp for path, module in files.items() for imp in _imports_in(path, module, known, root)]


def softreg_edges(edges: list[Import]) -> list[Import]:
    return [e for e in edges if e.imported == "softreg" or e.imported.startswith("softreg.")]


def room_graph(edges: list[Import]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(room, room) -> the distinct (importer, imported) module pairs behind that arrow."""
    graph: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for e in softreg_edges(edges):
        graph[(room_of(e.importer) or "?", room_of(e.imported) or "?")].add((e.importer, e.imported))
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="also print every module -> module edge")
    args = parser.parse_args()
    edges = import_edges()
    for (source, target), pairs in sorted(room_graph(edges).items()):
        importers = sorted({importer for importer, _ in pairs})
        print(f"{source} -> {target} ({len(pairs)} imports: {', '.join(importers)})")
    if args.modules:
        print()
        for e in sorted(softreg_edges(edges), key=lambda e: (e.importer, e.imported, e.line)):
            print(f"{e.importer} -> {e.imported}  {e.path}:{e.line}{'  (lazy)' if e.lazy else ''}")


if __name__ == "__main__":
    main()
