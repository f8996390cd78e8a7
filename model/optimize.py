"""Gradient descent on the objective of step 4, with the derived gradient as the direction.

    J(W, b) = sum_i w_i L_i + (l2/2) ||W||_F^2,    (W, b) <- (W, b) - t (dJ/dW, dJ/db)

Only the step size t is a choice:
- ``"bound"``: t = 1/L with Böhning's L = 1/2 lambda_max(X~^T Ω X~) + l2. Never increases J.
- ``"auto"``: Armijo backtracking, J(x - t g) <= J(x) - c t ||g||^2, starting each
  iteration from ``growth`` times the last accepted step and never going below 1/L (which
  satisfies the condition whenever c <= 1/2). Never increases J. Each trial point's
  objective and gradient come from one fused pass over X, so an accepted first trial costs
  one pass.
- a number: a fixed step, optionally decayed by a schedule, protected by a divergence guard
  that restores the last good weights and halves the step.

``momentum="nesterov"`` extrapolates y = x_k + beta_k (x_k - x_{k-1}) with beta_k = k/(k+3)
and takes the gradient step from y: an objective-only pass at the trial point, a fused pass
at y. When J rises, the step is discarded and momentum restarts from x_k (adaptive
restart), so the objective stays monotone.

The objective and gradient come from an engine (:mod:`softreg.model.engine`) that sums them
over row blocks; the loop never touches X itself except for mini-batches.

``batch_size`` switches to mini-batch SGD: rows reshuffled each epoch from the seed.

Nothing here prints: progress reaches the caller through ``callback(record)``.
"""

from __future__ import annotations

import math
import numbers
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from softreg.model.engine import MemoryEngine
from softreg.model.objective import loss_and_gradient

STEP_RULES = ("auto", "bound")
SCHEDULES = ("constant", "inverse-sqrt", "cosine")


@dataclass(frozen=True)
class OptimizerSettings:
    """How to descend. Every field is validated by :func:`validate_settings`."""

    lr: str | float = "auto"
    momentum: str | None = None
    batch_size: int | None = None
    schedule: str = "constant"
    max_epochs: int = 1000
    tol: float = 1e-5
    patience: int | None = None
    seed: int = 0
    armijo: float = 0.5  # sufficient-decrease constant c; c = 1/2 is the descent lemma at t = 1/L (measured: fewest epochs on digits)
    growth: float = 1.25  # each iteration first tries growth x the last accepted step (README: measured)
    shrink: float = 0.5  # backtracking factor
    max_halvings: int = 20


def is_real_number(value) -> bool:
    """A real number, numpy scalars included, but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer_number(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def validate_settings(settings: OptimizerSettings) -> None:
    """Raise ValueError naming the setting when a value is out of range or of the wrong type."""
    lr = settings.lr
    if isinstance(lr, str):
        if lr not in STEP_RULES:
            raise ValueError(f"lr must be 'auto', 'bound' or a positive number, got {lr!r}")
    elif not (is_real_number(lr) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be 'auto', 'bound' or a positive number, got {lr!r}")
    for name in ("max_epochs", "batch_size", "patience"):
        value = getattr(settings, name)
        if value is not None and not is_integer_number(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if not is_real_number(settings.tol):
        raise ValueError(f"tol must be a number, got {settings.tol!r}")
    if settings.momentum not in (None, "none", "nesterov"):
        raise ValueError(f"momentum must be 'none' or 'nesterov', got {settings.momentum!r}")
    if settings.batch_size is not None and settings.batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {settings.batch_size}")
    if settings.batch_size is not None and settings.momentum == "nesterov":
        raise ValueError("momentum 'nesterov' needs full-batch gradients; drop batch_size or momentum")
    if settings.schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {settings.schedule!r}")
    if settings.schedule != "constant" and isinstance(lr, str) and settings.batch_size is None:
        raise ValueError(f"schedule {settings.schedule!r} applies to a fixed numeric lr (or to mini-batches), not lr={lr!r}")
    if settings.max_epochs < 1:
        raise ValueError(f"max_epochs must be at least 1, got {settings.max_epochs}")
    if not (settings.tol >= 0):
        raise ValueError(f"tol must be >= 0, got {settings.tol}")
    if settings.patience is not None and settings.patience < 1:
        raise ValueError(f"patience must be a positive integer, got {settings.patience}")
    if not (0 < settings.armijo <= 0.5):
        raise ValueError(f"armijo must be in (0, 0.5], got {settings.armijo}")
    if not (settings.growth >= 1):
        raise ValueError(f"growth must be >= 1, got {settings.growth}")
    if not (0 < settings.shrink < 1):
        raise ValueError(f"shrink must be in (0, 1), got {settings.shrink}")


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
    stop_reason: str  # converged | max_epochs | early_stopped | precision | interrupted | separable
    stop_message: str
    n_epochs: int
    best_epoch: int
    lipschitz: float
    history: dict = field(default_factory=dict)
    halvings: list = field(default_factory=list)  # (epoch, new step) for each divergence-guard halving
    restarts: int = 0
    step_sizes: dict = field(default_factory=dict)


@dataclass
class Checkpoint:
    """Where a full-batch run stood after an epoch: enough to continue it (momentum restarts)."""

    W: np.ndarray
    b: np.ndarray
    epoch: int
    last_step: float
    g0: float  # the first epoch's max |gradient|, which --tol is relative to
    history: dict
    restarts: int = 0
    halvings: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    best_val: float = math.inf  # early stopping's state: the best validation loss, its epoch and weights
    best_epoch: int = 0
    best_W: np.ndarray | None = None
    best_b: np.ndarray | None = None


class TrainingDiverged(RuntimeError):
    """A fixed step kept making the objective non-finite or larger, even after halving."""

    def __init__(self, message: str, result: TrainResult):
        super().__init__(message)
        self.result = result


def _max_abs(dW: np.ndarray, db: np.ndarray) -> float:
    return float(max(np.max(np.abs(dW)), np.max(np.abs(db))))


def _schedule_factor(schedule: str, epoch: int, max_epochs: int) -> float:
    """Multiplier of a fixed step at 1-based ``epoch``."""
    if schedule == "inverse-sqrt":
        return 1.0 / math.sqrt(epoch)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max_epochs))
    return 1.0


class _Validation:
    """Loss and accuracy of held-out rows at given weights (no penalty: the data term only)."""

    def __init__(self, engine: MemoryEngine):
        self.engine = engine

    def __call__(self, W, b) -> tuple[float, float]:
        held_out = self.engine.evaluate(W, b, 0.0, gradient=False, count=True)
        return held_out.value, held_out.n_correct / self.engine.n_weighted


def train_softmax(
    X,
    y: np.ndarray,
    n_classes: int,
    *,
    l2: float = 0.0,
    sample_weight: np.ndarray | None = None,
    settings: OptimizerSettings = OptimizerSettings(),
    validation: tuple | None = None,
    callback=None,
    should_stop=None,
    standardization=None,
) -> TrainResult:
    """Minimize J from W = 0, b = 0. X (N, D) dense or CSR, y (N,) class indices in [0, K).

    ``standardization=(mean, scale)`` trains on (X - mean) / scale (and the same for the
    validation rows) without forming it; full batches only.

    ``validation`` = (X_val, y_val) adds held-out loss and accuracy to the history and
    enables early stopping (``settings.patience``). ``callback(EpochRecord)`` runs after
    each epoch; ``should_stop()`` returning True ends training after the current epoch
    (stop reason ``interrupted``). Raises :class:`TrainingDiverged` after
    ``settings.max_halvings`` halvings of a fixed step.
    """
    validate_settings(settings)
    has_validation = validation is not None and len(validation[1])
    if standardization is not None and settings.batch_size is not None:
        raise ValueError("standardization folded into the weights needs full batches; standardize X for batch_size")
    # Mini-batch SGD computes its steps outside the engine, so no pool: BLAS keeps its threads.
    engine = MemoryEngine(X, y, sample_weight, n_classes=n_classes, standardization=standardization,
                          threads=1 if settings.batch_size is not None else None)
    validation_engine = (MemoryEngine(*validation[:2], n_classes=n_classes, standardization=standardization)
                         if has_validation else None)
    minibatch = (X, y, sample_weight) if settings.batch_size is not None else None
    return train_on_engine(engine, n_classes, l2=l2, settings=settings, validation_engine=validation_engine,
                           callback=callback, should_stop=should_stop, minibatch_rows=minibatch)


def train_on_engine(engine, n_classes: int, *, l2: float = 0.0, settings: OptimizerSettings = OptimizerSettings(),
                    validation_engine=None, callback=None, should_stop=None, minibatch_rows=None,
                    checkpoint=None, resume: Checkpoint | None = None) -> TrainResult:
    """:func:`train_softmax` over any engine (see :mod:`softreg.model.engine`).

    The engine supplies n_features, dtype, ``lipschitz(l2)`` and ``evaluate(W, b, l2, ...)``
    and is entered as a context manager for the whole run. Mini-batch SGD needs the rows
    themselves: ``minibatch_rows`` = (X, y, sample_weight).

    Full batches only: ``checkpoint(Checkpoint)`` is called after every epoch, and
    ``resume=Checkpoint`` continues a run from one (its weights, step, history and epoch
    count; momentum restarts from those weights, as after an adaptive restart).
    """
    validate_settings(settings)
    if settings.batch_size is not None and minibatch_rows is None:
        raise ValueError("batch_size (mini-batch SGD) needs the rows in memory; this engine runs full batches only")
    if settings.batch_size is not None and (checkpoint is not None or resume is not None):
        raise ValueError("checkpoints and resume are for full-batch runs")
    W = np.zeros((engine.n_features, n_classes), dtype=engine.dtype)
    b = np.zeros(n_classes, dtype=engine.dtype)
    # A too-large fixed step can overflow the logits; the loops test every objective for
    # finiteness and halve the step, so numpy's warnings about it would only be noise.
    with np.errstate(over="ignore", invalid="ignore"), ExitStack() as stack:
        stack.enter_context(engine)
        lipschitz = engine.lipschitz(l2)
        validate = _Validation(stack.enter_context(validation_engine)) if validation_engine is not None else None
        if settings.batch_size is None:
            return _full_batch(engine, W, b, l2, settings, lipschitz, validate, callback, should_stop,
                               checkpoint=checkpoint, resume=resume)
        return _minibatch(engine, *minibatch_rows[:2], W, b, l2, minibatch_rows[2], settings, lipschitz, validate,
                          callback, should_stop)


class _History:
    """Per-epoch records, early stopping and the best weights seen on validation."""

    def __init__(self, settings: OptimizerSettings, validate, callback):
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


def _full_batch(engine, W, b, l2, settings, lipschitz, validate, callback, should_stop, *, checkpoint=None,
                resume: Checkpoint | None = None) -> TrainResult:
    """Gradient steps on the full batch; every objective comes from ``engine.evaluate``.

    Without momentum every trial point gets its objective and gradient from one fused pass
    (a backtracking retry is accepted more often than not, so computing its gradient at once
    saves a pass). With Nesterov momentum a trial x+ = y - t g(y) needs only J(x+); the
    gradient is taken at the extrapolated y+ = x+ + beta (x+ - x), one fused pass.
    """
    floor = 1.0 / lipschitz
    rule = settings.lr
    nesterov = settings.momentum == "nesterov"
    fixed_base = float(rule) if not isinstance(rule, str) else None
    check_separable = l2 == 0  # with l2 > 0, J always has a minimizer

    def fused(W_, b_, count=False):
        return engine.evaluate(W_, b_, l2, gradient=True, count=count)

    # x: the iterate; y: where the next gradient step starts (y = x without momentum).
    if resume is not None:
        W, b = resume.W.astype(W.dtype), resume.b.astype(b.dtype)
    at_x = fused(W, b)
    f_x = at_x.value
    W_y, b_y, f_y, dW, db = W, b, f_x, at_x.dW, at_x.db
    g0 = _max_abs(dW, db)
    history = _History(settings, validate, callback)
    halvings: list[tuple[int, float]] = []
    restarts = 0
    momentum_k = 0
    last_step = floor
    accepted_steps: list[float] = []
    stop_reason, stop_message = "max_epochs", ""
    first_epoch = 1
    if resume is None:
        history.record(0, W, b, f_x, g0, 0.0)
    else:
        history.columns = {key: list(values) for key, values in resume.history.items()}
        g0, last_step, restarts = resume.g0, resume.last_step, resume.restarts
        halvings, accepted_steps = [tuple(h) for h in resume.halvings], list(resume.steps)
        history.best_val, history.best_epoch = resume.best_val, resume.best_epoch
        if resume.best_W is not None:
            history.best_weights = (resume.best_W.astype(W.dtype), resume.best_b.astype(b.dtype))
        if fixed_base is not None:
            fixed_base /= 2.0 ** len(halvings)  # the step the run had halved to
        first_epoch = resume.epoch + 1
    epoch = first_epoch - 1
    grad_norm = _max_abs(dW, db)

    if g0 == 0.0 or grad_norm == 0.0:  # already optimal (for example, balanced classes and no signal)
        return _result(W, b, "converged", "", epoch, history, lipschitz, halvings, restarts, accepted_steps,
                       grad_norm=grad_norm, g0=g0 or 1.0, tol=settings.tol)
    for epoch in range(first_epoch, settings.max_epochs + 1):
        sq_norm = float(np.vdot(dW, dW) + np.vdot(db, db))
        if fixed_base is not None:
            t = fixed_base * _schedule_factor(settings.schedule, epoch, settings.max_epochs)
        elif rule == "bound":
            t = floor
        else:
            t = max(last_step * settings.growth, floor)
        while True:
            W_new, b_new = W_y - t * dW, b_y - t * db
            trial = engine.evaluate(W_new, b_new, l2, gradient=not nesterov, count=check_separable)
            f_new = trial.value
            sufficient = f_new <= f_y - settings.armijo * t * sq_norm
            if rule == "auto" and not sufficient and t > floor:
                t = max(t * settings.shrink, floor)  # backtrack, never below 1/L
                continue
            # The monotonicity test is against J(x), the last accepted point.
            slack = 0.0 if fixed_base is None else 1e-12 * max(abs(f_x), 1.0)
            if math.isfinite(f_new) and f_new <= f_x + slack:
                break
            if nesterov and momentum_k > 0:
                # Adaptive restart: discard the step, restart momentum from x.
                restarts += 1
                momentum_k = 0
                at_x = fused(W, b)
                W_y, b_y, f_y, dW, db = W, b, f_x, at_x.dW, at_x.db
                sq_norm = float(np.vdot(dW, dW) + np.vdot(db, db))
                if fixed_base is None and rule == "auto":
                    t = max(last_step, floor)
                continue
            if fixed_base is None:
                # 1/L guarantees descent in exact arithmetic: a rise here is rounding noise.
                stop_reason = "precision"
                break
            fixed_base /= 2.0
            halvings.append((epoch, fixed_base))
            if len(halvings) > settings.max_halvings:
                result = _result(W, b, "diverged", "", epoch - 1, history, lipschitz, halvings, restarts, accepted_steps)
                raise TrainingDiverged(
                    f"the fixed step kept making the objective non-finite or larger: halved "
                    f"{settings.max_halvings} times down to {fixed_base:.3g} by epoch {epoch}. "
                    "Use --lr auto (backtracking, never diverges) or a much smaller --lr.",
                    result,
                )
            t = fixed_base * _schedule_factor(settings.schedule, epoch, settings.max_epochs)
        if stop_reason == "precision":
            epoch -= 1
            break
        accepted_steps.append(t)
        last_step = t
        if nesterov:
            momentum_k += 1
            beta = momentum_k / (momentum_k + 3.0)
            W_y, b_y = W_new + beta * (W_new - W), b_new + beta * (b_new - b)
            at_y = fused(W_y, b_y)
            f_y, dW, db = at_y.value, at_y.dW, at_y.db
        else:
            W_y, b_y, f_y, dW, db = W_new, b_new, f_new, trial.dW, trial.db
        W, b, f_x = W_new, b_new, f_new
        grad_norm = _max_abs(dW, db)
        early = history.record(epoch, W, b, f_x, grad_norm, t)
        if checkpoint is not None:
            best_W, best_b = history.best_weights if history.best_weights is not None else (None, None)
            checkpoint(Checkpoint(W, b, epoch, t, g0, history.columns, restarts, list(halvings), list(accepted_steps),
                                  history.best_val, history.best_epoch, best_W, best_b))
        reason = _stop_check(grad_norm, g0, settings.tol, early, should_stop, check_separable and trial.separates)
        if reason is not None:
            stop_reason = reason
            break
    return _result(W, b, stop_reason, stop_message, epoch, history, lipschitz, halvings, restarts, accepted_steps,
                   grad_norm=grad_norm, g0=g0, tol=settings.tol)


def _minibatch(engine, X, y, W, b, l2, sample_weight, settings, lipschitz, validate, callback, should_stop) -> TrainResult:
    n_samples = X.shape[0]
    rng = np.random.default_rng(settings.seed)
    base = 1.0 / lipschitz if isinstance(settings.lr, str) else float(settings.lr)
    check_separable = l2 == 0
    at_x = engine.evaluate(W, b, l2, gradient=True)
    f_x, dW, db = at_x.value, at_x.dW, at_x.db
    g0 = grad_norm = _max_abs(dW, db)
    history = _History(settings, validate, callback)
    history.record(0, W, b, f_x, g0, 0.0)
    halvings: list[tuple[int, float]] = []
    steps: list[float] = []
    stop_reason = "max_epochs"
    epoch = 0
    for epoch in range(1, settings.max_epochs + 1):
        while True:
            t = base * _schedule_factor(settings.schedule, epoch, settings.max_epochs)
            W_new, b_new = W.copy(), b.copy()
            order = rng.permutation(n_samples)
            for start in range(0, n_samples, settings.batch_size):
                rows = np.sort(order[start : start + settings.batch_size])
                weights = None if sample_weight is None else sample_weight[rows]
                if weights is not None and weights.sum() <= 0:
                    continue
                _, gW, gb = loss_and_gradient(W_new, b_new, X[rows], y[rows], l2, weights)
                W_new -= t * gW
                b_new -= t * gb
            at_new = engine.evaluate(W_new, b_new, l2, gradient=True, count=check_separable)
            f_new, dW_new, db_new = at_new.value, at_new.dW, at_new.db
            # Every epoch is guarded: stochastic steps can overshoot with any step rule.
            if math.isfinite(f_new) and f_new <= f_x + 1e-12 * max(abs(f_x), 1.0):
                break
            base /= 2.0
            halvings.append((epoch, base))
            if len(halvings) > settings.max_halvings:
                result = _result(W, b, "diverged", "", epoch - 1, history, lipschitz, halvings, 0, steps)
                raise TrainingDiverged(
                    f"mini-batch SGD kept making the objective non-finite or larger: the step was halved "
                    f"{settings.max_halvings} times down to {base:.3g} by epoch {epoch}. Use a smaller --lr.",
                    result,
                )
        W, b, f_x, dW, db = W_new, b_new, f_new, dW_new, db_new
        steps.append(t)
        grad_norm = _max_abs(dW, db)
        separable = check_separable and at_new.separates
        early = history.record(epoch, W, b, f_x, grad_norm, t)
        reason = _stop_check(grad_norm, g0, settings.tol, early, should_stop, separable)
        if reason is not None:
            stop_reason = reason
            break
    return _result(W, b, stop_reason, "", epoch, history, lipschitz, halvings, 0, steps,
                   grad_norm=grad_norm, g0=g0, tol=settings.tol)


def _stop_check(grad_norm: float, g0: float, tol: float, early: bool, should_stop, separable: bool = False) -> str | None:
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


def _result(W, b, stop_reason, stop_message, epoch, history: _History, lipschitz, halvings, restarts, steps,
            *, grad_norm=None, g0=None, tol=None) -> TrainResult:
    best_epoch = epoch
    if stop_reason in ("early_stopped", "interrupted") and history.best_weights is not None:
        W, b = history.best_weights
        best_epoch = history.best_epoch
    elif history.validate is not None and history.best_weights is not None:
        best_epoch = history.best_epoch
    step_sizes = {"bound": 1.0 / lipschitz}
    if steps:
        step_sizes.update(first=steps[0], last=steps[-1], min=min(steps), max=max(steps), mean=float(np.mean(steps)))
    if not stop_message:
        stop_message = _stop_message(stop_reason, epoch, grad_norm, g0, tol, history, best_epoch)
    return TrainResult(
        W=W, b=b, stop_reason=stop_reason, stop_message=stop_message, n_epochs=epoch, best_epoch=best_epoch,
        lipschitz=lipschitz, history=history.columns, halvings=halvings, restarts=restarts, step_sizes=step_sizes,
    )


def _stop_message(reason, epoch, grad_norm, g0, tol, history: _History, best_epoch) -> str:
    relative = (grad_norm / g0) if g0 else 0.0
    if reason == "converged":
        return (f"converged at epoch {epoch}: max |gradient| = {grad_norm:.3g}, "
                f"{relative:.2g} of the first epoch's (tol {tol:g})")
    if reason == "precision":
        verdict = "converged" if relative <= tol else "stopped"
        return (f"{verdict} at epoch {epoch}: the objective cannot decrease further in floating point "
                f"(max |gradient| = {grad_norm:.3g}, {relative:.2g} of the first epoch's, tol {tol:g})")
    if reason == "max_epochs":
        return (f"reached --max-epochs ({epoch}) without converging: max |gradient| = {grad_norm:.3g}, "
                f"{relative:.2g} of the first epoch's, above tol {tol:g}. Raise --max-epochs or loosen --tol "
                "(full-batch runs without momentum also converge faster with --momentum nesterov).")
    if reason == "early_stopped":
        return (f"stopped early at epoch {epoch}: validation loss did not improve for {epoch - best_epoch} "
                f"epochs (best {history.best_val:.4g} at epoch {best_epoch}; those weights were kept)")
    if reason == "interrupted":
        if history.best_weights is not None:
            return (f"interrupted at epoch {epoch}; kept the weights of epoch {best_epoch}, the best validation loss "
                    f"so far ({history.best_val:.4g})")
        return f"interrupted at epoch {epoch}; kept the weights of that epoch (the lowest objective so far)"
    if reason == "separable":
        return (f"stopped at epoch {epoch}: the weights now classify every training row correctly, so the data is "
                "linearly separable and with l2 = 0 the loss only approaches 0 as the weights grow without bound; "
                "the unregularized optimum does not exist. Set --l2 above 0 (for example 1e-4) to get a finite one.")
    return reason
