"""What a run of the solver hands back: per-epoch records, the result, checkpoints, stop codes.

Stop reasons are codes (``STOP_REASONS``) with the numbers behind them in
``TrainResult.stop_details``; ``stop_message`` words them in the library's own vocabulary
(parameter names such as ``max_epochs``), and the CLI words them in flags.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

STOP_REASONS = ("converged", "precision", "max_epochs", "early_stopped", "interrupted", "separable", "diverged")


@dataclass(frozen=True)
class EpochRecord:
    """One epoch as the caller sees it."""

    epoch: int
    max_epochs: int
    train_loss: float  # the objective J (data term + penalty)
    grad_norm: float  # max |dJ/dθ| at the point the next step starts from
    step: float
    val_loss: float | None
    val_accuracy: float | None
    elapsed: float


@dataclass
class TrainResult:
    """Weights, history and why training stopped."""

    W: np.ndarray
    b: np.ndarray
    stop_reason: str  # one of STOP_REASONS
    stop_message: str
    n_epochs: int
    best_epoch: int
    lipschitz: float
    history: dict = field(default_factory=dict)
    halvings: list = field(default_factory=list)  # (epoch, new step) for each divergence-guard halving
    restarts: int = 0
    step_sizes: dict = field(default_factory=dict)
    stop_details: dict = field(default_factory=dict)  # the numbers stop_message is made of


@dataclass
class Checkpoint:
    """Where a full-batch run stood after an epoch: enough to continue it exactly, momentum
    included (the extrapolated point y and the momentum counter)."""

    W: np.ndarray
    b: np.ndarray
    epoch: int
    last_step: float
    g0: float  # the first epoch's max |gradient|, which tol is relative to
    history: dict
    restarts: int = 0
    halvings: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    best_val: float = math.inf  # early stopping's state: the best validation loss, its epoch and weights
    best_epoch: int = 0
    best_W: np.ndarray | None = None
    best_b: np.ndarray | None = None
    momentum_k: int = 0  # Nesterov's counter; with it y = (W_y, b_y), where the next step starts
    W_y: np.ndarray | None = None
    b_y: np.ndarray | None = None
    rounding: bool = False  # steps were being tested on gradients (the rounding regime)


class TrainingDiverged(RuntimeError):
    """A fixed step kept making the objective non-finite or larger, even after halving."""

    def __init__(self, message: str, result: TrainResult):
        super().__init__(message)
        self.result = result


def max_abs(dW: np.ndarray, db: np.ndarray) -> float:
    return float(max(np.max(np.abs(dW)), np.max(np.abs(db))))


class Validation:
    """Loss and accuracy of held-out rows at given weights (no penalty: the data term only)."""

    def __init__(self, engine):
        self.engine = engine

    def __call__(self, W, b) -> tuple[float, float]:
        held_out = self.engine.objective(W, b, 0.0, gradient=False, count=True)
        return held_out.value, held_out.n_correct / self.engine.n_weighted


class History:
    """Per-epoch records, early stopping and the best weights seen on validation."""

    def __init__(self, settings, validate, callback):
        self.settings, self.validate, self.callback = settings, validate, callback
        self.columns = {"epoch": [], "train_loss": [], "grad_norm": [], "step": [], "val_loss": [], "val_accuracy": []}
        self.start = time.perf_counter()
        self.best_val = math.inf
        self.best_epoch = 0
        self.best_weights = None

    def record(self, epoch: int, W, b, loss: float, grad_norm: float, step: float) -> bool:
        """Store one epoch; return True when early stopping says to stop."""
        val_loss = val_accuracy = None
        if self.validate is not None:
            val_loss, val_accuracy = self.validate(W, b)
            if val_loss < self.best_val:
                self.best_val, self.best_epoch = val_loss, epoch
                self.best_weights = (W.copy(), b.copy())
        for key, value in zip(self.columns, (epoch, loss, grad_norm, step, val_loss, val_accuracy)):
            self.columns[key].append(value)
        if self.callback is not None:
            self.callback(EpochRecord(epoch, self.settings.max_epochs, loss, grad_norm, step, val_loss, val_accuracy,
                                      time.perf_counter() - self.start))
        patience = self.settings.patience
        return bool(patience and self.validate is not None and epoch - self.best_epoch >= patience)

    def restore(self, checkpoint: Checkpoint, dtype) -> None:
        """Continue from a checkpoint's history and early-stopping state."""
        self.columns = {key: list(checkpoint.history[key]) for key in self.columns}
        self.best_val, self.best_epoch = checkpoint.best_val, checkpoint.best_epoch
        if checkpoint.best_W is not None:
            self.best_weights = (checkpoint.best_W.astype(dtype), checkpoint.best_b.astype(dtype))


def stop_check(grad_norm: float, g0: float, tol: float, early: bool, should_stop, separable: bool = False) -> str | None:
    """The stop reason after an epoch, or None to go on."""
    if separable:
        return "separable"
    if grad_norm <= tol * g0:
        return "converged"
    if early:
        return "early_stopped"
    if should_stop is not None and should_stop():
        return "interrupted"
    return None


def make_result(W, b, stop_reason, epoch, history: History, lipschitz, halvings, restarts, steps,
                *, grad_norm=None, g0=None, tol=None, proximal: bool = False) -> TrainResult:
    """The result of a run that stopped at ``epoch``: early stopping and interruptions keep the
    weights of the best validation loss."""
    best_epoch = epoch
    if stop_reason in ("early_stopped", "interrupted") and history.best_weights is not None:
        W, b = history.best_weights
        best_epoch = history.best_epoch
    elif history.validate is not None and history.best_weights is not None:
        best_epoch = history.best_epoch
    step_sizes = {"bound": 1.0 / lipschitz}
    if steps:
        step_sizes.update(first=steps[0], last=steps[-1], min=min(steps), max=max(steps), mean=float(np.mean(steps)))
    details = {"epoch": epoch, "grad_norm": grad_norm, "relative": (grad_norm / g0) if (g0 and grad_norm is not None)
               else 0.0, "tol": tol, "best_epoch": best_epoch,
               "best_val": history.best_val if math.isfinite(history.best_val) else None,
               "kept_best": history.best_weights is not None,
               # With an L1 term the size of the gradient mapping (softreg.model.math.penalty) is the measure.
               "measure": "proximal gradient" if proximal else "gradient"}
    return TrainResult(
        W=W, b=b, stop_reason=stop_reason, stop_message=stop_message(stop_reason, details), n_epochs=epoch,
        best_epoch=best_epoch, lipschitz=lipschitz, history=history.columns, halvings=halvings, restarts=restarts,
        step_sizes=step_sizes, stop_details=details,
    )


def parameter_name(key: str) -> str:
    return key


def parameter_setting(key: str, value) -> str:
    return f"{key} {value!r}"


# The numbers of stop_details each stop's message is made of (the others may be None).
STOP_NUMBERS = {"converged": ("grad_norm", "relative", "tol"), "precision": ("grad_norm", "relative", "tol"),
                "max_epochs": ("grad_norm", "relative", "tol"), "early_stopped": ("best_val",)}


def stop_message(reason: str, details: dict, name=parameter_name, setting=parameter_setting) -> str:
    """Why a run stopped; ``details`` as in TrainResult.stop_details. Parameters are named by
    ``name(key)`` and settings by ``setting(key, value)``: by default as a Python caller spells
    them (``max_epochs``, ``momentum 'nesterov'``); the CLI passes its flags."""
    epoch, grad_norm, relative, tol = details["epoch"], details["grad_norm"], details["relative"], details["tol"]
    best_epoch, best_val = details["best_epoch"], details["best_val"]
    measure = details.get("measure", "gradient")
    first = "the first epoch's" if measure == "gradient" else "the first epoch's max |gradient|"
    if reason == "converged":
        return (f"converged at epoch {epoch}: max |{measure}| = {grad_norm:.3g}, "
                f"{relative:.2g} of {first} ({name('tol')} {tol:g})")
    if reason == "precision":
        verdict = "converged" if relative <= tol else "stopped"
        return (f"{verdict} at epoch {epoch}: the {measure} stopped falling at its floating-point floor "
                f"(max |{measure}| = {grad_norm:.3g}, {relative:.2g} of {first}, {name('tol')} {tol:g})")
    if reason == "max_epochs":
        return (f"reached {name('max_epochs')} ({epoch}) without converging: max |{measure}| = {grad_norm:.3g}, "
                f"{relative:.2g} of {first}, above {name('tol')} {tol:g}. Raise {name('max_epochs')} or "
                f"loosen {name('tol')} (full-batch runs without momentum also converge faster with "
                f"{setting('momentum', 'nesterov')}).")
    if reason == "early_stopped":
        return (f"stopped early at epoch {epoch}: validation loss did not improve for {epoch - best_epoch} "
                f"epochs (best {best_val:.4g} at epoch {best_epoch}; those weights were kept)")
    if reason == "interrupted":
        if details["kept_best"]:
            return (f"interrupted at epoch {epoch}; kept the weights of epoch {best_epoch}, the best validation loss "
                    f"so far ({best_val:.4g})")
        return f"interrupted at epoch {epoch}; kept the weights of that epoch (the lowest objective so far)"
    if reason == "separable":
        return (f"stopped at epoch {epoch}: the weights now classify every training row correctly, so the data is "
                f"linearly separable and with {name('l2')} = 0 the loss only approaches 0 as the weights grow without bound; "
                f"the unregularized optimum does not exist. Set {name('l2')} above 0 (for example 1e-4) to get a finite one.")
    return reason
