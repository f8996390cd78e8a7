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
