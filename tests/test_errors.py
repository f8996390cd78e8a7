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
from softreg.model.run.persist import load_model

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
                           ["n.csv: column 'b' holds numbers but also 'abc' (data row 4", "--categorical"]),
    "ragged row": (("r.csv", two_class_csv(cells={7: "0.5,1"})), ["r.csv, line 7: 2 fields where the header has 3"]),
    "wrong delimiter": (("d.csv", "a;b;y\n1;2;0\n3;4;1\n"), ["the header is the single column 'a;b;y'", "semicolons"]),
    "invalid bytes": (("x.csv", b"a,b,y\n1,2,\xff\n"), ["x.csv, line 2: byte 10 (b'\\xff') is not valid UTF-8"]),
    "duplicate columns": (("u.csv", "a,a,y\n1,2,0\n"), ["duplicate column names ['a']"]),
    "missing values": (("m.csv", two_class_csv(cells={4: "0.1,,1", 9: "NA,0.2,0"})),
                       ["m.csv: 2 rows have missing, NaN or infinite values (first at data row 3)", "'a': 1",
                        "'b': 1", "--missing drop"]),
    "nan and infinity": (("i.csv", two_class_csv(cells={3: "nan,1,0", 6: "inf,2,1", 8: "1,-inf,1"})),
                         ["3 rows have missing, NaN or infinite values (first at data row 2)", "'a': 2", "'b': 1"]),
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
    # --missing error: the default, impute, fills a table's missing cells (tests/test_tables.py)
    result = runner.invoke(app, ["train", dataset, "--out", str(out), "--quiet", "--missing", "error"])
    check_failure(result, 2, needles, out)


def test_a_directory_and_an_unreadable_file(runner, tmp_path, out, monkeypatch):
    check_failure(runner.invoke(app, ["train", str(tmp_path), "--out", str(out)]), 2,
                  ["holds no .parquet, .csv or .tsv partitions"], out)
    path = write(tmp_path, "secret.csv", two_class_csv())
    real_access = os.access
    # Root reads any file, so unreadability is simulated at the permission check.
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == path else real_access(p, mode))
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
    (["--missing", "fill"], "missing (--missing) must be 'impute', 'drop' or 'error'"),
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
    import softreg.model.run.persist as persist
    import softreg.model.run.train as pipeline

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
    import softreg.data.files as output

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
    time.sleep(3.0)  # a few epochs even on a loaded machine (1.5 s was too short under load twice)
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

    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any numpy RuntimeWarning fails the test
        warnings.simplefilter("ignore", ConvergenceWarning)  # the short max_epochs below are deliberate
        X = rng.standard_normal((300, 3))
        X[:, 1] *= 1e300  # features of 1e300 before scaling
        y = (X[:, 0] > 0).astype(int)
        model = SoftmaxRegression(max_epochs=50).fit(X, y)
        assert np.isfinite(model.coef_).all() and np.isfinite(model.predict_proba(X)).all()
        assert model.score(X, y) > 0.95
        # Without standardization the penalty is on raw coefficients, but the solver still works
        # in standardized coordinates (issue 17): raw features of 1e300 no longer overflow X^T X.
        raw = SoftmaxRegression(standardize=False, max_epochs=50).fit(X, y)
        assert np.isfinite(raw.coef_).all() and np.isfinite(raw.predict_proba(X)).all()
        assert raw.score(X, y) > 0.95

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


# ---- cases found by a review of the battery above: each gave a traceback, a warning or a wrong result


def test_train_may_not_overwrite_its_data_or_config(runner, tmp_path):
    data = Path(write(tmp_path, "d.csv", two_class_csv()))
    config = Path(write(tmp_path, "c.toml", f'dataset = "{data}"\n'))
    before = (data.read_bytes(), config.read_bytes())
    for args in (["train", str(data), "--out", str(data)], ["train", "--config", str(config), "--out", str(config)],
                 ["train", str(data), "--out", str(tmp_path / "m.png"), "--plot", str(tmp_path / "m.png")]):
        result = runner.invoke(app, args)
        check_failure(result, 2, ["--"])
        assert "itself" in flat(result.output) or "also the model file" in flat(result.output)
    assert (data.read_bytes(), config.read_bytes()) == before


def test_an_unclosed_quote_names_the_line_where_it_opened(runner, tmp_path, out):
    text = two_class_csv(rows=30, cells={5: '1.5,2,"unterminated'})
    path = write(tmp_path, "q.csv", text)
    check_failure(runner.invoke(app, ["train", path, "--out", str(out)]), 2,
                  ["q.csv, line 5: a quoted field opened on this line is never closed"], out)
    model = tmp_path / "m.npz"
    assert runner.invoke(app, ["train", write(tmp_path, "ok.csv", two_class_csv()), "--out", str(model)]).exit_code == 0
    check_failure(runner.invoke(app, ["predict", str(model), path]), 2, ["q.csv, line 5: a quoted field"])


@pytest.mark.parametrize("args, needle", [
    (["--weight-column", "y"], "--weight-column y is the target (label) column"),
    (["--weight-column", "w", "--target", "w"], "weight_column (--weight-column) must differ from target"),
])
def test_the_weight_column_cannot_be_the_labels(runner, tmp_path, out, args, needle):
    path = write(tmp_path, "w.csv", "a,w,y\n" + "".join(f"{i},{1 + i % 3},{i % 2}\n" for i in range(40)))
    check_failure(runner.invoke(app, ["train", path, "--out", str(out), *args]), 2, [needle], out)


def test_na_like_labels_are_missing_values(runner, tmp_path, out):
    lines = "a,y\n" + "".join(f"{i},{['x', 'z', 'NA', 'x', 'nan', 'z'][i % 6]}\n" for i in range(60))
    path = write(tmp_path, "na.csv", lines)
    check_failure(runner.invoke(app, ["train", path, "--out", str(out), "--missing", "error"]), 2,
                  ["20 rows have missing", "'y': 20"], out)
    imputed = runner.invoke(app, ["train", path, "--out", str(tmp_path / "i.npz")])  # a label is never imputed
    assert imputed.exit_code == 0 and "left out 20 rows with no label" in " ".join(imputed.output.split())
    model = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", path, "--missing", "drop", "--out", str(model), "--quiet"])
    assert result.exit_code == 0, result.output
    assert list(load_model(model)[0].classes_) == ["x", "z"]
    npz = tmp_path / "nan_y.npz"
    np.savez(npz, X=np.arange(40.0).reshape(20, 2), y=np.r_[np.nan, np.arange(19) % 2])
    check_failure(runner.invoke(app, ["train", str(npz), "--out", str(out)]), 2, ["NaN labels (first at row 0"], out)


def test_svmlight_index_base_comes_from_the_training_file(runner, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(0.5, 2.0, (200, 3))
    y = (X[:, 0] > X[:, 1]).astype(int)
    train_file = tmp_path / "zb.svm"
    dump_svmlight_file(X, y, str(train_file), zero_based=True)
    model = tmp_path / "m.npz"
    assert runner.invoke(app, ["train", str(train_file), "--out", str(model), "--quiet"]).exit_code == 0
    # The same rows without feature 0: nothing in this file says it is zero-based.
    no_zero = X.copy()
    no_zero[:, 0] = 0.0
    predict_file = tmp_path / "pred.svm"
    dump_svmlight_file(no_zero, y, str(predict_file), zero_based=True)
    assert b" 0:" not in predict_file.read_bytes()
    result = runner.invoke(app, ["predict", str(model), str(predict_file), "--proba"])
    assert result.exit_code == 0, result.output
    estimator, _ = load_model(model)
    rows = [line.split(",") for line in result.stdout.splitlines()[1:]]
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in rows], estimator.predict_proba(no_zero), atol=1e-9)


def test_huge_indices_and_long_integer_labels(runner, tmp_path, out):
    check_failure(runner.invoke(app, ["train", write(tmp_path, "o.svm", "1 99999999999:2\n0 1:1\n"), "--out", str(out)]),
                  2, ["too large to read"], out)
    start = time.perf_counter()
    check_failure(runner.invoke(app, ["train", write(tmp_path, "t.svm", "1 2000000000:2\n0 1:1\n"), "--out", str(out)]),
                  2, ["largest feature index is 2,000,000,000", "Check that line for a typo"], out)
    assert time.perf_counter() - start < 10
    ids = "a,y\n" + "".join(f"{i},{10**25 + i % 2}\n" for i in range(40))
    model = tmp_path / "ids.npz"
    result = runner.invoke(app, ["train", write(tmp_path, "ids.csv", ids), "--out", str(model), "--quiet"])
    assert result.exit_code == 0, result.output
    assert list(load_model(model)[0].classes_) == [str(10**25), str(10**25 + 1)]


def test_a_class_without_training_rows_is_an_error(runner, tmp_path, out):
    lines = "a,y\n" + "".join(f"{i},a\n" for i in range(30)) + "100,b\n101,b\n102,c\n103,c\n"
    check_failure(runner.invoke(app, ["train", write(tmp_path, "abc.csv", lines), "--test-fraction", "0.8",
                                      "--val-fraction", "0", "--out", str(out)]), 2, ["no rows in the training split"], out)


def test_eval_notices_changed_or_missing_training_data(runner, tmp_path):
    data = Path(write(tmp_path, "ev.csv", two_class_csv(rows=60)))
    model = tmp_path / "m.npz"
    assert runner.invoke(app, ["train", str(data), "--out", str(model), "--quiet"]).exit_code == 0
    data.write_text(two_class_csv(rows=40))
    check_failure(runner.invoke(app, ["eval", str(model)]), 2, ["has changed since", "40 rows now, 60 then",
                                                                 "pass data"])
    data.unlink()
    check_failure(runner.invoke(app, ["eval", str(model)]), 2, ["is gone", "pass data"])


def test_eval_compares_text_labels_with_integer_classes_by_value(runner, tmp_path):
    model = tmp_path / "m.npz"
    assert runner.invoke(app, ["train", write(tmp_path, "t.csv", two_class_csv(rows=60)), "--out", str(model),
                               "--quiet"]).exit_code == 0
    mixed = two_class_csv(rows=30, cells={4: "0.1,0.2,unknown"}).replace(",0\n", ",0.0\n")
    result = runner.invoke(app, ["eval", str(model), write(tmp_path, "mixed.csv", mixed), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["unseen_labels"] == ["unknown"] and metrics["unseen_rows"] == 1


def test_npy_files_are_named_not_crashed_on(runner, tmp_path, good_model):
    single = tmp_path / "single.npy"
    np.save(single, np.zeros((3, 4)))
    for args in (["info", str(single)], ["eval", str(single)], ["predict", str(single), "iris"]):
        check_failure(runner.invoke(app, args), 2, ["a single .npy array, not an .npz archive"])
    renamed = tmp_path / "single.npz"
    single.rename(renamed)
    check_failure(runner.invoke(app, ["train", str(renamed)]), 2, ["a single .npy array"])
    check_failure(runner.invoke(app, ["predict", str(good_model), str(renamed)]), 2, ["a single .npy array"])


def test_predict_input_that_cannot_be_read(runner, tmp_path, good_model, monkeypatch):
    names = load_model(good_model)[1]["feature_names"]
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f'"{n}"' for n in names) + "," + "x" * 200_000 + "\n1,2,3,4,5\n")
    wide_result = runner.invoke(app, ["predict", str(good_model), str(wide)])  # a long name is still a name
    assert wide_result.exit_code == 0 and "1 row predicted from wide.csv" in wide_result.output, wide_result.output
    wide.write_text(",".join(f'"{n}"' for n in names) + "\n1,2,3\n")
    check_failure(runner.invoke(app, ["predict", str(good_model), str(wide)]), 2, ["wide.csv, line 2: 3 fields"])
    locked = tmp_path / "locked.csv"
    locked.write_text("a\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    import pyarrow.csv

    monkeypatch.setattr(pyarrow.csv, "open_csv", denied)  # root reads anything: simulate the lock
    check_failure(runner.invoke(app, ["predict", str(good_model), str(locked)]), 2,
                  ["locked.csv: cannot be read", "Permission denied"])


def test_hand_edited_model_configs(runner, tmp_path, good_model):
    with np.load(good_model, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(str(arrays["header"]))
    cases = {
        "unknown": ({**header, "config": {**header["config"], "speed": 3}}, "unknown keys ['speed']"),
        "metrics": ({**header, "metrics": [1, 2]}, "header.metrics must be a table"),
    }
    for name, (edited, needle) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **{**arrays, "header": np.asarray(json.dumps(edited))})
        for args in (["info", str(path)], ["predict", str(path), "iris"], ["eval", str(path)]):
            check_failure(runner.invoke(app, args), 2, [needle])
    # A config without dtype takes the default; bytes classes are read as text: both still work.
    config = {k: v for k, v in header["config"].items() if k != "dtype"}
    path = tmp_path / "lenient.npz"
    np.savez(path, **{**arrays, "header": np.asarray(json.dumps({**header, "config": config})),
                      "classes": arrays["classes"].astype("S")})
    result = runner.invoke(app, ["predict", str(path), "iris"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "setosa"


def test_paths_are_never_read_as_markup(runner, tmp_path):
    folder = tmp_path / "q[" / "b]"  # the path reads "q[/b]": a closing tag to a markup parser
    folder.mkdir(parents=True)
    data = folder / "x[red].csv"
    data.write_text(two_class_csv())
    model = folder / "m[red].npz"
    result = runner.invoke(app, ["train", str(data), "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert "x[red].csv" in flat(result.output) and "m[red].npz" in flat(result.output)
    assert runner.invoke(app, ["info", str(model)]).exit_code == 0


def test_out_of_memory_is_a_clean_failure():
    result = subprocess.run([sys.executable, "-m", "softreg.cli", "train", "synthetic:samples=1000000000", "--quiet"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "not enough memory" in result.stderr and "Traceback" not in result.stderr


def test_extreme_inputs_from_the_command_line(runner, tmp_path, out):
    import warnings

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int)
    near_limit = X.copy()
    near_limit[:, 1] = 1.7e308 * np.sign(rng.standard_normal(200))
    np.savez(tmp_path / "max.npz", X=near_limit, y=y)
    model = tmp_path / "m.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = runner.invoke(app, ["train", str(tmp_path / "max.npz"), "--out", str(model), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["metrics"]["test"]["accuracy"] > 0.9
        check_failure(runner.invoke(app, ["train", str(tmp_path / "max.npz"), "--dtype", "float32", "--out", str(out)]),
                      2, ["beyond float32's range", "--dtype float64"], out)
        extreme = X.copy()
        extreme[5] = [-1e308, 1e308, 1, 1]
        np.savez(tmp_path / "ext.npz", X=extreme, y=y)
        base = tmp_path / "base.npz"
        np.savez(base, X=X, y=y)
        assert runner.invoke(app, ["train", str(base), "--out", str(model), "--quiet"]).exit_code == 0
        check_failure(runner.invoke(app, ["eval", str(model), str(tmp_path / "ext.npz")]), 2,
                      ["data row 6 (counting from 1) gives non-finite logits"])
        weights = "a,b,w,y\n" + "".join(f"{a},{b},{1e308 if i % 2 else 1},{int(a > 0)}\n"
                                        for i, (a, b) in enumerate(X[:, :2].tolist()))
        result = runner.invoke(app, ["train", write(tmp_path, "wt.csv", weights), "--weight-column", "w",
                                     "--out", str(model), "--json"])
        assert result.exit_code == 0 and json.loads(result.stdout)["stop_reason"] == "converged"
        result = runner.invoke(app, ["train", "iris", "--lr", "1e39", "--dtype", "float32", "--out", str(out)])
        check_failure(result, 1, ["halved 20 times"], out)
        assert runner.invoke(app, ["gradcheck", "--features", "2000"]).exit_code == 0
        assert runner.invoke(app, ["gradcheck", "--features", "30000", "--samples", "30"]).exit_code == 0
        assert runner.invoke(app, ["gradcheck", "--eps", "1e10"]).exit_code == 2


def test_small_input_mistakes_get_plain_messages(runner, tmp_path, out):
    check_failure(runner.invoke(app, ["info", str(tmp_path / "nothing.npz")]), 2, ["nothing.npz' does not exist"])
    check_failure(runner.invoke(app, ["train", write(tmp_path, "empty.svm", "# only a comment\n"), "--out", str(out)]),
                  2, ["empty.svm has no data rows"], out)
    np.savez(tmp_path / "float_y.npz", X=np.zeros((10, 2)), y=np.linspace(0, 1, 10))
    check_failure(runner.invoke(app, ["train", str(tmp_path / "float_y.npz"), "--out", str(out)]), 2,
                  ["y holds non-integer numbers", "not a regressor"], out)
    trailing = "a,b,y,\n" + "".join(f"{i},{i % 3},{i % 2},\n" for i in range(30))
    check_failure(runner.invoke(app, ["train", write(tmp_path, "t.csv", trailing), "--out", str(out)]), 2,
                  ["column 4 of the header has no name (a trailing delimiter?)"], out)


def test_many_classes_do_not_print_a_wall_of_text(runner, tmp_path):
    rng = np.random.default_rng(0)
    lines = "a,b,y\n" + "".join(f"{rng.standard_normal()},{rng.standard_normal()},c{i % 40}\n" for i in range(400))
    result = runner.invoke(app, ["train", write(tmp_path, "k.csv", lines), "--out", str(tmp_path / "m.npz"),
                                 "--max-epochs", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "omitted for 40 classes" in flat(result.output) and len(result.output) < 20_000
