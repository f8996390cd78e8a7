"""Model files: an .npz of plain arrays plus a JSON header, never pickled.

Arrays: ``weights`` (D, K) and ``bias`` (K,) in standardized coordinates, ``feature_mean``
and ``feature_scale`` (D,), ``classes`` (K,), ``feature_names`` (D,), and ``header``: a JSON
string with the format version, softreg version, resolved config, dataset spec, split seed,
history, stop reason and final metrics. Read with ``allow_pickle=False`` only.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from dataclasses import dataclass

import numpy as np

from softreg.data.formats.npz import NpzError, read_npz
from softreg.data.encoding import ENCODING_SCHEMA
from softreg.data.schema import NUMBER, OPTIONAL_NUMBER, Fields, ListOf, Row, SchemaError, TableOf, check
from softreg.model.math.softmax import softmax
from softreg.model.solve.result import STOP_NUMBERS
from softreg.data.files import UnwritableOutput, atomic_file, output_kind

FORMAT_VERSION = 1
REQUIRED_ARRAYS = ("weights", "bias", "feature_mean", "feature_scale", "classes", "feature_names", "header")
REQUIRED_HEADER_KEYS = ("config", "dataset", "split")
# No array of a model (or checkpoint) file may declare more: 2 GiB is a million features times
# 256 classes in float64, and a crafted member that inflates further is refused unread.
MODEL_MEMBER_BYTES = 1 << 31


_METRICS = Fields({
    "samples": int, "accuracy": NUMBER, "log_loss": NUMBER, "top_k": int, "top_k_accuracy": NUMBER,
    **{f"{kind}_{average}": NUMBER for kind in ("precision", "recall", "f1") for average in ("macro", "weighted")},
    "per_class": TableOf(Fields({key: NUMBER for key in ("precision", "recall", "f1-score", "support")},
                                required=("precision", "recall", "f1-score", "support"))),
    "confusion_matrix": ListOf(ListOf(int)),
}, required=("samples", "accuracy", "log_loss",
             *(f"{kind}_{average}" for kind in ("precision", "recall", "f1") for average in ("macro", "weighted"))))
# A run's per-epoch history, as models and checkpoints store it.
HISTORY_SCHEMA = Fields({"epoch": ListOf(int), **{key: ListOf(NUMBER) for key in ("train_loss", "grad_norm", "step")},
                         **{key: ListOf(OPTIONAL_NUMBER) for key in ("val_loss", "val_accuracy")}},
                        required=("epoch", "train_loss", "grad_norm", "step", "val_loss", "val_accuracy"), closed=True)
# The divergence guard's halvings: (epoch, the step it halved to) each.
HALVINGS_SCHEMA = ListOf(Row((int, NUMBER)))
# l1 or l2 "auto": the cross-validated path and its choice (softreg.model.solve.path.PenaltyPath.to_dict).
_PATH_FIELDS = ("strength", "fold_loss", "mean_loss", "se_loss", "mean_accuracy", "nonzero", "n_features", "l1_ratio",
                "grouped", "folds", "seed", "select", "best_index", "one_se_index", "notes", "chosen", "chosen_index",
                "chosen_l1", "chosen_l2")
PENALTY_PATH_SCHEMA = Fields({"strength": ListOf(NUMBER), "fold_loss": ListOf(ListOf(NUMBER)),
                              **{key: ListOf(NUMBER) for key in ("mean_loss", "se_loss", "mean_accuracy", "nonzero")},
                              "n_features": int, "l1_ratio": NUMBER, "grouped": bool,
                              "folds": int, "seed": int, "select": str, "best_index": int, "one_se_index": int,
                              "notes": ListOf(str), "chosen": NUMBER, "chosen_index": int, "chosen_l1": NUMBER,
                              "chosen_l2": NUMBER},
                             required=_PATH_FIELDS)
# The header fields the commands read, with their forms (other keys may follow in later versions).
HEADER_SCHEMA = Fields({
    "softreg_version": str,
    "dataset": Fields({"name": str, "path": str, "format": str, "description": str, "sha256": (str, type(None)),
                       "rows": int, "dropped_rows": int, "zero_based": (bool, type(None)), "named_features": bool,
                       "params": TableOf((str, int, float))}),
    "split": Fields({"seed": int, "val_fraction": NUMBER, "test_fraction": NUMBER, "train_rows": int, "val_rows": int,
                     "test_rows": int}),
    "stop_reason": str, "stop_message": str,
    "stop_details": Fields({"epoch": int, "grad_norm": OPTIONAL_NUMBER, "relative": NUMBER, "tol": OPTIONAL_NUMBER,
                            "best_epoch": int, "best_val": OPTIONAL_NUMBER, "kept_best": bool, "measure": str},
                           required=("epoch", "grad_norm", "relative", "tol", "best_epoch", "best_val", "kept_best")),
    "epochs": int, "best_epoch": int, "lipschitz": NUMBER, "step_sizes": TableOf(NUMBER),
    "halvings": HALVINGS_SCHEMA, "restarts": int, "seconds": NUMBER, "engine_events": ListOf(str),
    "interrupted_by": str,
    "history": HISTORY_SCHEMA,
    "metrics": TableOf(_METRICS),
    "encoding": ENCODING_SCHEMA,
    "penalty_path": PENALTY_PATH_SCHEMA,
    "sparsity": Fields({"n_features": int, "per_class": ListOf(int), "unused": ListOf(str)},
                       required=("n_features", "per_class", "unused")),
}, required=("config", "dataset", "split"))


class ModelFileError(ValueError):
    """A file that is not a readable softreg model; the message says why."""


def check_writable(path: str | Path) -> Path:
    """Fail before training when ``path`` cannot be written: a directory or another special file
    (a character device or FIFO is written straight to), a missing or read-only directory."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        if output_kind(path) == "stream":
            return path
    except UnwritableOutput as error:
        if error.kind == "a directory":
            raise ModelFileError(f"output path '{path}' is a directory; give a file name") from None
        raise ModelFileError(f"{error}; choose another out='PATH'") from None
    if not directory.is_dir():
        raise ModelFileError(f"output directory '{directory}' does not exist; create it or choose another out='PATH'")
    if not os.access(directory, os.W_OK):
        raise ModelFileError(f"output directory '{directory}' is not writable; choose another out='PATH'")
    return path


def save_model(path: str | Path, estimator, header: dict, feature_names: list[str]) -> Path:
    """Write the fitted estimator, its feature names and ``header`` to ``path`` atomically
    (a temporary file in the same directory, fsynced, then renamed over the target)."""
    from importlib.metadata import version

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


@dataclass
class ModelFile:
    """A model file's contents as plain arrays and its header, read and checked without
    scikit-learn (``softreg info`` and ``softreg predict`` start in a fraction of a second).

    ``weights`` (D, K) and ``bias`` (K,) are in standardized coordinates; ``coef_`` (K, D) and
    ``intercept_`` (K,) apply to raw features: z = x coef_^T + intercept_ with coef_ = (W / scale)^T
    and intercept_ = b - mean (W / scale), as :class:`SoftmaxRegression` keeps them.
    """

    path: Path
    header: dict
    classes_: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    config: object = None  # the stored config, resolved and checked (a TrainConfig)

    def __post_init__(self):
        W_raw = self.weights / self.feature_scale[:, None]
        self.coef_ = np.ascontiguousarray(W_raw.T)
        self.intercept_ = self.bias - self.feature_mean @ W_raw

    def predict_proba(self, X) -> np.ndarray:
        """softmax of the logits, row by row (max-shifted), for raw rows X (dense or sparse)."""
        return softmax(np.asarray(X @ self.coef_.T) + self.intercept_)


def load_model(path: str | Path):
    """Read a model file into (SoftmaxRegression, header). Raises ModelFileError when it is not one."""
    from softreg.model.run.config import estimator_from_config

    model = read_model_file(path)
    estimator = estimator_from_config(model.config)
    estimator.classes_ = model.classes_
    estimator.feature_mean_ = model.feature_mean
    estimator.feature_scale_ = model.feature_scale
    estimator.n_features_in_ = model.weights.shape[0]
    estimator._set_weights(model.weights, model.bias)
    return estimator, model.header


def load_pipeline(path: str | Path):
    """A model file as one scikit-learn object that takes the data training took: for a model
    trained on a table, Pipeline(TableEncoder of its stored encoding, SoftmaxRegression), which
    predicts on a DataFrame, a pyarrow Table or a CSV path; for any other model, the estimator."""
    from sklearn.pipeline import make_pipeline

    from softreg.data.encoding import TableEncoding
    from softreg.data.table_encoder import TableEncoder

    estimator, header = load_model(path)
    if not header.get("encoding"):
        return estimator
    return make_pipeline(TableEncoder.from_encoding(TableEncoding.from_dict(header["encoding"])), estimator)


def read_model_file(path: str | Path) -> ModelFile:
    """Read and check a model file. Raises ModelFileError when it is not one."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file '{path}' does not exist; pass a model file written by training")
    if path.is_dir():
        raise ModelFileError(f"'{path}' is a directory, not a model file; pass a model file written by training")
    try:
        arrays, _ = read_npz(path, REQUIRED_ARRAYS, max_member_bytes=MODEL_MEMBER_BYTES)
    except NpzError as error:
        raise ModelFileError(f"'{path}' is not a softreg model file: {error.reason}; pass a model file "
                             "written by training") from None
    missing = [name for name in REQUIRED_ARRAYS if name not in arrays]
    if missing:
        raise ModelFileError(f"'{path}' is not a softreg model: arrays {missing} are missing")
    try:
        header = json.loads(str(arrays["header"]))
    except (ValueError, RecursionError) as error:  # also a 5,000-digit number, or nesting 100,000 deep
        raise ModelFileError(f"'{path}': the model header is not valid JSON ({str(error)[:120]})") from None
    if not isinstance(header, dict) or header.get("format") != "softreg-model":
        raise ModelFileError(f"'{path}' is not a softreg model (no softreg header)")
    version_number = header.get("format_version")
    if not isinstance(version_number, int) or isinstance(version_number, bool):
        raise ModelFileError(f"'{path}': the model header's format_version is {version_number!r}, not an integer")
    if version_number > FORMAT_VERSION:
        from importlib.metadata import version

        raise ModelFileError(
            f"'{path}' has model format version {version_number}, newer than this softreg "
            f"({version('softreg')}) reads (up to {FORMAT_VERSION}); upgrade softreg"
        )
    config = _check_contents(path, header, arrays)
    classes = arrays["classes"]
    if classes.dtype.kind == "S":  # bytes written by hand or another tool: labels are text
        classes = classes.astype(str)
    # A set, not np.unique: that imports numpy.ma, a fifth of what `softreg info` takes.
    if classes.dtype.kind not in "iubU" or len(set(classes.tolist())) != len(classes):
        raise ModelFileError(f"'{path}': the classes must be distinct integers or strings, got {classes!r}")
    header["feature_names"] = [str(name) for name in arrays["feature_names"]]
    if header.get("encoding") is not None:
        _check_encoding(path, header)
    return ModelFile(path, header, classes, arrays["weights"], arrays["bias"], arrays["feature_mean"],
                     arrays["feature_scale"], config)


def _check_encoding(path: Path, header: dict) -> None:
    """The stored table encoding names known kinds and policies and makes exactly the model's features."""
    from softreg.data.encoding import checked_encoding

    try:
        checked_encoding(header["encoding"], header["feature_names"], f"'{path}'")
    except ValueError as error:
        raise ModelFileError(f"{error}; the file is damaged or was edited") from None


def _check_contents(path: Path, header: dict, arrays: dict):
    """A damaged or hand-edited file fails here, naming what is inconsistent, not later in numpy.
    Returns the stored config, resolved (its dict form replaces the header's)."""
    absent = [key for key in REQUIRED_HEADER_KEYS if not isinstance(header.get(key), dict)]
    if absent:
        raise ModelFileError(f"'{path}': the model header lacks {absent}; the file is damaged or not written by softreg")
    from softreg.model.run.config import ConfigError, TrainConfig, resolve_config

    unknown = sorted(set(header["config"]) - set(TrainConfig.__dataclass_fields__))  # noqa: the dataclass's keys
    if unknown:
        raise ModelFileError(f"'{path}': the stored config has unknown keys {unknown}; the file is damaged or was edited")
    try:
        # Every key present and in range: the commands read the config without further checks.
        config = resolve_config(header["config"], source="the model's stored config")
        header["config"] = config.to_dict()
    except (ConfigError, TypeError) as error:
        raise ModelFileError(f"'{path}': {error}; the file is damaged or was edited") from None
    try:
        check(header, HEADER_SCHEMA, "header")
    except SchemaError as error:
        raise ModelFileError(f"'{path}': the model {error}; the file is damaged or was edited") from None
    details = header.get("stop_details")
    if details is not None:
        needed = list(STOP_NUMBERS.get(header.get("stop_reason"), ()))
        if header.get("stop_reason") == "interrupted" and details["kept_best"]:
            needed.append("best_val")
        for key in needed:
            if details[key] is None:
                raise ModelFileError(f"'{path}': the model header.stop_details.{key} must be a number for stop_reason "
                                     f"{header['stop_reason']!r}, got None; the file is damaged or was edited")
    if header.get("penalty_path") is not None and not _consistent_path(header["penalty_path"]):
        raise ModelFileError(f"'{path}': the stored penalty_path does not hold together (columns of different "
                             "lengths, an index outside it, or a choice that is not its own value); the file is "
                             "damaged or was edited")
    history = header.get("history", {})
    if len({len(values) for values in history.values()}) > 1:
        raise ModelFileError(f"'{path}': the stored history's columns differ in length; the file is damaged or was edited")
    weights = arrays["weights"]
    if weights.ndim != 2 or weights.dtype.kind != "f":
        raise ModelFileError(f"'{path}': weights must be a (features, classes) float array, got {weights.dtype} "
                             f"{weights.shape}")
    n_features, n_classes = weights.shape
    if n_classes < 2:
        raise ModelFileError(f"'{path}': the weights have {n_classes} class columns; a model has at least 2. The "
                             "file is damaged")
    expected = {"bias": (n_classes,), "classes": (n_classes,), "feature_mean": (n_features,),
                "feature_scale": (n_features,), "feature_names": (n_features,)}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ModelFileError(f"'{path}': {name} has shape {arrays[name].shape} but the weights {weights.shape} "
                                 f"need {shape}; the file is damaged")
    sparsity = header.get("sparsity")
    if sparsity is not None and (sparsity["n_features"] != n_features or len(sparsity["per_class"]) != n_classes
                                 or not all(0 <= count <= n_features for count in sparsity["per_class"])):
        raise ModelFileError(f"'{path}': the stored sparsity does not match the weights {weights.shape}; the file is "
                             "damaged or was edited")
    numeric = [arrays[name] for name in ("weights", "bias", "feature_mean", "feature_scale")]
    if any(a.dtype.kind != "f" or not np.isfinite(a).all() for a in numeric) or not (arrays["feature_scale"] > 0).all():
        raise ModelFileError(f"'{path}': the weights, bias or scaling hold non-numbers, NaN or infinity; "
                             "the file is damaged")
    return config


def _consistent_path(found: dict) -> bool:
    """A stored PenaltyPath whose columns, indices and choice agree with one another."""
    size = len(found["strength"])
    if size == 0 or any(len(found[key]) != size for key in ("mean_loss", "se_loss", "mean_accuracy", "nonzero")):
        return False
    if len(found["fold_loss"]) != found["folds"] or any(len(row) != size for row in found["fold_loss"]):
        return False
    if not all(0 <= found[key] < size for key in ("best_index", "one_se_index", "chosen_index")):
        return False
    chosen, ratio = found["strength"][found["chosen_index"]], found["l1_ratio"]
    return (0 <= ratio <= 1 and found["chosen"] == chosen and math.isclose(found["chosen_l1"], chosen * ratio)
            and math.isclose(found["chosen_l2"], chosen * (1 - ratio)))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a model header")


def trained_on(path: str | Path) -> dict | None:
    """The dataset spec of the model file at ``path``, or None when there is no readable model
    there: what a new model written to that path would replace."""
    try:
        return read_model_file(path).header["dataset"]
    except (ModelFileError, OSError):
        return None
