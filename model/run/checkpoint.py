"""Checkpoints: where a run stood after an epoch, kept beside its model file so that a run cut
short (a lost cluster, a signal) continues where it stopped.

A checkpoint is an .npz of plain arrays (W, b and the best weights so far) and a JSON header
(epoch, step, history, and the run's identity: its config, dataset digest and classes). A run
resumes only from a checkpoint of the same run; only max_epochs, engine, block_rows and
scheduler may change.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from softreg.data.formats.npz import NpzError, read_npz
from softreg.data.schema import NUMBER, OPTIONAL_NUMBER, Fields, ListOf, TableOf, check
from softreg.data.files import atomic_file
from softreg.model.run.errors import RunError
from softreg.model.run.persist import FORMAT_VERSION, HALVINGS_SCHEMA, HISTORY_SCHEMA, MODEL_MEMBER_BYTES, _json_default
from softreg.model.solve import Checkpoint

CHECKPOINT_SECONDS = 5.0
# Every field a resumed run reads, with its form: a damaged checkpoint fails here, naming the field.
CHECKPOINT_SCHEMA = Fields({
    "format": str, "epoch": int, "last_step": NUMBER, "g0": NUMBER, "history": HISTORY_SCHEMA, "restarts": int,
    "halvings": HALVINGS_SCHEMA, "steps": ListOf(NUMBER), "best_val": OPTIONAL_NUMBER, "best_epoch": int,
    "momentum_k": int, "rounding": bool,
    "run": Fields({"config": TableOf((str, int, float, bool, type(None))), "dataset_sha256": (str, type(None)),
                   "classes": ListOf(str)}, required=("config", "dataset_sha256", "classes")),
}, required=("format", "epoch", "last_step", "g0", "history", "restarts", "halvings", "steps", "run"))  # at most this much training is lost (and redone on resume)
MAY_CHANGE_ON_RESUME = ("max_epochs", "scheduler", "block_rows", "engine")


CHECKPOINT_FORMAT = "softreg-checkpoint"


def checkpoint_path(model_path: str | Path) -> Path:
    """Where a run writing ``model_path`` keeps its checkpoint: MODEL.checkpoint.npz beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.removesuffix(".npz") + ".checkpoint.npz")


def save_checkpoint(path: str | Path, checkpoint, run: dict) -> None:
    """Write a training checkpoint atomically: weights and bias as arrays, the rest (epoch, step,
    history, and ``run``: the config and dataset it belongs to) as a JSON header."""
    document = {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, "run": run,
                "epoch": checkpoint.epoch, "last_step": checkpoint.last_step, "g0": checkpoint.g0,
                "history": checkpoint.history, "restarts": checkpoint.restarts,
                "halvings": [list(h) for h in checkpoint.halvings], "steps": checkpoint.steps,
                "best_val": checkpoint.best_val if np.isfinite(checkpoint.best_val) else None,
                "best_epoch": checkpoint.best_epoch, "momentum_k": checkpoint.momentum_k,
                "rounding": checkpoint.rounding}
    arrays = {"W": checkpoint.W, "b": checkpoint.b}
    if checkpoint.best_W is not None:
        arrays.update(best_W=checkpoint.best_W, best_b=checkpoint.best_b)
    if checkpoint.W_y is not None:
        arrays.update(W_y=checkpoint.W_y, b_y=checkpoint.b_y)
    with atomic_file(path) as handle:
        np.savez(handle, **arrays, header=np.asarray(json.dumps(document, default=_json_default)))


def load_checkpoint(path: str | Path):
    """(Checkpoint, run) from a file written by :func:`save_checkpoint`; RunError otherwise."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"resume: no checkpoint {path}; a run that was cut short writes one beside its model file. "
                       "Train without resume to start over.", "resume")
    try:
        arrays, present = read_npz(path, ("W", "b", "header", "best_W", "best_b", "W_y", "b_y"),
                                   max_member_bytes=MODEL_MEMBER_BYTES)
        document = json.loads(str(arrays["header"]))
        check(document, CHECKPOINT_SCHEMA, "checkpoint")
        _require(document["format"] == CHECKPOINT_FORMAT, f"its format is {document['format']!r}")
        _require(len({len(column) for column in document["history"].values()}) == 1,
                 "history columns of unequal lengths")
        _check_weights(arrays)
        checkpoint = Checkpoint(W=arrays["W"], b=arrays["b"], epoch=int(document["epoch"]),
                                last_step=float(document["last_step"]), g0=float(document["g0"]),
                                history=document["history"], restarts=int(document["restarts"]),
                                halvings=document["halvings"], steps=document["steps"],
                                best_val=float("inf") if document.get("best_val") is None else float(document["best_val"]),
                                best_epoch=int(document.get("best_epoch", 0)), best_W=arrays.get("best_W"),
                                best_b=arrays.get("best_b"), momentum_k=int(document.get("momentum_k", 0)),
                                W_y=arrays.get("W_y"), b_y=arrays.get("b_y"),
                                rounding=bool(document.get("rounding", False)))
    except (NpzError, KeyError, ValueError, TypeError, RecursionError) as error:
        raise RunError(f"resume: {path} is not a softreg checkpoint ({error}).", "resume") from None
    return checkpoint, document["run"]


def _check_weights(arrays: dict) -> None:
    """W (D, K) and b (K,) float arrays, finite, and the best weights of the same shapes when kept."""
    W, b = arrays["W"], arrays["b"]
    _require(W.ndim == 2 and W.dtype.kind == "f" and b.shape == (W.shape[1],) and b.dtype.kind == "f",
             f"weights of shapes {W.shape} and {b.shape}")
    _require(("W_y" in arrays) == ("b_y" in arrays), "one of W_y and b_y without the other")
    for name, like in (("best_W", W), ("best_b", b), ("W_y", W), ("b_y", b)):
        if name in arrays:
            _require(arrays[name].shape == like.shape, f"{name} of shape {arrays[name].shape}, not {like.shape}")
    _require(all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f"), "non-finite weights")


def _require(condition: bool, reason: str) -> None:
    """ValueError(reason) unless ``condition``: a check of a file that ``python -O`` keeps, as it would not an assert."""
    if not condition:
        raise ValueError(reason)


def run_identity(config, dataset_sha256: str | None, classes) -> dict:
    """What a checkpoint must match to be resumed from."""
    return {"config": {key: value for key, value in config.to_dict().items() if key not in MAY_CHANGE_ON_RESUME},
            "dataset_sha256": dataset_sha256, "classes": [str(c) for c in classes]}


class Checkpoints:
    """The checkpoint lifecycle of one run writing ``model_path``: written every
    CHECKPOINT_SECONDS of training (:meth:`writer`), loaded on resume only when it belongs to
    this run (:meth:`load`), removed once the finished model supersedes it (:meth:`finish`)."""

    def __init__(self, model_path: str | Path):
        self.path = checkpoint_path(model_path)
        self.identity: dict | None = None

    def writer(self, identity: dict):
        self.identity = identity
        return _CheckpointWriter(self.path, identity)

    def load(self, identity: dict, n_features: int | None = None) -> Checkpoint:
        """The checkpoint, refused (RunError) when it belongs to another config or dataset, or its
        weights are not (n_features, classes)."""
        checkpoint, saved = load_checkpoint(self.path)
        expected = (checkpoint.W.shape[0] if n_features is None else n_features, len(identity["classes"]))
        if checkpoint.W.shape != expected:
            raise RunError(f"resume: {self.path} holds weights of shape {checkpoint.W.shape}, and this run's are "
                           f"{expected}; train without resume to start over.", "resume")
        if saved.get("dataset_sha256") != identity["dataset_sha256"]:
            raise RunError(f"resume: {self.path} was written for other data (the dataset file changed since); train "
                           "without resume to start over.", "resume")
        differing = sorted(key for key, value in identity["config"].items() if saved["config"].get(key) != value)
        if differing or saved.get("classes") != identity["classes"]:
            details = ", ".join(f"{key} {saved['config'].get(key)!r} there, {identity['config'][key]!r} now"
                                for key in differing) or "the classes differ"
            raise RunError(f"resume: {self.path} belongs to a run with other settings ({details}); give the same "
                           f"settings (only {', '.join(MAY_CHANGE_ON_RESUME)} may change), or train without resume.",
                           "resume")
        return checkpoint

    def finish(self, stop_reason: str) -> Path | None:
        """After the model is saved: remove the checkpoint unless the run was interrupted; the
        path of a checkpoint kept, or None."""
        if stop_reason != "interrupted":
            self.path.unlink(missing_ok=True)
            return None
        return self.path if self.path.exists() else None


class _CheckpointWriter:
    """Saves a checkpoint after an epoch when CHECKPOINT_SECONDS have passed since the last one."""

    def __init__(self, path, identity: dict):
        self.path, self.identity = path, identity
        self.last = time.perf_counter()

    def __call__(self, checkpoint) -> None:
        if time.perf_counter() - self.last >= CHECKPOINT_SECONDS:  # a module global: tests may set it to 0
            save_checkpoint(self.path, checkpoint, self.identity)
            self.last = time.perf_counter()
