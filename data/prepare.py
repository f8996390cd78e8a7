"""Preparing a dataset once into the row-major .npy (with its labels, feature names and weights
beside it) that the stream and dask engines read block by block."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from softreg.data.dataset import DataError, dataset_files, load_dataset, overwrites_input
from softreg.data.formats.prepared import prepared_paths, write_prepared
from softreg.data.partitions import open_folder, write_prepared_folder

DTYPES = ("float64", "float32")
from softreg.data.dataset import MISSING_POLICIES, without_means


@dataclass
class Prepared:
    written: dict  # name -> path of each file written
    rows: int
    n_features: int
    dropped: int  # rows left out (missing='drop')


def check_destination(source: str, destination: Path) -> None:
    """DataError unless ``destination`` is a .npy in an existing folder whose files (X, labels,
    features, weights) would overwrite no file of the source."""
    destination = Path(destination)
    if destination.suffix.lower() != ".npy":
        raise DataError(f"the prepared file must end in .npy, got '{destination}'.")
    for name, path in prepared_paths(destination).items():
        hit = overwrites_input(path, dataset_files(source))
        if hit is not None:
            raise DataError(f"'{destination}' would overwrite '{hit}', part of the source, with its {name} file; "
                            "choose another name.")
    if not destination.parent.resolve().is_dir():
        raise DataError(f"the folder of '{destination}', '{destination.parent}', does not exist.")


def prepare_dataset(source: str, destination, *, target: str | None = None, weight_column: str | None = None,
                    dtype: str = "float64", missing: str = "impute") -> Prepared:
    """Convert ``source`` (any dataset spec; a folder or .parquet file one partition at a time,
    so memory holds the largest partition, not the dataset) into ``destination`` (.npy)."""
    if dtype not in DTYPES:
        raise DataError(f"dtype must be 'float64' or 'float32', got '{dtype}'.")
    if missing not in MISSING_POLICIES:
        raise DataError(f"missing must be 'impute', 'drop' or 'error', got '{missing}'.")
    destination = Path(destination)
    check_destination(source, destination)
    if Path(source).is_dir() or Path(source).suffix.lower() == ".parquet":
        folder = open_folder(Path(source), target, weight_column)
        written, rows, dropped = write_prepared_folder(folder, destination, dtype, without_means(missing))
        return Prepared(written, rows, len(folder.feature_names), dropped)
    data = load_dataset(source, target=target, weight_column=weight_column, dtype=dtype, missing=missing)
    return Prepared(write_prepared(data, destination), data.n_samples, data.n_features, data.dropped_rows)
