"""softreg export: the ONNX graph run by onnxruntime, and the README's JSON scorer, against
softreg's own predictions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from softreg.cli.app import app
from softreg.data import load_dataset
from softreg.model.run.persist import load_pipeline, read_model_file

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install 'softreg[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"


def trained(tmp_path, *args):
    model = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", *args, "--quiet", "--out", str(model)])
    assert result.exit_code == 0, result.output[-1500:]
    return model


def exported(model, *args):
    result = runner.invoke(app, ["export", str(model), *args])
    assert result.exit_code == 0, result.output
    return Path(str(model)[:-len(".npz")] + f".{args[1]}") if "--out" not in args else Path(args[args.index("--out") + 1])


def onnx_run(path: Path, X: np.ndarray):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"features": X})


@pytest.mark.parametrize("name", ["iris", "wine", "digits", "breast_cancer"])
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-6)])
def test_onnx_gives_softregs_probabilities_on_the_builtins(tmp_path, name, dtype, tolerance):
    model = trained(tmp_path, name)
    path = exported(model, "--to", "onnx", "--dtype", dtype)
    X = load_dataset(name).X
    label, proba = onnx_run(path, X.astype(dtype))
    reference = read_model_file(model)
    expected = reference.predict_proba(X)
    assert proba.dtype == np.dtype(dtype) and proba.shape == expected.shape
    assert np.abs(proba - expected).max() <= tolerance
    assert np.array_equal(label, reference.classes_[expected.argmax(axis=1)])


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-6)])
def test_onnx_of_a_sparse_model(tmp_path, dtype, tolerance):
    from sklearn.datasets import dump_svmlight_file
    from scipy import sparse

    rng = np.random.default_rng(0)
    X = sparse.random(400, 30, density=0.1, format="csr", random_state=0)
    y = rng.integers(0, 3, 400)
    data = tmp_path / "d.svm"
    dump_svmlight_file(X, y, str(data))
    model = trained(tmp_path, str(data))
    path = exported(model, "--to", "onnx", "--dtype", dtype)
    rows = load_dataset(str(data)).X
    label, proba = onnx_run(path, rows.toarray().astype(dtype))
    expected = read_model_file(model).predict_proba(rows)
    assert np.abs(proba - expected).max() <= tolerance
    assert np.array_equal(label, expected.argmax(axis=1))


def numeric_table(tmp_path) -> Path:
    """Numbers with missing cells in the training rows (so imputed columns and 0/1 missing
    columns are in the model) and text labels."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 4)) * [1.0, 10.0, 0.1, 100.0] + [0.0, 50.0, -1.0, 2000.0]
    labels = np.array(["ant", "bee", "cow"])[(X[:, 0] + (X[:, 1] - 50) / 10 > 0).astype(int) + (X[:, 2] > -1)]
    cells = X.astype(object)
    cells[rng.random(X.shape) < 0.1] = ""
    lines = ["a,b,c,d,kind"] + [",".join(map(str, row)) + f",{label}" for row, label in zip(cells, labels)]
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-5)])
def test_onnx_of_a_table_imputes_and_adds_the_missing_columns(tmp_path, dtype, tolerance):
    import pandas as pd

    table = numeric_table(tmp_path)
    model = trained(tmp_path, str(table), "--target", "kind")
    header = read_model_file(model).header
    assert any(name.endswith(":missing") for name in header["feature_names"])
    path = exported(model, "--to", "onnx", "--dtype", dtype)
    frame = pd.read_csv(table)
    label, proba = onnx_run(path, frame[["a", "b", "c", "d"]].to_numpy(dtype))
    pipeline = load_pipeline(model)
    expected = pipeline.predict_proba(frame)
    assert np.abs(proba - expected).max() <= tolerance
    assert list(label) == list(pipeline.predict(frame))


def readme_scorer() -> dict:
    """The README's JSON reference scorer, run as written: its namespace (``score``)."""
    code = re.search(r"```python\n(import numpy as np\n\ndef level_text\(v\):.*?)```", README.read_text(),
                     re.DOTALL).group(1)
    namespace: dict = {}
    exec(code, namespace)
    return namespace


def test_the_readme_scorer_reproduces_softreg_on_penguins(tmp_path):
    """The JSON reference scorer in the README, run as written, on a table with categories and
    missing cells (penguins)."""
    import pandas as pd
    penguins = penguins_csv()
    model = trained(tmp_path, str(penguins), "--target", "species")
    path = exported(model, "--to", "json")
    document = json.loads(path.read_text())
    namespace = readme_scorer()
    frame = pd.read_csv(penguins)
    table = {name: [None if pd.isna(v) else v for v in frame[name]] for name in frame.columns}
    labels, proba = namespace["score"](document, table)
    pipeline = load_pipeline(model)
    assert np.abs(proba - pipeline.predict_proba(frame)).max() < 1e-12
    assert labels == list(pipeline.predict(frame))


def penguins_csv() -> Path:
    import palmerpenguins

    return Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"


def onnx_inputs(path: Path, frame, dtype: str) -> dict:
    """The graph's inputs from a pandas frame, as the README shows: the numeric columns as
    numbers (NaN when missing), the categorical ones as text ("" when missing)."""
    from softreg.model.run.export import input_columns

    model = read_model_file(Path(str(path)[:-len(".onnx")] + ".npz"))
    columns = input_columns(model.header)
    numbers = [c["name"] for c in columns if c["kind"] != "categorical"]
    categories = [c["name"] for c in columns if c["kind"] == "categorical"]
    inputs = {"categories": frame[categories].astype("string").fillna("").to_numpy()}
    return {**inputs, "features": frame[numbers].to_numpy(dtype)} if numbers else inputs


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-6)])
def test_onnx_of_penguins_one_hot_encodes_the_categories_inside_the_graph(tmp_path, dtype, tolerance):
    """Penguins: two categorical columns (sex with missing cells, its own level), numbers with
    missing cells (imputed, 0/1 missing columns), text labels."""
    import pandas as pd

    model = trained(tmp_path, str(penguins_csv()), "--target", "species")
    path = exported(model, "--to", "onnx", "--dtype", dtype)
    frame = pd.read_csv(penguins_csv())
    assert frame["sex"].isna().sum() > 0 and frame["bill_length_mm"].isna().sum() > 0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    label, proba = session.run(None, onnx_inputs(path, frame, dtype))
    pipeline = load_pipeline(model)
    expected = pipeline.predict_proba(frame)
    assert proba.dtype == np.dtype(dtype) and np.abs(proba - expected).max() <= tolerance
    assert list(label) == list(pipeline.predict(frame))
    assert "exports to: onnx, json" in runner.invoke(app, ["info", str(model)]).output


def test_the_readme_onnx_snippet_for_penguins_runs_as_written(tmp_path):
    import pandas as pd

    model = trained(tmp_path, str(penguins_csv()), "--target", "species")
    path = exported(model, "--to", "onnx")
    code = re.search(r"```python\n(import onnxruntime, pandas as pd\n.*?)```", README.read_text(), re.DOTALL).group(1)
    namespace: dict = {}
    exec(code.replace('"penguins.csv"', repr(str(penguins_csv())))
         .replace('"penguins.softreg.onnx"', repr(str(path))), namespace)
    pipeline = load_pipeline(model)
    frame = pd.read_csv(penguins_csv())
    assert np.abs(namespace["probabilities"] - pipeline.predict_proba(frame)).max() <= 1e-6
    assert list(namespace["label"]) == list(pipeline.predict(frame))


@pytest.mark.parametrize("min_frequency", [5, 1])
def test_onnx_puts_rare_unseen_and_missing_levels_where_softreg_does(tmp_path, min_frequency):
    """Rare levels folded into '(other)' (min_frequency 5) or none (1: every level its own
    column); unseen levels at prediction go to '(other)' or all zeros; missing cells, written
    as '' in the file and 'nan' by pandas, are the '(missing)' level."""
    import pandas as pd

    rng = np.random.default_rng(5)
    n = 400
    colour = rng.choice(["red", "green", "blue"], n, p=[0.45, 0.3, 0.25])
    colour[:3] = "teal"  # rare: fewer training rows than min_frequency 5
    size = rng.choice(["S", "M", "L", ""], n)
    x = rng.standard_normal(n)
    logits = x + (colour == "red") - (size == "L") + 0.5 * (size == "")
    label = np.where(logits > 0.3, "yes", np.where(logits < -0.5, "no", "maybe"))
    frame = pd.DataFrame({"colour": colour, "size": size, "x": x, "label": label})
    data = tmp_path / "shop.csv"
    frame.to_csv(data, index=False)
    model = trained(tmp_path, str(data), "--target", "label", "--min-frequency", str(min_frequency))
    header = read_model_file(model).header
    assert ("colour=(other)" in header["feature_names"]) == (min_frequency == 5)
    assert "size=(missing)" in header["feature_names"]
    path = exported(model, "--to", "onnx", "--dtype", "float64")
    new = pd.DataFrame({"colour": ["red", "teal", "violet", None, "blue"], "size": ["S", None, "XL", "M", "L"],
                        "x": [0.1, np.nan, -2.0, 1.0, 0.0]})
    unseen = tmp_path / "new.csv"
    new.to_csv(unseen, index=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for rows in (pd.read_csv(data), pd.read_csv(unseen)):
        label_onnx, proba = session.run(None, onnx_inputs(path, rows, "float64"))
        pipeline = load_pipeline(model)
        expected = pipeline.predict_proba(rows)
        assert np.abs(proba - expected).max() <= 1e-12
        assert list(label_onnx) == list(pipeline.predict(rows))


@pytest.mark.parametrize("labels", ["text", "integers"])
def test_onnx_of_booleans_and_numbers_taken_as_categories_and_of_a_column_of_rare_levels(tmp_path, labels):
    """categorical='flag,code,price' on columns read as booleans and numbers (levels "true",
    "2", "1.5"; pandas writes "True" and, with a missing cell in the column, "2.0"), and a
    column whose every level is rare (only its "(other)" column): the graph, softreg predict on
    the training file and the Python pipeline give the same probabilities."""
    import pandas as pd

    rng = np.random.default_rng(6)
    n = 400
    frame = pd.DataFrame({"x": rng.standard_normal(n), "flag": rng.random(n) < 0.5,
                          "code": rng.integers(1, 4, n).astype(float), "price": rng.choice([1.5, 2.0, 3.25], n),
                          "ticket": [f"t{i}" for i in rng.integers(0, 1000, n)]})
    frame.loc[5, "code"] = np.nan
    score = frame.x + frame.flag + (frame.code == 2) + (frame.price == 2.0)
    frame["y"] = np.where(score > 1.2, "hi", "lo") if labels == "text" else np.where(score > 1.2, 1, 0)
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    model = trained(tmp_path, str(data), "--target", "y", "--categorical", "flag,code,price,ticket")
    names = read_model_file(model).header["feature_names"]
    assert "flag=true" in names and "code=2" in names and "price=1.5" in names
    assert [name for name in names if name.startswith("ticket")] == ["ticket=(other)"]
    path = exported(model, "--to", "onnx", "--dtype", "float64")
    rows = pd.read_csv(data)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    label, proba = session.run(None, onnx_inputs(path, rows, "float64"))
    pipeline = load_pipeline(model)
    expected = pipeline.predict_proba(rows)
    assert np.abs(proba - expected).max() <= 1e-12
    assert list(label) == list(pipeline.predict(rows))
    predicted = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(model), str(data), "--proba", "--out", str(predicted)])
    assert result.exit_code == 0, result.output
    unseen = " ".join(result.output.split())  # ticket's held-out values only: flag, code and price are all seen
    assert "'ticket'" in unseen and not any(f"'{name}'" in unseen for name in ("flag", "code", "price")), unseen
    written = pd.read_csv(predicted)
    assert np.abs(written[[f"proba_{c}" for c in pipeline.classes_]].to_numpy() - expected).max() <= 1e-12
    document = json.loads(exported(model, "--to", "json").read_text())  # and the README's JSON scorer
    table = {name: [None if pd.isna(v) else v for v in rows[name]] for name in rows.columns}
    scored_labels, scored = readme_scorer()["score"](document, table)
    assert np.abs(scored - expected).max() <= 1e-12 and scored_labels == list(pipeline.predict(rows))


@pytest.mark.parametrize("args, needle", [(["--to", "pmml"], "--to must be one of onnx, json"),
                                          (["--to", "onnx", "--dtype", "float16"], "dtype (--dtype) must be 'float32' or 'float64'")])
def test_bad_targets_are_refused(tmp_path, args, needle):
    model = trained(tmp_path, "iris")
    result = runner.invoke(app, ["export", str(model), *args])
    assert result.exit_code == 2 and needle in " ".join(result.output.split()) and "Traceback" not in result.output
