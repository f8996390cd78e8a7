"""`softreg predict` and `softreg info`: train -> eval -> predict end to end, streaming, errors.

References are independent of softreg's prediction path: scipy's softmax of X coef^T + b,
brute-force sorting for top-k, scikit-learn's svmlight loader, and the files read back with
the csv and json modules.
"""

import csv
import io
import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from softreg.cli.app import app
from softreg.data import load_dataset
from softreg.data.chunks import feature_chunks
from softreg.model.run.persist import load_model
from softreg.model.run.predict import PredictionOptions, write_predictions


def reference_proba(model, X):
    """softmax of the raw-feature logits, computed by scipy from the stored coefficients (for two
    classes coef_ is LogisticRegression's log-odds vector: the sigmoid gives classes_[1]'s)."""
    from scipy.special import expit

    estimator, _ = load_model(model)
    scores = np.asarray(X @ estimator.coef_.T) + estimator.intercept_
    if len(estimator.classes_) == 2:
        return np.column_stack([expit(-scores[:, 0]), expit(scores[:, 0])]), estimator.classes_
    return scipy_softmax(scores, axis=1), estimator.classes_


def read_csv(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def train(runner, dataset, model, *extra):
    result = runner.invoke(app, ["train", str(dataset), "--quiet", "--out", str(model), "--max-epochs", "300", *extra])
    assert result.exit_code == 0, result.output
    return model


@pytest.mark.parametrize("name", ["iris", "wine", "digits", "breast_cancer"])
def test_train_eval_predict_on_every_builtin(runner, tmp_path, name):
    model = train(runner, name, tmp_path / "m.npz")
    evaluation = runner.invoke(app, ["eval", str(model), "--json"])
    assert evaluation.exit_code == 0, evaluation.output
    result = runner.invoke(app, ["predict", str(model), name, "--proba", "--chunk-rows", "97"])
    assert result.exit_code == 0, result.output
    columns, rows = read_csv(result.stdout)
    data = load_dataset(name)
    expected, classes = reference_proba(model, data.X)
    assert columns == ["label"] + [f"proba_{c}" for c in classes]
    assert len(rows) == data.n_samples
    proba = np.array([[float(v) for v in row[1:]] for row in rows])
    np.testing.assert_allclose(proba, expected, rtol=1e-9, atol=1e-12)
    assert np.abs(proba.sum(axis=1) - 1).max() <= 1e-12
    assert [row[0] for row in rows] == [str(c) for c in classes[expected.argmax(axis=1)]]


def test_train_eval_predict_on_a_csv_with_string_labels_and_reordered_columns(runner, tmp_path):
    data = load_dataset("iris")
    names = ["sl", "sw", "pl", "pw"]
    train_csv = tmp_path / "train.csv"
    with open(train_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names + ["species"])
        writer.writerows([list(map(repr, x)) + [label] for x, label in zip(data.X.tolist(), data.y)])
    model = train(runner, train_csv, tmp_path / "m.npz")
    evaluation = runner.invoke(app, ["eval", str(model), str(train_csv), "--json"])
    assert evaluation.exit_code == 0, evaluation.output
    # The same features in another order, with an id column and no label: matched by name.
    new_csv = tmp_path / "new.csv"
    with open(new_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "pw", "pl", "sw", "sl"])
        writer.writerows([[f"r{i}"] + list(map(repr, x[::-1])) for i, x in enumerate(data.X.tolist())])
    out = tmp_path / "pred.csv"
    result = runner.invoke(app, ["predict", str(model), str(new_csv), "--top-k", "2", "--out", str(out), "--chunk-rows", "16"])
    assert result.exit_code == 0, result.output
    assert "150 rows predicted" in result.output
    columns, rows = read_csv(out.read_text())
    assert columns == ["label", "top1_label", "top1_proba", "top2_label", "top2_proba"]
    expected, classes = reference_proba(model, data.X)
    for row, p in zip(rows, expected):
        ranked = sorted(range(3), key=lambda k: -p[k])  # brute force
        assert row[0] == row[1] == classes[ranked[0]]
        assert row[3] == classes[ranked[1]]
        assert float(row[2]) == pytest.approx(p[ranked[0]], abs=1e-12)
        assert float(row[4]) == pytest.approx(p[ranked[1]], abs=1e-12)


def test_jsonl_output_parses_and_sums_to_one(runner, tmp_path):
    model = train(runner, "wine", tmp_path / "m.npz")
    out = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["predict", str(model), "wine", "--proba", "--top-k", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    data = load_dataset("wine")
    expected, classes = reference_proba(model, data.X)
    assert len(records) == data.n_samples
    for record, p in zip(records, expected):
        proba = np.array([record["proba"][c] for c in classes])
        np.testing.assert_allclose(proba, p, atol=1e-12)
        assert abs(sum(record["proba"].values()) - 1) <= 1e-12
        assert [t["label"] for t in record["top"]] == list(classes[np.argsort(-p, kind="stable")])
        assert record["label"] == record["top"][0]["label"]


def test_integer_labels_stay_numbers_in_jsonl(runner, tmp_path):
    model = train(runner, "digits", tmp_path / "m.npz")
    result = runner.invoke(app, ["predict", str(model), "digits", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout.splitlines()[0])
    assert isinstance(first["label"], int)


def test_train_eval_predict_on_svmlight_in_chunks(runner, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12)) * (rng.random((300, 12)) < 0.4)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    path = tmp_path / "data.svm"
    dump_svmlight_file(X, y, str(path), zero_based=False)
    model = train(runner, path, tmp_path / "m.npz")
    evaluation = runner.invoke(app, ["eval", str(model), str(path), "--json"])
    assert evaluation.exit_code == 0, evaluation.output
    result = runner.invoke(app, ["predict", str(model), str(path), "--proba", "--chunk-rows", "7"])
    assert result.exit_code == 0, result.output
    _, rows = read_csv(result.stdout)
    reference_X, _ = load_svmlight_file(str(path))
    expected, _ = reference_proba(model, reference_X)
    np.testing.assert_allclose(np.array([[float(v) for v in r[1:]] for r in rows]), expected, atol=1e-12)


@pytest.mark.parametrize("zero_based", [True, False])
def test_svmlight_chunks_match_a_whole_file_load(tmp_path, zero_based):
    rng = np.random.default_rng(1)
    X = rng.random((101, 6)) * (rng.random((101, 6)) < 0.3)
    X[:, 0] = 0.0  # index 0 never appears: only the whole file can tell how it is based
    X[50, 0] = 1.0 if zero_based else 0.0
    path = tmp_path / "d.svm"
    dump_svmlight_file(X, rng.integers(0, 2, 101), str(path), zero_based=zero_based)
    whole, _ = load_svmlight_file(str(path), n_features=6, zero_based=zero_based)
    stream = feature_chunks(str(path), [f"f{i}" for i in range(6)], chunk_rows=10)
    chunks = list(stream.chunks)
    assert [start for start, _ in chunks] == list(range(0, 101, 10))
    np.testing.assert_array_equal(np.vstack([c.toarray() for _, c in chunks]), whole.toarray())
    np.testing.assert_allclose(whole.toarray(), X, rtol=1e-15)  # and the columns are not shifted


def test_memory_stays_bounded_by_the_chunk(tmp_path):
    rng = np.random.default_rng(2)
    n, d = 60_000, 10
    path = tmp_path / "big.csv"
    np.savetxt(path, rng.standard_normal((n, d)), delimiter=",", header=",".join(f"x{i}" for i in range(d)), comments="")
    from softreg.model.estimator import SoftmaxRegression

    estimator = SoftmaxRegression(max_epochs=5).fit(rng.standard_normal((50, d)), rng.integers(0, 3, 50))
    full_matrix_bytes = n * d * 8

    class Discard(io.TextIOBase):
        def write(self, text):
            return len(text)

    tracemalloc.start()
    stream = feature_chunks(str(path), [f"x{i}" for i in range(d)], chunk_rows=500)
    rows = write_predictions(estimator, stream.chunks, Discard(), PredictionOptions(with_proba=True))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows == n
    # Loading the file whole would hold the (n, d) floats alone, before any parsing overhead.
    assert peak < full_matrix_bytes / 4, peak


@pytest.mark.parametrize("cell, needle", [("abc", "'abc' is not a finite number"), ("", "an empty cell"),
                                          ("nan", "'nan' is not a finite number")])
def test_a_bad_cell_names_line_and_column_and_leaves_no_file(runner, tmp_path, cell, needle):
    model = train(runner, "iris", tmp_path / "m.npz")
    names = load_model(model)[1]["feature_names"]
    path = tmp_path / "bad.csv"
    lines = [",".join(f'"{n}"' for n in names)] + ["5.1,3.5,1.4,0.2"] * 30
    lines[21] = f"5.1,{cell},1.4,0.2"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "pred.csv"
    out.write_text("old predictions\n")
    result = runner.invoke(app, ["predict", str(model), str(path), "--out", str(out), "--chunk-rows", "8"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"bad.csv, line 22, column '{names[1]}'" in message and needle in message
    assert "nothing was written" in message and "Traceback" not in message
    assert out.read_text() == "old predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "m.npz", "pred.csv"]


def test_missing_feature_columns_are_named(runner, tmp_path):
    model = train(runner, "iris", tmp_path / "m.npz")
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["predict", str(model), str(path)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "model expects 4 features, data has 2 columns" in message and "softreg info MODEL" in message


@pytest.mark.parametrize("args, needle", [
    (["--top-k", "0"], "top_k (--top-k) must be between 1 and the model's 3 classes, got 0"),
    (["--top-k", "4"], "got 4"),
    (["--out", "p.parquet"], "use .csv or .jsonl"),
    (["--format", "xml"], "output_format (--format) must be 'csv' or 'jsonl'"),
])
def test_bad_options_exit_2(runner, tmp_path, args, needle):
    model = train(runner, "iris", tmp_path / "m.npz")
    result = runner.invoke(app, ["predict", str(model), "iris", *args])
    assert result.exit_code == 2
    assert needle in " ".join(result.output.split())


def test_wrong_feature_count_and_not_a_model(runner, tmp_path):
    model = train(runner, "iris", tmp_path / "m.npz")
    result = runner.invoke(app, ["predict", str(model), "wine"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "model expects 4 features, data has 13 columns" in message
    assert "4 of the model's feature columns are missing by name ('sepal length (cm)'" in message
    # Sources without names (.npz) are matched by count.
    synthetic = train(runner, "synthetic:samples=300,features=6,informative=3", tmp_path / "s.npz")
    narrow = tmp_path / "narrow.npz"
    np.savez(narrow, X=np.zeros((5, 3)))
    result = runner.invoke(app, ["predict", str(synthetic), str(narrow)])
    assert result.exit_code == 2 and "model expects 6 features, " in result.output and "has 3" in result.output
    junk = tmp_path / "junk.npz"
    np.savez(junk, X=np.zeros((2, 2)))
    for command in (["predict", str(junk), "iris"], ["info", str(junk)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "is not a softreg model" in result.output


def test_a_closed_pipe_ends_quietly(tmp_path):
    softreg = [sys.executable, "-m", "softreg.cli"]
    model = tmp_path / "m.npz"
    subprocess.run([*softreg, "train", "digits", "--quiet", "--out", str(model), "--max-epochs", "20"], check=True,
                   capture_output=True)
    process = subprocess.Popen([*softreg, "predict", str(model), "digits", "--proba"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()  # like `| head -1`: far more output than a pipe buffer remains unread
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert b"Traceback" not in stderr and b"error" not in stderr


def test_info_shows_the_model_without_its_data(runner, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((80, 3))
    path = tmp_path / "d.csv"
    path.write_text("u,v,w,label\n" + "\n".join(f"{a},{b},{c},{'yes' if a > 0 else 'no'}" for a, b, c in X))
    model = train(runner, path, tmp_path / "m.npz")
    path.unlink()  # info must not need the data
    result = runner.invoke(app, ["info", str(model)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for needle in ("softreg model format 1", "classes (2): no, yes", "features (3): u, v, w", "stop:", "loss curves",
                   "test"):
        assert needle in text, needle
    document = json.loads(runner.invoke(app, ["info", str(model), "--json"]).stdout)
    assert document["feature_names"] == ["u", "v", "w"] and document["classes"] == ["no", "yes"]
    assert document["config"]["dataset"] == str(path)
    assert document["format_version"] == 1 and document["stop_reason"] in ("converged", "max_epochs")
    assert document["metrics"]["test"]["samples"] == document["split"]["test_rows"]


def test_info_abridges_many_feature_names(runner, tmp_path):
    model = train(runner, "digits", tmp_path / "m.npz")
    result = runner.invoke(app, ["info", str(model)])
    assert result.exit_code == 0
    assert "features (64): pixel_0_0" in result.output and "... 54 more ..." in result.output


def test_quoted_fields_crlf_and_blank_lines_read_like_the_csv_module(tmp_path):
    """The fast path (numpy's parser) and the quoted path (csv module) give the csv module's rows."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 3))
    lines = ["id,a,b,c"]
    for i, row in enumerate(X.tolist()):
        note = f'"line {i}, with a comma\nand a newline"' if i in (25, 31) else f"r{i}"
        lines.append(",".join([note] + [repr(v) for v in row]))
        if i == 5:
            lines.append("")
    path = tmp_path / "quoted.csv"
    path.write_bytes("\r\n".join(lines).encode() + b"\r\n")
    chunks = list(feature_chunks(str(path), ["c", "a", "b"], chunk_rows=6).chunks)
    with open(path, newline="") as handle:
        reference = [[float(r[3]), float(r[1]), float(r[2])] for r in list(csv.reader(handle))[1:] if r]
    assert [start for start, _ in chunks] == list(range(0, 40, 6))
    np.testing.assert_array_equal(np.vstack([c for _, c in chunks]), np.array(reference))


def test_a_ragged_row_is_named_in_either_path(tmp_path):
    for note in ("plain", '"quoted"'):
        path = tmp_path / "ragged.csv"
        path.write_text("id,a,b\n" + "\n".join(f"{note},1,2" for _ in range(9)) + f"\n{note},1\n")
        with pytest.raises(Exception, match=r"ragged.csv, line 11: 2 fields where the header has 3"):
            list(feature_chunks(str(path), ["a", "b"], chunk_rows=4).chunks)


def test_named_features_are_matched_by_name_never_by_position(runner, tmp_path):
    data = load_dataset("iris")
    reversed_csv = tmp_path / "rev.csv"
    names = data.feature_names[::-1]
    with open(reversed_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names + ["species"])
        writer.writerows([list(map(repr, x[::-1])) + [label] for x, label in zip(data.X.tolist(), data.y)])
    model = train(runner, reversed_csv, tmp_path / "m.npz")
    result = runner.invoke(app, ["predict", str(model), "iris", "--proba"])  # the built-in, in its own order
    assert result.exit_code == 0, result.output
    _, rows = read_csv(result.stdout)
    expected, classes = reference_proba(model, data.X[:, ::-1])
    np.testing.assert_allclose(np.array([[float(v) for v in r[1:]] for r in rows]), expected, atol=1e-12)
    # Real names that only look like placeholders are still matched by name: x0 is not x1.
    x_csv = tmp_path / "x.csv"
    x_csv.write_text("x1,x2,x3,y\n" + "".join(f"{i},{i % 3},{i % 5},{i % 2}\n" for i in range(40)))
    x_model = train(runner, x_csv, tmp_path / "x.npz")
    shifted = tmp_path / "shifted.csv"
    shifted.write_text("x0,x1,x2\n1,2,3\n")
    result = runner.invoke(app, ["predict", str(x_model), str(shifted)])
    assert result.exit_code == 2 and "1 of the model's feature columns is missing by name ('x3')" in " ".join(result.output.split())


def test_out_may_not_be_the_data_or_the_model(runner, tmp_path):
    model = train(runner, "iris", tmp_path / "m.npz")
    data = tmp_path / "d.csv"
    data.write_text(",".join(f'"{n}"' for n in load_model(model)[1]["feature_names"]) + "\n1,2,3,4\n")
    before = (data.read_bytes(), model.read_bytes())
    for out in (data, model):
        result = runner.invoke(app, ["predict", str(model), str(data), "--out", str(out), "--format", "csv"])
        assert result.exit_code == 2 and "writing there would destroy it" in " ".join(result.output.split())
    assert (data.read_bytes(), model.read_bytes()) == before


def test_features_that_overflow_the_logits_are_named_not_written_as_nan(runner, tmp_path):
    import warnings

    model = train(runner, "iris", tmp_path / "m.npz")
    data = tmp_path / "huge.csv"
    data.write_text(",".join(f'"{n}"' for n in load_model(model)[1]["feature_names"]) +
                    "\n5,3,1,0.2\n1e308,1e308,-1e308,1e308\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = runner.invoke(app, ["predict", str(model), str(data), "--format", "jsonl"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "data row 2 (counting from 1, header excluded) gives non-finite logits" in message
    assert "nan" not in result.stdout


def test_svmlight_errors_name_the_line_and_feature(runner, tmp_path):
    model = train(runner, "iris", tmp_path / "m.npz")
    good = "".join(f"0 1:{i % 7} 2:3.5 3:1.4 4:0.2\n" for i in range(30))
    cases = {
        "nan.svm": (good + "0 1:5.1 2:nan\n", "nan.svm, line 31, feature 2: nan is not a finite number"),
        "late.svm": (good * 2 + "0 1:x\n", "late.svm, line 61: not valid svmlight text"),
        "wide.svm": (good + "0 1:5.1 5:2\n", "wide.svm, line 31: not valid svmlight text for a model of 4 features"),
    }
    for name, (text, needle) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = runner.invoke(app, ["predict", str(model), str(path), "--chunk-rows", "25"])
        assert result.exit_code == 2, (name, result.output)
        assert needle in " ".join(result.output.split()), name


def test_a_comment_does_not_make_a_file_zero_based(tmp_path):
    path = tmp_path / "c.svm"
    path.write_text("0 1:5 2:3 # note 0:4\n1 1:1 2:2\n")
    X = np.vstack([c.toarray() for _, c in feature_chunks(str(path), ["f0", "f1"], by_name=False).chunks])
    np.testing.assert_array_equal(X, [[5, 3], [1, 2]])


def test_stdout_says_how_many_rows_were_printed_before_a_bad_row(runner, tmp_path):
    """The reader parses a block (64 KiB and up) before any of its rows is predicted: rows of
    earlier blocks are printed, and the message counts exactly those."""
    model = train(runner, "iris", tmp_path / "m.npz")
    header = ",".join(f'"{n}"' for n in load_model(model)[1]["feature_names"])
    data = tmp_path / "d.csv"
    data.write_text(header + "\n" + "5,3,1,0.2\n" * 30_000 + "5,x,1,0.2\n")
    result = runner.invoke(app, ["predict", str(model), str(data), "--chunk-rows", "4"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "line 30002, column 'sepal width (cm)': 'x' is not a finite number" in message
    printed = len(read_csv(result.stdout)[1])
    assert 0 < printed < 30_000 and f"the first {printed} rows had already been printed to stdout" in message
    small = tmp_path / "small.csv"
    small.write_text(header + "\n" + "5,3,1,0.2\n" * 9 + "5,x,1,0.2\n")
    result = runner.invoke(app, ["predict", str(model), str(small), "--chunk-rows", "4"])
    assert result.exit_code == 2 and "(no row was printed)" in " ".join(result.output.split())


def test_ignored_columns_may_repeat_and_a_bom_is_not_part_of_a_name(runner, tmp_path):
    model = train(runner, "iris", tmp_path / "m.npz")
    names = load_model(model)[1]["feature_names"]
    data = tmp_path / "d.csv"
    data.write_bytes(("\ufeff" + ",".join(f'"{n}"' for n in names) + ",id,id,,\n5,3,1,0.2,a,b,,\n").encode())
    result = runner.invoke(app, ["predict", str(model), str(data)])
    assert result.exit_code == 0, result.output
    train_csv = tmp_path / "bom.csv"
    train_csv.write_bytes(("\ufeffsl,sw,y\n" + "".join(f"{i},{i % 4},{i % 2}\n" for i in range(30))).encode())
    bom_model = train(runner, train_csv, tmp_path / "bom.npz")
    assert load_model(bom_model)[1]["feature_names"] == ["sl", "sw"]


@pytest.mark.parametrize("damage, needle", [
    (lambda h, a: a.update(header=np.asarray(json.dumps([1, 2]))), "is not a softreg model"),
    (lambda h, a: a.update(header=np.asarray(json.dumps({k: v for k, v in h.items() if k != "split"}))),
     "the model header lacks ['split']"),
    (lambda h, a: a.update(header=np.asarray(json.dumps({**h, "format_version": "1"}))), "format_version is '1'"),
    (lambda h, a: a.update(weights=a["weights"][:, :2]), "bias has shape (3,) but the weights (4, 2) need (2,)"),
    (lambda h, a: a.update(feature_names=a["feature_names"][:2]), "feature_names has shape (2,)"),
    (lambda h, a: a.update(bias=np.array([0.0, np.nan, 1.0])), "NaN or infinity"),
    (lambda h, a: a.update(header=np.asarray(json.dumps({**h, "config": {**h["config"], "dtype": "int8"}}))),
     "dtype"),
])
def test_damaged_model_files_exit_2(runner, tmp_path, damage, needle):
    model = train(runner, "iris", tmp_path / "m.npz")
    with np.load(model, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(str(arrays["header"]))
    damage(header, arrays)
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, **arrays)
    for command in (["info", str(damaged)], ["predict", str(damaged), "iris"], ["eval", str(damaged)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert needle in " ".join(result.output.split()), (command, result.output)
