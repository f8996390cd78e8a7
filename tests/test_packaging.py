"""The installed layout: softreg.* namespaced packages, no bare cli/model/data, a working script."""

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _python_in(directory: Path, code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter from a neutral directory, so the repo is not on sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=directory, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("bare", ["cli", "model", "data"])
def test_bare_top_level_names_are_not_importable(tmp_path, bare):
    result = _python_in(tmp_path, f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({bare!r}) is None else 1)")
    assert result.returncode == 0, f"a bare top-level '{bare}' module is importable: {result.stderr}"


def test_namespaced_packages_import_from_anywhere(tmp_path):
    code = (
        "import softreg.cli.app, softreg.model, softreg.data, json;"
        "print(json.dumps([softreg.model.__file__, softreg.data.__file__]))"
    )
    result = _python_in(tmp_path, code)
    assert result.returncode == 0, result.stderr
    files = json.loads(result.stdout)
    assert all("softreg" in f or str(REPO) in f for f in files)


def test_installed_script_runs_gradcheck(tmp_path):
    script = shutil.which("softreg", path=str(Path(sys.executable).parent)) or shutil.which("softreg")
    assert script, "the softreg console script is not installed"
    result = subprocess.run([script, "gradcheck", "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True


def test_python_dash_m_softreg_cli(tmp_path):
    result = subprocess.run([sys.executable, "-m", "softreg.cli", "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"softreg {version('softreg')}"
