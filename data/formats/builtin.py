"""The built-in datasets (scikit-learn's bundled copies, offline) and synthetic data
(scikit-learn's ``make_classification``), as :class:`~softreg.data.dataset.Dataset`."""

from __future__ import annotations

import numpy as np

from softreg.data.dataset import BUILTINS, Dataset, DataError

BUILTIN_DESCRIPTIONS = {
    "iris": "iris: Fisher's iris flowers, 4 measurements (scikit-learn built-in)",
    "wine": "wine: chemical analysis of three Italian cultivars (scikit-learn built-in)",
    "digits": "digits: 8x8 images of handwritten digits (scikit-learn built-in)",
    "breast_cancer": "breast_cancer: Wisconsin diagnostic, 30 cell-nucleus features (scikit-learn built-in)",
}
SYNTHETIC_DEFAULTS = {"samples": 5000, "features": 20, "classes": 4, "informative": 10, "seed": 0}


# The shapes and class counts of scikit-learn's bundled copies, which are fixed files: listing
# them needs no scikit-learn import (about 1 s). tests/test_data.py checks them against the loaders.
BUILTIN_SHAPES = {
    "iris": (150, 4, {"setosa": 50, "versicolor": 50, "virginica": 50}),
    "wine": (178, 13, {"class_0": 59, "class_1": 71, "class_2": 48}),
    "digits": (1797, 64, {"0": 178, "1": 182, "2": 177, "3": 183, "4": 181, "5": 182, "6": 181, "7": 179, "8": 174,
                          "9": 180}),
    "breast_cancer": (569, 30, {"benign": 357, "malignant": 212}),
}


def describe_builtins() -> list[dict]:
    """Name, shape, classes and description of each built-in dataset."""
    return [{"name": name, "samples": BUILTIN_SHAPES[name][0], "features": BUILTIN_SHAPES[name][1],
             "classes": len(BUILTIN_SHAPES[name][2]), "class_counts": dict(BUILTIN_SHAPES[name][2]),
             "description": BUILTIN_DESCRIPTIONS[name]} for name in BUILTINS]


def _load_builtin(name: str, dtype: str) -> Dataset:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    bunch = loader()
    target_names = np.asarray(bunch.target_names)
    labels = target_names[bunch.target] if name != "digits" else bunch.target
    return Dataset(
        X=np.asarray(bunch.data, dtype=dtype),
        y=np.asarray(labels),
        feature_names=[str(f) for f in bunch.feature_names],
        description=BUILTIN_DESCRIPTIONS[name],
        spec={"name": name},
    )


def parse_synthetic_params(params: str) -> dict:
    """``samples=5000,features=20`` -> the full parameter dict, defaults filled in."""
    values = dict(SYNTHETIC_DEFAULTS)
    for item in filter(None, (p.strip() for p in params.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in SYNTHETIC_DEFAULTS:
            raise DataError(
                f"synthetic parameter '{item}' is not of the form key=value with key one of "
                f"{', '.join(SYNTHETIC_DEFAULTS)} (e.g. synthetic:samples=10000,classes=5)."
            )
        try:
            values[key] = int(raw)
        except ValueError:
            raise DataError(f"synthetic parameter '{key}' must be an integer, got '{raw}'.") from None
    for key in ("samples", "features", "classes", "informative"):
        if values[key] < 1:
            raise DataError(f"synthetic parameter '{key}' must be at least 1, got {values[key]}.")
    if values["classes"] < 2:
        raise DataError(f"synthetic parameter 'classes' must be at least 2, got {values['classes']}.")
    if values["informative"] > values["features"]:
        raise DataError(
            f"synthetic parameter 'informative' ({values['informative']}) cannot exceed 'features' ({values['features']})."
        )
    return values


def _load_synthetic(params: str, dtype: str) -> Dataset:
    from sklearn.datasets import make_classification

    p = parse_synthetic_params(params)
    try:
        X, y = make_classification(
            n_samples=p["samples"],
            n_features=p["features"],
            n_informative=p["informative"],
            n_redundant=0,
            n_classes=p["classes"],
            n_clusters_per_class=1,
            random_state=p["seed"],
        )
    except ValueError as error:
        raise DataError(f"synthetic parameters {p} are inconsistent: {error}") from None
    return Dataset(
        X=X.astype(dtype, copy=False),
        y=y,
        feature_names=[f"x{i}" for i in range(p["features"])],
        description=(
            f"make_classification: {p['samples']} samples, {p['features']} features "
            f"({p['informative']} informative), {p['classes']} classes, seed {p['seed']}"
        ),
        spec={"name": "synthetic", "params": p},
    )
