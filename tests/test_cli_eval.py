"""`softreg eval`: the held-out test split re-derived exactly, calibration, and its errors."""

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss

from softreg.cli.app import app
from softreg.data import load_dataset, split_indices
from softreg.model.assess.calibration import calibration
from softreg.model.run.persist import load_model


@pytest.fixture
def trained(runner, tmp_path):
    model = tmp_path / "wine.npz"
    result = runner.invoke(app, ["train", "wine", "--json", "--out", str(model), "--seed", "3"])
    assert result.exit_code == 0, result.output
    return model, json.loads(result.stdout)


def test_eval_without_data_reproduces_train_test_metrics(runner, trained):
    model, train_document = trained
    result = runner.invoke(app, ["eval", str(model), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    for key in ("accuracy", "log_loss", "f1_macro", "confusion_matrix", "samples"):
        assert metrics[key] == train_document["metrics"]["test"][key], key


def test_the_test_rows_are_held_out_and_never_trained_on(trained):
    model, train_document = trained
    estimator, header = load_model(model)
    data = load_dataset("wine")
    train_rows, val_rows, test_rows = split_indices(data.y, val_fraction=0.15, test_fraction=0.15, seed=3)
    assert not set(test_rows) & set(train_rows) and not set(test_rows) & set(val_rows)
    assert len(test_rows) == header["split"]["test_rows"] == train_document["metrics"]["test"]["samples"]
    # Independent recomputation of the test metrics with sklearn on exactly those rows.
    proba = estimator.predict_proba(data.X[test_rows])
    y_index = np.searchsorted(estimator.classes_, data.y[test_rows])
    assert accuracy_score(y_index, proba.argmax(1)) == train_document["metrics"]["test"]["accuracy"]
    assert log_loss(y_index, proba, labels=[0, 1, 2]) == pytest.approx(train_document["metrics"]["test"]["log_loss"], rel=1e-12)


def test_eval_on_other_data_and_the_calibration_table(runner, trained, tmp_path):
    model, _ = trained
    result = runner.invoke(app, ["eval", str(model), "wine"])
    assert result.exit_code == 0, result.output
    assert "expected calibration error" in result.output and "observed" in result.output


def test_expected_calibration_error_by_brute_force():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=500)
    y = rng.integers(0, 4, 500)
    result = calibration(y, proba, n_bins=10)
    ece = 0.0
    for low in np.arange(10) / 10:
        members = [i for i in range(500) if low < proba[i].max() <= low + 0.1 + 1e-12]
        if members:
            conf = np.mean([proba[i].max() for i in members])
            acc = np.mean([proba[i].argmax() == y[i] for i in members])
            ece += len(members) / 500 * abs(acc - conf)
    assert result["expected_calibration_error"] == pytest.approx(ece, abs=1e-12)
    assert sum(row["count"] for row in result["reliability"]) == 500
    assert np.allclose(result["observed_frequency"], np.bincount(y, minlength=4) / 500)


def test_unseen_labels_warn_and_count_as_errors(runner, tmp_path):
    train_csv = tmp_path / "train.csv"
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 2))
    labels = np.where(X[:, 0] > 0, "a", "b")
    train_csv.write_text("x1,x2,y\n" + "\n".join(f"{r[0]},{r[1]},{l}" for r, l in zip(X, labels)))
    model = tmp_path / "m.npz"
    assert runner.invoke(app, ["train", str(train_csv), "--out", str(model), "--quiet"]).exit_code == 0
    eval_csv = tmp_path / "eval.csv"
    eval_csv.write_text("x1,x2,y\n2,0,a\n-2,0,b\n0,1,c\n")
    result = runner.invoke(app, ["eval", str(model), str(eval_csv), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["unseen_labels"] == ["c"] and metrics["accuracy"] == pytest.approx(2 / 3)
    assert "never saw (c)" in result.output.replace("\n", " ")


def test_wrong_feature_count_exits_2(runner, trained):
    model, _ = trained
    result = runner.invoke(app, ["eval", str(model), "iris"])
    assert result.exit_code == 2
    assert "model expects 13 features, data has 4" in result.output


def test_not_a_model_and_newer_format_exit_2(runner, trained, tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    result = runner.invoke(app, ["eval", str(junk)])
    assert result.exit_code == 2 and "is not a softreg model file" in flat_output(result)
    model, _ = trained
    with np.load(model, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(str(arrays["header"]))
    header["format_version"] = 99
    arrays["header"] = np.asarray(json.dumps(header))
    newer = tmp_path / "newer.npz"
    np.savez(newer, **arrays)
    result = runner.invoke(app, ["eval", str(newer)])
    assert result.exit_code == 2 and "format version 99" in result.output


def flat_output(result) -> str:
    return " ".join(result.output.split())


def test_eval_matches_csv_columns_by_name_like_predict(runner, tmp_path):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((90, 3))
    labels = np.where(X[:, 0] - X[:, 2] > 0, "p", "q")
    train_csv = tmp_path / "t.csv"
    train_csv.write_text("u,v,w,y\n" + "".join(f"{a},{b},{c},{l}\n" for (a, b, c), l in zip(X.tolist(), labels)))
    model = tmp_path / "m.npz"
    assert runner.invoke(app, ["train", str(train_csv), "--out", str(model), "--quiet"]).exit_code == 0
    shuffled = tmp_path / "s.csv"
    shuffled.write_text("y,w,u,v\n" + "".join(f"{l},{c},{a},{b}\n" for (a, b, c), l in zip(X.tolist(), labels)))
    in_order = json.loads(runner.invoke(app, ["eval", str(model), str(train_csv), "--json"]).stdout)["metrics"]
    result = runner.invoke(app, ["eval", str(model), str(shuffled), "--target", "y", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["log_loss"] == pytest.approx(in_order["log_loss"], rel=1e-12)
