"""The CLI's options, declared once. A config key's option takes its flag, help text, choices,
default and help panel from :data:`softreg.model.run.config.PARAMETERS`; the options that are
the CLI's own (output, display) are declared here, each once, and shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from softreg.cli.errors import flag
from softreg.model.run.config import BY_KEY

OUTPUT = "Output"


def default_words(key: str, default=None) -> str:
    """How help shows a default: the value, or the words for a default of None."""
    parameter = BY_KEY[key]
    value = parameter.default if default is None else default
    if value is None:
        return parameter.default_words or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def config_option(key: str, default=None, meaning: str | None = None, panel: str | None = None,
                  negatable: bool = True):
    """The option of a config key: its flag, '<meaning> (choices). [default: ...]', its panel.

    ``default`` is the command's own default when it differs from the config's (compare runs
    to a tighter tol); commands whose options fall back on a config file pass nothing and
    take None as 'not given'. ``negatable=False`` gives a boolean key its flag alone (no
    --no-KEY), for a key that is off by default.
    """
    parameter = BY_KEY[key]
    choices = [*map(str, parameter.choices or ()), *([parameter.more_choices] if parameter.more_choices else [])]
    meaning = meaning or parameter.meaning
    text = f"{meaning[0].upper()}{meaning[1:]}{': ' + '|'.join(choices) if choices else ''}."
    negation = bool in parameter.types and negatable
    names = [f"{flag(key)}/--no-{key.replace('_', '-')}"] if negation else [flag(key)]
    return typer.Option(*names, help=f"{text} \\[default: {default_words(key, default)}]", show_default=False,
                        rich_help_panel=panel or parameter.group)


# Options shared by several commands (each declared once).
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.",
                                      rich_help_panel=OUTPUT)]
Target = Annotated[Optional[str], config_option("target")]
Missing = Annotated[str, config_option("missing", "impute")]
WeightColumn = Annotated[Optional[str], config_option("weight_column")]
Dtype = Annotated[str, config_option("dtype", "float64")]
ModelFile = Annotated[Path, typer.Argument(help="A model file written by softreg train.", show_default=False)]
