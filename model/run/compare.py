"""softreg against scikit-learn on one dataset: the same split, penalty and row weights."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from softreg.data import load_dataset, split_indices
from softreg.model.assess.compare import compare_with_sklearn
from softreg.data.formats.table import refit_on_rows
from softreg.model.run.config import dataset_options, estimator_from_config
from softreg.model.run.errors import RunError


@dataclass
class DatasetComparison:
    description: str
    train_rows: int
    test_rows: int
    result: dict  # compare_with_sklearn's


def compare_on_dataset(config) -> DatasetComparison:
    """Load ``config.dataset``, split off ``config.test_fraction`` (stratified, ``config.seed``),
    fit both sides on the training rows and measure both on the test rows."""
    from sklearn.exceptions import ConvergenceWarning

    data = load_dataset(config.dataset, **dataset_options(config))
    train_rows, _, test_rows = split_indices(data.y, val_fraction=0.0, test_fraction=config.test_fraction,
                                             seed=config.seed)
    if data.table is not None:
        refit_on_rows(data, train_rows)  # both sides learn the table's encoding from the training rows
    if not len(test_rows):
        raise RunError("test_fraction must be above 0: the comparison reports test metrics.", "test_fraction")
    weights = None if data.sample_weight is None else data.sample_weight[train_rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # how each side ended is in the result
        result = compare_with_sklearn(estimator_from_config(config), data.X[train_rows], data.y[train_rows],
                                      data.X[test_rows], data.y[test_rows], weights)
    return DatasetComparison(data.description, len(train_rows), len(test_rows), result)
