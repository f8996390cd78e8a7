"""The training vocabulary, declared once: every key with its type, choices, default and meaning.

A run is configured by built-in defaults, then a TOML file, then explicit values (the CLI's
flags). One flat table of keys (see ``configs/*.toml``). Unknown keys and values of the wrong
type or range fail with :class:`ConfigError` carrying the key, before any data is loaded. The
CLI builds its options, help texts and help panels from :data:`PARAMETERS`; the one map
between a config and :class:`~softreg.model.estimator.SoftmaxRegression` parameters is
:func:`estimator_params` / :func:`estimator_from_config`.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, make_dataclass
from pathlib import Path

from softreg.model.engines import ENGINES
from softreg.model.solve.settings import MOMENTA, SCHEDULES, STEP_RULES


class ConfigError(ValueError):
    """A config file or value that cannot be used; ``key`` names the key at fault (None for the
    file as a whole), and the message starts with it."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Parameter:
    """One config key: its types, default, choices (None for any value of the types; in the
    order messages list them, checked as a set), what it means, and the group it belongs to
    (the CLI's help panel)."""

    key: str
    types: tuple
    default: object
    meaning: str
    group: str
    choices: tuple | None = None
    default_words: str | None = None  # how to say a default of None ("last column", "off")
    more_choices: str | None = None  # what else is accepted besides the choices ("a number")

    def accepts(self, value) -> bool:
        number = self.more_choices == "a number" and isinstance(value, (int, float)) and not isinstance(value, bool)
        return (self.choices is None or value in frozenset(self.choices) or number
                or (value is None and type(None) in self.types))


DATA, COLUMNS, SCALING, OBJECTIVE, STOP = ("Data and split", "Columns and scaling", "Scaling", "Objective and steps",
                                           "Stopping and engine")
_OPTIONAL_INT, _OPTIONAL_STR, _NUMBER = (int, type(None)), (str, type(None)), (float, int)

# Meanings are short: they are the CLI's help lines (80 columns); the README explains each key.
PARAMETERS: tuple[Parameter, ...] = (
    Parameter("dataset", (str,), "digits", "built-in name, synthetic:..., or a file", DATA),
    Parameter("target", _OPTIONAL_STR, None, "CSV/TSV label column", DATA, default_words="last column"),
    Parameter("weight_column", _OPTIONAL_STR, None, "column of row weights", DATA),
    Parameter("missing", (str,), "impute", "NA", DATA, ("impute", "drop", "error")),
    Parameter("format", _OPTIONAL_STR, None, "format", DATA, ("csv", "tsv", "svmlight", "npz", "parquet"),
              default_words="by suffix"),
    Parameter("header", (bool, type(None)), None, "header row", COLUMNS, default_words="auto"),
    Parameter("categorical", _OPTIONAL_STR, None, "one-hot: A,B", COLUMNS),
    Parameter("numeric", _OPTIONAL_STR, None, "numbers: A,B", COLUMNS),
    Parameter("ignore", _OPTIONAL_STR, None, "skip: A,B", COLUMNS),
    Parameter("features", _OPTIONAL_STR, None, "use only: A,B", COLUMNS, default_words="all"),
    Parameter("min_frequency", (int,), 5, "rows per level", COLUMNS),
    Parameter("val_fraction", _NUMBER, 0.15, "validation share", DATA),
    Parameter("test_fraction", _NUMBER, 0.15, "test share", DATA),
    Parameter("seed", (int,), 0, "seed of splits and shuffling", DATA),
    Parameter("standardize", (bool,), True, "penalize standardized, not raw, coefficients", COLUMNS),
    Parameter("l2", (str, float, int), 1e-3, "L2 on W", OBJECTIVE, ("auto",),
              more_choices="a number"),
    Parameter("l1", (str, float, int), 0.0, "L1 on W", OBJECTIVE, ("auto",), more_choices="a number"),
    Parameter("l1_ratio", _NUMBER, 1.0, "L1 share of l1 auto", OBJECTIVE),
    Parameter("grouped", (bool,), False, "L1 per feature", OBJECTIVE),
    Parameter("folds", (int,), 5, "CV folds of auto", OBJECTIVE),
    Parameter("select", (str,), "min", "Auto takes", OBJECTIVE, ("min", "1se")),
    Parameter("class_weight", (str,), "none", "class weights", OBJECTIVE, ("none", "balanced")),
    Parameter("dtype", (str,), "float64", "dtype", OBJECTIVE, ("float64", "float32")),
    Parameter("lr", (str, float, int), "auto", "step", OBJECTIVE, STEP_RULES, more_choices="a number"),
    Parameter("momentum", (str,), "auto", "momentum", OBJECTIVE, MOMENTA),
    Parameter("batch_size", _OPTIONAL_INT, None, "mini-batch size", OBJECTIVE, default_words="full batch"),
    Parameter("schedule", (str,), "constant", "decay", OBJECTIVE, SCHEDULES),
    Parameter("max_epochs", (int,), 1000, "epoch limit", STOP),
    Parameter("tol", _NUMBER, 1e-5, "relative gradient tolerance", STOP),
    Parameter("patience", _OPTIONAL_INT, None, "early-stopping patience", STOP, default_words="off"),
    Parameter("engine", (str,), "memory", "engine", STOP, tuple(ENGINES)),
    Parameter("block_rows", _OPTIONAL_INT, None, "rows per block", STOP, default_words="4 MiB"),
    Parameter("scheduler", _OPTIONAL_STR, None, "Dask scheduler", STOP, default_words="local"),
)
BY_KEY = {parameter.key: parameter for parameter in PARAMETERS}
MAX_VALUE_CHARACTERS = 4096


def _to_dict(self) -> dict:
    return asdict(self)


def _learning_rate(self) -> str | float:
    """``lr`` as the solver takes it: "auto", "bound" or a float."""
    return self.lr if self.lr in STEP_RULES else float(self.lr)


# lr is kept as text, as on the command line ("auto", "0.5"); every other value as its type.
TrainConfig = make_dataclass(
    "TrainConfig",
    [(p.key, object, field(default=p.default)) for p in PARAMETERS],
    frozen=True,
    namespace={"to_dict": _to_dict, "learning_rate": property(_learning_rate),
               "__doc__": "A resolved training config: one field per key of PARAMETERS."},
)
TrainConfig.__module__ = __name__


def choices_words(key: str, *more: str) -> str:
    """The accepted values of a key with choices, for messages: 'a', 'b' or 'c'."""
    names = [f"'{choice}'" for choice in BY_KEY[key].choices] + list(more)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def load_config_file(path: str | Path) -> dict:
    """Read a TOML config into a dict of known keys; unknown keys fail."""
    import tomllib  # here, not with the module: only a config file needs it, and every command reads this one

    from softreg.data.files import not_regular

    path = Path(path)
    if not_regular(path) is not None:
        raise ConfigError(f"config file '{path}' is {not_regular(path)}; give a regular TOML file")
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
    except RecursionError:
        raise ConfigError(f"config file '{path}' nests arrays or tables too deeply to read; a softreg config is one "
                          "flat table of keys") from None
    unknown = sorted(set(values) - set(BY_KEY))
    if unknown:
        raise ConfigError(
            f"config file '{path}': unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(BY_KEY))}"
        )
    return values


def resolve_config(file_values: dict | None = None, flags: dict | None = None, *, source: str = "config"):
    """Defaults, overridden by the file's values, overridden by explicit values (None = not given)."""
    values = {p.key: p.default for p in PARAMETERS}
    values.update(file_values or {})
    values.update({key: value for key, value in (flags or {}).items() if value is not None})
    for key, value in values.items():
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARACTERS:
            raise ConfigError(f"{source} key '{key}' is {len(value):,} characters long; at most "
                              f"{MAX_VALUE_CHARACTERS:,} (the longest path a system allows)", key)
        if key not in BY_KEY:
            raise ConfigError(f"{source}: unknown key '{key}'; known keys are {', '.join(sorted(BY_KEY))}", key)
        types = BY_KEY[key].types
        if key == "lr" and isinstance(value, (int, float)) and not isinstance(value, bool):
            values[key] = repr(float(value))
        elif (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise ConfigError(f"{source} key '{key}' must be {_type_names(types)}, got {value!r}", key)
    for key in ("val_fraction", "test_fraction", "tol", "l1_ratio"):
        values[key] = float(values[key])
    for key in ("l2", "l1"):
        values[key] = _penalty(key, values[key])
    _check_auto_given(values, set(file_values or {}), {key for key, value in (flags or {}).items() if value is not None})
    config = TrainConfig(**values)
    check_config(config)
    return config


def _penalty(key: str, value):
    """l2 or l1 as a number, or "auto" (chosen by cross-validation); text from the command line is parsed."""
    if value == "auto":
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a finite number >= 0 or 'auto', got {value!r}", key) from None


def _check_auto_given(values: dict, in_file: set, in_flags: set) -> None:
    """l1 'auto' chooses a total strength and l1_ratio splits it into l1 and l2, so an l2 given at
    the same level (both flags, or both in the file) or above it (an l2 flag) would be silently
    unused, as would an l1_ratio flag without l1 'auto'. A flag l1='auto' overrides the file's l2,
    as every flag overrides the file. (A stored or printed config holds every key, l1_ratio among
    them; :func:`to_toml` leaves l2 out under l1 'auto'.)"""
    l1_level = in_flags if "l1" in in_flags else in_file
    if values["l1"] == "auto" and ("l2" in in_flags or "l2" in l1_level):
        raise ConfigError(f"l2 must be left out with l1='auto', which sets l2 = strength x (1 - l1_ratio): drop l2 "
                          f"(got {values['l2']!r}), or give l1 a number", "l2")
    if values["l1"] != "auto" and "l1_ratio" in in_flags:
        raise ConfigError("l1_ratio must come with l1='auto': it splits the strength that l1='auto' chooses; with l1 "
                          "a number, give l1 and l2 themselves", "l1_ratio")
    if values["l1"] == "auto" and "l1" in in_flags and "l2" in in_file:
        values["l2"] = BY_KEY["l2"].default  # overridden by the flag; the path sets it


def _type_names(types: tuple) -> str:
    names = {str: "a string", float: "a number", int: "an integer", bool: "true or false", type(None): "absent"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _check_choices(config) -> None:
    for parameter in PARAMETERS:
        value = getattr(config, parameter.key)
        if parameter.key == "lr" and value not in STEP_RULES:
            try:
                lr = float(value)
            except ValueError:
                lr = math.nan
            if not (math.isfinite(lr) and lr > 0):
                raise ConfigError(f"lr must be {choices_words('lr', 'a positive number')}, got '{value}'", "lr")
        elif parameter.key not in ("lr", "l2", "l1") and not parameter.accepts(value):
            raise ConfigError(f"{parameter.key} must be {choices_words(parameter.key)}, got '{value}'", parameter.key)


def _check_ranges(config) -> None:
    for key in ("val_fraction", "test_fraction"):
        if not 0 <= getattr(config, key) < 1:
            raise ConfigError(f"{key} must be in [0, 1), got {getattr(config, key)}", key)
    if config.val_fraction + config.test_fraction >= 1:
        raise ConfigError(f"val_fraction + test_fraction must be below 1 to leave training rows, got "
                          f"{config.val_fraction} + {config.test_fraction}", "val_fraction")
    for key in ("l2", "l1", "tol"):
        if getattr(config, key) == "auto":
            continue
        if not (getattr(config, key) >= 0 and math.isfinite(getattr(config, key))):
            raise ConfigError(f"{key} must be a finite number >= 0{' or auto' if key != 'tol' else ''}, got "
                              f"{getattr(config, key)}", key)
    if not 0 <= config.l1_ratio <= 1:
        raise ConfigError(f"l1_ratio must be from 0 (all L2) to 1 (all L1), got {config.l1_ratio}", "l1_ratio")
    if not 0 <= config.seed < 2**32:
        raise ConfigError(f"seed must be an integer from 0 to 4294967295 (2^32 - 1), got {config.seed}", "seed")
    if config.max_epochs < 1:
        raise ConfigError(f"max_epochs must be at least 1, got {config.max_epochs}", "max_epochs")
    if config.folds < 2:
        raise ConfigError(f"folds must be at least 2 ('auto' holds out one fold at a time), got {config.folds}",
                          "folds")
    if config.min_frequency < 1:
        raise ConfigError(f"min_frequency must be at least 1 (rows a category needs to keep its own column), got "
                          f"{config.min_frequency}", "min_frequency")
    for key in ("batch_size", "block_rows", "patience"):
        if getattr(config, key) is not None and getattr(config, key) < 1:
            raise ConfigError(f"{key} must be a positive integer, got {getattr(config, key)}", key)


def _check_combinations(config) -> None:
    if config.l1 == "auto" and config.l2 == "auto":
        raise ConfigError("l1 must not be 'auto' beside l2='auto': l1='auto' chooses the total strength, l1_ratio "
                          "fixing the mix (l2='auto' is l1_ratio=0 alone)", "l1")
    if config.l2 == "auto" and config.l1 != 0:
        raise ConfigError(f"l2 must be a number beside l1={config.l1!r}: l2='auto' chooses a ridge penalty alone; "
                          f"for an elastic net use l1='auto' (with l1_ratio=R for the mix)", "l2")
    if config.l1 == "auto" and config.l1_ratio == 0:
        raise ConfigError("l1_ratio must be above 0 with l1='auto' (0 leaves no L1 term): use l2='auto' for a ridge "
                          "path", "l1_ratio")
    if config.grouped and config.l1 == 0:
        raise ConfigError("grouped must come with an L1 term, l1=STRENGTH above 0 or l1='auto': it makes that term "
                          "a group lasso", "grouped")
    if config.weight_column is not None and config.weight_column == config.target:
        raise ConfigError(f"weight_column must differ from target: '{config.target}' cannot be both the labels and "
                          "the weights", "weight_column")
    if config.engine != "memory" and config.batch_size is not None:
        raise ConfigError(f"engine '{config.engine}' runs full batches: drop batch_size, or use engine 'memory'",
                          "engine")
    if config.scheduler is not None and not re.fullmatch(r"((tcp|tls)://)?[^\s:/]+:\d{1,5}", config.scheduler):
        raise ConfigError(f"scheduler must be a Dask scheduler address such as tcp://host:8786 (tcp:// or tls://, "
                          f"a host and a port), got '{config.scheduler}'", "scheduler")
    if config.scheduler is not None and config.engine != "dask":
        raise ConfigError(f"scheduler is the address of a Dask scheduler; it needs engine 'dask', not "
                          f"'{config.engine}'", "scheduler")
    if config.patience is not None and config.val_fraction == 0:
        raise ConfigError("patience (early stopping) needs a validation split: set val_fraction > 0", "patience")
    if config.momentum == "nesterov" and config.batch_size is not None:
        raise ConfigError("momentum 'nesterov' needs full-batch gradients: drop batch_size or momentum", "momentum")
    if config.schedule != "constant" and config.lr in STEP_RULES and config.batch_size is None:
        raise ConfigError(f"schedule '{config.schedule}' decays a fixed step: give a numeric lr (or a batch_size)",
                          "schedule")


def check_config(config) -> None:
    """Choices, ranges and combinations; each error carries the key at fault."""
    _check_choices(config)
    _check_ranges(config)
    _check_combinations(config)


def dataset_options(config: "TrainConfig | dict") -> dict:
    """The :func:`~softreg.data.load_dataset` parameters that a config (or a model file's stored
    config, which may predate some keys) sets."""
    from softreg.data.encoding import ColumnChoices

    values = config if isinstance(config, dict) else config.to_dict()
    get = lambda key: values.get(key, BY_KEY[key].default)  # noqa: E731
    columns = ColumnChoices.from_words(get("categorical"), get("numeric"), get("ignore"), get("features"),
                                       get("min_frequency"))
    return dict(target=get("target"), weight_column=get("weight_column"), dtype=get("dtype"),
                missing=values.get("missing", "error"), header=get("header"), format=get("format"), columns=columns)


def to_toml(config) -> str:
    """The resolved config as TOML that ``load_config_file`` reads back (None values omitted)."""
    lines = []
    for key, value in config.to_dict().items():
        if value is None or (key == "l2" and config.l1 == "auto"):  # l1 'auto' sets l2 (see _check_auto_given)
            continue
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value!r}")
        else:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- config <-> estimator
def estimator_params(config) -> dict:
    """The one map from a config to SoftmaxRegression's parameters: "none" is None, lr a rule
    or a float, seed the random_state."""
    return {
        "l2": config.l2, "l1": config.l1, "grouped": config.grouped, "lr": config.learning_rate, "momentum": None if config.momentum == "none" else config.momentum,
        "batch_size": config.batch_size, "schedule": config.schedule, "max_epochs": config.max_epochs,
        "tol": config.tol, "patience": config.patience, "standardize": config.standardize,
        "class_weight": None if config.class_weight == "none" else config.class_weight, "dtype": config.dtype,
        "random_state": config.seed, "warm_start": False,  # a run starts from 0 (resume is how it continues)
        "fit_intercept": True,  # a command-line model always has its bias
    }


def estimator_from_config(config):
    """An unfitted SoftmaxRegression with the config's parameters."""
    from softreg.model.estimator import SoftmaxRegression

    return SoftmaxRegression(**estimator_params(config))
