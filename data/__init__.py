"""Dataset loading and splitting for softreg: arrays in, nothing of training."""

from softreg.data.datasets import BUILTINS, Dataset, DataError, describe_builtins, load_dataset, spec_to_string
from softreg.data.split import split_indices

__all__ = ["BUILTINS", "Dataset", "DataError", "describe_builtins", "load_dataset", "spec_to_string", "split_indices"]
