"""Property-based fuzzing of every text input: CSV, svmlight and TOML, valid and broken.

Each generated input must either load (and then train, or predict, with exit 0) or be refused
with a DataError/ConfigError and exit 2: never another exception, never a traceback, never
an output file after a failure. The example counts are bounded so CI stays fast.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from softreg.cli.app import app
from softreg.data import DataError, load_dataset
from softreg.model.run.config import ConfigError, TrainConfig, load_config_file, resolve_config

# SOFTREG_FUZZ_EXAMPLES raises the count for a longer local hunt; CI keeps the bounded default.
FUZZ = settings(max_examples=int(os.environ.get("SOFTREG_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
runner = CliRunner()

numbers = st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda v: f"{v:.6g}")
odd_cells = st.one_of(
    numbers,
    st.sampled_from(["", "nan", "NA", "inf", "-inf", "abc", '"1,5"', '"x\ny"', " 3 ", "1e400", "0x10", "?",
                     '"unterminated', '1"2', "1e308", "-1.7e308", "12345678901234567890123"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6),
)
labels = st.sampled_from(["a", "b", "c", "0", "1", "", "x y", '"q,r"', "NA", "nan", "99999999999999999999999"])


# Hypothesis favours the first and smallest choices, so the well-formed option comes first.
mostly_true = st.sampled_from([True, True, True, False])


@st.composite
def csv_files(draw) -> bytes:
    n_columns = draw(st.integers(2, 4)) if draw(mostly_true) else draw(st.integers(1, 4))
    names = st.sampled_from(["a", "b", "c", "d", "a b", "", "label"])
    header = draw(st.lists(names, min_size=n_columns, max_size=n_columns, unique=draw(mostly_true)))
    cells = numbers if draw(mostly_true) else odd_cells  # clean files load; odd ones probe the errors
    rows = []
    for _ in range(draw(st.integers(0, 25))):
        width = n_columns if draw(mostly_true) or draw(mostly_true) else draw(st.integers(0, n_columns + 2))
        rows.append(",".join(draw(st.lists(cells, min_size=max(width - 1, 0), max_size=max(width - 1, 0))) + [draw(labels)]))
    text = "\n".join([",".join(header)] + rows) + draw(st.sampled_from(["\n", "", "\n\n"]))
    raw = text.encode("utf-8")
    if not (draw(mostly_true) or draw(mostly_true)):
        raw += b"\xff\xfe"  # not UTF-8
    return raw


def check_load_and_train(raw: bytes, suffix: str) -> None:
    """The file either loads (finite X, one label per row) or is a DataError, and `softreg train`
    agrees: exit 0 with a model file, or exit 2 with a message and no file."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"fuzz{suffix}"
        path.write_bytes(raw)
        try:
            dataset = load_dataset(str(path))
        except DataError:
            dataset = None
        else:
            assert dataset.X.shape[0] == len(dataset.y) > 0
            values = dataset.X.data if hasattr(dataset.X, "data") and hasattr(dataset.X, "indptr") else dataset.X
            assert np.isfinite(values).all()
        model = Path(directory) / "m.npz"
        result = runner.invoke(app, ["train", str(path), "--out", str(model), "--quiet", "--max-epochs", "5",
                                     "--val-fraction", "0", "--test-fraction", "0"])
        assert result.exit_code in (0, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
        assert model.exists() == (result.exit_code == 0)
        if dataset is None:
            assert result.exit_code == 2 and "error:" in result.output


@FUZZ
@given(csv_files())
def test_fuzzed_csv_loads_or_is_refused_and_train_exits_0_or_2(raw):
    check_load_and_train(raw, ".csv")


@FUZZ
@given(csv_files())
def test_fuzzed_csv_predicts_or_is_refused(raw):
    model = _iris_like_model()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.csv"
        path.write_bytes(raw)
        out = Path(directory) / "p.csv"
        result = runner.invoke(app, ["predict", str(model), str(path), "--out", str(out), "--chunk-rows", "3"])
        assert result.exit_code in (0, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert out.exists() == (result.exit_code == 0)


_MODEL = {}


def _iris_like_model() -> Path:
    """A small model over features named a and b (trained once per session)."""
    if "path" not in _MODEL:
        directory = Path(tempfile.mkdtemp())
        data = directory / "train.csv"
        rng = np.random.default_rng(0)
        X = rng.standard_normal((40, 2))
        data.write_text("a,b,label\n" + "".join(f"{p},{q},{'x' if p > 0 else 'y'}\n" for p, q in X.tolist()))
        model = directory / "m.npz"
        result = runner.invoke(app, ["train", str(data), "--out", str(model), "--quiet", "--max-epochs", "20"])
        assert result.exit_code == 0, result.output
        _MODEL["path"] = model
    return _MODEL["path"]


svm_tokens = st.one_of(
    st.tuples(st.integers(0, 12), numbers).map(lambda t: f"{t[0]}:{t[1]}"),
    st.sampled_from(["qid:1", "1:", ":2", "x:1", "3:abc", "-1:2", "# comment", "1:2:3", "99999999999:1",
                     "2000000000:1", "4:nan", "5:inf", "6:1e400"]),
)


@st.composite
def svmlight_files(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 15))):
        label = draw(st.sampled_from(["0", "1", "2", "-1", "1.5", "a", ""]))
        tokens = draw(st.lists(svm_tokens, max_size=5))
        lines.append(" ".join([label] + tokens))
    return ("\n".join(lines) + "\n").encode()


@FUZZ
@given(svmlight_files())
def test_fuzzed_svmlight_loads_or_is_refused(raw):
    check_load_and_train(raw, ".svm")


keys = st.sampled_from(sorted(TrainConfig.__dataclass_fields__) + ["epochs", "learning_rate", "l2 "])
values = st.one_of(
    st.integers(-5, 5000).map(str), numbers, st.booleans().map(lambda b: str(b).lower()),
    st.sampled_from(['"auto"', '"bound"', '"nesterov"', '"none"', '"balanced"', '"float32"', '"drop"', '"iris"',
                     '"0.5"', '"-1"', "[1, 2]", "{a = 1}", "nan", "inf", '""']),
    st.text(max_size=8),  # often not TOML at all
)


@FUZZ
@given(st.lists(st.tuples(keys, values), max_size=6))
def test_fuzzed_toml_resolves_or_names_the_problem(items):
    text = "".join(f"{key} = {value}\n" for key, value in items)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "c.toml"
        path.write_text(text, encoding="utf-8")
        try:
            config = resolve_config(load_config_file(path), {}, source=f"config file '{path}'")
        except ConfigError as error:
            assert str(error)
        else:
            assert isinstance(config, TrainConfig)
        result = runner.invoke(app, ["train", "--config", str(path), "--print-config"])
        assert result.exit_code in (0, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
