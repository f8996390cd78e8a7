"""The training configuration: built-in defaults, then a TOML file, then explicit flags.

One flat table of keys (see ``configs/*.toml``). Unknown keys and values of the wrong type or
range fail with :class:`ConfigError` naming the key and what is accepted, before any data is
loaded.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from softreg.model.solve import SCHEDULES


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "digits"
    target: str | None = None  # label column of a CSV/TSV file (default: the last column)
    weight_column: str | None = None  # per-sample weights from this column of a CSV/TSV file
    missing: str = "error"  # rows with missing/NaN/infinite values: "error" or "drop"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    standardize: bool = True
    l2: float = 1e-3
    lr: str = "auto"  # "auto", "bound" or a positive number, kept as text as on the command line
    momentum: str = "none"
    batch_size: int | None = None
    schedule: str = "constant"
    max_epochs: int = 1000
    tol: float = 1e-5
    patience: int | None = None
    class_weight: str = "none"
    dtype: str = "float64"
    engine: str = "memory"  # "memory" (rows in RAM), "stream" (a prepared .npy read block by block) or "dask"
    block_rows: int | None = None  # rows per block of the stream/dask engines (default: 4 MiB / 200,000 rows)
    scheduler: str | None = None  # a Dask scheduler address; none: an embedded local cluster

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def learning_rate(self) -> str | float:
        """``lr`` as the optimizer takes it: "auto", "bound" or a float."""
        return self.lr if self.lr in ("auto", "bound") else float(self.lr)


# What each key accepts, for the error messages and the checks below.
ALLOWED = {
    "lr": "'auto', 'bound' or a positive number",
    "momentum": "'none' or 'nesterov'",
    "schedule": " or ".join(repr(s) for s in SCHEDULES),
    "class_weight": "'none' or 'balanced'",
    "dtype": "'float64' or 'float32'",
    "missing": "'error' or 'drop'",
    "engine": "'memory', 'stream' or 'dask'",
}
_TYPES = {
    "dataset": (str,),
    "target": (str, type(None)),
    "weight_column": (str, type(None)),
    "missing": (str,),
    "val_fraction": (float, int),
    "test_fraction": (float, int),
    "seed": (int,),
    "standardize": (bool,),
    "l2": (float, int),
    "lr": (str, float, int),
    "momentum": (str,),
    "batch_size": (int, type(None)),
    "schedule": (str,),
    "max_epochs": (int,),
    "tol": (float, int),
    "patience": (int, type(None)),
    "class_weight": (str,),
    "dtype": (str,),
    "engine": (str,),
    "block_rows": (int, type(None)),
    "scheduler": (str, type(None)),
}


def load_config_file(path: str | Path) -> dict:
    """Read a TOML config into a dict of known keys; unknown keys fail."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file '{path}' cannot be read ({error})") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file '{path}' is not valid TOML: {error}") from None
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"config file '{path}': unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(known))}"
        )
    return values


def resolve_config(file_values: dict | None = None, flags: dict | None = None, *, source: str = "config") -> TrainConfig:
    """Defaults, overridden by the file's values, overridden by explicit flags (None = not given)."""
    values = TrainConfig().to_dict()
    values.update(file_values or {})
    values.update({key: value for key, value in (flags or {}).items() if value is not None})
    for key, value in values.items():
        if key == "lr" and isinstance(value, (int, float)) and not isinstance(value, bool):
            values[key] = repr(float(value))
        elif isinstance(value, bool) and bool not in _TYPES[key]:
            raise ConfigError(f"{source} key '{key}' must be {_type_names(key)}, got {value!r}")
        elif not isinstance(value, _TYPES[key]):
            raise ConfigError(f"{source} key '{key}' must be {_type_names(key)}, got {value!r}")
    for key in ("val_fraction", "test_fraction", "l2", "tol"):
        values[key] = float(values[key])
    config = TrainConfig(**values)
    check_config(config)
    return config


def _type_names(key: str) -> str:
    names = {str: "a string", float: "a number", int: "an integer", bool: "true or false", type(None): "absent"}
    return " or ".join(dict.fromkeys(names[t] for t in _TYPES[key]))


def check_config(config: TrainConfig) -> None:
    """Range checks, each error naming the key (the CLI flag is the same name with dashes)."""
    if config.lr not in ("auto", "bound"):
        try:
            lr = float(config.lr)
        except ValueError:
            lr = math.nan
        if not (math.isfinite(lr) and lr > 0):
            raise ConfigError(f"lr must be {ALLOWED['lr']}, got '{config.lr}'")
    for key in ("momentum", "schedule", "class_weight", "dtype", "missing", "engine"):
        value = getattr(config, key)
        if f"'{value}'" not in ALLOWED[key]:
            raise ConfigError(f"{key} must be {ALLOWED[key]}, got '{value}'")
    for key in ("val_fraction", "test_fraction"):
        value = getattr(config, key)
        if not 0 <= value < 1:
            raise ConfigError(f"{key} must be in [0, 1), got {value}")
    if config.val_fraction + config.test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1 to leave training rows, got "
            f"{config.val_fraction} + {config.test_fraction}"
        )
    if not (config.l2 >= 0 and math.isfinite(config.l2)):
        raise ConfigError(f"l2 must be a finite number >= 0, got {config.l2}")
    if not 0 <= config.seed < 2**32:
        raise ConfigError(f"seed must be an integer from 0 to 4294967295 (2^32 - 1), got {config.seed}")
    if config.weight_column is not None and config.weight_column == config.target:
        raise ConfigError(f"weight_column must differ from target: '{config.target}' cannot be both the labels and "
                          "the weights")
    if config.max_epochs < 1:
        raise ConfigError(f"max_epochs must be at least 1, got {config.max_epochs}")
    if not (config.tol >= 0 and math.isfinite(config.tol)):
        raise ConfigError(f"tol must be a finite number >= 0, got {config.tol}")
    if config.batch_size is not None and config.batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {config.batch_size}")
    if config.block_rows is not None and config.block_rows < 1:
        raise ConfigError(f"block_rows must be a positive integer, got {config.block_rows}")
    if config.engine != "memory" and config.batch_size is not None:
        raise ConfigError(f"engine '{config.engine}' runs full batches: drop batch_size, or use engine 'memory'")
    if config.scheduler is not None and config.engine != "dask":
        raise ConfigError(f"scheduler is the address of a Dask scheduler; it needs engine 'dask', not '{config.engine}'")
    if config.patience is not None and config.patience < 1:
        raise ConfigError(f"patience must be a positive integer, got {config.patience}")
    if config.patience is not None and config.val_fraction == 0:
        raise ConfigError("patience (early stopping) needs a validation split: set val_fraction > 0")
    if config.momentum == "nesterov" and config.batch_size is not None:
        raise ConfigError("momentum 'nesterov' needs full-batch gradients: drop batch_size or momentum")
    if config.schedule != "constant" and config.lr in ("auto", "bound") and config.batch_size is None:
        raise ConfigError(f"schedule '{config.schedule}' decays a fixed step: give a numeric lr (or a batch_size)")


def to_toml(config: TrainConfig) -> str:
    """The resolved config as TOML that ``load_config_file`` reads back (None values omitted)."""
    lines = []
    for key, value in config.to_dict().items():
        if value is None:
            continue
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value!r}")
        else:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"
