"""Issue 16 (in progress): the cross-validated L2 path, against fits done independently by
scikit-learn on the same folds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_wine

from softreg.model.solve.path import cross_validate_penalty, strength_grid
from softreg.model.solve.settings import OptimizerSettings

TIGHT = OptimizerSettings(momentum="nesterov", tol=1e-9, max_epochs=20_000)


def test_fold_losses_equal_logistic_regression_on_the_same_folds():
    """For each fold: StandardScaler on its training rows, LogisticRegression at C = 1/(l2 N_train)
    (the same objective for K = 3), held-out log loss: softreg's warm-started path agrees."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    grid = [1.0, 0.1, 0.01, 0.001]
    path = cross_validate_penalty(X, y, 3, folds=4, seed=3, grid=grid, settings=TIGHT, max_extensions=0, path_tol=None)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=3).split(X, y)
    for f, (train, held) in enumerate(folds):
        scaler = StandardScaler().fit(X[train])
        for j, l2 in enumerate(grid):
            model = LogisticRegression(C=1.0 / (l2 * len(train)), tol=1e-12, max_iter=10_000)
            model.fit(scaler.transform(X[train]), y[train])
            reference = log_loss(y[held], model.predict_proba(scaler.transform(X[held])), labels=[0, 1, 2])
            assert abs(path.fold_loss[f][j] - reference) < 1e-6 * max(1.0, reference), (f, l2)
    means = np.array(path.fold_loss).mean(axis=0)
    np.testing.assert_allclose(path.mean_loss, means, rtol=1e-12)
    assert path.best_index == int(np.argmin(means))


def test_the_same_seed_gives_the_same_folds_and_choice_and_1se_is_a_larger_penalty():
    X, y = load_wine(return_X_y=True)
    first = cross_validate_penalty(X, y, 3, folds=5, seed=1, n_values=8, decades=4)
    again = cross_validate_penalty(X, y, 3, folds=5, seed=1, n_values=8, decades=4)
    assert first.to_dict() == again.to_dict()
    one_se = cross_validate_penalty(X, y, 3, folds=5, seed=1, n_values=8, decades=4, select="1se")
    assert one_se.chosen >= first.chosen
    best = first.best_index
    assert one_se.mean_loss[one_se.chosen_index] <= first.mean_loss[best] + first.se_loss[best]


def test_a_minimum_at_the_edge_extends_the_path_and_says_so():
    X, y = load_wine(return_X_y=True)
    path = cross_validate_penalty(X, y, 3, folds=3, seed=0, grid=[10.0, 3.0, 1.0])  # every penalty far too large
    assert len(path.strength) > 3 and min(path.strength) < 1.0
    assert any("extended down" in note for note in path.notes)
    assert path.strength == sorted(path.strength, reverse=True)


def test_the_default_top_is_barely_more_than_the_priors():
    """At the top of the default grid the fitted probabilities are close to the class shares."""
    from softreg.model.solve import train_softmax

    X, y = load_wine(return_X_y=True)
    path = cross_validate_penalty(X, y, 3, folds=3, seed=0, n_values=3, decades=1, max_extensions=0)
    scaled = (X - X.mean(axis=0)) / X.std(axis=0)
    result = train_softmax(scaled, y, 3, l2=path.strength[0], settings=TIGHT)
    probabilities = np.exp(scaled @ result.W + result.b)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    shares = np.bincount(y) / len(y)
    assert np.abs(probabilities - shares).max() < 0.1
    assert np.allclose(strength_grid(2.0, 3, 2.0), [2.0, 0.2, 0.02])


@pytest.mark.parametrize("kwargs, needle", [({"select": "best"}, "select must be"), ({"folds": 1}, "folds must be"),
                                            ({"folds": 100}, "folds=100 is more than the rows of any class")])
def test_bad_settings_are_refused_naming_the_parameter(kwargs, needle):
    X, y = load_wine(return_X_y=True)
    with pytest.raises(ValueError, match=needle):
        cross_validate_penalty(X, y, 3, **kwargs)


def test_train_l2_auto_chooses_by_cross_validation_and_stores_the_path(runner, tmp_path):
    import json

    from softreg.cli.app import app
    from softreg.model.run.persist import load_model

    model = tmp_path / "wine.npz"
    result = runner.invoke(app, ["train", "wine", "--l2", "auto", "--json", "--out", str(model)])
    assert result.exit_code == 0, result.output[-1500:]
    header = json.loads(result.stdout)
    path = header["penalty_path"]
    assert header["config"]["l2"] == path["chosen"] == path["strength"][path["best_index"]]
    assert path["mean_loss"][path["best_index"]] == min(path["mean_loss"]) and path["folds"] == 5
    estimator, stored = load_model(model)
    assert estimator.l2 == path["chosen"] and stored["penalty_path"] == path
    # The same penalty from the library on the run's training rows (same seed, same folds).
    from softreg.data import load_dataset, split_indices

    data = load_dataset("wine")
    train_rows, _, _ = split_indices(data.y, val_fraction=0.15, test_fraction=0.15, seed=0)
    again = cross_validate_penalty(data.X[train_rows], np.unique(data.y[train_rows], return_inverse=True)[1], 3, seed=0)
    assert again.chosen == path["chosen"]
    shown = runner.invoke(app, ["info", str(model)])
    assert shown.exit_code == 0 and "5-fold cross-validation over" in shown.output
    # info shows the table behind the curve too: every strength with its mean loss, the choice marked.
    assert "standard error" in shown.output and "min, chosen" in shown.output
    assert f"{path['mean_loss'][path['best_index']]:.4f}" in shown.output


def test_a_mini_batch_run_chooses_its_penalty_on_full_batch_solves(runner, tmp_path):
    """The path's points are optima, solved full batch with Nesterov's momentum whatever the
    final fit's settings (mini-batch steps cannot reach an optimum to score: --batch-size 32 once
    diverged in the first fold); --batch-size is the final fit's, and the choice is the path's."""
    import json

    from softreg.cli.app import app

    result = runner.invoke(app, ["train", "wine", "--l2", "auto", "--batch-size", "32", "--max-epochs", "50",
                                 "--json", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 0, result.output[-1500:]
    header = json.loads(result.stdout)
    assert header["config"]["batch_size"] == 32
    plain = runner.invoke(app, ["train", "wine", "--l2", "auto", "--json", "--out", str(tmp_path / "p.npz")])
    assert json.loads(plain.stdout)["penalty_path"]["chosen"] == header["penalty_path"]["chosen"]


def test_path_with_no_l1_share_is_the_ridge_path_and_plots(runner, tmp_path):
    import json

    from softreg.cli.app import app

    ridge = runner.invoke(app, ["path", "wine", "--json"])
    zero_share = runner.invoke(app, ["path", "wine", "--l1-ratio", "0", "--json"])
    assert ridge.exit_code == zero_share.exit_code == 0, zero_share.output
    assert json.loads(zero_share.stdout)["penalty_path"] == json.loads(ridge.stdout)["penalty_path"]
    plot = tmp_path / "path.png"
    drawn = runner.invoke(app, ["path", "wine", "--plot", str(plot)])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert drawn.exit_code == 2 and "needs matplotlib" in drawn.output and not plot.exists()
    else:
        assert drawn.exit_code == 0 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, needle", [(["--l2", "lots"], "l2 (--l2) must be a finite number >= 0 or 'auto', got 'lots'"),
                                          (["--l2", "-1"], "--l2")])
def test_train_l2_auto_refusals(runner, tmp_path, args, needle):
    from softreg.cli.app import app

    result = runner.invoke(app, ["train", "wine", *args, "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and needle in " ".join(result.output.split()), result.output[-800:]
    assert "Traceback" not in result.output


def test_path_command_shows_the_curve_the_table_and_json_and_matches_train(runner, tmp_path):
    import json

    from softreg.cli.app import app

    shown = runner.invoke(app, ["path", "wine", "--folds", "3", "--select", "1se"])
    assert shown.exit_code == 0, shown.output[-1500:]
    assert "3-fold cross-validation over" in shown.output and "1se, chosen" in shown.output
    found = json.loads(runner.invoke(app, ["path", "wine", "--folds", "3", "--select", "1se", "--json"]).stdout)
    path = found["penalty_path"]
    assert path["folds"] == 3 and path["select"] == "1se" and path["chosen"] == path["strength"][path["one_se_index"]]
    trained = runner.invoke(app, ["train", "wine", "--l2", "auto", "--folds", "3", "--select", "1se", "--json",
                                  "--out", str(tmp_path / "m.npz")])
    assert trained.exit_code == 0, trained.output[-800:]
    assert json.loads(trained.stdout)["penalty_path"] == path  # the same rows, folds and choice


def test_path_on_a_table_learns_its_encoding_on_the_training_rows(runner, tmp_path):
    import json
    from importlib.resources import files

    from softreg.cli.app import app

    penguins = str(files("palmerpenguins") / "data" / "penguins.csv")
    result = runner.invoke(app, ["path", penguins, "--target", "species", "--json"])
    assert result.exit_code == 0, result.output[-800:]
    path = json.loads(result.stdout)["penalty_path"]
    assert len(path["strength"]) >= 20 and min(path["mean_loss"]) < 0.1  # penguins' species are nearly separable


@pytest.mark.parametrize("engines, penalty", [
    (("stream",), ["--l2", "auto", "--folds", "3"]),
    (("stream",), ["--l1", "auto", "--l1-ratio", "0.5", "--folds", "3"]),
    # One local cluster: the folds are views of its blocks. Every pass is a round trip to it, so the
    # solves stop at a looser tolerance, over two folds (the same on every engine, so the curves
    # still agree).
    (("dask",), ["--l1", "auto", "--l1-ratio", "0.5", "--tol", "1e-3", "--folds", "2"]),
])
def test_every_engine_gives_the_memory_engines_cv_curve(runner, tmp_path, engines, penalty):
    """The same rows through the stream engine (a prepared .npy read per pass) or the dask engine
    (one local cluster, folds as weights on its blocks) and in memory: the same folds, the same
    curve within 1e-8, the same choice."""
    import json

    from softreg.cli.app import app

    prepared = tmp_path / "wine.npy"
    assert runner.invoke(app, ["prepare", "wine", str(prepared)]).exit_code == 0
    curves = {}
    for engine in ("memory", *engines):
        result = runner.invoke(app, ["train", str(prepared), "--engine", engine, *penalty, "--json", "--out",
                                     str(tmp_path / f"{engine}.npz")])
        assert result.exit_code == 0, result.output[-800:]
        curves[engine] = json.loads(result.stdout)["penalty_path"]
    for engine in engines:
        np.testing.assert_allclose(curves[engine]["mean_loss"], curves["memory"]["mean_loss"], rtol=0, atol=1e-8)
        assert curves[engine]["strength"] == pytest.approx(curves["memory"]["strength"], rel=1e-10)
        assert curves[engine]["chosen_index"] == curves["memory"]["chosen_index"]
        assert curves[engine]["nonzero"] == curves["memory"]["nonzero"]
