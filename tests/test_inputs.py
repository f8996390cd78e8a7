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


def _npz_with_member(path, name: str, header_shape: tuple, payload: bytes, compress=False):
    """An .npz whose member NAME.npy has a float64 header of ``header_shape`` over ``payload``."""
    import io
    import zipfile

    import numpy as np

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": header_shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{name}.npy", header.getvalue() + payload)
    return path


def test_a_shape_header_larger_than_its_data_is_a_corrupt_file(tmp_path, model):
    """A 1e12-row X over 200 bytes: exit 2 naming the file, not 'not enough memory'."""
    import numpy as np

    data = _npz_with_member(tmp_path / "big.npz", "X", (10**12, 4), np.zeros(25).tobytes())
    done = softreg(["train", str(data), "--quiet", "--out", str(tmp_path / "m.npz")], tmp_path)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "the file is corrupt" in message and "big.npz" in message, message


def test_a_model_member_that_would_inflate_past_the_limit_is_refused_unread(tmp_path, monkeypatch):
    """A zip member declaring more than a model file may hold is refused before it is inflated."""
    import numpy as np

    from softreg.model.run import persist
    from softreg.model.run.persist import ModelFileError, read_model_file

    monkeypatch.setattr(persist, "MODEL_MEMBER_BYTES", 1 << 20)  # 1 MiB, so the test file stays small
    bomb = _npz_with_member(tmp_path / "bomb.npz", "weights", (1 << 18, 1), np.zeros(1 << 18).tobytes(), compress=True)
    assert bomb.stat().st_size < 50_000  # 2 MiB of zeros, deflated
    with pytest.raises(ModelFileError, match="declares 2,097,2[0-9]{2} bytes, more than the 1,048,576"):
        read_model_file(bomb)
