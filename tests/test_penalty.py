"""Issue 16, section 2: L1, elastic net and the multinomial group lasso by proximal gradient
descent, against glmnet (python-glmnet, and R's for the grouped penalty), scikit-learn's saga,
brute-force proximal maps and the optimality conditions checked with an independent gradient."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar
from scipy.special import logsumexp, softmax
from sklearn.datasets import load_iris, load_wine

from softreg.cli.app import app
from softreg.model.estimator import SoftmaxRegression, SoftmaxRegressionCV
from softreg.model.math.penalty import L1Penalty, group_soft_threshold, soft_threshold

EXACT = dict(momentum="nesterov", tol=1e-10, max_epochs=100_000)


def glmnet_objective(X, y, W, b, lam, alpha, grouped=False):
    """glmnet's multinomial objective in raw coordinates (its penalty is on the standardized
    coefficients, standardized by the population standard deviation): mean deviance / 2 +
    lambda ((1 - alpha)/2 ||B||^2 + alpha (||B||_1 or sum_j ||B_j||_2)), B = W sd."""
    Z = X @ W + b
    mean_ce = np.mean(logsumexp(Z, axis=1) - Z[np.arange(len(y)), y])
    B = W * X.std(axis=0)[:, None]
    l1_term = np.sqrt((B ** 2).sum(axis=1)).sum() if grouped else np.abs(B).sum()
    return mean_ce + lam * ((1 - alpha) / 2 * (B ** 2).sum() + alpha * l1_term)


def fit_at(X, y, lam, alpha, grouped=False) -> SoftmaxRegression:
    """softreg at glmnet's (lambda, alpha): l1 = lambda alpha, l2 = lambda (1 - alpha)."""
    return SoftmaxRegression(l1=lam * alpha, l2=lam * (1 - alpha), grouped=grouped, **EXACT).fit(X, y)


# ----------------------------------------------------------------------------- the proximal maps
def test_soft_threshold_is_the_minimizer_found_by_scipy():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(6, 3)) * 2
    for threshold in (0.0, 0.3, 1.5):
        ours = soft_threshold(V, threshold)
        for v, u in zip(V.ravel(), ours.ravel()):
            best = minimize_scalar(lambda x: 0.5 * (x - v) ** 2 + threshold * abs(x), bounds=(-10, 10),
                                   method="bounded", options={"xatol": 1e-12})
            assert u == pytest.approx(best.x, abs=1e-7)
        assert np.all(ours[np.abs(V) <= threshold] == 0.0)  # exact zeros


def test_group_soft_threshold_is_the_minimizer_found_by_scipy():
    rng = np.random.default_rng(1)
    V = rng.normal(size=(8, 3))
    threshold = 1.2
    ours = group_soft_threshold(V, threshold)

    def value(u, v):
        return 0.5 * np.sum((u - v) ** 2) + threshold * np.linalg.norm(u)

    for v, u in zip(V, ours):
        found = minimize(value, v, args=(v,), method="Nelder-Mead",
                         options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 20_000})
        assert value(u, v) <= found.fun + 1e-12
        if np.linalg.norm(v) <= threshold:
            assert np.all(u == 0.0)
        else:
            np.testing.assert_allclose(u, found.x, atol=1e-5)


def test_the_zero_threshold_is_glmnets_lambda_max():
    """glmnet's first lambda is the least at which every coefficient is 0; ours, from the
    gradient at the intercept-only model, is the same number."""
    glmnet = pytest.importorskip("glmnet")
    for load in (load_wine, load_iris):
        X, y = load(return_X_y=True)
        Xs = (X - X.mean(axis=0)) / X.std(axis=0)
        G0 = Xs.T @ (np.bincount(y) / len(y) - np.eye(3)[y]) / len(y)
        for alpha in (1.0, 0.5):
            theirs = glmnet.LogitNet(alpha=alpha, n_splits=0, n_lambda=5).fit(X, y).lambda_path_[0]
            assert L1Penalty(1.0).zero_threshold(G0) / alpha == pytest.approx(theirs, rel=1e-12)


# ----------------------------------------------------------------------------- against glmnet
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_lasso_and_elastic_net_match_python_glmnet_on_wine(alpha):
    """At lambda = 0.02: the objective within 1e-9 relative, the same zero pattern, probabilities
    within 1e-6 (from glmnet's coefficients: python-glmnet's own predict_proba disagrees with its
    coefficients here, so they are used directly)."""
    glmnet = pytest.importorskip("glmnet")
    X, y = load_wine(return_X_y=True)
    lam = 0.02
    theirs = glmnet.LogitNet(alpha=alpha, lambda_path=lam * np.logspace(2, 0, 50), n_splits=0, tol=1e-14,
                             max_iter=10 ** 6).fit(X, y)
    W_g, b_g = theirs.coef_path_[:, :, -1].T, theirs.intercept_path_[:, -1]
    ours = fit_at(X, y, lam, alpha)
    W, b = ours.coef_.T, ours.intercept_
    reference = glmnet_objective(X, y, W_g, b_g, lam, alpha)
    assert abs(glmnet_objective(X, y, W, b, lam, alpha) - reference) <= 1e-9 * reference
    assert (W == 0).sum() > 0
    np.testing.assert_array_equal(W == 0, W_g == 0)
    assert np.abs(ours.predict_proba(X) - softmax(X @ W_g + b_g, axis=1)).max() < 1e-6


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed (Debian's r-cran-glmnet gives it)")
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_grouped_lasso_matches_r_glmnet_on_wine(alpha, tmp_path):
    """type.multinomial = "grouped": a feature's K coefficients are zero together."""
    probe = subprocess.run(["Rscript", "-e", "library(glmnet)"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("R's glmnet package is not installed (Debian's r-cran-glmnet)")
    X, y = load_wine(return_X_y=True)
    lam = 0.02
    names = ",".join([f"x{j}" for j in range(X.shape[1])] + ["y"])
    np.savetxt(tmp_path / "wine.csv", np.column_stack([X, y]), delimiter=",", header=names, comments="", fmt="%.17g")
    script = __import__("pathlib").Path(__file__).with_name("glmnet_fit.R")
    subprocess.run(["Rscript", str(script), str(tmp_path / "wine.csv"), str(lam), str(alpha), "grouped",
                    str(tmp_path / "coef.csv")], check=True, capture_output=True)
    coefficients = np.loadtxt(tmp_path / "coef.csv", delimiter=",")
    # R's first lambda of its own path is its lambda_max: the grouped zero threshold / alpha
    first = subprocess.run(["Rscript", "-e", f"suppressMessages(library(glmnet)); d <- read.csv('{tmp_path / 'wine.csv'}'); "
                            f"f <- glmnet(as.matrix(d[, names(d) != 'y']), factor(d$y), family = 'multinomial', "
                            f"alpha = {alpha}, type.multinomial = 'grouped', nlambda = 3); cat(sprintf('%.17g', f$lambda[1]))"],
                           check=True, capture_output=True, text=True).stdout
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    G0 = Xs.T @ (np.bincount(y) / len(y) - np.eye(3)[y]) / len(y)
    assert L1Penalty(1.0, grouped=True).zero_threshold(G0) / alpha == pytest.approx(float(first), rel=1e-9)
    b_g, W_g = coefficients[0], coefficients[1:]
    ours = fit_at(X, y, lam, alpha, grouped=True)
    W, b = ours.coef_.T, ours.intercept_
    reference = glmnet_objective(X, y, W_g, b_g, lam, alpha, grouped=True)
    assert abs(glmnet_objective(X, y, W, b, lam, alpha, grouped=True) - reference) <= 1e-9 * reference
    dropped = ~W.any(axis=1)
    assert dropped.sum() > 0 and np.all((W == 0).any(axis=1) == dropped)  # rows are zero whole, or not at all
    np.testing.assert_array_equal(W == 0, W_g == 0)
    assert np.abs(ours.predict_proba(X) - softmax(X @ W_g + b_g, axis=1)).max() < 1e-6


# ----------------------------------------------------------------------------- against saga
@pytest.mark.parametrize("C, l1_ratio", [(0.5, 0.5), (2.0, 1.0)])
def test_elastic_net_equals_scikit_learn_saga_at_the_mapped_strength(C, l1_ratio):
    """LogisticRegression minimizes C sum CE + (1 - r)/2 ||W||^2 + r ||W||_1: divided by C N that
    is softreg's objective with l1 = r/(C N), l2 = (1 - r)/(C N) (K = 3), on the same features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    N = len(y)
    l1, l2 = l1_ratio / (C * N), (1 - l1_ratio) / (C * N)
    theirs = LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", tol=1e-12, max_iter=200_000).fit(X, y)
    ours = SoftmaxRegression(l1=l1, l2=l2, standardize=False, **EXACT).fit(X, y)

    def objective(W, b):
        Z = X @ W.T + b
        return np.mean(logsumexp(Z, axis=1) - Z[np.arange(N), y]) + l2 / 2 * np.sum(W ** 2) + l1 * np.abs(W).sum()

    reference = objective(theirs.coef_, theirs.intercept_)
    assert abs(objective(ours.coef_, ours.intercept_) - reference) <= 1e-6 * reference
    np.testing.assert_array_equal(ours.coef_ == 0, theirs.coef_ == 0)


# ----------------------------------------------------------------------------- optimality
def optimality_gap(X, y, W, b, l1, l2, grouped=False) -> float:
    """The largest violation of 0 in dJ + l1 dh(W), with dJ = X^T (P - Y)/N + l2 W computed here by
    numpy (not by softreg): for a zero entry |g| <= l1, for a nonzero one g + l1 sign(w) = 0 (the
    group lasso: ||g_j|| <= l1 for a zero row, g_j + l1 w_j / ||w_j|| = 0 otherwise)."""
    N, K = len(y), W.shape[1]
    G = X.T @ (softmax(X @ W + b, axis=1) - np.eye(K)[y]) / N + l2 * W  # (D, K)
    gap = np.abs((softmax(X @ W + b, axis=1) - np.eye(K)[y]).mean(axis=0)).max()  # the bias: db = 0
    if grouped:
        norms = np.linalg.norm(W, axis=1)
        for j in range(W.shape[0]):
            if norms[j] == 0:
                gap = max(gap, np.linalg.norm(G[j]) - l1)
            else:
                gap = max(gap, np.abs(G[j] + l1 * W[j] / norms[j]).max())
        return float(gap)
    zero = W == 0
    gap = max(gap, (np.abs(G[zero]) - l1).max(initial=0.0))
    return float(max(gap, np.abs(G[~zero] + l1 * np.sign(W[~zero])).max(initial=0.0)))


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("momentum", [None, "nesterov"])
def test_the_fit_meets_the_optimality_conditions_in_its_own_coordinates(grouped, momentum):
    X, y = load_wine(return_X_y=True)
    model = SoftmaxRegression(l1=0.03, l2=1e-3, grouped=grouped, momentum=momentum, tol=1e-9,
                              max_epochs=50_000).fit(X, y)
    Xs = (X - model.feature_mean_) / model.feature_scale_
    assert optimality_gap(Xs, y, model.weights_, model.bias_, 0.03, 1e-3, grouped) < 1e-7
    assert 0 < (model.weights_ == 0).sum() < model.weights_.size
    assert "proximal gradient" in model.stop_message_ and "tol" in model.stop_message_


def test_proximal_mini_batches_come_near_the_optimum_with_exact_zeros():
    """Proximal SGD: each mini-batch step followed by the soft threshold. Its epochs are guarded
    (the full objective may not rise), so it creeps rather than converges: 30 epochs come within
    3% of the full-batch optimum."""
    X, y = load_wine(return_X_y=True)
    full = SoftmaxRegression(l1=0.05, **EXACT).fit(X, y)
    batches = SoftmaxRegression(l1=0.05, batch_size=32, max_epochs=30, tol=0.0).fit(X, y)

    def F(model):
        Xs = (X - model.feature_mean_) / model.feature_scale_
        Z = Xs @ model.weights_ + model.bias_
        return np.mean(logsumexp(Z, axis=1) - Z[np.arange(len(y)), y]) + 0.05 * np.abs(model.weights_).sum()

    assert 0 <= F(batches) - F(full) < 0.03 * F(full)
    assert (batches.weights_ == 0).sum() > 0  # the prox sets exact zeros on mini-batches too


def test_the_stream_engine_gives_the_memory_engines_lasso(tmp_path):
    """The same rows through the out-of-core engine: the same solution (one solver, one kernel)."""
    from softreg.model.engines import StreamEngine

    X, y = load_wine(return_X_y=True)
    memory = SoftmaxRegression(l1=0.02, l2=1e-3, **EXACT).fit(X, y)
    np.save(tmp_path / "X.npy", X)
    engine = StreamEngine(str(tmp_path / "X.npy"), y, np.ones(len(y)), n_classes=3, block_rows=40)
    stream = SoftmaxRegression(l1=0.02, l2=1e-3, **EXACT).fit_engine(engine, np.arange(3))
    np.testing.assert_allclose(stream.coef_, memory.coef_, atol=1e-7)  # both stop at max |G| ~ 1e-10
    np.testing.assert_array_equal(stream.coef_ == 0, memory.coef_ == 0)


# ----------------------------------------------------------------------------- the path
def test_the_l1_path_starts_where_every_coefficient_is_zero_and_counts_features():
    from softreg.model.solve.path import cross_validate_penalty

    X, y = load_wine(return_X_y=True)
    path = cross_validate_penalty(X, y, 3, l1_ratio=1.0, folds=4, n_values=10, seed=0)
    assert path.nonzero[0] == 0 and path.nonzero[-1] > 5  # the top is the intercept-only model
    assert path.strength == sorted(path.strength, reverse=True)
    assert path.strength[-1] == pytest.approx(path.strength[0] * 1e-4)  # 4 decades, as glmnet for N > D
    assert path.chosen_l1 == path.chosen and path.chosen_l2 == 0.0
    # just below the top, some coefficient enters in some fold: the top is the least such strength
    below = cross_validate_penalty(X, y, 3, l1_ratio=1.0, folds=4, seed=0, grid=[path.strength[0] * 0.97],
                                   max_extensions=0)
    assert below.nonzero[0] > 0


def test_the_cross_validating_estimator_takes_l1_ratio():
    X, y = load_wine(return_X_y=True)
    model = SoftmaxRegressionCV(l1_ratio=0.5, folds=3, n_values=6, random_state=1).fit(X, y)
    assert model.l1_ == pytest.approx(model.lambda_ * 0.5) and model.l2_ == pytest.approx(model.lambda_ * 0.5)
    assert model.cv_scores_.shape == (3, len(model.lambdas_))
    fixed = SoftmaxRegression(l1=model.l1_, l2=model.l2_).fit(X, y)
    np.testing.assert_allclose(model.coef_, fixed.coef_, atol=1e-12)
    with pytest.raises(ValueError, match="l1_ratio"):
        SoftmaxRegressionCV(l1_ratio=1.5).fit(X, y)
    with pytest.raises(ValueError, match="grouped"):
        SoftmaxRegressionCV(l1_ratio=0.0, grouped=True).fit(X, y)


# ----------------------------------------------------------------------------- the CLI
def test_train_l1_reports_and_stores_the_zero_pattern_exactly(runner, tmp_path):
    from softreg.model.run.persist import read_model_file

    model = tmp_path / "wine.npz"
    result = runner.invoke(app, ["train", "wine", "--l1", "0.05", "--json", "--out", str(model)])
    assert result.exit_code == 0, result.output[-1500:]
    header = json.loads(result.stdout)
    stored = read_model_file(model)
    W = stored.coef_.T  # (D, K) on the raw scale: the zeros survive the unscaling
    names = stored.header["feature_names"]
    assert header["sparsity"]["per_class"] == (W != 0).sum(axis=0).tolist()
    assert header["sparsity"]["unused"] == [names[j] for j in np.flatnonzero(~W.any(axis=1))]
    assert header["sparsity"]["unused"]  # l1 = 0.05 drops some of wine's features
    shown = runner.invoke(app, ["info", str(model)])
    assert shown.exit_code == 0 and "features in use (of 13) per class" in shown.stdout
    assert header["sparsity"]["unused"][0] in shown.stdout


def test_train_l1_auto_chooses_the_strength_and_the_mix(runner, tmp_path):
    model = tmp_path / "wine.npz"
    result = runner.invoke(app, ["train", "wine", "--l1", "auto", "--l1-ratio", "0.5", "--folds", "3", "--json",
                                 "--out", str(model)])
    assert result.exit_code == 0, result.output[-1500:]
    header = json.loads(result.stdout)
    path = header["penalty_path"]
    assert path["l1_ratio"] == 0.5 and path["nonzero"][0] == 0
    assert header["config"]["l1"] == pytest.approx(path["chosen"] * 0.5)
    assert header["config"]["l2"] == pytest.approx(path["chosen"] * 0.5)
    shown = runner.invoke(app, ["info", str(model)])
    assert shown.exit_code == 0 and "--l1 auto" in shown.stdout and "elastic net" in shown.stdout
    looked = runner.invoke(app, ["path", "wine", "--grouped", "--folds", "3"])
    assert looked.exit_code == 0, looked.output[-1500:]
    assert "group lasso" in looked.stdout and "features" in looked.stdout


@pytest.mark.parametrize("flags, named", [
    (["--l1", "auto", "--l2", "0.1"], "l2"),
    (["--l1-ratio", "0.5"], "l1-ratio"),
    (["--grouped"], "grouped"),
    (["--l1", "-1"], "l1"),
    (["--l1", "auto", "--l2", "auto"], "l1"),
    (["--l1", "auto", "--l1-ratio", "0"], "l1-ratio"),
    (["--l1", "auto", "--l1-ratio", "2"], "l1-ratio"),
    (["--l2", "auto", "--l1", "0.1"], "l2"),
])
def test_penalty_flags_that_do_not_fit_together_are_refused(runner, tmp_path, flags, named):
    result = runner.invoke(app, ["train", "wine", *flags, "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2, result.output
    assert f"--{named}" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.npz").exists()


def test_a_printed_l1_auto_config_reads_back(runner, tmp_path):
    printed = runner.invoke(app, ["train", "wine", "--l1", "auto", "--l1-ratio", "0.3", "--print-config"])
    assert printed.exit_code == 0, printed.output
    assert "l2 =" not in printed.stdout  # l1 'auto' sets l2
    (tmp_path / "run.toml").write_text(printed.stdout)
    again = runner.invoke(app, ["train", "--config", str(tmp_path / "run.toml"), "--print-config"])
    assert again.exit_code == 0 and again.stdout == printed.stdout


def test_an_l1_minimum_at_the_small_edge_extends_the_path_down():
    from softreg.model.solve.path import cross_validate_penalty

    X, y = load_wine(return_X_y=True)
    path = cross_validate_penalty(X, y, 3, l1_ratio=1.0, folds=3, seed=0, grid=[0.4, 0.3, 0.2])  # all too strong
    assert len(path.strength) > 3 and min(path.strength) < 0.2
    assert any("extended down" in note for note in path.notes)
    assert path.nonzero[-1] > path.nonzero[0]  # the weakest penalty uses more features than the strongest


def test_train_with_a_config_file_and_l1_auto_follows_the_precedence_of_flags(runner, tmp_path):
    """A flag l1 'auto' overrides the file's l2, as flags override files; a file's l1 'auto' makes
    `path` draw the L1 path; an l2 flag beside the file's l1 'auto' would go unused: refused."""
    from pathlib import Path

    shipped = Path(__file__).parents[1] / "configs" / "wine.toml"  # it sets l2
    printed = runner.invoke(app, ["train", "--config", str(shipped), "--l1", "auto", "--print-config"])
    assert printed.exit_code == 0, printed.output
    assert 'l1 = "auto"' in printed.stdout and "l2 =" not in printed.stdout
    own = tmp_path / "lasso.toml"
    own.write_text('dataset = "wine"\nl1 = "auto"\nl1_ratio = 0.5\n')
    looked = runner.invoke(app, ["path", "--config", str(own), "--folds", "3", "--json"])
    assert looked.exit_code == 0, looked.output[-800:]
    assert json.loads(looked.stdout)["penalty_path"]["l1_ratio"] == 0.5
    refused = runner.invoke(app, ["train", "--config", str(own), "--l2", "0.1", "--out", str(tmp_path / "m.npz")])
    assert refused.exit_code == 2 and "--l2" in refused.output


@pytest.mark.parametrize("edit, words", [
    (lambda h: h["penalty_path"].update(chosen_index=99), "penalty_path does not hold together"),
    (lambda h: h["penalty_path"].update(chosen=h["penalty_path"]["chosen"] * 2), "penalty_path does not hold together"),
    (lambda h: h["penalty_path"]["fold_loss"].pop(), "penalty_path does not hold together"),
    (lambda h: h["sparsity"].update(per_class=[1, 2]), "sparsity does not match the weights"),
])
def test_an_edited_path_or_sparsity_in_a_model_file_is_refused(runner, tmp_path, edit, words):
    model = tmp_path / "wine.npz"
    assert runner.invoke(app, ["train", "wine", "--l1", "auto", "--folds", "3", "--quiet", "--out",
                               str(model)]).exit_code == 0
    contents = dict(np.load(model, allow_pickle=False))
    header = json.loads(str(contents["header"]))
    edit(header)
    contents["header"] = np.asarray(json.dumps(header))
    np.savez(tmp_path / "edited.npz", **contents)
    shown = runner.invoke(app, ["info", str(tmp_path / "edited.npz")])
    assert shown.exit_code == 2 and words in " ".join(shown.output.split()), shown.output
