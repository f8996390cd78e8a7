"""The one vocabulary: keys, types, choices and defaults declared once, and the one map to the estimator."""

from __future__ import annotations

import pytest
from sklearn.base import clone
from sklearn.datasets import load_wine
from sklearn.metrics import accuracy_score

from softreg.cli.app import app
from softreg.model.run.config import (
    BY_KEY,
    PARAMETERS,
    ConfigError,
    TrainConfig,
    estimator_params,
    load_config_file,
    resolve_config,
)
from softreg.model.run.persist import load_model


def test_every_key_is_declared_once_and_the_config_follows_the_declarations():
    assert [p.key for p in PARAMETERS] == list(TrainConfig.__dataclass_fields__)
    defaults = TrainConfig()
    for parameter in PARAMETERS:
        assert getattr(defaults, parameter.key) == parameter.default
        if parameter.choices is not None and parameter.key != "lr":
            assert parameter.accepts(parameter.default)


@pytest.mark.parametrize("text", ['engine = "memory\', \'stream"', "engine = \"'memory'\"", 'momentum = "nesterov or none"',
                                  'dtype = "float"', 'missing = "\'drop\'"'])
def test_a_choice_is_checked_against_its_set_not_a_sentence(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as raised:
        resolve_config(load_config_file(path))
    key = text.split(" = ")[0]
    assert raised.value.key == key and str(raised.value).startswith(f"{key} must be")


def test_config_errors_carry_their_key():
    with pytest.raises(ConfigError) as raised:
        resolve_config({}, {"max_epochs": 0})
    assert raised.value.key == "max_epochs" and "--" not in str(raised.value)


def test_the_map_to_the_estimator_is_the_one_the_cli_runs():
    config = resolve_config({}, {"class_weight": "balanced", "momentum": "nesterov", "lr": "0.5", "seed": 9})
    params = estimator_params(config)
    assert params["class_weight"] == "balanced" and params["momentum"] == "nesterov"
    assert params["lr"] == 0.5 and params["random_state"] == 9
    none = estimator_params(resolve_config({}, {}))
    assert none["class_weight"] is None and none["momentum"] == "auto" and none["lr"] == "auto"
    assert estimator_params(resolve_config({}, {"momentum": "none"}))["momentum"] is None


def test_a_model_trained_by_the_cli_reloads_clones_and_refits(runner, tmp_path):
    """Reloaded CLI models used to carry config words (class_weight 'none'), so clone().fit raised."""
    path = tmp_path / "wine.npz"
    result = runner.invoke(app, ["train", "wine", "--seed", "7", "--quiet", "--out", str(path)])
    assert result.exit_code == 0, result.output
    estimator, header = load_model(path)
    assert estimator.class_weight is None and estimator.momentum == "auto"
    assert estimator.random_state == 7 == header["config"]["seed"]
    X, y = load_wine(return_X_y=True)
    refitted = clone(estimator).set_params(max_epochs=300).fit(X, y)
    assert accuracy_score(y, refitted.predict(X)) > 0.95
    assert list(estimator.classes_) == ["class_0", "class_1", "class_2"]  # the built-in's class names


def test_train_help_fits_a_screen_and_reads_its_defaults_from_the_config(tmp_path):
    """`softreg train --help` at 80 columns: at most 60 lines, grouped in panels, every config
    key's default as PARAMETERS declares it."""
    import os
    import subprocess
    import sys

    from softreg.cli.options import default_words

    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    done = subprocess.run([sys.executable, "-m", "softreg.cli", "train", "--help"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.rstrip("\n").splitlines()
    assert len(lines) <= 60, "\n".join(lines)
    assert max(len(line) for line in lines) <= 80
    text = " ".join(done.stdout.replace("│", " ").split())  # a wrapped help line continues past the border
    for panel in ("Data and split", "Objective and steps", "Stopping and engine", "Output"):
        assert panel in text
    for parameter in PARAMETERS:
        if parameter.key != "dataset":
            assert f"[default: {default_words(parameter.key)}]" in text, parameter.key
    assert default_words("l2") == "0.001" and default_words("batch_size") == "full batch"


def test_the_estimators_defaults_are_the_configs():
    """SoftmaxRegression keeps its defaults in its signature (scikit-learn's convention for
    get_params and clone); they must be the config's, mapped once by estimator_params."""
    from softreg.model.estimator import SoftmaxRegression
    from softreg.model.solve.settings import OptimizerSettings

    estimator_defaults, config_defaults = SoftmaxRegression().get_params(), estimator_params(TrainConfig())
    # The one deliberate difference (issue 17): the estimator's dtype None follows its input, as
    # LogisticRegression's does (float32 stays float32); a run's data is read as the config's dtype.
    assert estimator_defaults.pop("dtype") is None and config_defaults.pop("dtype") == "float64"
    assert estimator_defaults == config_defaults
    settings = OptimizerSettings()
    for key in ("lr", "max_epochs", "tol", "schedule", "batch_size", "patience"):
        assert getattr(settings, key) == estimator_params(TrainConfig())[key], key
