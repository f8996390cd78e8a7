"""The words that name flags: the library speaks in parameter names, the CLI in flags."""

from __future__ import annotations


def flag(key: str) -> str:
    """The flag of a parameter: max_epochs -> --max-epochs."""
    return "--" + key.replace("_", "-")


def flag_setting(key: str, value) -> str:
    """A setting as typed on the command line: --momentum nesterov."""
    return f"{flag(key)} {value}"


def stop_words(reason: str, details: dict | None, fallback: str) -> str:
    """Why a run stopped, in flags, from its stop code and numbers (``fallback``: the stored
    message, for model files written before stop details were kept)."""
    from softreg.model.solve.result import stop_message

    if not details or reason not in ("converged", "precision", "max_epochs", "early_stopped", "interrupted",
                                     "separable"):
        return fallback
    return stop_message(reason, details, name=flag, setting=flag_setting)
