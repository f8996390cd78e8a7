"""The bad-input battery: every case exits with its code, a message naming what is at fault and
what is accepted, no traceback, and no output file created or changed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import dump_svmlight_file

from softreg.cli.app import app
from softreg.model.persist import load_model

SENTINEL = b"an existing file that must survive"


@pytest.fixture
def out(tmp_path):
    """An existing output file: every failing command must leave it byte for byte."""
    path = tmp_path / "keep.npz"
    path.write_bytes(SENTINEL)
    return path


def flat(text: str) -> str:
    return " ".join(text.split())


def check_failure(result, code: int, needles, out: Path | None = None):
    message = flat(result.output)
    assert result.exit_code == code, result.output
    for needle in needles:
        assert needle in message, (needle, message)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if out is not None:
        assert out.read_bytes() == SENTINEL
        assert [p.name for p in out.parent.iterdir() if p.name.startswith(".softreg-")] == []


def write(tmp_path, name, content) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def two_class_csv(rows=40, cells=None, header="a,b,y"):
    rng = np.random.default_rng(0)
    lines = [header] + [f"{rng.standard_normal():.4f},{rng.standard_normal():.4f},{i % 2}" for i in range(rows)]
    for line_no, text in (cells or {}).items():
        lines[line_no - 1] = text
    return "\n".join(lines) + "\n"


DATA_CASES = {
    "unknown name": ("irs", ["dataset 'irs' is neither a built-in (iris, wine, digits, breast_cancer, synthetic)",
                             "path of a .csv"]),
    "empty file": (("e.csv", ""), ["e.csv is empty", "header row"]),
    "header only": (("h.csv", "a,b,y\n"), ["h.csv has a header but no data rows"]),
    "class too small": (("s.csv", "a,y\n1,p\n2,p\n3,p\n4,q\n5,p\n6,p\n"),
                        ["class 'q' has only 1 row", "too few to stratify"]),
    "non-numeric column": (("n.csv", two_class_csv(cells={5: "0.5,abc,1"})),
                           ["n.csv: column 'b' is not numeric: line 5 holds 'abc'", "--target"]),
    "ragged row": (("r.csv", two_class_csv(cells={7: "0.5,1"})), ["r.csv, line 7: 2 fields where the header has 3"]),
    "wrong delimiter": (("d.csv", "a;b;y\n1;2;0\n3;4;1\n"), ["the header is the single column 'a;b;y'", "semicolons"]),
    "invalid bytes": (("x.csv", b"a,b,y\n1,2,\xff\n"), ["x.csv, line 2: byte 10 (b'\\xff') is not valid UTF-8"]),
    "duplicate columns": (("u.csv", "a,a,y\n1,2,0\n"), ["duplicate column names ['a']"]),
    "missing values": (("m.csv", two_class_csv(cells={4: "0.1,,1", 9: "NA,0.2,0"})),
                       ["m.csv: 2 rows have missing, NaN or infinite values (first at line 4)", "'a': 1", "'b': 1",
                        "--missing drop"]),
    "nan and infinity": (("i.csv", two_class_csv(cells={3: "nan,1,0", 6: "inf,2,1", 8: "1,-inf,1"})),
                         ["3 rows have missing, NaN or infinite values (first at line 3)", "'a': 2", "'b': 1"]),
    "missing label": (("l.csv", two_class_csv(cells={6: "1,2,"})), ["'y': 1", "--missing drop"]),
    "single class": (("o.csv", "a,y\n" + "".join(f"{i},k\n" for i in range(30))),
                     ["the training data has 1 class (k)", "at least 2 classes"]),
    "malformed svmlight": (("bad.svm", "0 1:1 2:3\n1 1:2\n0 1:x\n"), ["bad.svm, line 3: not valid svmlight",
                                                                      "'LABEL INDEX:VALUE"]),
    "npz without y": (("noy.npz", "npz:X"), ["no array y", "needs X (N, D) and y (N,)"]),
    "npz lengths differ": (("len.npz", "npz:lengths"), ["X must be (N, D) and y (N,) with the same N",
                                                        "X (10, 2) and y (9,)"]),
}


def materialize(tmp_path, spec):
    if isinstance(spec, str):
        return spec
    name, content = spec
    if content == "npz:X":
        path = tmp_path / name
        np.savez(path, X=np.zeros((4, 2)))
        return str(path)
    if content == "npz:lengths":
        path = tmp_path / name
        np.savez(path, X=np.zeros((10, 2)), y=np.zeros(9))
        return str(path)
    return write(tmp_path, name, content)


@pytest.mark.parametrize("case", list(DATA_CASES), ids=lambda c: c.replace(" ", "-"))
def test_bad_data_exits_2_naming_the_problem(runner, tmp_path, out, case):
    spec, needles = DATA_CASES[case]
    dataset = materialize(tmp_path, spec)
    result = runner.invoke(app, ["train", dataset, "--out", str(out), "--quiet"])
    check_failure(result, 2, needles, out)


def test_a_directory_and_an_unreadable_file(runner, tmp_path, out, monkeypatch):
    check_failure(runner.invoke(app, ["train", str(tmp_path), "--out", str(out)]), 2, ["is a directory"], out)
    path = write(tmp_path, "secret.csv", two_class_csv())
    import softreg.data.datasets as datasets

    real_access = os.access
    # Root reads any file, so unreadability is simulated at the permission check.
    monkeypatch.setattr(datasets.os, "access", lambda p, mode: False if str(p) == path else real_access(p, mode))
    check_failure(runner.invoke(app, ["train", path, "--out", str(out)]), 2, ["secret.csv' is not readable"], out)


def test_missing_drop_says_how_many_rows_it_dropped(runner, tmp_path):
    path = write(tmp_path, "m.csv", two_class_csv(rows=60, cells={4: "0.1,,1", 9: "NA,0.2,0", 12: "1,2,"}))
    model = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", path, "--missing", "drop", "--out", str(model), "--json"])
    assert result.exit_code == 0, result.output
    assert "left out 3 rows" not in result.stdout  # --json keeps stdout to the document
    document = json.loads(result.stdout)
    assert document["dataset"]["dropped_rows"] == 3
    assert sum(document["split"][k] for k in ("train_rows", "val_rows", "test_rows")) == 57
    result = runner.invoke(app, ["train", path, "--missing", "drop", "--out", str(model), "--quiet"])
    assert "left out 3 rows with missing, NaN or infinite values" in flat(result.output)
    # eval re-derives the same rows, so the held-out split is the same one.
    evaluation = runner.invoke(app, ["eval", str(model), "--json"])
    assert evaluation.exit_code == 0, evaluation.output
    assert json.loads(evaluation.stdout)["metrics"]["samples"] == load_model(model)[1]["split"]["test_rows"]


def test_constant_and_duplicated_columns_train_normally(runner, tmp_path):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((80, 2))
    lines = ["a,const,a_copy,b,y"] + [f"{a},3.5,{a},{b},{int(a + b > 0)}" for a, b in X]
    path = write(tmp_path, "c.csv", "\n".join(lines) + "\n")
    model = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", path, "--out", str(model), "--quiet"])
    assert result.exit_code == 0, result.output
    estimator, _ = load_model(model)
    assert np.isfinite(estimator.coef_).all() and np.isfinite(estimator.intercept_).all()
    # Identical columns get identical gradients from W = 0, so they share their weight equally.
    np.testing.assert_allclose(estimator.coef_[:, 0], estimator.coef_[:, 2], rtol=1e-6)


@pytest.mark.parametrize("args, needle", [
    (["--lr", "0"], "lr (--lr) must be 'auto', 'bound' or a positive number, got '0'"),
    (["--lr", "-0.5"], "got '-0.5'"),
    (["--l2", "-1"], "l2 (--l2) must be a finite number >= 0"),
    (["--val-fraction", "1.5"], "val_fraction (--val-fraction) must be in [0, 1), got 1.5"),
    (["--test-fraction", "-0.1"], "test_fraction (--test-fraction) must be in [0, 1)"),
    (["--val-fraction", "0.5", "--test-fraction", "0.5"], "val_fraction + test_fraction must be below 1"),
    (["--max-epochs", "0"], "max_epochs (--max-epochs) must be at least 1"),
    (["--batch-size", "0"], "batch_size (--batch-size) must be a positive integer"),
    (["--missing", "impute"], "missing (--missing) must be 'error' or 'drop'"),
    (["--tol", "-1"], "tol (--tol) must be a finite number >= 0"),
    (["--tol", "inf"], "tol (--tol) must be a finite number >= 0, got inf"),
    (["--seed", "99999999999"], "seed (--seed) must be an integer from 0 to 4294967295"),
])
def test_bad_flags_fail_before_any_data_is_loaded(runner, out, monkeypatch, args, needle):
    import softreg.data

    def never(*a, **k):
        raise AssertionError("data was loaded")

    monkeypatch.setattr(softreg.data, "load_dataset", never)
    check_failure(runner.invoke(app, ["train", "iris", "--out", str(out), *args]), 2, [needle], out)


@pytest.mark.parametrize("toml, needles", [
    ('dataset = "iris"\nl2 = 0.1\nlr = = 3\n', ["is not valid TOML", "line 3"]),
    ('dataset = "iris"\nepochs = 5\n', ["unknown key epochs", "known keys are"]),
    ('dataset = "iris"\nmax_epochs = "many"\n', ["key 'max_epochs' must be an integer, got 'many'"]),
    ('dataset = "iris"\nstandardize = "yes"\n', ["key 'standardize' must be true or false"]),
    ('dataset = "iris"\nval_fraction = 2\n', ["val_fraction (--val-fraction) must be in [0, 1)"]),
])
def test_bad_configs_fail_before_any_data_is_loaded(runner, tmp_path, out, monkeypatch, toml, needles):
    import softreg.data

    monkeypatch.setattr(softreg.data, "load_dataset", lambda *a, **k: pytest.fail("data was loaded"))
    config = write(tmp_path, "c.toml", toml)
    check_failure(runner.invoke(app, ["train", "--config", config, "--out", str(out)]), 2, needles, out)


def test_batch_size_larger_than_the_training_rows(runner, out):
    result = runner.invoke(app, ["train", "iris", "--batch-size", "500", "--out", str(out)])
    check_failure(result, 2, ["batch_size (--batch-size) must be at most the number of training rows (104), got 500"], out)


@pytest.fixture(scope="module")
def good_model(tmp_path_factory):
    from typer.testing import CliRunner

    path = tmp_path_factory.mktemp("model") / "iris.npz"
    result = CliRunner().invoke(app, ["train", "iris", "--quiet", "--out", str(path), "--max-epochs", "50"])
    assert result.exit_code == 0, result.output
    return path


def broken_models(tmp_path, good_model):
    data = good_model.read_bytes()
    corrupt = bytearray(data)
    corrupt[len(data) // 2: len(data) // 2 + 200] = b"A" * 200
    with np.load(good_model, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(str(arrays["header"]))
    newer = dict(arrays, header=np.asarray(json.dumps({**header, "format_version": 99})))
    return {
        "truncated": (data[: len(data) // 3], "not a readable .npz archive"),
        "corrupt": (bytes(corrupt), "it may be truncated or corrupt"),
        "text": (b"hello", "is not a softreg model file: not an .npz archive (its first bytes are not a zip file's)"),
        "not a model": ({"X": np.zeros((2, 2))}, "is not a softreg model"),
        "newer format": (newer, "format version 99, newer than this softreg"),
    }


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "text", "not a model", "newer format"])
@pytest.mark.parametrize("command", ["eval", "predict", "info"])
def test_broken_model_files_exit_2(runner, tmp_path, good_model, kind, command):
    content, needle = broken_models(tmp_path, good_model)[kind]
    path = tmp_path / "broken.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.savez(path, **content)
    args = {"eval": ["eval", str(path)], "predict": ["predict", str(path), "iris"], "info": ["info", str(path)]}[command]
    check_failure(runner.invoke(app, args), 2, [needle])


class Payload:
    """Unpickling this would create a marker file: the proof that nothing is ever unpickled."""

    marker = None

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickled_payload_never_runs(runner, tmp_path, good_model):
    marker = tmp_path / "payload-ran"
    Payload.marker = str(marker)
    evil = tmp_path / "evil.npz"
    with np.load(good_model, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["classes"] = np.array([Payload(), Payload(), Payload()], dtype=object)
    np.savez(evil, **arrays)  # savez pickles object arrays
    evil_data = tmp_path / "evil_data.npz"
    np.savez(evil_data, X=np.array([Payload()], dtype=object), y=np.array([0]))
    for args in (["eval", str(evil)], ["predict", str(evil), "iris"], ["info", str(evil)],
                 ["train", str(evil_data), "--out", str(tmp_path / "m.npz")],
                 ["predict", str(good_model), str(evil_data)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert not marker.exists()
    # The payload is real: unpickling it does create the marker.
    import pickle

    pickle.loads(pickle.dumps(Payload()))
    assert marker.exists()


def test_outputs_in_missing_or_read_only_directories_fail_before_training(runner, tmp_path, monkeypatch):
    import softreg.model.persist as persist
    import softreg.model.pipeline as pipeline

    monkeypatch.setattr(pipeline, "fit_dataset", lambda *a, **k: pytest.fail("training started"))
    missing = tmp_path / "no" / "such" / "dir" / "m.npz"
    check_failure(runner.invoke(app, ["train", "iris", "--out", str(missing)]), 2,
                  ["output directory", "does not exist"])
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    # Root may write anywhere, so a read-only directory is simulated at the permission check.
    monkeypatch.setattr(persist.os, "access", lambda p, mode: False if Path(p) == read_only else real_access(p, mode))
    check_failure(runner.invoke(app, ["train", "iris", "--out", str(read_only / "m.npz")]), 2,
                  ["output directory", "is not writable"])
    assert list(read_only.iterdir()) == []


def test_a_failed_prediction_write_leaves_the_old_file(runner, tmp_path, good_model, monkeypatch):
    import softreg.data.output as output

    target = tmp_path / "pred.csv"
    target.write_bytes(SENTINEL)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", full_disk)
    result = runner.invoke(app, ["predict", str(good_model), "iris", "--out", str(target)])
    assert result.exit_code == 1 and "No space left on device" in flat(result.output)
    assert target.read_bytes() == SENTINEL and sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]


def test_separable_data_without_l2_is_detected(runner, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 2))
    y = (X[:, 0] > 0).astype(int)
    X[:, 0] += np.where(y == 1, 1.0, -1.0)  # a clear margin
    path = write(tmp_path, "sep.csv", "a,b,y\n" + "".join(f"{a},{b},{c}\n" for (a, b), c in zip(X.tolist(), y)))
    for extra in ([], ["--momentum", "nesterov"], ["--batch-size", "16"]):
        result = runner.invoke(app, ["train", path, "--l2", "0", "--out", str(tmp_path / "m.npz"), "--quiet", *extra])
        message = flat(result.output)
        assert result.exit_code == 1, result.output
        assert "linearly separable" in message and "the unregularized optimum does not exist" in message
        assert "Set --l2 above 0" in message and "Traceback" not in message
        assert load_model(tmp_path / "m.npz")[1]["stop_reason"] == "separable"  # the separating model is kept
    # With a penalty the same data has an optimum, and training converges to it.
    result = runner.invoke(app, ["train", path, "--l2", "1e-3", "--out", str(tmp_path / "m.npz"), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["stop_reason"] == "converged"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_training_saves_the_best_weights(tmp_path, signum, code):
    model = tmp_path / "m.npz"
    process = subprocess.Popen(
        [sys.executable, "-m", "softreg.cli", "train", "synthetic:samples=20000,features=60,classes=5",
         "--lr", "1e-4", "--max-epochs", "1000000", "--out", str(model)],  # a tiny fixed step: far from done
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # The description line is printed once the data is loaded, just before training starts.
    first_line = process.stderr.readline()
    assert "make_classification" in first_line, first_line
    time.sleep(1.5)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    name = "SIGINT (Ctrl-C)" if signum == signal.SIGINT else "SIGTERM"
    assert f"interrupted by {name}: the weights above were saved to {model}" in flat(stderr)
    estimator, header = load_model(model)
    assert header["stop_reason"] == "interrupted" and header["interrupted_by"] == name
    assert "kept the weights of epoch" in header["stop_message"]
    assert 0 < header["best_epoch"] <= header["epochs"] < 1000000
    assert np.isfinite(estimator.coef_).all()
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_a_signal_during_predict_leaves_no_file(tmp_path, good_model):
    rng = np.random.default_rng(0)
    data = tmp_path / "big.csv"
    names = load_model(good_model)[1]["feature_names"]
    np.savetxt(data, rng.standard_normal((200_000, 4)), delimiter=",", header=",".join(f'"{n}"' for n in names),
               comments="", fmt="%.5f")
    target = tmp_path / "pred.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "softreg.cli", "predict", str(good_model), str(data), "--proba", "--chunk-rows", "100",
         "--out", str(target)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 30
    while not any(p.name.startswith(".softreg-") for p in tmp_path.iterdir()):
        assert time.time() < deadline and process.poll() is None, "predict never started writing"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "interrupted by SIGTERM; no output file was written or changed" in flat(stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]


def test_extreme_values_stay_finite_without_warnings(tmp_path):
    import warnings

    from scipy import sparse

    from softreg.model import SoftmaxRegression

    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any numpy RuntimeWarning fails the test
        X = rng.standard_normal((300, 3))
        X[:, 1] *= 1e300  # features of 1e300 before scaling
        y = (X[:, 0] > 0).astype(int)
        model = SoftmaxRegression(max_epochs=50).fit(X, y)
        assert np.isfinite(model.coef_).all() and np.isfinite(model.predict_proba(X)).all()
        assert model.score(X, y) > 0.95
        with pytest.raises(ValueError, match="overflow"):
            SoftmaxRegression(standardize=False).fit(X, y)

        X = rng.standard_normal((3000, 8))
        y = np.arange(3000) % 1000  # K = 1000 classes
        model = SoftmaxRegression(max_epochs=5).fit(X, y)
        assert model.coef_.shape == (1000, 8) and np.isfinite(model.predict_log_proba(X)).all()

        X = sparse.random(500, 100_000, density=2e-4, format="csr", random_state=2)  # 100,000 sparse features
        y = rng.integers(0, 3, 500)
        model = SoftmaxRegression(max_epochs=5).fit(X, y)
        assert np.isfinite(model.coef_).all() and np.isfinite(model.predict_proba(X)).all()

        X = rng.standard_normal((200, 2)) * 1e4  # logits of order 1e4 without scaling
        y = (X[:, 0] > 0).astype(int)
        model = SoftmaxRegression(max_epochs=20, standardize=False, l2=1.0).fit(X, y)
        proba = model.predict_proba(X)
        assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)
