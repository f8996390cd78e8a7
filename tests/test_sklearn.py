"""Proven against the field: scikit-learn's conformance suite, the LogisticRegression optimum,
autodiff, and properties of the derivation that hold for every input."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from softreg.cli.app import app
from softreg.model import SoftmaxRegression, SoftmaxRegressionCV, loss_and_gradient
from softreg.model.assess.compare import sklearn_C
from softreg.model.math.softmax import cross_entropy, cross_entropy_and_logit_gradient

# scikit-learn's own suite. No check is expected to fail; the few that need pandas are
# skipped by scikit-learn itself when pandas is absent.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks([SoftmaxRegression()], expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_pipeline_grid_search_cross_validation_and_clone():
    X, y = load_iris(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), SoftmaxRegression(max_epochs=300))
    scores = cross_val_score(pipeline, X, y, cv=KFold(5, shuffle=True, random_state=0))
    assert scores.mean() > 0.9
    search = GridSearchCV(SoftmaxRegression(max_epochs=300), {"l2": [1e-4, 1e-2, 1.0]}, cv=3).fit(X, y)
    assert search.best_params_["l2"] in (1e-4, 1e-2)  # the heaviest penalty underfits
    twin = clone(SoftmaxRegression(l2=0.5, momentum="nesterov"))
    assert twin.get_params()["l2"] == 0.5 and not hasattr(twin, "coef_")


def test_sample_weight_is_routed_through_cross_validation():
    import sklearn

    X, y = load_wine(return_X_y=True)
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    folds = KFold(3, shuffle=True, random_state=1)
    with sklearn.config_context(enable_metadata_routing=True):
        model = SoftmaxRegression(max_epochs=200).set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        routed = cross_val_score(model, X, y, cv=folds, params={"sample_weight": weights})
    by_hand = [SoftmaxRegression(max_epochs=200).fit(X[train], y[train], weights[train]).score(X[test], y[test])
               for train, test in folds.split(X)]
    np.testing.assert_allclose(routed, by_hand, rtol=0, atol=0)
    # Through a Pipeline and a grid search too: the weights reach the estimator's fit.
    with sklearn.config_context(enable_metadata_routing=True):
        scaler = StandardScaler().set_fit_request(sample_weight=False)
        inner = SoftmaxRegression(max_epochs=200).set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        piped = make_pipeline(scaler, inner).fit(X, y, sample_weight=weights)
        search = GridSearchCV(SoftmaxRegression(max_epochs=200).set_fit_request(sample_weight=True)
                              .set_score_request(sample_weight=False), {"l2": [1e-3]}, cv=folds).fit(X, y, sample_weight=weights)
    direct = SoftmaxRegression(max_epochs=200).fit(StandardScaler().fit_transform(X), y, weights)
    np.testing.assert_allclose(piped[-1].coef_, direct.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(search.best_estimator_.coef_, SoftmaxRegression(max_epochs=200).fit(X, y, weights).coef_,
                               rtol=1e-10, atol=1e-12)
    fitted_twin = clone(direct)  # a clone of a fitted model carries the parameters, not the fit
    assert fitted_twin.get_params() == direct.get_params() and not hasattr(fitted_twin, "coef_")


LOADERS = {"iris": load_iris, "wine": load_wine, "digits": load_digits, "breast_cancer": load_breast_cancer}


@pytest.mark.parametrize("name", list(LOADERS))
def test_same_optimum_as_lbfgs(name):
    X, y = LOADERS[name](return_X_y=True)
    X = StandardScaler().fit_transform(X)
    n, k = X.shape[0], len(np.unique(y))
    l2 = 1.0 / n  # scikit-learn's default C = 1 for K >= 3
    C = sklearn_C(l2, n, k)
    assert C == pytest.approx(1.0 if k > 2 else 2.0)
    ours = SoftmaxRegression(l2=l2, momentum="nesterov", tol=1e-10, max_epochs=50_000, standardize=False).fit(X, y)
    theirs = LogisticRegression(C=C, tol=1e-12, max_iter=50_000).fit(X, y)

    def objective(coef_rows, intercept, penalty):
        """The objective computed by scikit-learn's log_loss, independent of softreg's code."""
        z = X @ coef_rows.T + intercept
        proba = np.exp(z - z.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        return log_loss(y, proba, labels=np.unique(y)) + penalty

    if k == 2:
        # One vector d for classes_[1] on both sides (LogisticRegression's convention): softreg's
        # coef_ is the difference of its logits' weights w_1 - w_0, with w_1 = -w_0 at the optimum.
        def binary_objective(d, c):
            return objective(np.stack([-d / 2, d / 2]), np.array([-c / 2, c / 2]), l2 / 4 * np.sum(d ** 2))

        assert ours.coef_.shape == (1, X.shape[1]) and ours.intercept_.shape == (1,)
        assert ours.weights_.shape == (X.shape[1], 2)
        np.testing.assert_allclose(ours.weights_[:, 1], -ours.weights_[:, 0], atol=1e-12)
        ours_objective = binary_objective(ours.coef_[0], ours.intercept_[0])
        theirs_objective = binary_objective(theirs.coef_[0], theirs.intercept_[0])
        np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
        np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-4)
        assert np.abs(ours.decision_function(X) - theirs.decision_function(X)).max() < 1e-4
    else:
        ours_objective = objective(ours.coef_, ours.intercept_, l2 / 2 * np.sum(ours.coef_ ** 2))
        theirs_objective = objective(theirs.coef_, theirs.intercept_, l2 / 2 * np.sum(theirs.coef_ ** 2))
        np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
        np.testing.assert_allclose(ours.intercept_ - ours.intercept_.mean(),
                                   theirs.intercept_ - theirs.intercept_.mean(), atol=1e-4)
    assert ours_objective == pytest.approx(theirs_objective, rel=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-5)


def test_compare_command_shows_the_match_on_digits(runner):
    result = runner.invoke(app, ["compare", "digits", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["objective_relative_difference"] < 1e-6
    assert document["max_coef_difference"] < 1e-4 and document["max_proba_difference"] < 1e-5
    sides = document["sides"]
    assert sides["softreg"]["test_accuracy"] == sides["scikit-learn lbfgs"]["test_accuracy"]
    table = runner.invoke(app, ["compare", "breast_cancer"])
    assert table.exit_code == 0 and "scikit-learn C = " in table.output and "objective relative difference" in table.output


def test_compare_rejects_bad_input(runner):
    result = runner.invoke(app, ["compare", "iris", "--test-fraction", "0"])
    assert result.exit_code == 2 and "test_fraction (--test-fraction) must be above 0" in result.output
    result = runner.invoke(app, ["compare", "nope"])
    assert result.exit_code == 2 and "neither a built-in" in result.output


def _torch():
    """The optional extra `softreg[autodiff]` pins torch==2.13.0 (a CPU build); without it, skip visibly."""
    try:
        import torch
    except ImportError:
        pytest.skip("PyTorch is not installed; `pip install -e \".[test,autodiff]\"` runs the autodiff agreement tests")
    return torch


@pytest.mark.parametrize("layout", ["dense", "sparse"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_equals_torch_autodiff(layout, weighted):
    torch = _torch()
    rng = np.random.default_rng(7)
    for n, d, k in ((40, 6, 3), (25, 9, 5), (60, 4, 2)):
        X = rng.standard_normal((n, d)) * (rng.random((n, d)) < (0.4 if layout == "sparse" else 1.0))
        X_in = sparse.csr_matrix(X) if layout == "sparse" else X
        y = rng.integers(0, k, n)
        W, b = rng.standard_normal((d, k)), rng.standard_normal(k)
        weights = rng.uniform(0.1, 2.0, n) if weighted else None
        loss, dW, db = loss_and_gradient(W, b, X_in, y, l2=0.3, sample_weight=weights)

        Wt = torch.tensor(W, dtype=torch.float64, requires_grad=True)
        bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        per_row = torch.nn.functional.cross_entropy(torch.tensor(X) @ Wt + bt, torch.tensor(y), reduction="none")
        w = torch.tensor(weights / weights.sum() if weighted else np.full(n, 1.0 / n))
        (torch.sum(w * per_row) + 0.15 * torch.sum(Wt ** 2)).backward()
        assert loss == pytest.approx((torch.sum(w * per_row) + 0.15 * torch.sum(Wt ** 2)).detach().item(), rel=1e-12)
        np.testing.assert_allclose(dW, Wt.grad.numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(db, bt.grad.numpy(), rtol=0, atol=1e-10)


# Properties that hold for every input.
logit_rows = st.integers(1, 8).flatmap(lambda n: st.integers(2, 6).flatmap(lambda k: st.tuples(
    st.just(n), st.just(k), st.integers(0, 2**32 - 1), st.floats(-50, 50))))


@settings(max_examples=60, deadline=None)
@given(logit_rows)
def test_rows_of_p_minus_y_sum_to_zero_and_the_loss_ignores_a_shift(case):
    n, k, seed, shift = case
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, k)) * 10
    y = rng.integers(0, k, n)
    _, G = cross_entropy_and_logit_gradient(Z, y)
    np.testing.assert_allclose(G.sum(axis=1), 0.0, atol=1e-15)
    shifts = rng.uniform(-abs(shift) - 1, abs(shift) + 1, (n, 1))  # a constant per row
    assert cross_entropy(Z + shifts, y) == pytest.approx(cross_entropy(Z, y), rel=1e-12, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(2, 5), st.integers(1, 6), st.integers(0, 2**32 - 1), st.floats(0, 2))
def test_the_gradient_vanishes_at_a_known_optimum(rows, k, d, seed, l2):
    """Every distinct row appears once with each label: by symmetry W = 0, b = 0 is the optimum."""
    rng = np.random.default_rng(seed)
    X = np.repeat(rng.standard_normal((rows, d)), k, axis=0)
    y = np.tile(np.arange(k), rows)
    _, dW, db = loss_and_gradient(np.zeros((d, k)), np.zeros(k), X, y, l2=l2)
    np.testing.assert_allclose(dW, 0.0, atol=1e-14)
    np.testing.assert_allclose(db, 0.0, atol=1e-14)
    # Without features the optimum is b = log of the class frequencies (up to a shift).
    labels = rng.integers(0, k, 30)
    labels[:k] = np.arange(k)  # every class present
    counts = np.bincount(labels, minlength=k)
    _, dW, db = loss_and_gradient(np.zeros((1, k)), np.log(counts / 30), np.zeros((30, 1)), labels, l2=l2)
    np.testing.assert_allclose(db, 0.0, atol=1e-14)


def test_compare_with_weights_binary_string_labels_and_no_penalty(runner, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 3))
    labels = np.where(X[:, 0] + 0.5 * X[:, 1] + rng.standard_normal(300) > 0, "yes", "no")
    weights = rng.uniform(0.2, 3.0, 300)
    path = tmp_path / "w.csv"
    path.write_text("a,b,c,w,y\n" + "".join(f"{a},{b},{c},{w},{l}\n" for (a, b, c), w, l in zip(X.tolist(), weights, labels)))
    result = runner.invoke(app, ["compare", str(path), "--weight-column", "w", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["n_classes"] == 2 and document["verdict"].startswith("match")
    assert document["objective_relative_difference"] < 1e-6 and document["max_coef_difference"] < 1e-4
    balanced = json.loads(runner.invoke(app, ["compare", "wine", "--class-weight", "balanced", "--json"]).stdout)
    assert balanced["verdict"].startswith("match")
    free = runner.invoke(app, ["compare", "iris", "--l2", "0", "--max-epochs", "50", "--json"])
    document = json.loads(free.stdout)  # valid JSON: no Infinity
    assert document["C"] is None and document["verdict"].startswith("no match")
    early = json.loads(runner.invoke(app, ["compare", "iris", "--max-epochs", "3", "--json"]).stdout)
    assert "softreg stopped before converging (max epochs)" in early["verdict"]


def test_numpy_scalars_are_accepted_as_parameters():
    X, y = load_iris(return_X_y=True)
    grid = {"l2": np.array([1e-3, 1e-1], dtype=np.float32), "max_epochs": np.array([50, 100])}
    search = GridSearchCV(SoftmaxRegression(lr=np.float32(0.5)), grid, cv=3).fit(X, y)
    assert search.best_score_ > 0.8
    with pytest.raises(ValueError, match="max_epochs must be an integer"):
        SoftmaxRegression(max_epochs=10.5).fit(X, y)
    with pytest.raises(ValueError, match="l2 must be a finite number"):
        SoftmaxRegression(l2=True).fit(X, y)


# SoftmaxRegressionCV chooses l2 by cross-validation. Weights equal repeated rows for a fixed
# penalty, but repeating rows moves them between folds, so the chosen penalty (and so the fit)
# may differ: that equivalence cannot hold for any cross-validating estimator.
CV_EXPECTED_FAILED_CHECKS = {
    name: "repeating a row changes which fold it is held out in, so the cross-validated penalty differs"
    for name in ("check_sample_weight_equivalence_on_dense_data", "check_sample_weight_equivalence_on_sparse_data")
}


@parametrize_with_checks([SoftmaxRegressionCV(folds=3, n_values=4, decades=3)],
                         expected_failed_checks=lambda estimator: CV_EXPECTED_FAILED_CHECKS)
def test_scikit_learn_estimator_checks_of_the_cross_validating_estimator(estimator, check):
    check(estimator)


def test_softmax_regression_cv_is_its_path_then_a_fit_at_the_choice():
    from softreg.model.solve.path import cross_validate_penalty

    X, y = load_wine(return_X_y=True)
    model = SoftmaxRegressionCV(folds=4, select="1se", random_state=2).fit(X, y)
    path = cross_validate_penalty(X, y, 3, folds=4, select="1se", seed=2)
    assert model.l2_ == model.lambda_ == path.chosen and model.cv_scores_.shape == (4, len(path.strength))
    np.testing.assert_array_equal(model.lambdas_, path.strength)
    fixed = SoftmaxRegression(l2=path.chosen).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), fixed.predict_proba(X), rtol=0, atol=1e-12)


def test_warm_start_continues_from_the_previous_fit():
    X, y = load_wine(return_X_y=True)
    model = SoftmaxRegression(l2=1e-2, warm_start=True, tol=1e-8, momentum="nesterov").fit(X, y)
    first = model.n_iter_
    model.fit(X, y)  # already at the optimum: a few epochs at most
    assert model.n_iter_ < first / 5, (first, model.n_iter_)
    cold = SoftmaxRegression(l2=1e-2, tol=1e-8, momentum="nesterov").fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), cold.predict_proba(X), atol=1e-6)
