"""Dataset loading and splits, against scikit-learn's loaders and brute-force checks."""

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import dump_svmlight_file, load_digits, load_iris

from softreg.data import DataError, describe_builtins, load_dataset, split_indices


@pytest.mark.parametrize("name, shape, classes", [("iris", (150, 4), 3), ("wine", (178, 13), 3),
                                                   ("digits", (1797, 64), 10), ("breast_cancer", (569, 30), 2)])
def test_builtins(name, shape, classes):
    data = load_dataset(name)
    assert data.X.shape == shape and len(data.class_names) == classes
    assert len(data.feature_names) == shape[1]
    assert data.spec == {"name": name}


def test_builtin_listing_counts_classes():
    rows = {row["name"]: row for row in describe_builtins()}
    assert rows["iris"]["class_counts"] == {"setosa": 50, "versicolor": 50, "virginica": 50}
    assert sum(rows["digits"]["class_counts"].values()) == 1797


def test_synthetic_parameters():
    data = load_dataset("synthetic:samples=300,features=7,classes=5,informative=4,seed=3")
    assert data.X.shape == (300, 7) and len(data.class_names) == 5
    again = load_dataset("synthetic:samples=300,features=7,classes=5,informative=4,seed=3")
    assert np.array_equal(data.X, again.X)
    with pytest.raises(DataError, match="synthetic parameter 'sampels=3'"):
        load_dataset("synthetic:sampels=3")


def test_csv_with_string_labels_and_named_target(tmp_path):
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    path = tmp_path / "flowers.csv"
    lines = ["species,a,b,c,d"] + [f"{n},{','.join(map(str, row.tolist()))}" for n, row in zip(names, X)]
    path.write_text("\n".join(lines) + "\n")
    data = load_dataset(str(path), target="species")
    assert np.array_equal(data.X, X) and np.array_equal(data.y, names)
    assert data.feature_names == ["a", "b", "c", "d"]


def test_tsv_default_target_is_last_column_and_integer_labels(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("x1\tx2\tlabel\n1.5\t2\t0\n3\t4\t1\n5\t6\t1\n")
    data = load_dataset(str(path))
    assert data.X.tolist() == [[1.5, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert data.y.dtype.kind == "i" and data.y.tolist() == [0, 1, 1]


def test_csv_weight_column(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("x,w,y\n1,2,a\n2,0.5,b\n")
    data = load_dataset(str(path), weight_column="w")
    assert data.feature_names == ["x"] and data.sample_weight.tolist() == [2.0, 0.5]


def test_npz(tmp_path):
    X, y = load_digits(return_X_y=True)
    path = tmp_path / "digits.npz"
    np.savez(path, X=X, y=y)
    data = load_dataset(str(path))
    assert np.array_equal(data.X, X) and np.array_equal(data.y, y)


def test_svmlight_stays_sparse(tmp_path):
    X = sparse.random(50, 40, density=0.05, random_state=0, format="csr")
    y = np.arange(50) % 3
    path = tmp_path / "data.svm"
    dump_svmlight_file(X, y, str(path))
    data = load_dataset(str(path))
    assert sparse.issparse(data.X) and data.X.format == "csr"
    assert np.allclose(data.X.toarray()[:, : X.shape[1]], X.toarray()[:, : data.X.shape[1]])
    assert data.y.dtype.kind == "i"


@pytest.mark.parametrize(
    "content, needle",
    [("", "empty"), ("a,b\n", "no data rows"), ("a,b\n1,x\n2,y\n3\n", "line 4"),
     ("a,a,y\n1,2,0\n", "duplicate column"), ("a,y\n" + "1,0\n" * 9 + "foo,1\n", "column 'a' holds numbers but also 'foo' \\(data row 10"),
     ("a,y\n1,0\nnan,1\n", "NaN")],
)
def test_bad_csv_names_the_problem(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=needle):
        load_dataset(str(path), missing="error")  # a table's default, impute, would fill the NaN


def test_missing_target_lists_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"no target column 'label'; columns are \['a', 'b'\]"):
        load_dataset(str(path), target="label")


def test_unknown_name_and_directory(tmp_path):
    with pytest.raises(DataError, match="neither a built-in"):
        load_dataset("irs")
    with pytest.raises(DataError, match="holds no .parquet, .csv or .tsv partitions"):
        load_dataset(str(tmp_path))


def test_npz_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, X=np.array([object()], dtype=object), y=np.array([1]))
    with pytest.raises(DataError, match="unpickling"):
        load_dataset(str(path))


@pytest.mark.parametrize("val, test", [(0.15, 0.15), (0.2, 0.0), (0.0, 0.3)])
def test_splits_are_stratified_disjoint_and_complete(val, test):
    y = load_digits().target
    train, validation, held_out = split_indices(y, val_fraction=val, test_fraction=test, seed=4)
    every = np.concatenate([train, validation, held_out])
    assert np.array_equal(np.sort(every), np.arange(len(y)))
    assert len(held_out) == pytest.approx(test * len(y), abs=1)
    overall = np.bincount(y) / len(y)
    for rows in (train, validation, held_out):
        if len(rows):
            assert np.max(np.abs(np.bincount(y[rows], minlength=10) / len(rows) - overall)) < 0.02
    again = split_indices(y, val_fraction=val, test_fraction=test, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((train, validation, held_out), again))


def test_test_split_does_not_depend_on_val_fraction():
    y = load_iris().target
    _, _, test_a = split_indices(y, val_fraction=0.1, test_fraction=0.2, seed=0)
    _, _, test_b = split_indices(y, val_fraction=0.3, test_fraction=0.2, seed=0)
    assert np.array_equal(test_a, test_b)


def test_class_too_small_to_stratify_is_named():
    y = np.array([0] * 10 + [1] * 10 + [2])
    with pytest.raises(DataError, match="class '2' has only 1 row"):
        split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0)


def test_a_large_csv_read_in_sections_is_exact(tmp_path, monkeypatch):
    """Sections of 64 KiB (about 80 of them): every float round-trips exactly from its 17
    significant digits, and the rows come back in order. (The peak memory this bounds is
    measured by benchmarks/tables.py against pyarrow's own reader.)"""
    import softreg.data.formats.table as table_format

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50_000, 20))
    path = tmp_path / "big.csv"
    with open(path, "w") as handle:
        handle.write(",".join(f"x{i}" for i in range(20)) + ",y\n")
        np.savetxt(handle, np.column_stack([X, X[:, 0] > 0]), delimiter=",", fmt="%.17g")
    monkeypatch.setattr(table_format, "SECTION_BYTES", 1 << 16)
    assert len(table_format._row_sections(path, ",", None)) > 50
    data = load_dataset(str(path))
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.y, (X[:, 0] > 0).astype(int))


def test_the_listed_builtin_shapes_are_the_loaders_own():
    """`softreg datasets` lists the built-ins without loading them; the table must match scikit-learn's files."""
    from softreg.data import BUILTINS, describe_builtins, load_dataset

    listed = {row["name"]: row for row in describe_builtins()}
    assert sorted(listed) == sorted(BUILTINS)
    for name in BUILTINS:
        data = load_dataset(name)
        counts = {str(c): int(n) for c, n in zip(*np.unique(data.y, return_counts=True))}
        assert (listed[name]["samples"], listed[name]["features"]) == data.X.shape
        assert listed[name]["class_counts"] == counts and listed[name]["classes"] == len(counts)
        assert listed[name]["description"] == data.description
