"""svmlight/libsvm text (``.svm``, ``.svmlight``, ``.libsvm``), read with scikit-learn; it stays sparse."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from softreg.data.dataset import Dataset, DataError, class_labels

MAX_FEATURES = 10_000_000  # W is dense (D x K): a larger index is a typo, not a feature


def has_index_zero(path: Path) -> bool:
    """Whether any feature index in an svmlight file is 0 (a whitespace, then "0:"), comments aside."""
    pattern = re.compile(rb"[ \t]0:")
    with open(path, "rb") as handle:
        return any(pattern.search(line.partition(b"#")[0]) for line in handle)


def _load_svmlight(path: Path, dtype: str) -> Dataset:
    from sklearn.datasets import load_svmlight_file

    # scikit-learn's "auto" rule (zero-based when any index is 0), decided here and stored in
    # the spec, so that prediction files read later use the same base.
    zero_based = has_index_zero(path)
    try:
        X, y = load_svmlight_file(str(path), dtype=np.dtype(dtype), zero_based=zero_based)
    except OverflowError:
        raise DataError(f"{path}: a feature index or value is too large to read; indices must stay below "
                        f"{MAX_FEATURES:,}.") from None
    except (ValueError, UnicodeDecodeError) as error:
        with open(path, "rb") as handle:
            line_no = first_bad_svmlight_line(handle)
        where = f"{path}, line {line_no}" if line_no else str(path)
        raise DataError(f"{where}: not valid svmlight/libsvm text ({error}); expected lines like "
                        "'LABEL INDEX:VALUE INDEX:VALUE ...' with increasing indices.") from None
    if X.shape[1] > MAX_FEATURES:
        raise DataError(f"{path}: the largest feature index is {X.shape[1] - 1 + int(not zero_based):,}; softreg "
                        f"keeps a dense weight per feature and class, so indices must stay below {MAX_FEATURES:,}. "
                        "Check that line for a typo.")
    y = class_labels(path, y, "the labels")  # svmlight stores labels as floats; class labels are integers
    return Dataset(
        X=X.tocsr(),
        y=y,
        feature_names=[f"f{i}" for i in range(X.shape[1])],
        description=f"{path.name} (svmlight, sparse: {X.nnz} non-zeros)",
        spec={"path": str(path.resolve()), "format": "svmlight", "n_features": int(X.shape[1]),
              "zero_based": zero_based},
    )


def first_bad_svmlight_line(lines, first_line: int = 1, *, n_features: int | None = None, zero_based=True) -> int | None:
    """The number of the first line (of byte strings) scikit-learn's parser rejects on its own."""
    from sklearn.datasets import load_svmlight_file

    for line_no, line in enumerate(lines, start=first_line):
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue
        try:
            # Zero-based by default, so that index 0 is syntax, not an error; the whole-file
            # rule decides the base later.
            load_svmlight_file(io.BytesIO(line), n_features=n_features, zero_based=zero_based)
        except (ValueError, UnicodeDecodeError):
            return line_no
    return None
