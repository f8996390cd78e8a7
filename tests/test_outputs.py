"""Outputs that must not destroy what they name (issue 14, part 1): devices and FIFOs are
written straight to, other special files refused, no output may be a file of the dataset
being read, and a prepared dataset's files replace their old set as one."""

from __future__ import annotations

import os
import socket
import stat
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

import softreg.data.files as files_module
from softreg.cli.app import app
from softreg.data import DataError, load_dataset

runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())


def device(path, minor: int):
    """A character device like /dev/null (minor 3) or /dev/full (minor 7), made in a test folder."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except (PermissionError, OSError) as error:
        pytest.skip(f"cannot make a device node here ({error})")
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "iris.npz"
    assert runner.invoke(app, ["train", "iris", "--quiet", "--out", str(path)]).exit_code == 0
    return path


def test_train_to_a_null_device_keeps_the_device(tmp_path):
    null = device(tmp_path / "null", 3)
    result = runner.invoke(app, ["train", "iris", "--quiet", "--out", str(null)])
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat(null).st_mode)  # not replaced by a regular file
    assert not any(p.name.startswith(".softreg-") for p in tmp_path.iterdir())


def test_predict_to_a_full_device_fails_and_keeps_the_device(tmp_path, model):
    full = device(tmp_path / "full", 7)
    result = runner.invoke(app, ["predict", str(model), "iris", "--out", str(full), "--format", "csv"])
    assert result.exit_code == 1 and "could not be written" in flat(result.output)
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_predict_into_a_fifo_writes_through_it(tmp_path, model):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo).read()))
    reader.start()
    result = runner.invoke(app, ["predict", str(model), "iris", "--out", str(fifo), "--format", "csv"])
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    lines = received[0].splitlines()
    assert lines[0] == "label" and len(lines) == 151 and set(lines[1:]) <= {"setosa", "versicolor", "virginica"}


def test_a_socket_or_a_directory_is_refused_before_training(tmp_path):
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        result = runner.invoke(app, ["train", "iris", "--quiet", "--out", str(path)])
        assert result.exit_code == 2 and "is a socket" in flat(result.output)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        server.close()
    with pytest.raises(files_module.UnwritableOutput, match="is a directory"):
        files_module.output_kind(tmp_path)


@pytest.fixture()
def prepared(tmp_path):
    assert runner.invoke(app, ["prepare", "iris", str(tmp_path / "d.npy")]).exit_code == 0
    return tmp_path / "d.npy"


@pytest.mark.parametrize("companion", ["d.labels.npy", "d.features.json"])
def test_out_cannot_be_a_file_of_the_prepared_dataset(prepared, companion):
    target = prepared.parent / companion
    before = target.read_bytes()
    for args in (["train", str(prepared), "--quiet", "--out", str(target)],
                 ["predict", str(_model_of(prepared)), str(prepared), "--out", str(target), "--format", "csv"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "part of" in flat(result.output) and companion in flat(result.output), args
        assert target.read_bytes() == before


def _model_of(prepared):
    path = prepared.parent / "m.npz"
    if not path.exists():
        assert runner.invoke(app, ["train", str(prepared), "--quiet", "--out", str(path)]).exit_code == 0
    return path


def test_out_cannot_be_a_partition_of_a_folder_dataset(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        rows = "".join(f"{a:.3f},{b:.3f},{int(a > b)}\n" for a, b in rng.standard_normal((40, 2)))
        (parts / f"part{index}.csv").write_text("a,b,y\n" + rows)
    before = (parts / "part0.csv").read_text()
    result = runner.invoke(app, ["train", str(parts), "--engine", "stream", "--quiet",
                                 "--out", str(parts / "part0.csv")])
    assert result.exit_code == 2 and "part of the dataset" in flat(result.output)
    assert (parts / "part0.csv").read_text() == before


def test_prepare_replaces_its_files_as_one_set(tmp_path, monkeypatch):
    """A prepare cut short between its renames leaves a set that is refused, not a mixed one."""
    destination = tmp_path / "d.npy"
    assert runner.invoke(app, ["prepare", "iris", str(destination)]).exit_code == 0
    old_labels = np.load(tmp_path / "d.labels.npy", allow_pickle=False)
    real_replace = os.replace
    renames = []

    def interrupted_after_the_first(source, target):
        if renames:
            raise KeyboardInterrupt
        renames.append(target)
        real_replace(source, target)

    monkeypatch.setattr(files_module.os, "replace", interrupted_after_the_first)
    wine_like = tmp_path / "other.csv"  # 150 rows like iris, other values and labels
    rng = np.random.default_rng(1)
    wine_like.write_text("a,b,c,d,y\n" + "".join(f"{a},{b},{c},{d},k{int(a > 0)}\n"
                                                 for a, b, c, d in rng.standard_normal((150, 4))))
    with pytest.raises(KeyboardInterrupt):
        from softreg.data.prepare import prepare_dataset

        prepare_dataset(str(wine_like), destination)
    monkeypatch.setattr(files_module.os, "replace", real_replace)
    assert [p.name for p in renames] == ["d.npy"]  # X is new, its labels are still the old ones
    assert np.array_equal(np.load(tmp_path / "d.labels.npy", allow_pickle=False), old_labels)
    assert not any(p.name.startswith(".softreg-") for p in tmp_path.iterdir())
    with pytest.raises(DataError, match="do not belong together"):
        load_dataset(str(destination))
    result = runner.invoke(app, ["train", str(destination), "--quiet", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "Prepare the dataset again" in flat(result.output)
    assert runner.invoke(app, ["prepare", str(wine_like), str(destination)]).exit_code == 0
    assert load_dataset(str(destination)).n_samples == 150


def test_names_too_long_for_the_file_system_are_bad_input(tmp_path, model):
    long_out = str(tmp_path / ("a" * 300 + ".npz"))
    for args, words in ((["train", "iris", "--quiet", "--out", long_out], "File name too long"),
                        (["predict", str(model), "iris", "--out", str(tmp_path / ("c" * 300 + ".csv"))],
                         "File name too long"),
                        (["train", "b" * 300, "--quiet", "--out", str(tmp_path / "m.npz")], "File name too long"),
                        (["train", "b" * 5000, "--quiet"], "is 5,000 characters long; at most 4,096")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, args
        assert words in flat(result.output), args


def test_a_reader_that_leaves_early_is_not_a_failure(tmp_path):
    """`softreg train iris | head -c1`: the model is saved, and the exit code is 0."""
    import subprocess
    import sys

    out = tmp_path / "m.npz"
    pipeline = subprocess.run(f"{sys.executable} -m softreg.cli train iris --out {out} | head -c1 > /dev/null; "
                              "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
    assert pipeline.stdout.strip() == "0", pipeline.stderr
    assert out.exists()


def test_an_ascii_only_stdout_gets_escapes_not_a_crash(tmp_path, model):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "softreg.cli", "info", str(model)], capture_output=True,
                          env={**os.environ, "PYTHONIOENCODING": "ascii"}, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"iris" in done.stdout


@pytest.mark.parametrize("args, words", [
    (["--seed", "-1"], "seed (--seed) must be an integer from 0 to 4294967295"),
    (["--l2", "inf"], "l2 (--l2) must be a finite number >= 0, got inf"),
])
def test_gradcheck_settings_that_cannot_give_a_check_are_bad_input(args, words):
    result = runner.invoke(app, ["gradcheck", *args])
    assert result.exit_code == 2 and words in flat(result.output)


def test_classification_metrics_are_scikit_learns():
    """Every number of the metrics table against scikit-learn's own functions, on labels where one
    class is never predicted (precision 0 by zero_division) and one never occurs."""
    from sklearn import metrics

    from softreg.model.assess.metrics import classification_metrics

    rng = np.random.default_rng(3)
    classes = np.array(["ant", "bee", "cat", "dog", "eel"])
    logits = rng.standard_normal((300, 5))
    logits[:, 3] -= 50  # "dog" is never predicted
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.choice(classes[:4], 300)  # "eel" never occurs
    ours = classification_metrics(y, proba, classes)
    index, predicted, labels = np.searchsorted(classes, y), proba.argmax(axis=1), np.arange(5)
    assert ours["accuracy"] == metrics.accuracy_score(index, predicted)
    assert ours["log_loss"] == pytest.approx(metrics.log_loss(index, proba, labels=labels), rel=1e-12)
    for average in ("macro", "weighted"):
        p, r, f, _ = metrics.precision_recall_fscore_support(index, predicted, labels=labels, average=average,
                                                             zero_division=0)
        assert (ours[f"precision_{average}"], ours[f"recall_{average}"], ours[f"f1_{average}"]) == \
            pytest.approx((p, r, f), rel=1e-12)
    assert ours["top_k_accuracy"] == metrics.top_k_accuracy_score(index, proba, k=3, labels=labels)
    assert ours["confusion_matrix"] == metrics.confusion_matrix(index, predicted, labels=labels).tolist()
    assert ours["per_class"]["dog"]["precision"] == 0.0 and ours["per_class"]["eel"]["support"] == 0
