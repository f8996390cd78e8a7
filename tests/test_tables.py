"""Real tables as they come (issue 15): typed columns, categories, missing cells, read by pyarrow,
encoded as scikit-learn's ColumnTransformer would and stored in the model file as plain data.
The tables ship inside packages (palmerpenguins, statsmodels); nothing is downloaded."""

from __future__ import annotations

import gzip
import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from softreg.cli.app import app

runner = CliRunner()
PENGUINS = Path(str(files("palmerpenguins") / "data" / "penguins.csv"))
PENGUINS_RAW = Path(str(files("palmerpenguins") / "data" / "penguins-raw.csv"))


def train(args: list[str], tmp_path, name: str = "m.npz", **kwargs):
    model = tmp_path / name
    done = runner.invoke(app, ["train", *args, "--quiet", "--out", str(model)], **kwargs)
    assert done.exit_code == 0, done.output[-1500:]
    return model, done


def header_of(model: Path) -> dict:
    return json.loads(str(np.load(model, allow_pickle=False)["header"]))


def test_penguins_train_eval_and_predict_with_no_flag_but_the_target(tmp_path):
    model, done = train([str(PENGUINS), "--target", "species"], tmp_path)
    assert "island" in done.output and "one-hot, 3 levels" in done.output  # the schema table
    encoding = header_of(model)["encoding"]
    kinds = {column["name"]: column["kind"] for column in encoding["columns"]}
    assert kinds == {"island": "categorical", "bill_length_mm": "numeric", "bill_depth_mm": "numeric",
                     "flipper_length_mm": "numeric", "body_mass_g": "numeric", "sex": "categorical",
                     "year": "numeric"}
    evaluated = runner.invoke(app, ["eval", str(model), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["metrics"]["accuracy"] > 0.95
    predicted = runner.invoke(app, ["predict", str(model), str(PENGUINS)])
    assert predicted.exit_code == 0, predicted.output
    lines = predicted.stdout.splitlines()
    assert lines[0] == "label" and len(lines) == 1 + 344  # rows 4 and 272 hold NA cells: predicted too
    import pandas as pd

    truth = pd.read_csv(PENGUINS)["species"].to_numpy()
    assert np.mean(np.asarray(lines[1:]) == truth) > 0.97


def scikit_learn_pipeline(l2: float, n_rows: int):
    """What softreg does to penguins' columns, built from scikit-learn's parts, then
    LogisticRegression at softreg's penalty (C = 1 / (l2 N) for three classes)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
    categorical = ["island", "sex"]
    return make_pipeline(
        ColumnTransformer([
            ("numbers", SimpleImputer(strategy="mean", add_indicator=True), numeric),
            ("levels", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                                     OneHotEncoder(min_frequency=5, handle_unknown="infrequent_if_exist")),
             categorical)]),
        StandardScaler(),
        LogisticRegression(C=1.0 / (l2 * n_rows), tol=1e-12, max_iter=100_000))


def test_penguins_probabilities_equal_the_scikit_learn_pipeline(tmp_path):
    """ColumnTransformer(SimpleImputer(add_indicator) | OneHotEncoder(min_frequency)) ->
    StandardScaler -> LogisticRegression at C = 1 / (l2 N), fitted on the same training rows."""
    import pandas as pd

    from softreg.data import load_dataset, split_indices
    from softreg.data.formats.table import refit_on_rows
    from softreg.model.estimator import SoftmaxRegression

    l2 = 1e-2
    data = load_dataset(str(PENGUINS), target="species")
    train_rows, _, _ = split_indices(data.y, val_fraction=0.0, test_fraction=0.2, seed=0)
    refit_on_rows(data, train_rows)
    ours = SoftmaxRegression(l2=l2, tol=1e-11, max_epochs=50_000, momentum="nesterov").fit(data.X[train_rows],
                                                                                         data.y[train_rows])
    frame = pd.read_csv(PENGUINS)
    pipeline = scikit_learn_pipeline(l2, len(train_rows))
    pipeline.fit(frame.iloc[train_rows], frame["species"].iloc[train_rows])
    assert list(pipeline.classes_) == list(ours.classes_)
    theirs = pipeline.predict_proba(frame)
    gap = np.abs(ours.predict_proba(data.X) - theirs).max()
    print(f"largest probability gap to the scikit-learn pipeline: {gap:.2e}")
    assert gap < 1e-6


def test_penguins_raw_leaves_out_ids_and_dates_and_reads_yes_no_as_booleans(tmp_path):
    model, done = train([str(PENGUINS_RAW), "--target", "Species", "--ignore", "Comments"], tmp_path)
    columns = {column["name"]: column for column in header_of(model)["encoding"]["columns"]}
    assert columns["Individual ID"]["kind"] == "ignored" and "an id" in columns["Individual ID"]["note"]
    assert columns["Date Egg"]["kind"] == "ignored" and "dates" in columns["Date Egg"]["note"]
    assert columns["Clutch Completion"]["kind"] == "boolean"  # Yes / No
    assert columns["Comments"]["kind"] == "ignored" and "ignore=" in columns["Comments"]["note"]
    assert columns["Delta 15 N (o/oo)"]["indicator"] is True  # 14 NA cells
    predicted = runner.invoke(app, ["predict", str(model), str(PENGUINS_RAW)])
    assert predicted.exit_code == 0 and len(predicted.stdout.splitlines()) == 345, predicted.output[-800:]


def test_statsmodels_fair_integer_labels(tmp_path):
    """statsmodels' affairs table: rate_marriage (1 .. 5) as the target, the other columns numbers."""
    source = Path(str(files("statsmodels.datasets") / "fair" / "fair.csv"))
    model, _ = train([str(source), "--target", "rate_marriage", "--max-epochs", "200"], tmp_path)
    classes = np.load(model, allow_pickle=False)["classes"]
    assert classes.dtype.kind == "i" and classes.tolist() == [1, 2, 3, 4, 5]


def test_float_looking_labels_are_integers_sorted_numerically(tmp_path):
    """Labels written 1.0 .. 10.0 are the classes 1 .. 10, in numeric order (as text, '10.0'
    would sort before '2.0')."""
    rng = np.random.default_rng(3)
    path = tmp_path / "floats.csv"
    path.write_text("a,label\n" + "".join(f"{rng.normal():.3f},{k % 10 + 1:.1f}\n" for k in range(200)))
    model, _ = train([str(path), "--max-epochs", "20"], tmp_path)
    classes = np.load(model, allow_pickle=False)["classes"]
    assert classes.dtype.kind == "i" and classes.tolist() == list(range(1, 11))


def test_statsmodels_grunfeld_text_target(tmp_path):
    source = Path(str(files("statsmodels.datasets") / "grunfeld" / "grunfeld.csv"))
    model, _ = train([str(source), "--target", "firm", "--max-epochs", "300"], tmp_path)
    assert len(np.load(model, allow_pickle=False)["classes"]) == 11


def _penguin_rows(count=None) -> list[str]:
    lines = PENGUINS.read_text().splitlines()
    return lines if count is None else lines[:count]


def test_a_headerless_table_keeps_its_first_row(tmp_path):
    rows = [",".join(str(v) for v in row) for row in np.random.default_rng(0).integers(0, 5, size=(60, 4))]
    path = tmp_path / "plain.csv"
    path.write_text("\n".join(rows) + "\n")
    from softreg.data import load_dataset

    data = load_dataset(str(path))
    assert data.n_samples == 60 and data.feature_names == ["f0", "f1", "f2"]
    assert load_dataset(str(path), header=True).n_samples == 59  # --header says the first row names the columns


def test_a_pandas_index_column_is_dropped_with_a_note(tmp_path):
    import pandas as pd

    path = tmp_path / "frame.csv"
    pd.read_csv(PENGUINS).to_csv(path)  # writes the unnamed 0..N-1 index first
    model, _ = train([str(path), "--target", "species"], tmp_path)
    first = header_of(model)["encoding"]["columns"][0]
    assert first["name"] == "" and first["kind"] == "ignored" and "pandas index" in first["note"]


def test_an_id_column_is_not_a_feature(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "ids.csv"
    path.write_text("customer_id,x,y\n" + "".join(f"{1000 + i},{rng.normal():.4f},{i % 2}\n" for i in range(80)))
    from softreg.data import load_dataset

    data = load_dataset(str(path))
    assert data.feature_names == ["x"]
    assert load_dataset(str(path), columns=_choices(numeric="customer_id")).feature_names == ["customer_id", "x"]


def _choices(**words):
    from softreg.data.encoding import ColumnChoices

    return ColumnChoices.from_words(**words)


def test_a_continuous_target_is_refused_naming_it(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "prices.csv"
    path.write_text("a,price\n" + "".join(f"{rng.normal():.3f},{rng.uniform(1, 100):.2f}\n" for _ in range(99)))
    done = runner.invoke(app, ["train", str(path), "--quiet", "--out", str(tmp_path / "m.npz")])
    assert done.exit_code == 2 and "target column 'price' looks continuous" in " ".join(done.output.split())
    assert "99 distinct values" in " ".join(done.output.split())


def test_gzip_stdin_and_format_read_the_same_table(tmp_path):
    from softreg.data import load_dataset

    text = PENGUINS.read_bytes()
    (tmp_path / "p.csv.gz").write_bytes(gzip.compress(text))
    (tmp_path / "p.txt").write_bytes(text)
    plain = load_dataset(str(PENGUINS), target="species")
    for spec, extra in ((tmp_path / "p.csv.gz", {}), (tmp_path / "p.txt", {"format": "csv"})):
        other = load_dataset(str(spec), target="species", **extra)
        np.testing.assert_array_equal(other.X, plain.X)
        np.testing.assert_array_equal(other.y, plain.y)
    refused = runner.invoke(app, ["train", str(tmp_path / "p.txt"), "--quiet"])
    assert refused.exit_code == 2 and "--format" in refused.output
    piped = runner.invoke(app, ["train", "-", "--format", "csv", "--target", "species", "--quiet", "--out",
                                str(tmp_path / "s.npz")], input=text)
    assert piped.exit_code == 0, piped.output[-800:]
    model, _ = train([str(PENGUINS), "--target", "species"], tmp_path, "p.npz")
    predicted = runner.invoke(app, ["predict", str(model), "-", "--data-format", "csv"], input=text)
    assert predicted.exit_code == 0 and len(predicted.stdout.splitlines()) == 345, predicted.output[-800:]


def test_get_dummies_booleans_are_0_1_features(tmp_path):
    import pandas as pd

    frame = pd.get_dummies(pd.read_csv(PENGUINS), columns=["island", "sex"])  # True/False columns
    path = tmp_path / "dummies.csv"
    frame.to_csv(path, index=False)
    from softreg.data import load_dataset

    data = load_dataset(str(path), target="species")
    kinds = {column.name: column.kind for column in data.encoding.columns}
    assert kinds["island_Biscoe"] == "boolean" and kinds["sex_male"] == "boolean"
    column = data.feature_names.index("island_Biscoe")
    np.testing.assert_array_equal(data.X[:, column], frame["island_Biscoe"].to_numpy(dtype=float))


def test_unseen_categories_are_counted_or_refused_with_strict(tmp_path):
    model, _ = train([str(PENGUINS), "--target", "species"], tmp_path)
    lines = _penguin_rows()
    changed = [lines[0]] + [line.replace("Torgersen", "Atlantis") for line in lines[1:]]
    path = tmp_path / "new.csv"
    path.write_text("\n".join(changed) + "\n")
    done = runner.invoke(app, ["predict", str(model), str(path)])
    assert done.exit_code == 0 and "column 'island': 52 rows held a category the model never saw" in \
        " ".join(done.output.split())
    strict = runner.invoke(app, ["predict", str(model), str(path), "--strict"])
    assert strict.exit_code == 2 and "never saw" in strict.output and "Traceback" not in strict.output
    # eval reads the same file and counts the same cells (52: Torgersen's rows in penguins.csv)
    assert sum("Torgersen" in line for line in lines[1:]) == 52
    evaluated = runner.invoke(app, ["eval", str(model), str(path), "--json"])
    assert evaluated.exit_code == 0, evaluated.output[-800:]
    assert json.loads(evaluated.stdout)["unseen_levels"] == {"island": 52}
    assert "column 'island': 52 rows held a category" in " ".join(evaluated.stderr.split())
    # eval --strict refuses them as predict --strict does, naming the column; the file itself passes.
    refused = runner.invoke(app, ["eval", str(model), str(path), "--strict"])
    assert refused.exit_code == 2 and "column 'island' holds 52 values the model never saw" in \
        " ".join(refused.output.split()) and "Traceback" not in refused.output
    assert runner.invoke(app, ["eval", str(model), str(PENGUINS), "--strict"]).exit_code == 0


@pytest.mark.parametrize("row", [2, 300])
def test_predict_names_the_line_and_column_of_a_cell_that_is_not_a_number(tmp_path, row):
    """pyarrow says only 'column #2 is not double'; the strict reader finds the line (past the
    first block too, and past the NA cells the model imputes), and nothing reaches stdout."""
    model, _ = train([str(PENGUINS), "--target", "species"], tmp_path)
    lines = _penguin_rows()
    cells = lines[row].split(",")
    cells[2] = "xyz"  # bill_length_mm
    lines[row] = ",".join(cells)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["predict", str(model), str(path), "--chunk-rows", "16"])
    assert result.exit_code == 2, result.output
    assert f"line {row + 1}, column 'bill_length_mm': 'xyz' is not a finite number" in " ".join(result.stderr.split())
    assert result.stdout == "" and "Traceback" not in result.output


def test_predict_with_missing_cells_imputes_or_refuses(tmp_path):
    model, _ = train([str(PENGUINS), "--target", "species"], tmp_path)
    refused = runner.invoke(app, ["predict", str(model), str(PENGUINS), "--missing", "error"])
    assert refused.exit_code == 2 and "data row 4" in " ".join(refused.output.split())


def test_a_missing_feature_column_is_named_and_extra_columns_are_ignored(tmp_path):
    model, _ = train([str(PENGUINS), "--target", "species"], tmp_path)
    import pandas as pd

    frame = pd.read_csv(PENGUINS)
    frame.drop(columns=["sex"]).to_csv(tmp_path / "nosex.csv", index=False)
    done = runner.invoke(app, ["predict", str(model), str(tmp_path / "nosex.csv")])
    assert done.exit_code == 2 and "1 of the model's feature columns is missing by name ('sex')" in \
        " ".join(done.output.split())
    frame.assign(extra="x").to_csv(tmp_path / "extra.csv", index=False)
    done = runner.invoke(app, ["predict", str(model), str(tmp_path / "extra.csv")])
    assert done.exit_code == 0 and len(done.stdout.splitlines()) == 345


def test_every_column_that_cannot_be_used_is_listed_at_once(tmp_path):
    rows = "".join(f"{i}.5,{i}.25,{i % 2}\n" for i in range(40))
    path = tmp_path / "typos.csv"
    path.write_text("a,b,y\n" + rows + "x1,oops,1\n")
    done = runner.invoke(app, ["train", str(path), "--quiet", "--out", str(tmp_path / "m.npz")])
    message = " ".join(done.output.split())
    assert done.exit_code == 2 and "column 'a' holds numbers but also 'x1'" in message
    assert "column 'b' holds numbers but also 'oops'" in message and "--categorical" in message


def test_prepare_writes_the_encoded_table_and_the_stream_engine_trains_on_it(tmp_path):
    """The prepared .npy keeps the encoding, so a model trained on it by the stream engine
    predicts on the original table; its probabilities equal the memory engine's on the same rows."""
    prepared = tmp_path / "p.npy"
    done = runner.invoke(app, ["prepare", str(PENGUINS), str(prepared), "--target", "species"])
    assert done.exit_code == 0, done.output
    features = json.loads((tmp_path / "p.features.json").read_text())
    assert features["names"][:3] == ["island=Biscoe", "island=Dream", "island=Torgersen"] and "encoding" in features
    stream_model, _ = train([str(prepared), "--engine", "stream"], tmp_path, "s.npz")
    memory_model, _ = train([str(prepared)], tmp_path, "m.npz")
    outputs = []
    for model in (stream_model, memory_model):
        predicted = runner.invoke(app, ["predict", str(model), str(PENGUINS), "--proba"])
        assert predicted.exit_code == 0 and len(predicted.stdout.splitlines()) == 345, predicted.output[-600:]
        outputs.append(np.array([[float(v) for v in line.split(",")[1:]] for line in predicted.stdout.splitlines()[1:]]))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-6)


def test_a_table_read_in_sections_equals_one_read_of_the_whole_file(tmp_path, monkeypatch):
    """Sections of a few hundred bytes, so that cuts fall between rows of every kind: a column
    whose type changes after the first section (integers, then a fraction; empty, then text;
    numbers, then a word) and a quoted field holding newlines and the delimiter."""
    import pyarrow.csv as pacsv

    from softreg.data.formats import table as table_format

    lines = ["count,late,word,note,y"]
    for i in range(400):
        late = "" if i < 300 else f"t{i % 4}"
        word = str(i) if i != 350 else "many"
        note = f'"line one\nline, two {i}"' if i % 7 == 0 else f"plain {i}"
        lines.append(f"{i if i != 390 else 2.5},{late},{word},{note},{'ab'[i % 2]}")
    path = tmp_path / "sections.csv"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(table_format, "SECTION_BYTES", 300)
    sections = table_format._row_sections(path, ",", None)
    assert len(sections) > 20
    read, _ = table_format.read_table(path, ",", True)
    whole = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True))
    assert read.num_rows == whole.num_rows == 400
    assert read.column("count").to_pylist() == whole.column("count").to_pylist()
    assert str(read.schema.field("count").type) == "double"
    assert read.column("late").to_pylist() == [None if v == "" else v for v in whole.column("late").to_pylist()]
    assert read.column("word").to_pylist() == [str(v) for v in whole.column("word").to_pylist()]
    assert read.column("note").to_pylist() == whole.column("note").to_pylist()


def test_python_api_fits_a_dataframe_a_pyarrow_table_and_a_path_as_the_scikit_learn_pipeline_does(tmp_path):
    import pandas as pd
    import pyarrow as pa
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline

    from softreg.data import TableEncoder
    from softreg.model import SoftmaxRegression

    l2 = 1e-2
    frame = pd.read_csv(PENGUINS)
    features, labels = frame.drop(columns="species"), frame["species"]
    ours = make_pipeline(TableEncoder(), SoftmaxRegression(l2=l2, tol=1e-11, max_epochs=50_000,
                                                           momentum="nesterov")).fit(features, labels)
    theirs = scikit_learn_pipeline(l2, len(frame)).fit(features, labels)
    assert list(ours.classes_) == list(theirs.classes_)
    assert np.abs(ours.predict_proba(features) - theirs.predict_proba(features)).max() < 1e-6
    encoder = ours[0]
    assert list(encoder.feature_names_in_) == list(features.columns)
    names = list(encoder.get_feature_names_out())
    assert "island=Dream" in names and "sex=(missing)" in names and "bill_length_mm:missing" in names
    assert encoder.encoding_.to_dict()["columns"][0]["levels"] == ["Biscoe", "Dream", "Torgersen"]
    expected = ours.predict_proba(features)
    # The same rows as a pyarrow Table, as the CSV file itself (label column and all: extra columns
    # are ignored), and through a clone refitted on a Table.
    assert np.abs(ours.predict_proba(pa.Table.from_pandas(features)) - expected).max() < 1e-12
    assert np.abs(ours.predict_proba(str(PENGUINS)) - expected).max() < 1e-12
    refitted = clone(ours).fit(pa.Table.from_pandas(features), labels)
    assert np.abs(refitted.predict_proba(features) - expected).max() < 1e-9
    # An unseen level is counted; missing="error" refuses a missing number, naming the rule.
    changed = features.assign(island=features["island"].replace("Dream", "Atlantis"))
    ours.predict_proba(changed)
    assert encoder.unseen_levels_ == {"island": int((features["island"] == "Dream").sum())}
    with pytest.raises(ValueError, match="missing='impute'"):
        TableEncoder(missing="error").fit(features)
    # Fitting on the CSV path itself: its label column is there too. Taken as a feature it would
    # give a perfect, useless model; it is refused by name, and ignore= leaves it out.
    with pytest.raises(ValueError, match="column 'species' holds the labels y row for row"):
        make_pipeline(TableEncoder(), SoftmaxRegression(l2=l2)).fit(str(PENGUINS), labels)
    from_path = make_pipeline(TableEncoder(ignore="species"), SoftmaxRegression(l2=l2, tol=1e-11, max_epochs=50_000,
                                                                                momentum="nesterov"))
    from_path.fit(str(PENGUINS), labels)
    assert "species=Adelie" not in list(from_path[0].get_feature_names_out())
    assert np.abs(from_path.predict_proba(features) - expected).max() < 1e-9


def test_a_model_trained_by_the_cli_on_a_table_predicts_on_a_dataframe_in_python(tmp_path):
    import pandas as pd

    from softreg.data import load_dataset
    from softreg.model.run.persist import load_model, load_pipeline

    model, _ = train([str(PENGUINS), "--target", "species"], tmp_path)
    pipeline = load_pipeline(model)
    estimator, header = load_model(model)
    encoded = load_dataset(str(PENGUINS), encoding=load_pipeline(model)[0].encoding_).X
    frame = pd.read_csv(PENGUINS)
    assert np.abs(pipeline.predict_proba(frame) - estimator.predict_proba(encoded)).max() < 1e-12
    assert list(pipeline[0].get_feature_names_out()) == header["feature_names"]


def test_statsmodels_anes96_tabs_in_a_csv_name_the_format_flag_then_train(tmp_path):
    """statsmodels ships anes96 as a tab-separated file named .csv, its names in single quotes."""
    import statsmodels.datasets

    path = Path(statsmodels.datasets.__file__).parent / "anes96" / "anes96.csv"
    refused = runner.invoke(app, ["train", str(path), "--target", "PID", "--quiet", "--out", str(tmp_path / "a.npz")])
    assert refused.exit_code == 2 and "read it with --format tsv" in " ".join(refused.output.split())
    model, _ = train([str(path), "--format", "tsv", "--target", "'PID'"], tmp_path)
    header = header_of(model)
    assert len(header["classes"] if "classes" in header else np.load(model)["classes"]) == 7
    assert header["metrics"]["test"]["accuracy"] > 1 / 7


def test_the_means_and_missing_counts_equal_numpys_on_every_kind_of_numeric_column(tmp_path):
    """The fills (training means) and missing counts, over all rows and then over the training
    rows alone (read back from the encoded X), against numpy on the same numbers: integer
    (large: an int64 sum would wrap), float and boolean columns, with empty cells, 'nan', 'NA'
    and 'inf' (missing, as any non-finite value is)."""
    from softreg.data import load_dataset
    from softreg.data.formats.table import refit_on_rows

    rng = np.random.default_rng(4)
    n = 500
    whole = rng.integers(10**17, 10**18, n).astype(float)
    real = rng.standard_normal(n) * 1e3 + 7.0
    flag = rng.random(n) < 0.3
    coded = rng.integers(0, 50, n).astype(float)
    gone = {name: rng.random(n) < 0.05 for name in ("whole", "real", "flag", "coded")}
    cells = {"whole": [str(int(v)) for v in whole], "real": [repr(float(v)) for v in real],
             "flag": ["true" if v else "false" for v in flag], "coded": [f"{int(v)}" for v in coded]}
    for name, column in cells.items():
        for i in np.flatnonzero(gone[name]):
            column[i] = ["", "nan", "NA"][i % 3]
    cells["real"][7], gone["real"][7] = "inf", True
    cells["coded"][8], gone["coded"][8] = "-inf", True
    labels = rng.choice(["a", "b", "c"], n)
    lines = ["whole,real,flag,coded,label"] + [",".join(row) for row in zip(*cells.values(), labels)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    numbers = {"whole": whole, "real": real, "flag": flag.astype(float), "coded": coded}
    data = load_dataset(str(path), target="label")
    train = np.sort(rng.choice(n, 350, replace=False))
    for rows in (np.arange(n), train):
        if rows is train:
            refit_on_rows(data, train)
        by_name = {column.name: column for column in data.encoding.columns}
        for name, values in numbers.items():
            present = ~gone[name][rows]
            assert by_name[name].missing_cells == int((~present).sum()), name
            assert by_name[name].fill == pytest.approx(values[rows][present].mean(), rel=1e-12), name
    columns = data.feature_names
    for name, values in numbers.items():  # X: the training mean in the missing cells, a 0/1 column beside
        j = columns.index(name)
        assert np.array_equal(data.X[:, columns.index(f"{name}:missing")], gone[name].astype(float))
        expected = np.where(gone[name], values[train][~gone[name][train]].mean(), values)
        assert np.allclose(data.X[:, j], expected, rtol=1e-12, atol=0)


def test_levels_and_rare_levels_are_scikit_learns_on_the_texts(tmp_path):
    """The encoder is fitted on integer codes of the sorted texts; its levels, their order and
    the rare levels folded into "(other)" are OneHotEncoder's on the texts themselves."""
    import pyarrow as pa
    from sklearn.preprocessing import OneHotEncoder

    from softreg.data.encoding import MISSING_LEVEL, Column, fit_encoding

    rng = np.random.default_rng(8)
    words = ["Zebra", "apple", "Äpfel", "banana", "b", "ba", "(other)", "10", "9", "x y", "z"]
    cells = list(rng.choice(words, 3000, p=np.r_[np.full(5, 0.198), np.full(6, 0.01 / 6)]))
    for i in rng.choice(3000, 40, replace=False):
        cells[i] = None
    table = pa.table({"word": pa.array(cells, pa.string())})
    rows = np.sort(rng.choice(3000, 400, replace=False))
    for chosen in (None, rows):
        encoding = fit_encoding([Column("word", "categorical", "string")], table, chosen, target="y",
                                weight_column=None, missing="impute", header=True, min_frequency=5)
        texts = np.array([MISSING_LEVEL if c is None else c for c in cells], dtype=object)
        texts = texts if chosen is None else texts[chosen]
        reference = OneHotEncoder(min_frequency=5, handle_unknown="infrequent_if_exist").fit(texts.reshape(-1, 1))
        rare = list(reference.infrequent_categories_[0]) if reference.infrequent_categories_[0] is not None else []
        column = encoding.columns[0]
        assert column.other == rare and len(rare) > 0
        assert column.levels == [level for level in reference.categories_[0] if level not in rare]
        assert column.missing_cells == int(np.sum(texts == MISSING_LEVEL))
