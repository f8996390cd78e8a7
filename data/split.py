"""Stratified train / validation / test splits, with scikit-learn's splitter."""

from __future__ import annotations

import numpy as np

from softreg.data.dataset import DataError


def split_indices(
    y: np.ndarray, *, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of the train, validation and test splits, stratified by label.

    The test split is taken first, then the validation split from the rest, so a model's
    test rows depend only on (y, test_fraction, seed) and can be re-derived exactly.
    A fraction of 0 gives an empty split.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    indices = np.arange(y.shape[0])
    empty = np.array([], dtype=np.int64)
    _check_stratifiable(y, val_fraction + test_fraction)
    try:
        if test_fraction > 0:
            rest, test = train_test_split(indices, test_size=test_fraction, stratify=y, random_state=seed)
        else:
            rest, test = indices, empty
        if val_fraction > 0:
            share = val_fraction / (1.0 - test_fraction)
            train, val = train_test_split(rest, test_size=share, stratify=y[rest], random_state=seed)
        else:
            train, val = rest, empty
    except ValueError as error:
        raise DataError(
            f"cannot split {y.shape[0]} rows into train/validation/test with val_fraction={val_fraction} "
            f"and test_fraction={test_fraction}: {str(error).rstrip('.')}. Lower the held-out fractions (test_fraction, and val_fraction for training) or use more data."
        ) from None
    return np.sort(train), np.sort(val), np.sort(test)


def _check_stratifiable(y: np.ndarray, held_out_fraction: float) -> None:
    """A class needs at least 2 rows to appear in both training and held-out splits."""
    if held_out_fraction <= 0:
        return
    classes, counts = np.unique(y, return_counts=True)
    small = [(c, n) for c, n in zip(classes, counts) if n < 2]
    if small:
        label, count = small[0]
        raise DataError(
            f"class {str(label)!r} has only {count} row, too few to stratify a train/held-out split "
            "(each class needs at least 2 rows). Remove the class, add rows, or set the "
            "validation and test fractions to 0."
        )
