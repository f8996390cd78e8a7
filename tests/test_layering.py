"""Imports between softreg's rooms only go one way: data and model never reach into cli, model
reaches into data only from model.run, and inside model the layers stack
math <- engines <- solve <- estimator <- assess/gradcheck <- run. The edges come from
benchmarks/imports.py, which reads every import statement (lazy ones in functions included)
with ast, so an arrow added in a function body is caught as well as one at the top.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str):
    """A script of benchmarks/ as a module (they are not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", _BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


imports = _script("imports")

MATH, ENGINES, SOLVE = "softreg.model.math", "softreg.model.engines", "softreg.model.solve"
ESTIMATOR, ASSESS, GRADCHECK = "softreg.model.estimator", "softreg.model.assess", "softreg.model.gradcheck"
SOFTREG_ROOMS = set(imports.PACKAGE_ROOMS) | set(imports.MODULE_ROOMS)

# Room -> the rooms its modules may import. A module in no room may import no softreg module.
ALLOWED_ROOMS: dict[str, set[str]] = {
    "softreg.data": {"softreg.data"},
    MATH: {MATH},
    ENGINES: {MATH, ENGINES},
    SOLVE: {MATH, ENGINES, SOLVE},
    ESTIMATOR: {MATH, ENGINES, SOLVE, ESTIMATOR},
    ASSESS: {MATH, ENGINES, SOLVE, ESTIMATOR, ASSESS},
    GRADCHECK: {MATH, ENGINES, SOLVE, ESTIMATOR, ASSESS, GRADCHECK},
    "softreg.model": {MATH, ESTIMATOR},
    "softreg.model.run": SOFTREG_ROOMS - {"softreg.cli", "softreg.cli.commands"},
    "softreg.cli": SOFTREG_ROOMS,
    "softreg.cli.commands": SOFTREG_ROOMS,
}
MATH_THIRD_PARTY = {"numpy", "scipy"}
LAZY_ONLY = {("softreg.model", ESTIMATOR)}  # importing softreg.model must not load scikit-learn


def forbidden_edges(edges: list) -> list[str]:
    """Each import that breaks the layering, as 'module -> imported module  (file:line, why)'."""
    found = []
    for e in edges:
        source, target = imports.room_of(e.importer), imports.room_of(e.imported)
        if e.imported == "softreg" or e.imported.startswith("softreg."):
            if target not in ALLOWED_ROOMS.get(source, set()):
                why = f"room {source} may not import room {target}"
            elif (source, target) in LAZY_ONLY and not e.lazy:
                why = f"{target} only inside a function"
            else:
                continue
        elif source == MATH:
            top = e.imported.partition(".")[0]
            if top in MATH_THIRD_PARTY or top in sys.stdlib_module_names:
                continue
            why = "model.math imports only numpy, scipy and the standard library"
        else:
            continue
        found.append(f"{e.importer} -> {e.imported}  ({e.path}:{e.line}, {why})")
    return found


def test_rooms_import_only_in_allowed_directions():
    forbidden = forbidden_edges(imports.import_edges())
    assert not forbidden, "forbidden imports:\n" + "\n".join(forbidden)


def test_walker_sees_a_known_edge():
    """Guards against a walker that finds nothing, which would make the layering test pass."""
    pairs = {(e.importer, e.imported) for e in imports.import_edges()}
    assert ("softreg.model.engines.memory", "softreg.model.math.linear") in pairs


def test_checker_reports_a_synthetic_forbidden_edge():
    fake = [
        imports.Import("softreg.model.engines.x", "softreg.data.dataset", "model/engines/x.py", 3, True),
        imports.Import("softreg.model.engines.x", "softreg.model.math.linear", "model/engines/x.py", 4, False),
        imports.Import("softreg.model.math.x", "sklearn.utils", "model/math/x.py", 5, False),
        imports.Import("softreg.model", ESTIMATOR, "model/__init__.py", 6, False),
    ]
    reported = [line.split("  (")[0] for line in forbidden_edges(fake)]
    assert reported == [
        "softreg.model.engines.x -> softreg.data.dataset",
        "softreg.model.math.x -> sklearn.utils",
        "softreg.model -> softreg.model.estimator",
    ]


def test_no_message_of_the_library_names_a_flag():
    """model/ and data/ speak in parameters (missing='impute'); cli/errors.in_flags words them as
    flags. Every string literal but a docstring is read, f-string parts included, so a message
    written with a --flag is caught wherever it is built."""
    import ast
    import re

    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    root = Path(__file__).resolve().parents[1]
    found = []
    for room in ("model", "data"):
        for path in sorted((root / room).rglob("*.py")):
            tree = ast.parse(path.read_text())
            docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                          if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                          and node.body and isinstance(node.body[0], ast.Expr)
                          and isinstance(node.body[0].value, ast.Constant)}
            found += [f"{path.relative_to(root)}:{node.lineno} {match}" for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                      for match in flag.findall(node.value)]
    assert found == []
    assert flag.findall("pass --missing impute") == ["--missing"]  # the pattern sees a flag


sizes = _script("sizes")


def test_modules_and_functions_over_the_size_rule_say_why():
    """No module over 400 lines and no function over 60 lines of code without a reason that names
    its size ("one module of about 550 lines: ..."): benchmarks/sizes.py counts them."""
    import ast
    import re

    root = _BENCHMARKS.parent
    unexplained = []
    for lines, path in sizes.module_sizes(root):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > sizes.MODULE_LINES and not re.search(r"about \d+ lines", docstring):
            unexplained.append(f"{path.relative_to(root)} ({lines} lines)")
        for function in sizes.functions_of(path, root):
            if function.code_lines > sizes.FUNCTION_LINES and not re.search(r"\d+ lines", function.reason_text):
                unexplained.append(f"{function.name} ({function.code_lines} lines of code)")
    assert not unexplained, f"over the size rule without a reason naming the size: {unexplained}"


def test_the_size_counter_sees_a_long_function_and_its_reason(tmp_path):
    (tmp_path / "cli").mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    (tmp_path / "cli" / "long.py").write_text(f'# One function of about 72 lines: a reason.\ndef long():\n    """Doc."""\n{body}\n')
    [function] = sizes.functions_of(tmp_path / "cli" / "long.py", tmp_path)
    assert (function.code_lines, function.total_lines) == (71, 72) and "72 lines" in function.reason_text
