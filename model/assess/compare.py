"""softreg against scikit-learn's LogisticRegression: the same problem, two solvers.

softreg minimizes, over W (D, K) and b (K,),

    J(W, b) = (1/N) sum_i L_i + (l2/2) ||W||^2.

LogisticRegression(C) minimizes C sum_i L_i + (1/2) ||coef||^2; dividing by C N gives the same
problem when

    K >= 3 (multinomial):  l2 = 1 / (C N),   coef_ = W^T,   intercept_ = b (up to a common shift).

K = 2: scikit-learn fits one vector d with logit d.x + c for classes_[1]. softreg's two logits
enter the loss only through their difference, z_1 - z_0 = x (w_1 - w_0) + (b_1 - b_0); for a
fixed difference d the penalty (l2/2)(||w_0||^2 + ||w_1||^2) is smallest at w_1 = -w_0 = d/2,
where it equals (l2/4) ||d||^2. Matching (1/(2 C N)) ||d||^2 gives

    K = 2 (binomial):  l2 = 2 / (C N),   d = w_1 - w_0,   c = b_1 - b_0.

With sample weights (times class weights), N is replaced by the sum of the row weights. All
of this is about the same features: softreg standardizes X by default (weighted mean and
population standard deviation of the training rows; sparse float64 X is centred implicitly, by
folding the mean into the bias, so it stays sparse) and
penalizes the weights in those coordinates, so the mapping holds against LogisticRegression
fitted on X standardized that way, or with ``standardize=False`` on the raw X.

Elsewhere: Spark's LogisticRegression minimizes (1/N) sum L_i + regParam ((1 - a)/2 ||W||^2 +
a ||W||_1); with elasticNetParam a = 0 and the multinomial family that is this objective with
l2 = regParam, and with two classes (the binomial family, Spark's default then) l2 = 2 regParam,
by the argument above. Spark's ``standardization=True`` divides by the unbiased standard
deviation (denominator N - 1), softreg by the population one, which multiplies the penalty
by N/(N - 1): l2 = regParam N/(N - 1) (times 2 for two classes). mlxtend's SoftmaxRegression
does not standardize and steps along the summed gradient X^T (P - Y) + l2 W of sum L_i +
(l2/2) ||W||^2 (one mini-batch): with ``standardize=False`` that is softreg's problem with
softreg's l2 = mlxtend's l2 / N.
"""

from __future__ import annotations

import time

import numpy as np

from softreg.model.math.linear import fold_standardization, objective


def sklearn_C(l2: float, total_weight: float, n_classes: int) -> float:
    """LogisticRegression's C for softreg's ``l2`` (see the module docstring for the mapping)."""
    if l2 <= 0:
        return np.inf
    return (2.0 if n_classes == 2 else 1.0) / (l2 * total_weight)


def sklearn_to_softreg(coef: np.ndarray, intercept: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """LogisticRegression's (coef_, intercept_) as softreg's (W (D, K), b (K,)) for the same problem."""
    if n_classes == 2:
        half = coef[0] / 2.0
        return np.stack([-half, half], axis=1), np.array([-intercept[0] / 2.0, intercept[0] / 2.0])
    return coef.T.copy(), intercept - intercept.mean()


def compare_with_sklearn(estimator, X_train, y_train, X_test, y_test, sample_weight=None) -> dict:
    """Fit ``estimator`` (a SoftmaxRegression) and the equivalent LogisticRegression on the same
    training rows, standardized the way softreg standardizes them (scikit-learn gets softreg's
    own fitted mean and scale); return both sides' objective, test metrics, coefficients, time,
    how each run ended, and a verdict."""
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score, log_loss

    ours = clone(estimator)
    start = time.perf_counter()
    ours.fit(X_train, y_train, sample_weight)
    ours_seconds = time.perf_counter() - start
    n_classes = len(ours.classes_)

    dtype = ours.weights_.dtype
    if ours.standardize:
        Xs_train = ours._standardize(X_train.astype(dtype))
        Xs_test = ours._standardize(X_test.astype(dtype))
        # Sparse rows are scaled, not centered, in Xs (they stay sparse); softreg's bias in those
        # coordinates absorbs its centering. Centering does not change W at the optimum (the bias
        # is not penalized), so both sides solve the same problem in the same coordinates.
        W_here, bias_here = ours.weights_, ours.bias_
        if hasattr(Xs_train, "toarray"):
            bias_here = ours.bias_ - (ours.feature_mean_ / ours.feature_scale_) @ ours.weights_
    else:  # the penalty is on raw coefficients: both sides solve the problem on the raw rows
        Xs_train, Xs_test = X_train.astype(dtype), X_test.astype(dtype)
        W_here, bias_here = fold_standardization(ours.weights_, ours.bias_, ours.feature_mean_, ours.feature_scale_)
    weights = _row_weights(ours, y_train, sample_weight)
    theirs, theirs_seconds, C, max_iter = _fit_lbfgs(ours, Xs_train, y_train, weights)
    W_sk, b_sk = sklearn_to_softreg(theirs.coef_, theirs.intercept_, n_classes)
    lbfgs_iterations = int(np.max(theirs.n_iter_))

    y_index = np.searchsorted(ours.classes_, y_train)
    sides = {}
    for name, W, b, model, X_scaled_test, seconds, iterations, ending in (
        ("softreg", W_here, bias_here, ours, X_test, ours_seconds, int(ours.n_iter_[0]), ours.stop_message_),
        ("scikit-learn lbfgs", W_sk, b_sk, theirs, Xs_test, theirs_seconds, lbfgs_iterations,
         "converged" if lbfgs_iterations < max_iter else f"stopped at max_iter ({max_iter}) without converging"),
    ):
        proba = model.predict_proba(X_scaled_test)
        sides[name] = {
            "objective": float(objective(W, b, Xs_train, y_index, float(ours.l2), weights)),
            "test_accuracy": float(accuracy_score(y_test, model.classes_[proba.argmax(axis=1)])),
            "test_log_loss": float(log_loss(y_test, proba, labels=model.classes_)),
            "seconds": seconds,
            "iterations": iterations,
            "ending": ending,
        }
    # Intercepts are defined up to a common shift (the bias is not penalized): compare centred.
    b_ours = bias_here - bias_here.mean()
    result = {
        "C": None if not np.isfinite(C) else C,  # l2 = 0: no penalty, C would be infinite
        "l2": float(ours.l2),
        "n_classes": n_classes,
        "sides": sides,
        "objective_relative_difference": abs(sides["softreg"]["objective"] - sides["scikit-learn lbfgs"]["objective"])
        / abs(sides["scikit-learn lbfgs"]["objective"]),
        "max_coef_difference": float(np.max(np.abs(W_here - W_sk))),
        "max_intercept_difference": float(np.max(np.abs(b_ours - (b_sk - b_sk.mean())))),
        "max_proba_difference": float(np.max(np.abs(ours.predict_proba(X_test) - theirs.predict_proba(Xs_test)))),
    }
    result["verdict"] = _verdict(result, ours)
    return result


def _row_weights(ours, y_train, sample_weight):
    """The row weights softreg trained with (sample weights times class weights), for scikit-learn too."""
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if ours.class_weight is not None:
        from sklearn.utils.class_weight import compute_sample_weight

        weights = (np.ones(len(y_train)) if weights is None else weights) * compute_sample_weight(ours.class_weight, y_train)
    return weights


def _fit_lbfgs(ours, Xs_train, y_train, weights, max_iter: int = 10_000):
    """LogisticRegression with softreg's penalty as C, fitted to a tight tolerance on the same
    standardized rows: (model, seconds, C, max_iter)."""
    from sklearn.linear_model import LogisticRegression

    total_weight = float(len(y_train) if weights is None else weights.sum())
    C = sklearn_C(float(ours.l2), total_weight, len(ours.classes_))
    theirs = LogisticRegression(C=C, tol=1e-10, max_iter=max_iter)
    start = time.perf_counter()
    theirs.fit(Xs_train, y_train, sample_weight=weights)
    return theirs, time.perf_counter() - start, C, max_iter


def _verdict(result: dict, ours) -> str:
    """One line: the same optimum within the tolerances the tests use, or why not."""
    if result["objective_relative_difference"] <= 1e-6 and result["max_coef_difference"] <= 1e-4:
        return "match: the same optimum (objective within relative 1e-6, coefficients within 1e-4)"
    reasons = []
    if ours.stop_reason_ not in ("converged", "precision"):
        reasons.append(f"softreg stopped before converging ({ours.stop_reason_.replace('_', ' ')})")
    if not result["sides"]["scikit-learn lbfgs"]["ending"].startswith("converged"):
        reasons.append("lbfgs did not converge")
    if result["l2"] == 0:
        reasons.append("with l2 = 0 the optimum may not exist (separable data) or not be unique")
    if not reasons:
        reasons.append("both stopped at their tolerances; a tighter tol brings softreg closer")
    return "no match: " + "; ".join(reasons)
