"""The training loop and the estimator, checked against scikit-learn's lbfgs optimum and by brute force."""

import numpy as np
import pytest
from scipy import sparse
from scipy.special import log_softmax as scipy_log_softmax
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from softreg.model.estimator import SoftmaxRegression
from softreg.model.solve import OptimizerSettings, TrainingDiverged, train_softmax

LOADERS = {"iris": load_iris, "wine": load_wine, "digits": load_digits, "breast_cancer": load_breast_cancer}


def reference_objective(W, b, X, y, l2):
    """J = mean CE + l2/2 ||W||^2 from scipy's log_softmax (independent of softreg)."""
    Z = np.asarray(X @ W) + b
    return -scipy_log_softmax(Z, axis=1)[np.arange(len(y)), y].mean() + 0.5 * l2 * np.sum(W * W)


def standardized(name):
    X, y = LOADERS[name](return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("name", list(LOADERS))
@pytest.mark.parametrize("rule", ["auto", "bound"])
def test_objective_never_increases(name, rule):
    X, y = standardized(name)
    K = len(np.unique(y))
    # The step rules' own guarantee (README's table), so without momentum: Nesterov's steps at
    # the floating-point floor may rise by a rounding error (1e-17 on wine).
    result = train_softmax(X, y, K, l2=1e-3, settings=OptimizerSettings(lr=rule, momentum="none", max_epochs=150,
                                                                         tol=0))
    losses = np.array(result.history["train_loss"])
    assert len(losses) >= 2
    assert np.all(np.diff(losses) <= 0), f"objective rose at epochs {np.flatnonzero(np.diff(losses) > 0) + 1}"
    # The recorded objective is the true objective at the returned weights.
    assert losses[-1] == pytest.approx(reference_objective(result.W, result.b, X, y, 1e-3), rel=1e-12)


@pytest.mark.parametrize("momentum", [None, "nesterov"])
@pytest.mark.parametrize("name", ["iris", "wine"])
def test_reaches_the_lbfgs_optimum(name, momentum):
    X, y = standardized(name)
    N, K = len(y), len(np.unique(y))
    C = 1.0
    l2 = 1.0 / (C * N)  # scikit-learn's C-scaled sum equals softreg's mean objective at this l2
    lbfgs = LogisticRegression(C=C, tol=1e-12, max_iter=100_000).fit(X, y)
    f_star = reference_objective(lbfgs.coef_.T, lbfgs.intercept_, X, y, l2)
    result = train_softmax(X, y, K, l2=l2, settings=OptimizerSettings(momentum=momentum, max_epochs=20_000, tol=1e-9))
    f = reference_objective(result.W, result.b, X, y, l2)
    assert f <= f_star * (1 + 1e-7)
    assert np.max(np.abs(result.W.T - lbfgs.coef_)) < 1e-3


def test_estimator_folds_scaling_into_raw_coefficients():
    X, y = load_wine(return_X_y=True)
    model = SoftmaxRegression(l2=1e-2, tol=1e-10, max_epochs=5000).fit(X, y)
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X)
    # Brute force: logits in standardized coordinates with the internal weights.
    Z_standardized = Xs @ model.weights_ + model.bias_
    assert np.allclose(model.decision_function(X), Z_standardized, rtol=1e-10, atol=1e-10)
    proba = model.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert np.allclose(model.predict_log_proba(X), scipy_log_softmax(Z_standardized, axis=1), atol=1e-10)
    assert model.coef_.shape == (3, 13) and model.intercept_.shape == (3,)
    # The same optimum as scikit-learn on the standardized data (l2 = 1/(C N)).
    lbfgs = LogisticRegression(C=1.0 / (1e-2 * len(y)), tol=1e-12, max_iter=100_000).fit(Xs, y)
    assert np.allclose(proba, lbfgs.predict_proba(Xs), atol=1e-5)


def test_string_labels_and_score():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = SoftmaxRegression().fit(X, names)
    assert list(model.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(model.predict(X)) <= set(names)
    assert model.score(X, names) > 0.95
    assert model.n_iter_ == len(model.loss_curve_) - 1


def test_sparse_equals_dense():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20)) * (rng.random((300, 20)) < 0.3)
    y = rng.integers(0, 4, 300)
    # A fixed step, so both follow the same path (auto's backtracking could branch on rounding).
    settings = dict(l2=1e-2, max_epochs=50, tol=0, standardize=False, lr=0.5)
    dense = SoftmaxRegression(**settings).fit(X, y)
    sparse_model = SoftmaxRegression(**settings).fit(sparse.csr_matrix(X), y)
    assert np.allclose(dense.coef_, sparse_model.coef_, rtol=1e-10, atol=1e-12)


def test_sparse_rows_are_centered_by_folding_and_reach_the_dense_optimum():
    """Sparse X is standardized like dense X (mean and scale), without being densified: the
    fitted model equals the one fitted on X.toarray(), and X itself is left untouched."""
    rng = np.random.default_rng(1)
    X = sparse.random(200, 30, density=0.1, random_state=1, format="csr") * 5
    original = X.copy()
    y = rng.integers(0, 3, 200)
    settings = dict(l2=1e-2, tol=1e-10, max_epochs=20_000, momentum="nesterov")
    fitted_sparse = SoftmaxRegression(**settings).fit(X, y)
    fitted_dense = SoftmaxRegression(**settings).fit(X.toarray(), y)
    assert np.allclose(fitted_sparse.feature_mean_, np.asarray(X.mean(axis=0)).ravel(), rtol=1e-12)
    assert np.allclose(fitted_sparse.feature_scale_, fitted_dense.feature_scale_, rtol=1e-12)
    assert np.allclose(fitted_sparse.coef_, fitted_dense.coef_, rtol=1e-6, atol=1e-8)
    assert np.allclose(fitted_sparse.intercept_, fitted_dense.intercept_, rtol=1e-6, atol=1e-8)
    assert (X != original).nnz == 0
    # Mini-batches draw rows of X itself, so sparse mini-batch runs scale without centering.
    minibatch = SoftmaxRegression(batch_size=50, lr=0.1, max_epochs=3).fit(X, y)
    assert np.all(minibatch.feature_mean_ == 0) and np.all(np.isfinite(minibatch.coef_))


def test_sample_weights_equal_repeated_rows():
    X, y = load_iris(return_X_y=True)
    weights = np.ones(len(y))
    weights[:10] = 3
    repeated_X = np.vstack([X, X[:10], X[:10]])
    repeated_y = np.concatenate([y, y[:10], y[:10]])
    settings = dict(l2=1e-2, tol=0, max_epochs=200, standardize=False, lr="bound")
    weighted = SoftmaxRegression(**settings).fit(X, y, sample_weight=weights)
    repeated = SoftmaxRegression(**settings).fit(repeated_X, repeated_y)
    assert np.allclose(weighted.coef_, repeated.coef_, rtol=1e-6, atol=1e-8)


def test_class_weight_balanced_matches_explicit_weights():
    X, y = load_breast_cancer(return_X_y=True)
    counts = np.bincount(y)
    explicit = (len(y) / (2 * counts))[y]
    settings = dict(l2=1e-2, tol=0, max_epochs=50)
    balanced = SoftmaxRegression(class_weight="balanced", **settings).fit(X, y)
    weighted = SoftmaxRegression(**settings).fit(X, y, sample_weight=explicit)
    assert np.allclose(balanced.coef_, weighted.coef_, rtol=1e-12, atol=1e-12)


def test_reproducible_to_1e_12():
    X, y = load_digits(return_X_y=True)
    for settings in (dict(max_epochs=100), dict(momentum="nesterov", max_epochs=100),
                     dict(batch_size=64, lr=0.05, max_epochs=5)):
        first = SoftmaxRegression(**settings).fit(X, y)
        second = SoftmaxRegression(**settings).fit(X, y)
        assert np.max(np.abs(first.coef_ - second.coef_)) <= 1e-12
        assert first.loss_curve_ == second.loss_curve_


def test_stop_reason_converged_and_max_epochs():
    X, y = standardized("iris")
    converged = train_softmax(X, y, 3, l2=1e-2, settings=OptimizerSettings(tol=1e-6, max_epochs=10_000))
    assert converged.stop_reason == "converged"
    assert converged.history["grad_norm"][-1] <= 1e-6 * converged.history["grad_norm"][0]
    assert "converged at epoch" in converged.stop_message
    capped = train_softmax(X, y, 3, l2=1e-2, settings=OptimizerSettings(tol=1e-12, max_epochs=5))
    assert capped.stop_reason == "max_epochs" and capped.n_epochs == 5
    # The library speaks in parameter names; the CLI words the same stop in flags.
    assert "Raise max_epochs" in capped.stop_message and "--" not in capped.stop_message


def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 60))  # noise: validation loss soon rises as training overfits
    y = rng.integers(0, 3, 120)
    X_val, y_val = rng.standard_normal((60, 60)), rng.integers(0, 3, 60)
    result = train_softmax(X, y, 3, l2=0.0, validation=(X_val, y_val),
                           settings=OptimizerSettings(max_epochs=2000, tol=0, patience=5))
    assert result.stop_reason == "early_stopped"
    val = result.history["val_loss"]
    assert result.best_epoch == int(np.argmin(val))
    assert result.n_epochs == result.best_epoch + 5
    # The returned weights are the best epoch's: their validation loss is the minimum.
    Z = X_val @ result.W + result.b
    assert -scipy_log_softmax(Z, axis=1)[np.arange(60), y_val].mean() == pytest.approx(min(val), rel=1e-12)
    assert f"best {min(val):.4g} at epoch {result.best_epoch}" in result.stop_message


def test_divergence_guard_halves_and_reports():
    X, y = standardized("iris")
    result = train_softmax(X, y, 3, l2=1e-3, settings=OptimizerSettings(lr=50.0, max_epochs=50, tol=0))
    assert result.halvings, "a step of 50 on standardized iris should trip the guard"
    steps = [step for _, step in result.halvings]
    assert steps == [50.0 / 2 ** (i + 1) for i in range(len(steps))]
    assert np.all(np.diff(result.history["train_loss"]) <= 1e-12)


def test_divergence_guard_gives_up_after_20_halvings():
    X, y = standardized("iris")
    with pytest.raises(TrainingDiverged, match="halved 20 times"):
        train_softmax(X * 1e6, y, 3, settings=OptimizerSettings(lr=1e12, max_epochs=5))


def test_minibatch_sgd_learns():
    X, y = standardized("digits")
    result = train_softmax(X, y, 10, l2=1e-3, settings=OptimizerSettings(batch_size=128, lr=0.1, max_epochs=10, tol=0))
    losses = result.history["train_loss"]
    assert losses[-1] < 0.25 * losses[0]
    assert result.n_epochs == 10


def test_float32_stays_float32():
    X, y = load_digits(return_X_y=True)
    model = SoftmaxRegression(dtype="float32", max_epochs=50).fit(X, y)
    assert model.weights_.dtype == np.float32 and model.coef_.dtype == np.float32
    reference = SoftmaxRegression(max_epochs=50).fit(X, y)
    assert np.mean(model.predict(X) == reference.predict(X)) > 0.99


@pytest.mark.parametrize(
    "params, needle",
    [(dict(lr=-1.0), "lr"), (dict(lr="fast"), "lr"), (dict(l2=-1.0), "l2"), (dict(max_epochs=-1), "max_epochs"),
     (dict(momentum="heavy"), "momentum"), (dict(dtype="float16"), "dtype")],
)
def test_bad_parameters_name_themselves(params, needle):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=needle):
        SoftmaxRegression(**params).fit(X, y)


def test_single_class_is_an_error():
    with pytest.raises(ValueError, match="1 class"):
        SoftmaxRegression().fit(np.ones((5, 2)), np.zeros(5))


def test_small_problems_train_on_one_blas_thread():
    from threadpoolctl import threadpool_info

    seen = []

    def record(_):
        seen.append(max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"))

    X, y = np.random.default_rng(0).standard_normal((300, 5)), np.arange(300) % 3
    SoftmaxRegression(max_epochs=3).fit(X, y, callback=record)
    assert seen and set(seen) == {1}


def test_blockwise_scaling_equals_standard_scaler():
    from sklearn.preprocessing import StandardScaler

    from softreg.model.math.scaling import weighted_mean_and_scale

    rng = np.random.default_rng(4)
    X = rng.standard_normal((1000, 6)) * [1, 10, 1e-3, 1e4, 1, 0] + [0, 5, -3, 1e6, 0, 7]  # last column constant
    w = rng.uniform(0.1, 3, 1000)
    for weights in (None, w):
        mean, scale = weighted_mean_and_scale(X, weights, block_rows=77)
        reference = StandardScaler().fit(X, sample_weight=weights)
        np.testing.assert_allclose(mean, reference.mean_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(scale, reference.scale_, rtol=1e-10)
        assert scale[-1] == 1.0


def test_overwrite_x_saves_a_copy_and_changes_nothing_else():
    import tracemalloc

    rng = np.random.default_rng(5)
    X = rng.standard_normal((20_000, 200)) * 3 + 1
    y = (X[:, 0] > 1).astype(int) + (X[:, 1] > 2)
    reference = SoftmaxRegression(max_epochs=5).fit(X.copy(), y)
    peaks = {}
    for overwrite in (False, True):
        data = X.copy()
        tracemalloc.start()
        model = SoftmaxRegression(max_epochs=5).fit(data, y, overwrite_X=overwrite)
        peaks[overwrite] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-12, atol=1e-14)
        assert np.array_equal(data, X) != overwrite  # overwritten only when asked
    assert peaks[False] > X.nbytes  # the standardized copy
    assert peaks[True] < 0.5 * X.nbytes, peaks


@pytest.mark.parametrize("layout", ["dense", "sparse"])
@pytest.mark.parametrize("weighted", [False, True])
def test_fast_pass_equals_the_plain_formula(layout, weighted):
    """The production pass (transposed product, in-place softmax, no one-hot) against the
    formula written out with a one-hot Y and scipy's softmax."""
    from scipy import sparse
    from scipy.special import softmax as scipy_softmax

    from softreg.model import loss_and_gradient

    rng = np.random.default_rng(11)
    n, d, k = 5000, 50, 7
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < (0.2 if layout == "sparse" else 1.0))
    y = rng.integers(0, k, n)
    W, b = rng.standard_normal((d, k)) * 0.3, rng.standard_normal(k)
    w = rng.uniform(0.1, 2.0, n) if weighted else np.ones(n)
    loss, dW, db = loss_and_gradient(W, b, sparse.csr_matrix(X) if layout == "sparse" else X, y, l2=0.05,
                                     sample_weight=w if weighted else None)
    Y = np.eye(k)[y]
    P = scipy_softmax(X @ W + b, axis=1)
    omega = w / w.sum()
    reference_loss = -np.sum(omega * np.log(P[np.arange(n), y])) + 0.025 * np.sum(W * W)
    reference_dW = X.T @ (omega[:, None] * (P - Y)) + 0.05 * W
    reference_db = (omega[:, None] * (P - Y)).sum(axis=0)
    assert loss == pytest.approx(reference_loss, rel=1e-12)
    np.testing.assert_allclose(dW, reference_dW, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(db, reference_db, rtol=1e-12, atol=1e-15)


def test_rows_permuted_in_place_match_fancy_indexing():
    from softreg.model.run.train import permute_rows_in_place

    rng = np.random.default_rng(6)
    X = rng.standard_normal((500, 7))
    order = rng.permutation(500)
    reference = X[order]
    permute_rows_in_place(X, order)
    np.testing.assert_array_equal(X, reference)


def test_in_place_training_gives_the_same_run_as_copies():
    from softreg.data import load_dataset
    from softreg.model.run.config import resolve_config
    from softreg.model.run.train import fit_dataset

    config = resolve_config({}, {"dataset": "wine", "max_epochs": 200, "seed": 4})
    copied_data, in_place_data = load_dataset("wine"), load_dataset("wine")
    original = copied_data.X.copy()
    copied = fit_dataset(copied_data, config)
    in_place = fit_dataset(in_place_data, config, in_place=True)
    np.testing.assert_array_equal(copied_data.X, original)  # the default leaves the dataset alone
    assert not np.array_equal(in_place_data.X, original)
    np.testing.assert_allclose(in_place.estimator.coef_, copied.estimator.coef_, rtol=1e-12, atol=1e-14)
    for split in ("train", "validation", "test"):
        for key in ("accuracy", "log_loss", "samples"):
            assert in_place.metrics[split][key] == pytest.approx(copied.metrics[split][key], rel=1e-12), (split, key)


def test_sparse_float32_is_scaled_not_centered_and_compare_stays_sparse():
    """float32 would lose the centering to cancellation (x W' - mean W'), so it is not folded;
    compare fits scikit-learn on the scaled sparse rows and still finds the same optimum."""
    from softreg.model.assess.compare import compare_with_sklearn

    rng = np.random.default_rng(2)
    X = sparse.random(300, 20, density=0.2, random_state=2, format="csr") * 3
    y = rng.integers(0, 3, 300)
    model32 = SoftmaxRegression(dtype="float32", max_epochs=50).fit(X, y)
    assert np.all(model32.feature_mean_ == 0)
    model = SoftmaxRegression(l2=1e-2, tol=1e-10, max_epochs=20_000, momentum="nesterov")
    assert sparse.issparse(model.fit(X, y)._standardize(X))
    result = compare_with_sklearn(model, X[:240], y[:240], X[240:], y[240:])
    assert result["verdict"].startswith("match"), result


@pytest.mark.parametrize("weighting", ["class_weight", "sample_weight"])
def test_a_class_of_total_weight_zero_is_refused_before_training(weighting):
    """Issue 17: such a class's intercept has no finite optimum (J falls as b_c -> -inf), so the
    descent used to run every epoch in silence. It is refused, naming the class, before any epoch."""
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    epochs = []
    if weighting == "class_weight":
        model, fit = SoftmaxRegression(class_weight={"versicolor": 0.0}), {}
    else:
        model, fit = SoftmaxRegression(), {"sample_weight": np.where(labels == "versicolor", 0.0, 1.0)}
    with pytest.raises(ValueError, match="class 'versicolor' a total weight of 0"):
        model.fit(X, labels, callback=lambda *args, **kwargs: epochs.append(1), **fit)
    assert epochs == []
    # One zero-weight row of a class that keeps others is an ordinary weighting.
    weights = np.ones(len(y))
    weights[np.flatnonzero(labels == "versicolor")[0]] = 0.0
    assert SoftmaxRegression().fit(X, labels, sample_weight=weights).score(X, labels) > 0.9


def test_train_refuses_a_weight_column_that_zeroes_a_class(runner, tmp_path):
    from softreg.cli.app import app

    X, y = load_iris(return_X_y=True)
    rows = ["a,b,c,d,w,y"] + [",".join(f"{v}" for v in x) + f",{0 if t == 1 else 1},{t}" for x, t in zip(X, y)]
    table = tmp_path / "iris_w.csv"
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", str(table), "--weight-column", "w", "--out", str(out), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "class 1 a total weight of 0" in result.output and "Traceback" not in result.output
    assert not out.exists()
