"""Dataset loading and splitting for softreg: arrays in, nothing of training."""

from softreg.data.dataset import BUILTINS, Dataset, DataError, load_dataset, spec_to_string
from softreg.data.formats.builtin import describe_builtins
from softreg.data.split import split_indices

__all__ = ["BUILTINS", "Dataset", "DataError", "describe_builtins", "load_dataset", "spec_to_string", "split_indices"]
