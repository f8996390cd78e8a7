"""Line counts of softreg's source, read with ast (nothing is imported or run).

    python benchmarks/sizes.py                  # this tree: per package, largest modules and functions
    python benchmarks/sizes.py --root OTHER     # another checkout (say, an older commit's worktree)
    python benchmarks/sizes.py --top 15         # more of the largest

A module's size is its physical lines; a function's is its lines of code: from its first
decorator to its last line, without its docstring (the total with the docstring is shown
beside it). Packages are the directories under cli/, model/ and data/. Why: the house rule is
no module over about 400 lines and no function over about 60 without a reason in its
docstring (for a command, whose docstring is its help text, in a comment just above it).
Everything over those sizes is listed, marked *, however short --top is, so a reviewer can
read the reasons; tests/test_layering.py checks that each one gives one.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imports import SOURCE_DIRS, source_files  # noqa: E402  (the same files the import graph reads)

MODULE_LINES, FUNCTION_LINES = 400, 60


@dataclass(frozen=True)
class Function:
    name: str  # path:qualified name
    code_lines: int  # without the docstring
    total_lines: int
    reason_text: str  # its docstring and the comment lines just above it: where a reason for its size goes


def functions_of(path: Path, root: Path) -> list[Function]:
    """Every function and method in a file, with its sizes."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []

    def visit(node, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                total = child.end_lineno - first + 1
                docstring = ast.get_docstring(child)
                doc_lines = child.body[0].end_lineno - child.body[0].lineno + 1 if docstring is not None else 0
                above = first - 1
                while above > 0 and lines[above - 1].lstrip().startswith("#"):
                    above -= 1
                comments = "\n".join(lines[above:first - 1])
                found.append(Function(f"{path.relative_to(root)}:{prefix}{child.name}", total - doc_lines, total,
                                      f"{docstring or ''}\n{comments}"))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(text, filename=str(path)), "")
    return found


def module_sizes(root: Path) -> list[tuple[int, Path]]:
    return [(len(path.read_text(encoding="utf-8").splitlines()), path) for path in source_files(root)]


def report(root: Path, top: int) -> None:
    modules = module_sizes(root)
    if not modules:
        raise SystemExit(f"no Python files under {', '.join(SOURCE_DIRS)} of {root}")
    per_package: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    functions = []
    for lines, path in modules:
        package = str(path.parent.relative_to(root))
        per_package[package][0] += 1
        per_package[package][1] += lines
        functions.extend(functions_of(path, root))
    print(f"{root}: {len(modules)} modules, {sum(n for n, _ in modules)} lines")
    print("\nper package (modules, lines):")
    for package, (count, lines) in sorted(per_package.items()):
        print(f"  {package:<24} {count:>3} {lines:>6}")
    rows = {"modules": ([(lines, str(path.relative_to(root))) for lines, path in modules], MODULE_LINES),
            "functions (lines of code, with the docstring)": (
                [(f.code_lines, f"{f.name} ({f.total_lines})") for f in functions], FUNCTION_LINES)}
    for title, (sized, limit) in rows.items():
        sized = sorted(sized, reverse=True)
        over = sum(1 for lines, _ in sized if lines > limit)
        print(f"\nlargest {title}: {over} over {limit} lines, marked *")
        for lines, name in sized[:max(top, over)]:
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
