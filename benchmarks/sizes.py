"""Line counts of softreg's source, read with ast (nothing is imported or run).

    python benchmarks/sizes.py                  # this tree: per package, largest modules and functions
    python benchmarks/sizes.py --root OTHER     # another checkout (say, an older commit's worktree)
    python benchmarks/sizes.py --top 15         # more of the largest

Lines are physical lines of a file or of a function's definition (decorators to last line,
docstring included; each function also says how many are left without its docstring). Packages are the directories under cli/, model/ and data/. Why: the
house rule is no module over about 400 lines and no function over about 60 without a reason
in its docstring; the modules and functions over those sizes are marked, so a reviewer can
read their reasons.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

SOURCE_DIRS = ("cli", "model", "data")
MODULE_LINES, FUNCTION_LINES = 400, 60


def python_files(root: Path) -> list[Path]:
    return sorted(path for top in SOURCE_DIRS for path in (root / top).rglob("*.py") if "__pycache__" not in path.parts)


def function_sizes(path: Path, root: Path) -> list[tuple[int, str]]:
    """(lines, module:qualified name) of every function and method in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []

    def visit(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                lines = child.end_lineno - first + 1
                docstring = child.body[0] if ast.get_docstring(child) is not None else None
                code = lines - (docstring.end_lineno - docstring.lineno + 1 if docstring else 0)
                found.append((lines, f"{path.relative_to(root)}:{prefix}{child.name} ({code} without its docstring)"))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return found


def report(root: Path, top: int) -> None:
    files = python_files(root)
    if not files:
        raise SystemExit(f"no Python files under {', '.join(SOURCE_DIRS)} of {root}")
    per_package: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    modules, functions = [], []
    for path in files:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        package = str(path.parent.relative_to(root))
        per_package[package][0] += 1
        per_package[package][1] += lines
        modules.append((lines, str(path.relative_to(root))))
        functions.extend(function_sizes(path, root))
    print(f"{root}: {len(files)} modules, {sum(n for n, _ in modules)} lines")
    print("\nper package (modules, lines):")
    for package, (count, lines) in sorted(per_package.items()):
        print(f"  {package:<24} {count:>3} {lines:>6}")
    for title, rows, limit in (("modules", modules, MODULE_LINES), ("functions", functions, FUNCTION_LINES)):
        rows = sorted(rows, reverse=True)
        over = sum(1 for lines, _ in rows if lines > limit)
        print(f"\nlargest {title} ({over} over {limit} lines, marked *):")
        for lines, name in rows[:top]:
            print(f"  {lines:>5}{'*' if lines > limit else ' '} {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout to count [default: this one]")
    parser.add_argument("--top", type=int, default=10, help="how many of the largest to list [default: 10]")
    args = parser.parse_args()
    report(args.root.resolve(), args.top)


if __name__ == "__main__":
    main()
