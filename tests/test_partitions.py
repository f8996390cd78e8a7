"""`softreg prepare` on Parquet files and folders of Parquet or CSV partitions."""

import numpy as np
import pytest
from typer.testing import CliRunner

from softreg.cli.app import app

pa = pytest.importorskip("pyarrow", reason="pyarrow is part of the test extra")
pq = pytest.importorskip("pyarrow.parquet")

runner = CliRunner()


def partitions(n_parts=3, rows=400, d=4, seed=0, labels=("cat", "dog", "7")):
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(n_parts):
        X = rng.standard_normal((rows, d))
        y = np.asarray(labels)[rng.integers(0, len(labels), rows)]
        w = rng.uniform(0.5, 2.0, rows)
        parts.append((X, y, w))
    return parts


def write_parquet(folder, parts, table_changes=None):
    table_changes = table_changes or {}
    folder.mkdir()
    for i, (X, y, w) in enumerate(parts):
        columns = {f"f{j}": X[:, j] for j in range(X.shape[1])}
        columns.update(label=y, w=w)
        for name, value in table_changes.get(i, {}).items():  # None drops a column
            if value is None:
                columns.pop(name)
            else:
                columns[name] = value
        pq.write_table(pa.table(columns), folder / f"part-{i:03d}.parquet", row_group_size=150)


def write_csv(folder, parts):
    folder.mkdir()
    for i, (X, y, w) in enumerate(parts):
        lines = [",".join([f"f{j}" for j in range(X.shape[1])] + ["label", "w"])]
        lines += [",".join([repr(float(v)) for v in row] + [str(label), repr(float(weight))])
                  for row, label, weight in zip(X, y, w)]
        (folder / f"part-{i:03d}.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_folder_becomes_the_concatenation_of_its_partitions(tmp_path, kind):
    parts = partitions()
    (write_parquet if kind == "parquet" else write_csv)(tmp_path / "data", parts)
    result = runner.invoke(app, ["prepare", str(tmp_path / "data"), str(tmp_path / "d.npy"), "--target", "label",
                                 "--weight-column", "w"])
    assert result.exit_code == 0, result.output
    X = np.load(tmp_path / "d.npy", allow_pickle=False)
    assert X.shape == (1200, 4) and X.flags.c_contiguous
    assert np.array_equal(X, np.vstack([p[0] for p in parts]))
    labels = np.load(tmp_path / "d.labels.npy", allow_pickle=False)
    # "7" stays text: the other partitions' labels are text, so no partition turns it into 7.
    assert labels.dtype.kind == "U" and np.array_equal(labels, np.concatenate([p[1] for p in parts]))
    assert np.array_equal(np.load(tmp_path / "d.weights.npy"), np.concatenate([p[2] for p in parts]))
    trained = runner.invoke(app, ["train", str(tmp_path / "d.npy"), "--engine", "stream", "--quiet",
                                  "--max-epochs", "5", "--out", str(tmp_path / "m.npz")])
    assert trained.exit_code == 0, trained.output


def test_integer_labels_in_every_partition_become_integers(tmp_path):
    write_parquet(tmp_path / "data", partitions(labels=("1", "2", "10")))
    assert runner.invoke(app, ["prepare", str(tmp_path / "data"), str(tmp_path / "d.npy"),
                               "--target", "label", "--weight-column", "w"]).exit_code == 0
    labels = np.load(tmp_path / "d.labels.npy")
    assert labels.dtype == np.int64 and set(np.unique(labels)) == {1, 2, 10}


def test_a_single_parquet_file(tmp_path):
    parts = partitions(n_parts=1)
    write_parquet(tmp_path / "data", parts)
    result = runner.invoke(app, ["prepare", str(tmp_path / "data" / "part-000.parquet"), str(tmp_path / "d.npy"),
                                 "--target", "label", "--weight-column", "w"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "d.npy"), parts[0][0])


@pytest.mark.parametrize("changes, message", [
    ({1: {"f2": np.arange(400)}}, "column 'f2' is int64 here but double in part-000.parquet"),
    ({2: {"label": None}}, "part-002.parquet: no column 'label'"),
    ({1: {"extra": np.zeros(400)}}, "part-001.parquet: its columns differ"),
])
def test_inconsistent_parquet_partitions_are_exit_2_naming_the_file(tmp_path, changes, message):
    write_parquet(tmp_path / "data", partitions(), changes)
    result = runner.invoke(app, ["prepare", str(tmp_path / "data"), str(tmp_path / "d.npy"), "--target", "label",
                                 "--weight-column", "w"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not (tmp_path / "d.npy").exists()


def test_csv_partitions_with_other_headers_are_refused(tmp_path):
    parts = partitions()
    write_csv(tmp_path / "data", parts)
    other = tmp_path / "data" / "part-001.csv"
    other.write_text(other.read_text().replace("f0,f1", "f1,f0", 1))
    result = runner.invoke(app, ["prepare", str(tmp_path / "data"), str(tmp_path / "d.npy"), "--target", "label"])
    assert result.exit_code == 2 and "part-001.csv: its header differs" in " ".join(result.output.split())


def test_missing_labels_error_or_drop_with_their_weights(tmp_path):
    parts = partitions()
    labels = parts[1][1].astype(object)
    labels[[3, 7]] = None
    write_parquet(tmp_path / "data", parts, {1: {"label": pa.array(labels, type=pa.string())}})
    refused = runner.invoke(app, ["prepare", str(tmp_path / "data"), str(tmp_path / "d.npy"), "--target", "label"])
    assert refused.exit_code == 2 and "2 rows have no label in column 'label'" in " ".join(refused.output.split())
    dropped = runner.invoke(app, ["prepare", str(tmp_path / "data"), str(tmp_path / "d.npy"), "--target", "label",
                                  "--weight-column", "w", "--missing", "drop"])
    assert dropped.exit_code == 0, dropped.output
    keep = np.ones(400, dtype=bool)
    keep[[3, 7]] = False
    expected_w = np.concatenate([parts[0][2], parts[1][2][keep], parts[2][2]])
    assert np.load(tmp_path / "d.npy").shape == (1198, 4)
    assert np.array_equal(np.load(tmp_path / "d.weights.npy"), expected_w)


def test_the_reserved_header_is_rewritten_for_any_row_count(tmp_path):
    import io

    from softreg.data.partitions import _write_npy_header

    for rows in (0, 7, 10**9):
        buffer = io.BytesIO()
        length = _write_npy_header(buffer, (10**15, 3), np.dtype("<f4"))
        buffer.seek(0)
        assert _write_npy_header(buffer, (rows, 3), np.dtype("<f4"), length=length) == length
        buffer.seek(0)
        assert np.lib.format.read_magic(buffer) == (1, 0)
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
        assert (shape, fortran, dtype) == ((rows, 3), False, np.dtype("<f4")) and buffer.tell() == length


def signal_partitions(n_parts=3, rows=500, d=5, seed=1):
    """Partitions whose labels follow the features (so training does not stall at the noise floor)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, 3)) * 2
    parts = []
    for _ in range(n_parts):
        X = rng.standard_normal((rows, d)) * 3 + 10
        y = np.array(["x", "y", "z"])[np.argmax((X - 10) @ W + rng.gumbel(size=(rows, 3)), axis=1)]
        parts.append((X, y, rng.uniform(0.5, 2.0, rows)))
    return parts


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_training_on_a_folder_gives_one_model_with_every_engine(tmp_path, kind):
    """memory (the partitions concatenated), stream (block by block) and dask (loader tasks per
    row group or partition): the same weights within 1e-10 after the same epochs."""
    (write_parquet if kind == "parquet" else write_csv)(tmp_path / "data", signal_partitions())
    models = {}
    for engine in ("memory", "stream", "dask"):
        out = tmp_path / f"{engine}.npz"
        result = runner.invoke(app, ["train", str(tmp_path / "data"), "--target", "label", "--weight-column", "w",
                                     "--engine", engine, "--quiet", "--max-epochs", "15", "--tol", "0",
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        models[engine] = np.load(out, allow_pickle=False)
    for engine in ("stream", "dask"):
        for name in ("weights", "bias", "feature_mean", "feature_scale"):
            difference = np.max(np.abs(models[engine][name] - models["memory"][name]))
            assert difference <= 1e-10 * np.max(np.abs(models["memory"][name])), (engine, name)
    evaluated = runner.invoke(app, ["eval", str(tmp_path / "stream.npz")])
    assert evaluated.exit_code == 0, evaluated.output


def test_non_finite_features_in_a_folder_are_exit_2_naming_the_file(tmp_path):
    parts = signal_partitions()
    parts[2][0][10, 1] = np.nan
    write_parquet(tmp_path / "data", parts)
    result = runner.invoke(app, ["train", str(tmp_path / "data"), "--target", "label", "--weight-column", "w",
                                 "--engine", "stream", "--quiet", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2, result.output
    assert "part-002.parquet: missing, NaN or infinite feature values" in " ".join(result.output.split())
    assert "preparing the data with --missing drop" in " ".join(result.output.split())


def test_integer_labels_with_nulls_stay_integers_in_every_partition(tmp_path):
    parts = partitions(labels=("0", "1"))
    ints = [np.array([int(v) for v in p[1]]) for p in parts]
    with_null = pa.array([None if i == 5 else int(v) for i, v in enumerate(ints[1])], type=pa.int64())
    (tmp_path / "data").mkdir()
    for i, (X, _, w) in enumerate(parts):
        labels = with_null if i == 1 else pa.array(ints[i], type=pa.int64())
        pq.write_table(pa.table({"f0": X[:, 0], "label": labels}), tmp_path / "data" / f"p{i}.parquet")
    result = runner.invoke(app, ["prepare", str(tmp_path / "data"), str(tmp_path / "d.npy"), "--target", "label",
                                 "--missing", "drop"])
    assert result.exit_code == 0, result.output
    labels = np.load(tmp_path / "d.labels.npy")
    assert labels.dtype == np.int64 and set(np.unique(labels)) == {0, 1} and len(labels) == 1199


def test_a_csv_partition_with_a_text_feature_is_refused_naming_the_cell(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "part-000.csv").write_text("a,b,label\n1,2,x\n3,4,y\n")
    (folder / "part-001.csv").write_text("a,b,label\n5,six,x\n7,8,y\n")
    result = CliRunner().invoke(app, ["prepare", str(folder), str(tmp_path / "out.npy")])
    assert result.exit_code == 2, result.output
    assert "part-001.csv: feature column 'b' holds 'six' (data row 1)" in " ".join(result.output.split())
    assert "Traceback" not in result.output
