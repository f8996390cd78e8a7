"""Dataset loading and splitting for softreg: arrays in, nothing of training."""

from softreg.data.dataset import BUILTINS, Dataset, DataError, load_dataset, spec_to_string
from softreg.data.formats.builtin import describe_builtins
from softreg.data.split import split_indices

__all__ = ["BUILTINS", "Dataset", "DataError", "TableEncoder", "describe_builtins", "load_dataset", "spec_to_string",
           "split_indices"]


def __getattr__(name: str):
    if name == "TableEncoder":  # on first use: it brings in scikit-learn, which loading a dataset does not need
        from softreg.data.table_encoder import TableEncoder

        return TableEncoder
    raise AttributeError(f"module 'softreg.data' has no attribute {name!r}")
