"""The run layer's own failure: a run that cannot go ahead as asked."""

from __future__ import annotations


class RunError(ValueError):
    """A run that cannot go ahead as asked: a checkpoint of another run, a saved model without
    a test split, a stored dataset that changed. Bad input (the CLI exits 2); ``key`` names the
    parameter at fault, when one is, for the CLI to word as its flag."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class SaveError(RuntimeError):
    """A run that finished but whose output could not be written (a full disk, a vanished
    folder): a run that failed (the CLI exits 1); nothing was written there."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class NeedsPreparedData(RunError):
    """A storage engine (stream, dask) was asked to train on a dataset it cannot read itself:
    ``dataset`` must be prepared into a .npy first (:func:`softreg.data.prepare.prepare_dataset`)."""

    def __init__(self, message: str, dataset: str):
        super().__init__(message, "engine")
        self.dataset = dataset
