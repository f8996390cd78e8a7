"""`softreg train` and `softreg datasets` end to end through Typer's runner."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax
from sklearn.datasets import load_iris

from softreg.cli.app import app
from softreg.model.run.persist import load_model

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


def test_train_shows_curves_stop_reason_metrics_and_saves(runner, tmp_path):
    model = tmp_path / "iris.npz"
    result = runner.invoke(app, ["train", "iris", "--out", str(model)])
    assert result.exit_code == 0, result.output
    for needle in ("loss curves", "stop:", "step size floor", "metrics", "log loss", "top-2 accuracy",
                   "per-class report (test)", "confusion matrix (test)", f"model saved to {model}"):
        assert needle in result.output, needle
    assert model.exists()


def test_json_is_the_only_stdout_and_model_round_trips(runner, tmp_path):
    model = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", "iris", "--json", "--out", str(model), "--l2", "0.01"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["stop_reason"] in ("converged", "precision")
    assert document["config"]["l2"] == 0.01
    assert len(document["history"]["train_loss"]) == document["epochs"] + 1
    assert set(document["metrics"]) == {"train", "validation", "test"}

    # The file holds plain arrays only.
    with np.load(model, allow_pickle=False) as archive:
        header = json.loads(str(archive["header"]))
        weights, bias = archive["weights"], archive["bias"]
        mean, scale = archive["feature_mean"], archive["feature_scale"]
    assert header["format_version"] == 1 and header["split"]["seed"] == 0
    assert header["dataset"]["name"] == "iris" and header["stop_reason"] == document["stop_reason"]

    # Loaded model = brute-force softmax of the standardized features with the stored weights.
    estimator, loaded_header = load_model(model)
    X, _ = load_iris(return_X_y=True)
    expected = scipy_softmax(((X - mean) / scale) @ weights + bias, axis=1)
    assert np.allclose(estimator.predict_proba(X), expected, rtol=1e-12, atol=1e-14)
    assert loaded_header["feature_names"][0] == "sepal length (cm)"
    # Test accuracy recomputed from the loaded model on the stored test rows matches the report.
    assert list(estimator.classes_) == ["setosa", "versicolor", "virginica"]


def test_same_run_twice_gives_the_same_weights(runner, tmp_path):
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for path in paths:
        assert runner.invoke(app, ["train", "wine", "--quiet", "--out", str(path)]).exit_code == 0
    (a, _), (b, _) = load_model(paths[0]), load_model(paths[1])
    assert np.max(np.abs(a.coef_ - b.coef_)) <= 1e-12


def test_failed_write_leaves_the_existing_file_untouched(runner, tmp_path, monkeypatch):
    model = tmp_path / "keep.npz"
    model.write_bytes(b"previous model")

    def broken_savez(handle, **arrays):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    result = runner.invoke(app, ["train", "iris", "--out", str(model)])
    assert result.exit_code != 0
    assert model.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.npz"]


def test_missing_output_directory_fails_before_training(runner, tmp_path):
    result = runner.invoke(app, ["train", "digits", "--out", str(tmp_path / "nope" / "m.npz")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "digits" not in result.output.split("error")[0]  # nothing was loaded or trained first


def test_config_file_then_flags(runner, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('dataset = "iris"\nl2 = 0.5\nmomentum = "nesterov"\n')
    result = runner.invoke(app, ["train", "--config", str(config), "--l2", "0.01", "--print-config"])
    assert result.exit_code == 0, result.output
    assert 'dataset = "iris"' in result.stdout and "l2 = 0.01" in result.stdout
    assert 'momentum = "nesterov"' in result.stdout
    model = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", "--config", str(config), "--json", "--out", str(model)])
    assert json.loads(result.stdout)["config"]["l2"] == 0.5
    _, header = load_model(model)
    assert header["config"]["momentum"] == "nesterov"


@pytest.mark.parametrize(
    "toml, needle",
    [('dataset = "iris"\nlearning_rate = 1\n', "unknown key learning_rate"),
     ('dataset = "iris"\nl2 = "big"\n', "must be a finite number >= 0 or 'auto', got 'big'"),
     ('dataset = "iris"\nl2 = \n', "not valid TOML"),
     ('dataset = "iris"\nmomentum = "heavy"\n', "momentum (--momentum) must be 'auto', 'none' or 'nesterov', got 'heavy'")],
)
def test_config_errors_name_the_key(runner, tmp_path, toml, needle):
    config = tmp_path / "c.toml"
    config.write_text(toml)
    result = runner.invoke(app, ["train", "--config", str(config), "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2
    assert needle in result.output.replace("\n", " ")
    assert "Traceback" not in result.output
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize(
    "args, needle",
    [(["--lr", "-1"], "--lr"), (["--lr", "fast"], "--lr"), (["--l2", "-1"], "--l2"), (["--max-epochs", "0"], "--max-epochs"),
     (["--val-fraction", "0.6", "--test-fraction", "0.5"], "below 1"), (["--dtype", "float16"], "--dtype"),
     (["--momentum", "nesterov", "--batch-size", "32"], "full-batch"), (["--plot", "curves.gif"], ".png or .svg")],
)
def test_bad_flags_exit_2_naming_the_flag(runner, tmp_path, args, needle):
    result = runner.invoke(app, ["train", "iris", "--out", str(tmp_path / "m.npz"), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output.replace("\n", " ")
    assert not (tmp_path / "m.npz").exists()


def test_divergence_exits_1(runner, tmp_path):
    result = runner.invoke(app, ["train", "iris", "--lr", "1e12", "--no-standardize", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 1, result.output
    assert "halved 20 times" in result.output
    assert not (tmp_path / "m.npz").exists()


def test_plot_needs_matplotlib_or_writes_a_png(runner, tmp_path):
    plot = tmp_path / "curves.png"
    result = runner.invoke(app, ["train", "iris", "--plot", str(plot), "--out", str(tmp_path / "m.npz")])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert result.exit_code == 2 and "needs matplotlib" in result.output
        assert "softreg[plot]" in result.output.replace("\n", "")
        assert not (tmp_path / "m.npz").exists()
    else:
        assert result.exit_code == 0 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_on_a_csv_file_with_string_labels(runner, tmp_path):
    X, y = load_iris(return_X_y=True)
    path = tmp_path / "flowers.csv"
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    path.write_text("a,b,c,d,species\n" + "\n".join(f"{','.join(map(str, r.tolist()))},{n}" for r, n in zip(X, names)))
    result = runner.invoke(app, ["train", str(path), "--json", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["test"]["accuracy"] > 0.9


@pytest.mark.parametrize("config", [c for c in CONFIGS if "synthetic" not in c.name], ids=lambda c: c.stem)
def test_every_builtin_config_runs_and_meets_its_stated_accuracy(runner, tmp_path, config):
    result = runner.invoke(app, ["train", "--config", str(config), "--json", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    stated = float(config.read_text().split("Test accuracy ", 1)[1].split(" ", 1)[0])
    assert document["metrics"]["test"]["accuracy"] >= stated - 1e-9
    assert document["stop_reason"] in ("converged", "precision")


def test_datasets_lists_builtins(runner):
    result = runner.invoke(app, ["datasets", "--json"])
    assert result.exit_code == 0
    assert [row["name"] for row in json.loads(result.stdout)] == ["iris", "wine", "digits", "breast_cancer"]


def test_a_long_output_name_is_written(runner, tmp_path):
    model = tmp_path / ("m" * 240 + ".npz")
    result = runner.invoke(app, ["train", "iris", "--quiet", "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert model.exists() and [p.name for p in tmp_path.iterdir()] == [model.name]


def test_a_write_failure_after_training_exits_1_without_traceback(runner, tmp_path, monkeypatch):
    import softreg.data.files as output

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", full_disk)
    result = runner.invoke(app, ["train", "iris", "--quiet", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 1
    assert "could not be written" in result.output and "No space left" in result.output
    assert list(tmp_path.iterdir()) == []
