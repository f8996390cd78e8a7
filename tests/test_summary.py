"""softreg summary against statsmodels' MNLogit: coefficients, standard errors (observed
information and HC0), z, p, intervals and the likelihood statistics, on statsmodels' own
datasets; and each refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from softreg.cli.app import app

sm = pytest.importorskip("statsmodels.api")
runner = CliRunner()
EXACT = ["--l2", "0", "--val-fraction", "0", "--test-fraction", "0", "--tol", "1e-11", "--momentum", "nesterov",
         "--max-epochs", "100000"]
RTOL = 1e-5


def anes96():
    data = sm.datasets.anes96.load_pandas().data
    return data[["logpopul", "selfLR", "age", "educ", "income", "PID"]], "PID"


def fair():
    data = sm.datasets.fair.load_pandas().data
    return data[["age", "yrs_married", "children", "religious", "educ", "rate_marriage"]], "rate_marriage"


def spector():
    data = sm.datasets.spector.load_pandas().data
    return data[["GPA", "TUCE", "PSI", "GRADE"]], "GRADE"


def trained(tmp_path, frame, target, *extra):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    model = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", str(path), "--target", target, "--quiet", "--json", "--out", str(model),
                                 *EXACT, *extra])
    assert result.exit_code == 0, result.output[-2000:]
    return model


def summarized(model, *args):
    result = runner.invoke(app, ["summary", str(model), "--json", *args])
    assert result.exit_code == 0, result.output[-2000:]
    return json.loads(result.stdout)


def assert_close(ours, theirs, what):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    scale = np.abs(theirs).max()
    assert np.abs(ours - theirs).max() <= RTOL * scale, (what, np.abs(ours - theirs).max() / scale)


@pytest.mark.parametrize("dataset", [anes96, fair, spector])
@pytest.mark.parametrize("robust", [False, True])
def test_the_table_equals_statsmodels_mnlogit(tmp_path, dataset, robust):
    frame, target = dataset()
    features = [name for name in frame.columns if name != target]
    model = trained(tmp_path, frame, target)
    ours = summarized(model, *(["--robust"] if robust else []))
    theirs = sm.MNLogit(frame[target].to_numpy(), sm.add_constant(frame[features].to_numpy(float))).fit(
        method="newton", tol=1e-12, maxiter=200, disp=0, **({"cov_type": "HC0"} if robust else {}))
    assert ours["names"] == ["const", *features] and ours["n_obs"] == len(frame)
    assert_close(ours["coef"], theirs.params, "coef")
    assert_close(ours["se"], theirs.bse, "se")
    assert_close(ours["z"], theirs.tvalues, "z")
    assert_close(ours["p"], theirs.pvalues, "p")
    interval = np.asarray(theirs.conf_int())  # rows: each class's parameters in turn
    lower, upper = (np.asarray(ours[key]).T.reshape(-1) for key in ("lower", "upper"))
    if interval.ndim == 3:  # some statsmodels versions give (K - 1, D + 1, 2)
        interval = interval.reshape(-1, 2)
    assert_close(lower, interval[:, 0], "lower")
    assert_close(upper, interval[:, 1], "upper")
    for key in ("llf", "llnull", "aic", "bic", "prsquared", "llr"):
        assert_close(ours[key], getattr(theirs, key), key)
    assert ours["llr_df"] == theirs.df_model


def test_relative_risk_ratios_and_another_reference(tmp_path):
    frame, target = fair()
    features = [name for name in frame.columns if name != target]
    model = trained(tmp_path, frame, target)
    ours = summarized(model, "--exp", "--reference", "3")
    y = frame[target].to_numpy()
    # statsmodels takes the first category as the reference: relabel so that 3 sorts first.
    relabeled = np.where(y == 3, 0, y)
    theirs = sm.MNLogit(relabeled, sm.add_constant(frame[features].to_numpy(float))).fit(
        method="newton", tol=1e-12, maxiter=200, disp=0)
    assert ours["reference"] == 3 and ours["classes"] == [1, 2, 4, 5]
    assert_close(ours["coef"], theirs.params, "coef")
    assert_close(ours["rrr"], np.exp(theirs.params), "rrr")
    assert_close(ours["rrr_se"], np.exp(theirs.params) * theirs.bse, "rrr se")
    shown = runner.invoke(app, ["summary", str(model), "--exp", "--reference", "3"], env={"COLUMNS": "120"})
    assert shown.exit_code == 0 and "RRR" in shown.output and "reference class: 3" in shown.output


def test_categorical_columns_are_reported_against_their_first_level(tmp_path):
    """One-hot levels with an intercept are collinear; the table drops each column's first level
    (its coefficients become differences from it), as pandas' get_dummies(drop_first=True) does."""
    import pandas as pd

    frame, target = fair()
    # ("none" would be read as a missing cell, as NA and null are.)
    frame = frame.assign(children=frame["children"].clip(upper=3).map({0: "zero", 1: "one", 2: "two", 3: "more"}))
    model = trained(tmp_path, frame, target, "--categorical", "children")
    ours = summarized(model)
    dummies = pd.get_dummies(frame.drop(columns=target), columns=["children"], drop_first=True, dtype=float)
    order = ["age", "yrs_married", "religious", "educ", "children_one", "children_two", "children_zero"]
    theirs = sm.MNLogit(frame[target].to_numpy(), sm.add_constant(dummies[order].to_numpy(float))).fit(
        method="newton", tol=1e-12, maxiter=200, disp=0)
    assert ours["names"] == ["const", "age", "yrs_married", "children=one", "children=two", "children=zero",
                             "religious", "educ"]
    permutation = [0, 1, 2, 5, 6, 7, 3, 4]  # ours (children where the column was) -> statsmodels' order
    assert_close(ours["coef"], np.asarray(theirs.params)[permutation], "coef")
    assert_close(ours["se"], np.asarray(theirs.bse)[permutation], "se")


@pytest.mark.parametrize("extra, needle", [
    (["--l2", "1e-3"], "l2 = 0.001"),
    (["--max-epochs", "3"], "did not converge"),
])
def test_a_penalized_or_unconverged_model_is_refused(tmp_path, extra, needle):
    frame, target = spector()
    model = trained(tmp_path, frame, target, *extra)
    result = runner.invoke(app, ["summary", str(model)])
    assert result.exit_code == 2 and needle in " ".join(result.output.split()) and "Traceback" not in result.output


def test_a_separated_class_is_refused_naming_it(tmp_path):
    """iris: setosa is separated from the others by the petal measurements; statsmodels prints
    standard errors in the millions with a generic warning."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    model = tmp_path / "m.npz"
    path = tmp_path / "iris.csv"
    iris.to_csv(path, index=False)
    # A loose tol lets the descent stop on its way to infinity (a tight one runs out of epochs,
    # which is refused as unconverged).
    result = runner.invoke(app, ["train", str(path), "--target", "target", "--quiet", "--out", str(model),
                                 *EXACT[:4], "--tol", "1e-5", "--momentum", "nesterov"])
    assert result.exit_code == 0, result.output[-1000:]
    summary = runner.invoke(app, ["summary", str(model)])
    words = " ".join(summary.output.split())
    assert summary.exit_code == 2 and "class 0 is separated from the others" in words and "'petal" in words, words
    assert "Traceback" not in summary.output


def test_collinear_columns_are_named(tmp_path):
    frame, target = spector()
    frame = frame.assign(GPA2=frame["GPA"] * 2.0)
    model = trained(tmp_path, frame, target)
    result = runner.invoke(app, ["summary", str(model)])
    words = " ".join(result.output.split())
    assert result.exit_code == 2 and "singular" in words and "'GPA'" in words and "'GPA2'" in words, words


def test_an_unknown_reference_is_refused(tmp_path):
    frame, target = spector()
    model = trained(tmp_path, frame, target)
    result = runner.invoke(app, ["summary", str(model), "--reference", "7"])
    assert result.exit_code == 2 and "reference '7' is not a class of the model; its classes are 0, 1" in \
        " ".join(result.output.split())


def statsmodels_fit(frame, target):
    features = [name for name in frame.columns if name != target]
    return sm.MNLogit(frame[target].to_numpy(), sm.add_constant(frame[features].to_numpy(float))).fit(
        method="newton", tol=1e-12, maxiter=200, disp=0)


@pytest.mark.parametrize("source, engine", [("npy", "stream"), ("folder", "stream"), ("npy", "dask")])
def test_models_trained_from_storage_are_summed_block_by_block(tmp_path, source, engine):
    """A prepared .npy or a folder of Parquet partitions (what stream and dask models train on):
    the information matrix is summed by the stream engine, a block at a time, and the table is
    statsmodels'."""
    if engine == "dask":
        pytest.importorskip("distributed", reason="the dask extra is part of the test extra")
    frame, target = anes96()
    if source == "npy":
        frame.to_csv(tmp_path / "anes.csv", index=False)
        data = tmp_path / "anes.npy"
        prepared = runner.invoke(app, ["prepare", str(tmp_path / "anes.csv"), str(data), "--target", target])
        assert prepared.exit_code == 0, prepared.output[-1000:]
    else:
        data = tmp_path / "parts"
        data.mkdir()
        for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
            frame.iloc[part].to_parquet(data / f"part-{i}.parquet", index=False)
    model = tmp_path / "m.npz"
    extra = ["--block-rows", "200"] if source == "npy" else []  # several blocks, so the sums are added
    result = runner.invoke(app, ["train", str(data), "--engine", engine, "--quiet", "--out", str(model), *EXACT,
                                 *extra, *(["--target", target] if source == "folder" else [])])
    assert result.exit_code == 0, result.output[-2000:]
    ours = summarized(model, "--robust")
    theirs = sm.MNLogit(frame[target].to_numpy(), sm.add_constant(frame.drop(columns=target).to_numpy(float))).fit(
        method="newton", tol=1e-12, maxiter=200, disp=0, cov_type="HC0")
    assert ours["n_obs"] == len(frame)
    assert_close(ours["coef"], theirs.params, "coef")
    assert_close(ours["se"], theirs.bse, "se")
    assert_close(ours["llf"], theirs.llf, "llf")


def test_the_sums_leave_out_rows_that_are_not_training_rows(tmp_path):
    """With a test split, the table is statsmodels' on the training rows alone (the other rows
    weigh 0 in the engine's blocks)."""
    from softreg.data import load_dataset
    from softreg.data.split import split_indices

    frame, target = spector()
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    model = tmp_path / "m.npz"
    args = ["--l2", "0", "--val-fraction", "0", "--test-fraction", "0.25", "--tol", "1e-11", "--momentum", "nesterov",
            "--max-epochs", "100000", "--seed", "3"]
    assert runner.invoke(app, ["train", str(path), "--target", target, "--quiet", "--out", str(model), *args]).exit_code == 0
    ours = summarized(model)
    y = load_dataset(str(path), target=target).y
    train, _, _ = split_indices(y, val_fraction=0.0, test_fraction=0.25, seed=3)
    theirs = statsmodels_fit(frame.iloc[train], target)
    assert ours["n_obs"] == len(train) < len(frame)
    assert_close(ours["coef"], theirs.params, "coef")
    assert_close(ours["se"], theirs.bse, "se")


def test_a_weighted_model_is_refused(tmp_path):
    frame, target = spector()
    model = trained(tmp_path, frame, target, "--class-weight", "balanced")
    result = runner.invoke(app, ["summary", str(model)])
    assert result.exit_code == 2 and "row or class weights" in " ".join(result.output.split())


def test_an_information_matrix_too_large_for_memory_is_refused_with_its_size(tmp_path, monkeypatch):
    """The limit lowered to 1,000 bytes: spector's matrix is 4 x 4 (128 bytes), anes96's 36 x 36
    (6 equations of 6 parameters: 10,368 bytes)."""
    from softreg.model.assess import summary

    monkeypatch.setattr(summary, "MAX_INFORMATION_BYTES", 1000)
    assert runner.invoke(app, ["summary", str(trained(tmp_path, *spector()))]).exit_code == 0
    result = runner.invoke(app, ["summary", str(trained(tmp_path, *anes96()))])
    words = " ".join(result.output.split())
    assert result.exit_code == 2 and "36 x 36 (10.1 KiB), more than the 1,000 bytes" in words and "select fewer features or classes" in words, words


def test_the_library_call_on_rows_in_memory_gives_statsmodels_standard_errors():
    """summarize(X, y, W, b, ...) at statsmodels' own estimate (its reference class's weights 0):
    the standard errors, plain and HC0, are statsmodels'."""
    from softreg.model.assess.summary import summarize

    frame, target = anes96()
    X = frame.drop(columns=target).to_numpy(float)
    classes, y = np.unique(frame[target].to_numpy(), return_inverse=True)
    for robust in (False, True):
        theirs = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", tol=1e-12, maxiter=200, disp=0,
                                                        **({"cov_type": "HC0"} if robust else {}))
        params = np.asarray(theirs.params)  # (D + 1, K - 1): const first
        W = np.hstack([np.zeros((X.shape[1], 1)), params[1:]])
        b = np.concatenate([[0.0], params[0]])
        ours = summarize(X, y, W, b, list(classes), list(frame.columns[:-1]), robust=robust)
        assert_close(ours.coef, params, "coef")
        assert_close(ours.se, theirs.bse, "se")
        assert_close(ours.llf, theirs.llf, "llf")
