"""Model files: an .npz of plain arrays plus a JSON header, never pickled.

Arrays: ``weights`` (D, K) and ``bias`` (K,) in standardized coordinates, ``feature_mean``
and ``feature_scale`` (D,), ``classes`` (K,), ``feature_names`` (D,), and ``header``: a JSON
string with the format version, softreg version, resolved config, dataset spec, split seed,
history, stop reason and final metrics. Read with ``allow_pickle=False`` only.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import version
from pathlib import Path

import numpy as np

from softreg.data.datasets import NpzError, read_npz
from softreg.data.files import atomic_file

FORMAT_VERSION = 1
REQUIRED_ARRAYS = ("weights", "bias", "feature_mean", "feature_scale", "classes", "feature_names", "header")
REQUIRED_HEADER_KEYS = ("config", "dataset", "split")


class ModelFileError(ValueError):
    """A file that is not a readable softreg model; the message says why."""


def check_writable(path: str | Path) -> Path:
    """Fail before training when ``path`` cannot be written: missing or read-only directory."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if path.exists() and path.is_dir():
        raise ModelFileError(f"output path '{path}' is a directory; give a file name such as model.npz")
    if not directory.is_dir():
        raise ModelFileError(f"output directory '{directory}' does not exist; create it or choose another --out")
    if not os.access(directory, os.W_OK):
        raise ModelFileError(f"output directory '{directory}' is not writable; choose another --out")
    return path


def save_model(path: str | Path, estimator, header: dict, feature_names: list[str]) -> Path:
    """Write the fitted estimator, its feature names and ``header`` to ``path`` atomically
    (a temporary file in the same directory, fsynced, then renamed over the target)."""
    path = Path(path)
    document = {"format": "softreg-model", "format_version": FORMAT_VERSION, "softreg_version": version("softreg")}
    document.update(header)
    classes = np.asarray(estimator.classes_)
    if classes.dtype.kind not in "iub":
        classes = classes.astype(str)  # never an object array: those would need pickle
    arrays = {
        "weights": estimator.weights_,
        "bias": estimator.bias_,
        "feature_mean": estimator.feature_mean_,
        "feature_scale": estimator.feature_scale_,
        "classes": classes,
        "feature_names": np.asarray(feature_names, dtype=str),
        "header": np.asarray(json.dumps(document, default=_json_default)),
    }
    with atomic_file(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def load_model(path: str | Path):
    """Read a model file into (SoftmaxRegression, header). Raises ModelFileError when it is not one."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file '{path}' does not exist; pass a file written by softreg train")
    if path.is_dir():
        raise ModelFileError(f"'{path}' is a directory, not a model file; pass a file written by softreg train")
    try:
        arrays, _ = read_npz(path, REQUIRED_ARRAYS)
    except NpzError as error:
        raise ModelFileError(f"'{path}' is not a softreg model file: {error.reason}; pass a file written by "
                             "softreg train") from None
    missing = [name for name in REQUIRED_ARRAYS if name not in arrays]
    if missing:
        raise ModelFileError(f"'{path}' is not a softreg model: arrays {missing} are missing")
    try:
        header = json.loads(str(arrays["header"]))
    except json.JSONDecodeError as error:
        raise ModelFileError(f"'{path}': the model header is not valid JSON ({error})") from None
    if not isinstance(header, dict) or header.get("format") != "softreg-model":
        raise ModelFileError(f"'{path}' is not a softreg model (no softreg header)")
    version_number = header.get("format_version")
    if not isinstance(version_number, int) or isinstance(version_number, bool):
        raise ModelFileError(f"'{path}': the model header's format_version is {version_number!r}, not an integer")
    if version_number > FORMAT_VERSION:
        raise ModelFileError(
            f"'{path}' has model format version {version_number}, newer than this softreg "
            f"({version('softreg')}) reads (up to {FORMAT_VERSION}); upgrade softreg"
        )
    _check_contents(path, header, arrays)
    from softreg.model.run.config import estimator_from_config, resolve_config

    estimator = estimator_from_config(resolve_config(header["config"]))
    classes = arrays["classes"]
    if classes.dtype.kind == "S":  # bytes written by hand or another tool: labels are text
        classes = classes.astype(str)
    if classes.dtype.kind not in "iubU" or len(np.unique(classes)) != len(classes):
        raise ModelFileError(f"'{path}': the classes must be distinct integers or strings, got {classes!r}")
    estimator.classes_ = classes
    estimator.feature_mean_ = arrays["feature_mean"]
    estimator.feature_scale_ = arrays["feature_scale"]
    estimator.n_features_in_ = arrays["weights"].shape[0]
    estimator._set_weights(arrays["weights"], arrays["bias"])
    header["feature_names"] = [str(name) for name in arrays["feature_names"]]
    return estimator, header


def _check_contents(path: Path, header: dict, arrays: dict) -> None:
    """A damaged or hand-edited file fails here, naming what is inconsistent, not later in numpy."""
    absent = [key for key in REQUIRED_HEADER_KEYS if not isinstance(header.get(key), dict)]
    if absent:
        raise ModelFileError(f"'{path}': the model header lacks {absent}; the file is damaged or not from softreg train")
    from softreg.model.run.config import ConfigError, TrainConfig, resolve_config

    unknown = sorted(set(header["config"]) - set(TrainConfig.__dataclass_fields__))  # noqa: the dataclass's keys
    if unknown:
        raise ModelFileError(f"'{path}': the stored config has unknown keys {unknown}; the file is damaged or was edited")
    try:
        # Every key present and in range: the commands read the config without further checks.
        header["config"] = resolve_config(header["config"], source="the model's stored config").to_dict()
    except (ConfigError, TypeError) as error:
        raise ModelFileError(f"'{path}': {error}; the file is damaged or was edited") from None
    if not isinstance(header.get("metrics", {}), dict) or not isinstance(header.get("history", {}), dict):
        raise ModelFileError(f"'{path}': the stored metrics or history are not tables; the file is damaged or was edited")
    weights = arrays["weights"]
    if weights.ndim != 2 or weights.dtype.kind != "f":
        raise ModelFileError(f"'{path}': weights must be a (features, classes) float array, got {weights.dtype} "
                             f"{weights.shape}")
    n_features, n_classes = weights.shape
    expected = {"bias": (n_classes,), "classes": (n_classes,), "feature_mean": (n_features,),
                "feature_scale": (n_features,), "feature_names": (n_features,)}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ModelFileError(f"'{path}': {name} has shape {arrays[name].shape} but the weights {weights.shape} "
                                 f"need {shape}; the file is damaged")
    numeric = [arrays[name] for name in ("weights", "bias", "feature_mean", "feature_scale")]
    if any(a.dtype.kind != "f" or not np.isfinite(a).all() for a in numeric) or not (arrays["feature_scale"] > 0).all():
        raise ModelFileError(f"'{path}': the weights, bias or scaling hold non-numbers, NaN or infinity; "
                             "the file is damaged")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a model header")


# ----------------------------------------------------------------------------- checkpoints
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
                "best_epoch": checkpoint.best_epoch}
    arrays = {"W": checkpoint.W, "b": checkpoint.b}
    if checkpoint.best_W is not None:
        arrays.update(best_W=checkpoint.best_W, best_b=checkpoint.best_b)
    with atomic_file(path) as handle:
        np.savez(handle, **arrays, header=np.asarray(json.dumps(document, default=_json_default)))


def load_checkpoint(path: str | Path):
    """(Checkpoint, run) from a file written by :func:`save_checkpoint`; ModelFileError otherwise."""
    from softreg.model.solve import Checkpoint

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"--resume: no checkpoint {path}; a run that was cut short writes one beside its --out "
                             "file. Train without --resume to start over.")
    try:
        arrays, present = read_npz(path, ("W", "b", "header", "best_W", "best_b"))
        document = json.loads(str(arrays["header"]))
        assert document.get("format") == CHECKPOINT_FORMAT
        checkpoint = Checkpoint(W=arrays["W"], b=arrays["b"], epoch=int(document["epoch"]),
                                last_step=float(document["last_step"]), g0=float(document["g0"]),
                                history=document["history"], restarts=int(document["restarts"]),
                                halvings=document["halvings"], steps=document["steps"],
                                best_val=float("inf") if document.get("best_val") is None else float(document["best_val"]),
                                best_epoch=int(document.get("best_epoch", 0)), best_W=arrays.get("best_W"),
                                best_b=arrays.get("best_b"))
    except (NpzError, KeyError, ValueError, TypeError, AssertionError) as error:
        raise ModelFileError(f"--resume: {path} is not a softreg checkpoint ({error}).") from None
    return checkpoint, document["run"]
