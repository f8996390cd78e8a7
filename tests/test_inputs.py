"""Inputs that are not regular files (issue 14, part 2): a FIFO or a link to /dev/zero given as a
dataset, config, model, checkpoint or prediction input is refused at once (exit 2), instead of
being read for ever or until memory runs out. Each case runs in its own process with a timeout,
so a regression fails instead of hanging the suite."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def softreg(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "softreg.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    assert softreg(["train", "iris", "--quiet", "--out", str(folder / "iris.npz")], folder).returncode == 0
    return folder / "iris.npz"


def special(tmp_path, kind: str, name: str):
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)
    return path


@pytest.mark.parametrize("kind, words", [("fifo", "is a FIFO"), ("zero", "is a character device")])
@pytest.mark.parametrize("role", ["dataset", "config", "model", "predict input", "prepared labels"])
def test_a_special_file_is_refused_where_a_file_is_read(tmp_path, model, kind, role, words):
    if role == "dataset":
        args = ["train", str(special(tmp_path, kind, "data.csv")), "--quiet", "--out", str(tmp_path / "m.npz")]
    elif role == "config":
        args = ["train", "iris", "--config", str(special(tmp_path, kind, "c.toml")), "--out", str(tmp_path / "m.npz")]
    elif role == "model":
        args = ["info", str(special(tmp_path, kind, "m.npz"))]
    elif role == "predict input":
        args = ["predict", str(model), str(special(tmp_path, kind, "rows.csv"))]
    else:
        assert softreg(["prepare", "iris", str(tmp_path / "d.npy")], tmp_path).returncode == 0
        (tmp_path / "d.labels.npy").unlink()
        special(tmp_path, kind, "d.labels.npy")
        args = ["train", str(tmp_path / "d.npy"), "--quiet", "--out", str(tmp_path / "m.npz")]
    done = softreg(args, tmp_path)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2, (role, done.stderr)
    assert words in message and "Traceback" not in message, message
