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

With sample weights, N is replaced by the sum of the weights. Elsewhere: Spark's
LogisticRegression minimizes (1/N) sum L_i + regParam ((1 - a)/2 ||W||^2 + a ||W||_1); with
elasticNetParam a = 0 that is this objective with l2 = regParam (Spark also standardizes by
default). mlxtend's SoftmaxRegression steps along the summed gradient X^T (P - Y) + l2 W of
sum L_i + (l2/2) ||W||^2, which is softreg's problem with softreg's l2 = mlxtend's l2 / N.
"""

from __future__ import annotations

import time

import numpy as np

from softreg.model.objective import objective


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


def compare_with_sklearn(estimator, X_train, y_train, X_test, y_test) -> dict:
    """Fit ``estimator`` (a SoftmaxRegression) and the equivalent LogisticRegression on the same
    standardized training rows; return both sides' objective, test metrics, coefficients and time."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.preprocessing import StandardScaler

    ours = clone(estimator)
    start = time.perf_counter()
    ours.fit(X_train, y_train)
    ours_seconds = time.perf_counter() - start
    n_classes = len(ours.classes_)

    # scikit-learn gets the same standardization softreg applies internally.
    scaler = StandardScaler(with_mean=not hasattr(X_train, "toarray")).fit(X_train)
    Xs_train, Xs_test = scaler.transform(X_train), scaler.transform(X_test)
    C = sklearn_C(float(ours.l2), X_train.shape[0], n_classes)
    theirs = LogisticRegression(C=C, tol=1e-10, max_iter=10_000)
    start = time.perf_counter()
    theirs.fit(Xs_train, y_train)
    theirs_seconds = time.perf_counter() - start
    W_sk, b_sk = sklearn_to_softreg(theirs.coef_, theirs.intercept_, n_classes)

    y_index = np.searchsorted(ours.classes_, y_train)
    Xo_train = ours._standardize(X_train.astype(ours.weights_.dtype))
    sides = {}
    for name, W, b, model, X_scaled_test, seconds, iterations in (
        ("softreg", ours.weights_, ours.bias_, ours, X_test, ours_seconds, ours.n_iter_),
        ("scikit-learn lbfgs", W_sk, b_sk, theirs, Xs_test, theirs_seconds, int(np.max(theirs.n_iter_))),
    ):
        proba = model.predict_proba(X_scaled_test)
        sides[name] = {
            "objective": float(objective(W, b, Xo_train, y_index, float(ours.l2))),
            "test_accuracy": float(accuracy_score(y_test, model.classes_[proba.argmax(axis=1)])),
            "test_log_loss": float(log_loss(y_test, proba, labels=model.classes_)),
            "seconds": seconds,
            "iterations": iterations,
        }
    # Intercepts are defined up to a common shift (the bias is not penalized): compare centred.
    b_ours = ours.bias_ - ours.bias_.mean()
    return {
        "C": C,
        "l2": float(ours.l2),
        "n_classes": n_classes,
        "sides": sides,
        "objective_relative_difference": abs(sides["softreg"]["objective"] - sides["scikit-learn lbfgs"]["objective"])
        / abs(sides["scikit-learn lbfgs"]["objective"]),
        "max_coef_difference": float(np.max(np.abs(ours.weights_ - W_sk))),
        "max_intercept_difference": float(np.max(np.abs(b_ours - (b_sk - b_sk.mean())))),
        "max_proba_difference": float(np.max(np.abs(ours.predict_proba(X_test) - theirs.predict_proba(Xs_test)))),
    }
