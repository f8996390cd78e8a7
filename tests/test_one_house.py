"""One training path: the same metrics from every engine, resume in memory, a light start,
and the small defects fixed on the way (a silently replaced model file)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.metrics import accuracy_score, log_loss
from typer.testing import CliRunner

from softreg.cli.app import app
from softreg.cli.render import metrics_table
from softreg.data import load_dataset
from softreg.model.run import checkpoint as checkpoint_module
from softreg.model.run.config import resolve_config
from softreg.model.run.train import fit_dataset, train_to_file

runner = CliRunner()


def wine_csv(path: Path) -> Path:
    X, y = load_wine(return_X_y=True)
    lines = [",".join([f"f{j}" for j in range(X.shape[1])] + ["kind"])]
    lines += [",".join([repr(float(v)) for v in row] + [f"k{label}"]) for row, label in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def rendered(metrics: dict) -> str:
    from rich.console import Console

    console = Console(width=120, record=True, file=open("/dev/null", "w"))
    console.print(metrics_table(metrics))
    return console.export_text()


def test_memory_and_stream_engines_give_identical_metric_tables(tmp_path):
    """The same data through the memory engine and the stream engine (blocks smaller than the data)."""
    csv = wine_csv(tmp_path / "wine.csv")
    assert runner.invoke(app, ["prepare", str(csv), str(tmp_path / "wine.npy")]).exit_code == 0
    metrics = {}
    for engine in ("memory", "stream"):
        out = tmp_path / f"{engine}.npz"
        args = ["train", str(tmp_path / "wine.npy"), "--engine", engine, "--json", "--out", str(out)]
        result = runner.invoke(app, args + (["--block-rows", "32"] if engine == "stream" else []))
        assert result.exit_code == 0, result.output
        metrics[engine] = json.loads(result.stdout)["metrics"]
    assert set(metrics["memory"]) == {"train", "validation", "test"}
    assert rendered(metrics["memory"]) == rendered(metrics["stream"])
    # The table's numbers are scikit-learn's metrics of the model's own predictions.
    _, header = __import__("softreg.model.run.persist", fromlist=["load_model"]).load_model(tmp_path / "memory.npz")
    assert header["metrics"] == metrics["memory"]


@pytest.mark.parametrize("momentum", ["auto", "none"])  # auto: Nesterov's, its y and counter in the checkpoint
def test_a_memory_run_cut_short_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, momentum):
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_SECONDS", 0.0)
    config = resolve_config({}, {"dataset": "wine", "max_epochs": 60, "tol": 0.0, "momentum": momentum})
    whole = fit_dataset(load_dataset("wine"), config)
    epochs = []

    def stop_after_25():
        return len(epochs) >= 25

    model = tmp_path / "wine.npz"
    cut = train_to_file(load_dataset("wine"), config, model, callback=epochs.append, should_stop=stop_after_25)
    assert cut.estimator.stop_reason_ == "interrupted" and cut.checkpoint_kept == checkpoint_module.checkpoint_path(model)
    resumed = train_to_file(load_dataset("wine"), config, model, resume=True)
    assert resumed.estimator.n_iter_ == 60 and resumed.checkpoint_kept is None
    assert not checkpoint_module.checkpoint_path(model).exists()  # the finished model supersedes it
    np.testing.assert_allclose(resumed.estimator.coef_, whole.estimator.coef_, rtol=1e-12, atol=1e-14)
    assert resumed.estimator.history_["train_loss"] == pytest.approx(whole.estimator.history_["train_loss"], rel=1e-12)


def test_resume_in_memory_from_the_cli(tmp_path):
    result = runner.invoke(app, ["train", "iris", "--resume", "--quiet", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "no checkpoint" in result.output and "Traceback" not in result.output


def test_the_callers_dataset_is_not_changed_by_default():
    data = load_dataset("wine")
    X, y = data.X.copy(), data.y.copy()
    fit_dataset(data, resolve_config({}, {"dataset": "wine", "max_epochs": 5}))
    assert np.array_equal(data.X, X) and np.array_equal(data.y, y)


def test_replacing_a_default_path_model_of_other_data_is_said(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wine_csv(tmp_path / "wine.csv")
    first = runner.invoke(app, ["train", "wine", "--quiet"])
    assert first.exit_code == 0 and "warning" not in first.output
    second = runner.invoke(app, ["train", "wine.csv", "--quiet"])  # the same default name, wine.softreg.npz
    assert second.exit_code == 0, second.output
    words = " ".join(second.output.split())
    assert (f"warning: replacing wine.softreg.npz, a model trained on wine, with one trained on "
            f"{tmp_path.resolve() / 'wine.csv'}") in words
    again = runner.invoke(app, ["train", "wine.csv", "--quiet"])  # the same data again: nothing to say
    assert "warning" not in again.output


def _modules_after(args: list[str], cwd: Path) -> set[str]:
    """The modules loaded by a whole `softreg ARGS` process."""
    script = ("import atexit, sys\n"
              "atexit.register(lambda: print('MODULES', ' '.join(sorted(sys.modules)), file=sys.stderr))\n"
              "from softreg.cli.app import main\nsys.argv = ['softreg', *sys.argv[1:]]\nmain()\n")
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if line.startswith("MODULES "))
    return set(line.split()[1:])


def test_reading_commands_import_neither_scikit_learn_nor_scipy(tmp_path):
    model = tmp_path / "iris.npz"
    assert runner.invoke(app, ["train", "iris", "--quiet", "--out", str(model)]).exit_code == 0
    names = json.loads(runner.invoke(app, ["info", str(model), "--json"]).stdout)["feature_names"]
    rows = tmp_path / "rows.csv"
    rows.write_text(",".join(f'"{name}"' for name in names) + "\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    for args in (["--help"], ["train", "--help"], ["datasets"], ["info", str(model)], ["predict", str(model), str(rows)]):
        loaded = _modules_after(args, tmp_path)
        heavy = sorted(name for name in loaded if name.partition(".")[0] in ("sklearn", "scipy"))
        assert not heavy, f"softreg {' '.join(args)} imported {heavy[:5]}"
    assert "numpy" not in _modules_after(["--help"], tmp_path)


def test_a_named_command_is_built_alone_and_reads_as_in_the_full_app(tmp_path):
    """main() builds only the command named on the line; its help is the full app's, word for word."""
    from softreg.cli.app import COMMANDS, build_app

    for name in COMMANDS:
        alone = runner.invoke(build_app([name]), [name, "--help"], terminal_width=80)
        full = runner.invoke(app, [name, "--help"], terminal_width=80)
        assert alone.exit_code == full.exit_code == 0 and alone.output == full.output, name
    for args in (["info"], ["info", "--bogus"], ["train", "--max-epochs", "x"], ["eval", "--version"]):
        alone = runner.invoke(build_app(args[:1]), args, terminal_width=80)
        full = runner.invoke(app, args, terminal_width=80)
        assert alone.exit_code == full.exit_code == 2 and alone.output == full.output, args
    loaded = _modules_after(["datasets"], tmp_path)
    assert sorted(name for name in loaded if name.startswith("softreg.cli.commands.")) == \
        ["softreg.cli.commands.datasets"]
    typo = subprocess.run([sys.executable, "-c", "import sys; from softreg.cli.app import main; "
                           "sys.argv = ['softreg', 'infoo']; main()"], capture_output=True, text=True, timeout=120)
    assert typo.returncode == 2 and "No such command 'infoo'. Did you mean 'info'?" in typo.stderr  # the full app's words


def test_predictions_read_without_scikit_learn_match_the_estimator(tmp_path):
    """predict uses the model file's arrays directly; they give the estimator's probabilities."""
    from softreg.model.run.persist import load_model, read_model_file

    model = tmp_path / "wine.npz"
    assert runner.invoke(app, ["train", "wine", "--quiet", "--out", str(model)]).exit_code == 0
    X, y = load_wine(return_X_y=True)
    estimator, _ = load_model(model)
    light = read_model_file(model)
    np.testing.assert_allclose(light.predict_proba(X), estimator.predict_proba(X), rtol=1e-12, atol=1e-15)
    labels = np.array(["class_0", "class_1", "class_2"])[y]
    assert accuracy_score(labels, light.classes_[light.predict_proba(X).argmax(axis=1)]) > 0.95
    assert log_loss(labels, light.predict_proba(X), labels=light.classes_) < 0.2
