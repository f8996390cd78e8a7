"""Issue 17: scikit-learn's LogisticRegression scenarios, ported to SoftmaxRegression.

The multinomial, probability, weight, sparse, dtype, warm-start and convergence scenarios of
scikit-learn's ``sklearn/linear_model/tests/test_logistic.py`` (1.9), rewritten for softreg.
Each test's docstring names the scikit-learn test it follows; tolerances are scikit-learn's.

Mapping (docs/equivalences.md). LogisticRegression(C) minimizes C sum_i w_i L_i + ||coef||^2 / 2;
softreg with ``standardize=False`` minimizes sum_i w_i L_i / sum_i w_i + (l2/2) ||W||^2 on the
same raw features, so l2 = 1 / (C N) for K >= 3 classes and 2 / (C N) for K = 2, with N the sum
of sample_weight x class_weight (the number of rows without weights). The K intercepts of a
multinomial fit are defined up to a common shift and are compared centred. References are
independent of softreg: LogisticRegression solved by Newton (newton-cholesky, tol 1e-14),
glmnet's published values, statsmodels' MNLogit, exact identities (weights = repeated rows).

Conventions these tests expect (issue 17): binary ``coef_`` (1, D) and ``intercept_`` (1,) as
LogisticRegression, ``weights_`` (D, K) for every K; ``n_iter_`` an int array of shape (1,); a
ConvergenceWarning when ``max_epochs`` stops a fit, ``max_epochs=0`` allowed; float32 input keeps
float32 coefficients when ``dtype`` is None; ``fit_intercept``; ``warm_start``;
``sparsify()`` / ``densify()``. A fit that is expected to converge must not warn: the module
turns ConvergenceWarning into an error, as scikit-learn's module does.

Scenarios of that file that do not apply to softreg, and why:

| scikit-learn test(s) | why not ported |
| --- | --- |
| test_check_solver_option, test_elasticnet_l1_ratio_err_helpful, test_lr_penalty_l1ratio_incompatible, test_penalty_deprecated, test_l1_ratio_None_deprecated, test_l1_ratio_non_elasticnet | validation of ``solver``, ``penalty``, ``dual``, ``l1_ratio``: softreg has one solver and no such parameters |
| test_liblinear_dual_random_state, test_liblinear_decision_function_zero, test_logreg_intercept_scaling_zero, test_sample_and_class_weight_equivalence_liblinear, test_logisticregression_liblinear_sample_weight, test_liblinear_with_large_values, test_liblinear_not_stuck, test_liblinear_multiclass_raises, test_saga_vs_liblinear | liblinear (dual, intercept_scaling, penalized intercept, one-vs-rest) and saga specifics |
| test_consistency_path, test_logistic_regression_path_convergence_fail, test_logistic_regression_path_coefs_multinomial, test_logistic_regression_path_init_coefs | the private ``_logistic_regression_path`` API (coef init shapes, lbfgs messages) |
| test_logistic_cv, test_logistic_cv_refit_false_non_elasticnet, test_logistic_cv_mock_scorer, test_logistic_cv_multinomial_score, test_logistic_cv_folds_with_classes_missing, test_logistic_regressioncv_class_weights, test_logistic_regression_cv_refit, test_LogisticRegressionCV_*, test_scores_attribute_layout_elasticnet, test_lr_cv_scores_*, test_get_default_scorer, test_lr_scoring_warns, test_logisticregressioncv_warns_with_use_legacy_attributes, test_logistic_regression_sample_weights[cv] | LogisticRegressionCV's Cs / l1_ratios grids, scorers, user-given splits and coefs_paths_ / scores_ / n_iter_ layouts; SoftmaxRegressionCV has its own path API (stratified folds, lambdas_, cv_scores_), tested in tests/test_path.py |
| test_multinomial_cv_iris (attribute shapes, folds without a class) | as above; its multinomial-beats-one-vs-rest and growing-norm claims are ported |
| test_logreg_l1, test_elastic_net_*, test_LogisticRegression_elastic_net_objective, test_elastic_net_versus_sgd, test_penalty_none's warning on C | L1 / elastic net are outside this issue; tests/test_penalty.py checks them against glmnet and saga |
| test_newton_cholesky_fallback_to_lbfgs, test_single_feature_newton_cg | solver internals (the solver-agreement scenarios are ported as softreg against Newton) |
| test_nan, test_inconsistent_input | input validation, covered by parametrize_with_checks in tests/test_sklearn.py |
| test_logistic_regression_array_api_*, test_logistic_regression_callback_*, test_passing_params_without_enabling_metadata_routing, test_logisticregression_warns_with_n_jobs | array API, scikit-learn's callback API, n_jobs, LogisticRegressionCV's metadata routing |
| test_multinomial_logistic_regression_string_inputs, class_weight {"foo": 0} | deliberate difference: a class of total weight 0 has no finite intercept; softreg refuses it (tested) where LogisticRegression drops it from the predictions |
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_almost_equal, assert_array_equal
from scipy import sparse
from scipy.special import expit, softmax
from sklearn.base import clone
from sklearn.datasets import load_iris, load_wine, make_classification, make_low_rank_matrix
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import scale
from sklearn.utils.class_weight import compute_class_weight

from softreg.model import SoftmaxRegression, SoftmaxRegressionCV

pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")

SEEDS = [0, 1, 2]
X_TINY = [[-1, 0], [0, 1], [1, 1]]  # scikit-learn's module-level X, Y1, Y2
Y1 = [0, 1, 1]
Y2 = [2, 1, 0]
CSR = [sparse.csr_matrix, sparse.csr_array]
COO = [sparse.coo_matrix, sparse.coo_array]
TIGHT = dict(tol=1e-10, max_epochs=20_000)


def l2_for(C, n, n_classes):
    """softreg's l2 for LogisticRegression(C) on n rows (or total weight n)."""
    if np.isinf(C):
        return 0.0
    return (1.0 if n_classes >= 3 else 2.0) / (C * n)


def raw_model(C, n, n_classes, **params):
    """SoftmaxRegression on LogisticRegression(C)'s raw problem, solved tightly."""
    return SoftmaxRegression(l2=l2_for(C, n, n_classes), standardize=False, **{**TIGHT, **params})


def newton(C=1.0, **params):
    """The reference: LogisticRegression solved by Newton's method to its last digits."""
    return LogisticRegression(C=C, solver="newton-cholesky", tol=1e-14, max_iter=1000, **params)


def centred(intercept):
    intercept = np.asarray(intercept, dtype=np.float64)
    return intercept - intercept.mean() if intercept.size > 2 else intercept


def relative(value, reference):
    """max |value - reference| / max |reference|."""
    return np.max(np.abs(np.asarray(value) - reference)) / np.max(np.abs(reference))


def check_predictions(model, X, y):
    """The model fits the training points exactly, with probabilities that say so."""
    n, classes = len(y), np.unique(y)
    predicted = model.fit(X, y).predict(X)
    assert_array_equal(model.classes_, classes)
    assert predicted.shape == (n,)
    assert_array_equal(predicted, y)
    proba = model.predict_proba(X)
    assert proba.shape == (n, len(classes))
    assert_allclose(proba.sum(axis=1), np.ones(n))
    assert_array_equal(proba.argmax(axis=1), y)


# ---------------------------------------------------------------------------------------------
# multinomial and binary fits against LogisticRegression and glmnet


@pytest.mark.parametrize("container", [np.asarray] + CSR)
@pytest.mark.parametrize("y, C, fit_intercept", [(Y1, 1.0, True), (Y1, 100.0, True), (Y1, 1.0, False),
                                                 (Y2, 10.0, True)])
def test_predicts_the_training_points(container, y, C, fit_intercept):
    """follows test_predict_2_classes and test_predict_3_classes; the probabilities also equal
    LogisticRegression's on the same problem."""
    X = container(np.array(X_TINY, dtype=np.float64))
    n_classes = len(np.unique(y))
    model = raw_model(C, 3, n_classes, fit_intercept=fit_intercept)
    check_predictions(model, X, y)
    reference = newton(C, fit_intercept=fit_intercept).fit(X, y)
    assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-7)
    if not fit_intercept:
        assert_array_equal(model.intercept_, 0.0)


def test_glmnet_published_values():
    """follows test_logistic_glmnet: glmnet's lambda = 1 on raw features is LogisticRegression's
    C = 1/N, so l2 = 2 for two classes and 1 for three; rtol 1e-5 as there."""
    X = np.array([[-4, -3, -2, -1, 0, 1, 2, 3, 4], [0, 0, 1, 0, 1, 1, 1, 0, 0]], dtype=np.float64).T
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1])
    model = SoftmaxRegression(l2=2.0, standardize=False, **TIGHT).fit(X, y)
    assert_allclose(model.intercept_, [0.89230405539], rtol=1e-5)
    assert_allclose(model.coef_, [[0.44464569182, 0.01457563448]], rtol=1e-5)

    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    model = SoftmaxRegression(l2=1.0, standardize=False, **TIGHT).fit(X, y)
    assert_allclose(centred(model.intercept_), [-0.12004759652, 2.251747383e-01, -0.1051271418], rtol=1e-5)
    assert_allclose(model.coef_, [[-0.38023389305, -0.01226499932], [-8.164030176e-05, 4.734548012e-02],
                                  [0.3803155334, -0.0350804808]], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_binary_agrees_with_logistic_regression(seed, fit_intercept):
    """follows test_logistic_regression_solvers (C = 0.1, no intercept; here with one too):
    atol 1e-3, rtol 1e-4 against Newton, in LogisticRegression's binary layout."""
    X, y = make_classification(n_samples=200, n_features=10, n_informative=5, random_state=seed)
    model = raw_model(0.1, len(y), 2, fit_intercept=fit_intercept).fit(X, y)
    reference = newton(0.1, fit_intercept=fit_intercept).fit(X, y)
    assert model.coef_.shape == (1, 10) and model.intercept_.shape == (1,)
    assert model.weights_.shape == (10, 2)
    assert_allclose(model.coef_, reference.coef_, atol=1e-3, rtol=1e-4)
    assert_allclose(model.intercept_, reference.intercept_, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_agrees_with_logistic_regression(seed, fit_intercept):
    """follows test_logistic_regression_solvers_multiclass: 20 rows, 20 features, 3 classes,
    C = 1; coef_ and intercept_ within rtol 1e-3 of Newton's."""
    X, y = make_classification(n_samples=20, n_features=20, n_informative=10, n_classes=3, random_state=seed)
    model = raw_model(1.0, 20, 3, fit_intercept=fit_intercept).fit(X, y)
    reference = newton(1.0, fit_intercept=fit_intercept).fit(X, y)
    assert model.coef_.shape == (3, 20)
    assert model.weights_.shape == (20, 3)
    assert_allclose(model.coef_, reference.coef_, rtol=1e-3)
    if fit_intercept:
        assert_allclose(centred(model.intercept_), centred(reference.intercept_), rtol=1e-3)
    else:
        assert_array_equal(model.intercept_, 0.0)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_unpenalized_multiclass_agrees_with_logistic_regression(seed, fit_intercept):
    """follows test_logistic_regression_solvers_multiclass_unpenalized: a well-conditioned
    low-rank design, labels drawn from a multinomial model, l2 = 0 (C = inf); the coefficients
    sum to 0 over classes (atol 1e-10), coef_ within rtol 2e-3 and intercepts 1e-3 of Newton's."""
    n_samples, n_features, n_classes = 100, 4, 3
    rng = np.random.RandomState(seed)
    X = make_low_rank_matrix(n_samples=n_samples, n_features=n_features + fit_intercept,
                             effective_rank=n_features + fit_intercept, tail_strength=0.1, random_state=rng)
    if fit_intercept:
        X[:, -1] = 1
    singular = np.linalg.svd(X, compute_uv=False)
    assert singular.min() > 1e-3 and singular.max() / singular.min() < 100
    if fit_intercept:
        X = X[:, :-1]
    coef = rng.uniform(1, 3, size=(n_classes, n_features))
    intercept = rng.uniform(-1, 1, size=n_classes) * fit_intercept
    proba = softmax(X @ coef.T + intercept, axis=1)
    y = np.array([rng.choice(n_classes, p=p / p.sum()) for p in proba])

    model = raw_model(np.inf, n_samples, n_classes, fit_intercept=fit_intercept).fit(X, y)
    reference = newton(np.inf, fit_intercept=fit_intercept).fit(X, y)
    assert_allclose(model.coef_.sum(axis=0), 0, atol=1e-10)
    assert_allclose(model.coef_, reference.coef_, rtol=2e-3)
    if fit_intercept:
        assert_allclose(centred(model.intercept_), centred(reference.intercept_), rtol=1e-3)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_multinomial_coefficients_sum_to_zero(fit_intercept):
    """follows test_multinomial_identifiability_on_iris: with an L2 penalty the optimum has
    sum_k coef_k = 0 (atol 1e-10) and, with an intercept, sum_k intercept_k = 0 (1e-11)."""
    iris = load_iris()
    target = iris.target_names[iris.target]
    n = len(target)
    model = SoftmaxRegression(l2=l2_for(n, n, 3), fit_intercept=fit_intercept, max_epochs=20_000)
    model.fit(scale(iris.data), target)
    assert_allclose(model.coef_.sum(axis=0), 0, atol=1e-10)
    if fit_intercept:
        assert model.intercept_.sum() == pytest.approx(0, abs=1e-11)


def test_multinomial_beats_one_vs_rest_and_norms_grow_with_C():
    """follows test_multinomial_cv_iris (the parts that apply): the cross-validated multinomial
    fit scores above a grid-searched one-vs-rest of binary fits on iris, and along a path the
    coefficients' norm grows as the penalty falls (C grows)."""
    X, y = load_iris(return_X_y=True)
    X = scale(X)
    n = len(y)
    Cs = np.logspace(-4, 4, 5)
    binary = SoftmaxRegression(standardize=False, momentum="nesterov", max_epochs=5000)
    ovr = GridSearchCV(OneVsRestClassifier(binary), {"estimator__l2": [l2_for(C, n, 2) for C in Cs]},
                       scoring="neg_log_loss", error_score="raise").fit(X, y)
    multi = SoftmaxRegressionCV(folds=2, n_values=10, momentum="nesterov", max_epochs=5000).fit(X, y)
    assert multi.score(X, y) > ovr.score(X, y)

    norms, model = [], SoftmaxRegression(standardize=False, warm_start=True, tol=1e-8, max_epochs=20_000,
                                         momentum="nesterov")
    for C in np.logspace(-2, 3, 8):
        model.set_params(l2=l2_for(C, n, 3)).fit(X, y)
        norms.append(np.sum(model.coef_ ** 2))
    assert np.all(np.diff(norms) >= 0), norms


@pytest.mark.parametrize("seed", SEEDS)
def test_string_labels_give_the_same_model(seed):
    """follows test_multinomial_logistic_regression_string_inputs: labels -1, 0, 1 and "bar",
    "baz", "foo" give the same coefficients and probabilities (plain and cross-validated), and
    predictions in the original labels. Its class_weight {"foo": 0} is refused here: a class of
    total weight 0 has no finite intercept (issue 17)."""
    X, y = make_classification(n_samples=50, n_features=5, n_classes=3, n_informative=3, random_state=seed)
    names = np.array(["bar", "baz", "foo"])
    y_str, y_num = names[y], y - 1
    numeric = SoftmaxRegression(l2=l2_for(1.0, 50, 3)).fit(X, y_num)
    textual = SoftmaxRegression(l2=l2_for(1.0, 50, 3)).fit(X, y_str)
    assert_allclose(numeric.coef_, textual.coef_)
    assert_allclose(numeric.predict_proba(X), textual.predict_proba(X))
    assert list(textual.classes_) == ["bar", "baz", "foo"]
    assert set(np.unique(textual.predict(X))) <= {"bar", "baz", "foo"}
    numeric_cv = SoftmaxRegressionCV(folds=3, n_values=3, momentum="nesterov").fit(X, y_num)
    textual_cv = SoftmaxRegressionCV(folds=3, n_values=3, momentum="nesterov").fit(X, y_str)
    assert_allclose(numeric_cv.coef_, textual_cv.coef_)
    assert_allclose(numeric_cv.predict_proba(X), textual_cv.predict_proba(X))
    assert list(textual_cv.classes_) == ["bar", "baz", "foo"]
    assert set(np.unique(textual_cv.predict(X))) <= {"bar", "baz", "foo"}
    with pytest.raises(ValueError, match="'foo'"):
        SoftmaxRegression(class_weight={"bar": 1, "baz": 2, "foo": 0}).fit(X, y_str)


# ---------------------------------------------------------------------------------------------
# probabilities


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_probabilities_beat_one_vs_rest_and_sigmoids(seed):
    """follows test_logreg_predict_proba_multinomial: on 10 rows, 20 features, 3 classes the
    multinomial fit's log loss is below a one-vs-rest of binary fits' and below the normalized
    sigmoids of its own logits; its probabilities equal LogisticRegression's."""
    X, y = make_classification(n_samples=10, n_features=20, n_classes=3, n_informative=10, random_state=seed)
    multi = raw_model(1.0, 10, 3).fit(X, y)
    multi_loss = log_loss(y, multi.predict_proba(X))
    ovr = OneVsRestClassifier(raw_model(1.0, 10, 2)).fit(X, y)
    assert log_loss(y, ovr.predict_proba(X)) > multi_loss
    sigmoids = expit(multi.decision_function(X))
    assert log_loss(y, sigmoids / sigmoids.sum(axis=1, keepdims=True)) > multi_loss
    assert_allclose(multi.predict_proba(X), newton(1.0).fit(X, y).predict_proba(X), atol=1e-7)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("seed", SEEDS)
def test_probability_conventions(seed, n_classes):
    """follows check_predictions (test_predict_2_classes) and LogisticRegression's layout:
    rows sum to 1, log-probabilities are their logs, predict is their argmax; for two classes
    decision_function (N,) is x coef_[0] + intercept_[0] and predict_proba[:, 1] its sigmoid."""
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=n_classes,
                               random_state=seed)
    model = raw_model(1.0, len(y), n_classes).fit(X, y)
    proba = model.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_allclose(model.predict_log_proba(X), np.log(proba), rtol=1e-12, atol=1e-14)
    assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])
    scores = model.decision_function(X)
    if n_classes == 2:
        assert scores.shape == (len(y),)
        assert_allclose(scores, X @ model.coef_[0] + model.intercept_[0])
        assert_allclose(proba[:, 1], expit(scores))
    else:
        assert scores.shape == (len(y), n_classes)
        assert_allclose(scores, X @ model.coef_.T + model.intercept_)
    assert_allclose(proba, newton(1.0).fit(X, y).predict_proba(X), atol=1e-7)


def test_written_coefficients_are_used():
    """follows test_write_parameters: coef_ and intercept_ can be written, and the decision
    function follows them."""
    model = SoftmaxRegression().fit(X_TINY, Y1)
    assert model.coef_.shape == (1, 2) and model.intercept_.shape == (1,)
    model.coef_[:] = 0
    model.intercept_[:] = 0
    assert_array_almost_equal(model.decision_function(X_TINY), 0)


# ---------------------------------------------------------------------------------------------
# weights


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_class_weight_equals_sample_weight(seed, fit_intercept):
    """follows test_logistic_regression_solver_class_weights: class_weight {0: 1, 1: 2} equals
    sample_weight y + 1 (atol 1e-6), and both equal LogisticRegression's weighted fit."""
    X, y = make_classification(n_samples=300, n_features=5, n_informative=3, n_classes=2, random_state=seed)
    weights = y + 1.0
    total = weights.sum()
    by_class = raw_model(1.0, total, 2, class_weight={0: 1, 1: 2}, fit_intercept=fit_intercept).fit(X, y)
    by_row = raw_model(1.0, total, 2, fit_intercept=fit_intercept).fit(X, y, sample_weight=weights)
    assert_allclose(by_class.coef_, by_row.coef_, atol=1e-6)
    reference = newton(1.0, fit_intercept=fit_intercept).fit(X, y, sample_weight=weights)
    assert_allclose(by_row.coef_, reference.coef_, atol=1e-6)
    assert_allclose(by_row.intercept_, reference.intercept_, atol=1e-6)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_integer_sample_weights_equal_repeated_rows(seed, fit_intercept):
    """follows test_logistic_regression_sample_weights (problem "single"): integer weights
    0..4 on a third of the rows equal repeating those rows (atol 1e-5); N is the total weight."""
    X, y = make_classification(n_samples=600, n_features=5, n_informative=3, n_classes=2, n_redundant=0,
                               random_state=seed)
    rng = np.random.RandomState(seed)
    weights = np.ones(len(y))
    weights[:200] = rng.randint(0, 5, size=200)
    X_repeated, y_repeated = np.repeat(X, weights.astype(int), axis=0), np.repeat(y, weights.astype(int))
    assert len(y_repeated) == weights.sum()
    weighted = raw_model(1.0, weights.sum(), 2, fit_intercept=fit_intercept).fit(X, y, sample_weight=weights)
    repeated = raw_model(1.0, len(y_repeated), 2, fit_intercept=fit_intercept).fit(X_repeated, y_repeated)
    assert_allclose(weighted.coef_, repeated.coef_, atol=1e-5)
    assert_allclose(weighted.intercept_, repeated.intercept_, atol=1e-5)
    reference = newton(1.0, fit_intercept=fit_intercept).fit(X, y, sample_weight=weights)
    assert_allclose(weighted.coef_, reference.coef_, atol=1e-5)


@pytest.mark.parametrize("container", [np.asarray] + CSR)
def test_balanced_class_weight(container):
    """follows test_logistic_regression_class_weights: on iris without 90% of class 0,
    "balanced" equals its dict and the matching sample weights (rtol 1e-4); on the binary
    subset "balanced" equals its dict (6 decimals); both equal LogisticRegression's fit
    (balanced weights sum to N)."""
    iris = load_iris()
    X_iris = scale(iris.data)
    X, y = X_iris[45:], iris.target[45:]
    weights = dict(zip(np.unique(y), compute_class_weight("balanced", classes=np.unique(y), y=y)))
    balanced = raw_model(1.0, len(y), 3, class_weight="balanced").fit(container(X), y)
    as_dict = raw_model(1.0, len(y), 3, class_weight=weights).fit(container(X), y)
    assert len(balanced.classes_) == 3
    assert_allclose(balanced.coef_, as_dict.coef_, rtol=1e-4)
    row_weights = np.array([weights[label] for label in y])
    as_rows = raw_model(1.0, len(y), 3).fit(container(X), y, sample_weight=row_weights)
    assert_allclose(as_rows.coef_, as_dict.coef_, rtol=1e-4)
    assert_allclose(balanced.coef_, newton(1.0, class_weight="balanced").fit(X, y).coef_, rtol=1e-4)

    X, y = X_iris[45:100], iris.target[45:100]
    weights = dict(zip(np.unique(y), compute_class_weight("balanced", classes=np.unique(y), y=y)))
    balanced = raw_model(1.0, len(y), 2, class_weight="balanced").fit(container(X), y)
    as_dict = raw_model(1.0, len(y), 2, class_weight=weights).fit(container(X), y)
    assert_array_almost_equal(balanced.coef_, as_dict.coef_, decimal=6)
    assert_array_almost_equal(balanced.coef_, newton(1.0, class_weight="balanced").fit(X, y).coef_, decimal=6)


@pytest.mark.parametrize("class_weight", [{0: 1.0, 1: 10.0, 2: 1.0}, "balanced"])
def test_sample_weight_is_not_modified(class_weight):
    """follows test_sample_weight_not_modified."""
    X, y = load_iris(return_X_y=True)
    weights = np.ones(len(y))
    weights[: len(y) // 2] = 2
    expected = weights.copy()
    SoftmaxRegression(class_weight=class_weight, momentum="nesterov").fit(X, y, sample_weight=weights)
    assert_allclose(weights, expected)


# ---------------------------------------------------------------------------------------------
# sparse input


@pytest.mark.parametrize("container", COO)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_sparsify_and_densify(container, n_classes):
    """follows test_sparsify: sparsify() makes coef_ a scipy.sparse matrix, densify() a dense
    array again, and the decision function is the same for dense and sparse X throughout."""
    iris = load_iris()
    keep = iris.target < n_classes
    X, target = scale(iris.data[keep]), iris.target_names[iris.target[keep]]
    model = SoftmaxRegression().fit(X, target)
    dense_dense = model.decision_function(X)
    predicted = model.predict(X)

    assert model.sparsify() is model
    assert sparse.issparse(model.coef_)
    sparse_dense = model.decision_function(X)
    sparse_sparse = model.decision_function(container(X))
    assert_array_equal(model.predict(container(X)), predicted)

    assert model.densify() is model
    assert isinstance(model.coef_, np.ndarray) and not sparse.issparse(model.coef_)
    dense_sparse = model.decision_function(container(X))
    for scores in (sparse_dense, sparse_sparse, dense_sparse):
        assert_array_almost_equal(dense_dense, scores)
    assert_array_equal(model.predict(X), predicted)


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_sparse_and_dense_give_the_same_fit(seed, C, standardize):
    """follows test_logistic_cv_sparse (one C at a time; rtol 1e-5 as for its exact solvers):
    dense and CSR rows give the same coef_ and intercept_, with either standardization, and on
    raw features LogisticRegression's."""
    X, y = make_classification(n_samples=100, n_features=5, random_state=seed)
    X[X < 0.0] = 0.0
    params = dict(l2=l2_for(C, len(y), 2), standardize=standardize, **TIGHT)
    dense = SoftmaxRegression(**params).fit(X, y)
    for container in CSR:
        on_sparse = SoftmaxRegression(**params).fit(container(X), y)
        assert_allclose(on_sparse.coef_, dense.coef_, rtol=1e-5, atol=1e-12)
        assert_allclose(on_sparse.intercept_, dense.intercept_, rtol=1e-5, atol=1e-12)
    if not standardize:
        reference = newton(C).fit(X, y)
        assert_allclose(dense.coef_, reference.coef_, rtol=1e-5, atol=1e-12)
        assert_allclose(dense.intercept_, reference.intercept_, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_validation_on_sparse_rows(seed):
    """follows test_logistic_cv_sparse (the cross-validated part): SoftmaxRegressionCV chooses
    the same penalty on dense and CSR rows and fits the same coefficients (rtol 1e-5)."""
    X, y = make_classification(n_samples=100, n_features=5, random_state=seed)
    X[X < 0.0] = 0.0
    params = dict(folds=3, n_values=5, tol=1e-10, max_epochs=20_000, momentum="nesterov")
    dense = SoftmaxRegressionCV(**params).fit(X, y)
    on_sparse = SoftmaxRegressionCV(**params).fit(sparse.csr_matrix(X), y)
    assert_allclose(on_sparse.lambdas_, dense.lambdas_, rtol=1e-12)  # the grid's top is computed from the rows
    assert on_sparse.lambda_ == pytest.approx(dense.lambda_, rel=1e-12)
    assert_allclose(on_sparse.coef_, dense.coef_, rtol=1e-5, atol=1e-12)
    assert_allclose(on_sparse.intercept_, dense.intercept_, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_sparse_rows_with_64_bit_indices(seed):
    """follows test_large_sparse_matrix: CSR rows with int64 indices and indptr are accepted and
    give the fit of the same rows with int32 indices."""
    rng = np.random.default_rng(seed)
    X = sparse.random(20, 10, density=0.3, format="csr", rng=rng)
    y = rng.integers(0, 2, size=20)
    y[:2] = [0, 1]
    wide = X.copy()
    wide.indices, wide.indptr = wide.indices.astype(np.int64), wide.indptr.astype(np.int64)
    params = dict(momentum="nesterov", max_epochs=5000)
    assert_allclose(SoftmaxRegression(**params).fit(wide, y).coef_, SoftmaxRegression(**params).fit(X, y).coef_,
                    rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# dtypes


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("container", CSR)
def test_float32_input_keeps_float32(container, fit_intercept):
    """follows test_dtype_match: with no dtype given float32 input (dense or sparse) gives
    float32 coef_ and intercept_, float64 input float64; every fit agrees with the float64
    one within scikit-learn's bound 2 x 1.72 x tol, which agrees with Newton's optimum."""
    tol = 5e-4
    y = np.array(Y1, dtype=np.float32)
    fits = {}
    for dtype in (np.float32, np.float64):
        for name, X in (("dense", np.array(X_TINY, dtype=dtype)), ("sparse", container(X_TINY, dtype=dtype))):
            model = SoftmaxRegression(l2=l2_for(1.0, 3, 2), standardize=False, tol=tol, max_epochs=10_000,
                                      fit_intercept=fit_intercept).fit(X, y)
            assert model.coef_.dtype == dtype, (name, dtype, model.coef_.dtype)
            assert model.intercept_.dtype == dtype, (name, dtype, model.intercept_.dtype)
            fits[name, dtype] = model
    atol = 2 * 1.72 * tol
    reference = fits["dense", np.float64].coef_
    for model in fits.values():
        assert_allclose(model.coef_, reference.astype(model.coef_.dtype), atol=atol)
    exact = newton(1.0, fit_intercept=fit_intercept).fit(np.array(X_TINY, dtype=np.float64), Y1)
    assert_allclose(reference, exact.coef_, atol=atol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_given_dtype_decides(dtype):
    """follows test_dtype_match: when dtype is given, training and coefficients use it whatever
    the input's."""
    X, y = load_iris(return_X_y=True)
    for source in (np.float32, np.float64):
        model = SoftmaxRegression(dtype=dtype, momentum="nesterov").fit(X.astype(source), y)
        assert model.coef_.dtype == np.dtype(dtype) and model.intercept_.dtype == np.dtype(dtype)


# ---------------------------------------------------------------------------------------------
# warm start


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("warm_start", [True, False])
def test_warm_start_continues_the_previous_fit(warm_start, fit_intercept):
    """follows test_warm_start: after a fit at tol 1e-4, a 1-epoch refit on the same data moves
    the coefficients by less than 2 (sum of absolute changes) with warm_start, more without."""
    X, y = load_iris(return_X_y=True)
    model = SoftmaxRegression(l2=l2_for(1.0, len(y), 3), standardize=False, tol=1e-4, max_epochs=5000,
                              warm_start=warm_start, fit_intercept=fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = model.fit(X, y).coef_.copy()
        model.set_params(max_epochs=1).fit(X, y)
    change = np.sum(np.abs(first - model.coef_))
    if warm_start:
        assert change < 2.0, change
    else:
        assert change > 2.0, change


@pytest.mark.parametrize("C", [1.0, np.inf])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_warm_start_epochs_add_up(fit_intercept, C):
    """follows test_warm_start_newton_solver: two single epochs with warm_start equal two
    epochs at once. Plain steps of fixed size 1/L carry no state between fits (Armijo steps and
    Nesterov's momentum do, and are not expected to add up)."""
    X, y = load_iris(return_X_y=True)
    params = dict(l2=l2_for(C, len(y), 3), lr="bound", momentum=None, standardize=False,
                  fit_intercept=fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        at_once = SoftmaxRegression(max_epochs=2, **params).fit(X, y)
        stepwise = SoftmaxRegression(max_epochs=1, warm_start=True, **params)
        stepwise.fit(X, y)
        stepwise.fit(X, y)
    assert_allclose(stepwise.coef_, at_once.coef_, rtol=1e-10, atol=1e-14)
    assert_allclose(stepwise.intercept_, at_once.intercept_, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_warm_start_begins_at_the_coefficients_as_written(n_classes):
    """follows test_warm_start's premise that fit starts from coef_ and intercept_: written to 0
    by hand after a fit, a warm 1-epoch fit equals a cold 1-epoch fit (which starts at 0)."""
    X, y = load_iris(return_X_y=True)
    X, y = X[y < n_classes], y[y < n_classes]
    params = dict(l2=l2_for(1.0, len(y), n_classes), lr="bound", standardize=False, max_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold = SoftmaxRegression(**params).fit(X, y)
        warm = SoftmaxRegression(warm_start=True, **{**params, "max_epochs": 50}).fit(X, y)
        warm.coef_[:] = 0.0
        warm.intercept_[:] = 0.0
        warm.set_params(max_epochs=1).fit(X, y)
    assert_allclose(warm.coef_, cold.coef_, rtol=1e-12, atol=1e-15)
    assert_allclose(warm.intercept_, cold.intercept_, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
def test_repeated_warm_fits_converge_to_the_cold_fit(seed):
    """follows test_warm_start_converge_LR: five warm-started fits end at the log loss of one
    cold fit (rtol 1e-5)."""
    rng = np.random.RandomState(seed)
    X = np.concatenate((rng.randn(100, 2) + [1, 1], rng.randn(100, 2)))
    y = np.array([1] * 100 + [-1] * 100)
    cold = SoftmaxRegression(l2=l2_for(1.0, 200, 2), tol=1e-6).fit(X, y)
    warm = SoftmaxRegression(l2=l2_for(1.0, 200, 2), tol=1e-6, warm_start=True)
    for _ in range(5):
        warm.fit(X, y)
    assert_allclose(log_loss(y, warm.predict_proba(X)), log_loss(y, cold.predict_proba(X)), rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# convergence


@pytest.mark.parametrize("max_epochs", [1, 2, 3, 4])
@pytest.mark.parametrize("momentum", [None, "nesterov"])
def test_epoch_limit_warns(momentum, max_epochs):
    """follows test_max_iter (and test_logistic_regression_path_convergence_fail's message): at
    tol 1e-15 the epoch limit stops the fit with a ConvergenceWarning that names max_epochs,
    and n_iter_[0] is the limit."""
    X, y = load_iris(return_X_y=True)
    y = y.copy()
    y[y == 2] = 0
    model = SoftmaxRegression(max_epochs=max_epochs, tol=1e-15, momentum=momentum)
    with pytest.warns(ConvergenceWarning, match="max_epochs"):
        model.fit(X, y)
    assert model.n_iter_[0] == max_epochs


@pytest.mark.parametrize("n_classes", [2, 3])
def test_zero_epochs(n_classes):
    """follows test_zero_max_iter: max_epochs=0 is allowed and warns; n_iter_ is 0, the
    coefficients are 0, so every row gets the same decision value (the start intercepts) and
    the same probabilities, and the score is poor."""
    X, y = load_iris(return_X_y=True)
    if n_classes == 2:
        y = y == 2
    with pytest.warns(ConvergenceWarning):
        model = SoftmaxRegression(max_epochs=0).fit(X, y)
    assert model.n_iter_[0] == 0
    assert_allclose(model.coef_, np.zeros_like(model.coef_))
    scores = model.decision_function(X)
    assert_allclose(scores, np.broadcast_to(model.intercept_ if n_classes > 2 else model.intercept_[0],
                                            scores.shape))
    proba = model.predict_proba(X)
    assert_allclose(proba, np.broadcast_to(proba[0], proba.shape))
    if n_classes == 2:
        assert_allclose(proba[:, 1], expit(model.intercept_[0]))
    assert model.score(X, y) < 0.7


def test_n_iter_is_an_array_of_one():
    """follows test_n_iter: n_iter_ has shape (1,) and an integer dtype for binary and
    multinomial fits, and for SoftmaxRegressionCV's final fit (whose per-fold layout, unlike
    LogisticRegressionCV's, is not ported)."""
    X, y = load_iris(return_X_y=True)
    y_binary = y.copy()
    y_binary[y_binary == 2] = 0
    for model, target in ((SoftmaxRegression(tol=1e-2), y_binary), (SoftmaxRegression(tol=1e-2), y),
                          (SoftmaxRegressionCV(tol=1e-2, folds=2, n_values=4), y)):
        model.fit(X, target)
        assert isinstance(model.n_iter_, np.ndarray)
        assert model.n_iter_.shape == (1,)
        assert np.issubdtype(model.n_iter_.dtype, np.integer)
        assert model.n_iter_[0] >= 1


@pytest.mark.parametrize("seed", SEEDS)
def test_unpenalized_fit_predicts_as_logistic_regression(seed):
    """follows test_penalty_none: l2 = 0 predicts as LogisticRegression(C=inf) on 1000 rows."""
    X, y = make_classification(n_samples=1000, n_redundant=0, random_state=seed)
    model = SoftmaxRegression(l2=0.0, **TIGHT).fit(X, y)
    assert_array_equal(model.predict(X), newton(np.inf).fit(X, y).predict(X))


def test_unpenalized_fit_warns_of_nothing_else():
    """follows test_c_inf_no_warning: l2 = 0 raises no warning other than a ConvergenceWarning."""
    X, y = make_classification(n_samples=100, n_redundant=0, random_state=42)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        SoftmaxRegression(l2=0.0).fit(X, y)


# ---------------------------------------------------------------------------------------------
# issue 17: the exact optimum (tol 1e-10 within 1e-7 of Newton at tol 1e-14)


def _iris(seed):
    X, y = load_iris(return_X_y=True)
    return X, y, None


def _wine(seed):
    X, y = load_wine(return_X_y=True)
    return X, y, None


def _sparse_one_percent(seed):
    """500 x 50 CSR at 1% density, labels from a multinomial model with Gumbel noise."""
    rng = np.random.default_rng(seed)
    X = sparse.random(500, 50, density=0.01, format="csr", rng=rng, data_rvs=rng.standard_normal)
    y = np.argmax(X @ rng.normal(0, 3, (50, 3)) + rng.gumbel(size=(500, 3)), axis=1)
    return X, y, None


def _zero_weight_rows(seed):
    """3 classes on raw features of unequal scales; a fifth of the rows weigh 0."""
    rng = np.random.default_rng(seed)
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3, random_state=seed)
    X = X * np.logspace(-1, 1.5, 8) + 2.0
    weights = rng.uniform(0.5, 2.0, len(y))
    weights[rng.random(len(y)) < 0.2] = 0.0
    return X, y, weights


def _binary(seed):
    X, y = make_classification(n_samples=300, n_features=8, n_informative=4, shift=1.0,
                               scale=np.logspace(-1, 1.5, 8), random_state=seed)
    return X, y, None


PROBLEMS = [("iris", _iris, 0), ("wine", _wine, 0)] + [
    (name, make, seed) for name, make in (("sparse_1pct", _sparse_one_percent), ("zero_weight_rows", _zero_weight_rows),
                                          ("binary", _binary)) for seed in SEEDS]


@pytest.mark.parametrize("momentum", [None, "nesterov"])
@pytest.mark.parametrize("name, make, seed", PROBLEMS, ids=[f"{name}-{seed}" for name, _, seed in PROBLEMS])
def test_tight_tolerance_reaches_the_newton_optimum(name, make, seed, momentum):
    """Issue 17: at tol 1e-10, coef_ and intercept_ within 1e-7 (max |difference| / max
    |reference|) of LogisticRegression's newton-cholesky at tol 1e-14, on raw features
    (standardize=False: both solve the same problem), C = 1."""
    X, y, weights = make(seed)
    n_classes = len(np.unique(y))
    total = len(y) if weights is None else weights.sum()
    model = raw_model(1.0, total, n_classes, momentum=momentum).fit(X, y, sample_weight=weights)
    reference = newton(1.0).fit(X, y, sample_weight=weights)
    assert reference.n_iter_[0] < 1000
    assert model.coef_.shape == reference.coef_.shape
    coef_error = relative(model.coef_, reference.coef_)
    intercept_error = relative(centred(model.intercept_), centred(reference.intercept_))
    assert coef_error <= 1e-7 and intercept_error <= 1e-7, (coef_error, intercept_error, model.n_iter_,
                                                            model.stop_reason_)


# ---------------------------------------------------------------------------------------------
# issue 17: raw-scale features reach the maximum likelihood estimate in standardized epochs


@pytest.mark.parametrize("momentum", [None, "nesterov"])
def test_anes96_raw_features_reach_the_mnlogit_estimate(momentum):
    """Issue 17: statsmodels' anes96 multinomial logit (PID on logpopul, selfLR, age, educ,
    income, as in statsmodels' MNLogit example): unpenalized softreg on raw features reaches
    MNLogit's estimate within 1e-6 relative, in under 5x the epochs of the standardized fit.
    MNLogit fixes category 0 as the reference: its column k-1 is softreg's row k minus row 0."""
    sm = pytest.importorskip("statsmodels.api")
    data = sm.datasets.anes96.load_pandas()
    exog = data.exog[["logpopul", "selfLR", "age", "educ", "income"]]
    X, y = exog.to_numpy(dtype=np.float64), data.endog.to_numpy()
    fit = sm.MNLogit(data.endog, sm.add_constant(exog)).fit(method="newton", maxiter=100, tol=1e-14, disp=0)
    assert fit.mle_retvals["converged"]
    params = fit.params.to_numpy()  # (1 + D, K - 1): const first

    standardized = SoftmaxRegression(l2=0.0, tol=1e-10, max_epochs=20_000, momentum=momentum).fit(X, y)
    limit = 5 * int(standardized.n_iter_[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = SoftmaxRegression(l2=0.0, standardize=False, tol=1e-10, max_epochs=limit, momentum=momentum).fit(X, y)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)], raw.stop_message_
    assert raw.n_iter_[0] < limit, (raw.n_iter_, standardized.n_iter_)

    for model in (raw, standardized):
        estimate = np.vstack([model.intercept_[1:] - model.intercept_[0], (model.coef_[1:] - model.coef_[0]).T])
        assert relative(estimate, params) <= 1e-6, relative(estimate, params)
