"""Gradient descent on the objective of step 4 over an engine, with the derived gradient as the direction.

    J(W, b) = sum_i w_i L_i + (l2/2) ||W||_F^2,    (W, b) <- (W, b) - t (dJ/dW, dJ/db)

With ``l1 > 0`` the objective is F = J + l1 ||W||_1 (or l1 sum_j ||W_j,:||_2 with ``grouped``)
and each step is followed by the penalty's proximal map (:mod:`softreg.model.math.penalty`):
proximal gradient descent, the same loop with the same step rules; the bias is never penalized.

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
restart), so the objective stays monotone. ``batch_size`` switches to mini-batch SGD.

:func:`train_on_engine` is the one entry: every engine, full batch and mini-batch. The
objective and gradient come from the engine (:mod:`softreg.model.engines`); the loop never
touches X. Nothing here prints: progress reaches the caller through ``callback(record)``.
The loops and numpy are imported when a run starts: the CLI reads this package's vocabulary
(step rules, schedules) at start-up.
"""

from __future__ import annotations

from contextlib import ExitStack

from softreg.model.solve.settings import SCHEDULES, STEP_RULES, OptimizerSettings, validate_settings

_RESULTS = ("STOP_REASONS", "Checkpoint", "EpochRecord", "TrainingDiverged", "TrainResult")


def __getattr__(name: str):
    """The result types, imported on first use (they bring numpy)."""
    if name in _RESULTS:
        from softreg.model.solve import result

        return getattr(result, name)
    raise AttributeError(f"module 'softreg.model.solve' has no attribute {name!r}")

__all__ = ["SCHEDULES", "STEP_RULES", "STOP_REASONS", "Checkpoint", "EpochRecord", "OptimizerSettings",
           "TrainResult", "TrainingDiverged", "train_on_engine", "train_softmax", "validate_settings"]


def train_on_engine(engine, n_classes: int, *, l2=0.0, l1=0.0, grouped: bool = False,
                    settings: OptimizerSettings = OptimizerSettings(),
                    validation_engine=None, callback=None, should_stop=None, checkpoint=None,
                    resume=None, start=None, gradient_reference: float | None = None, first_step: float | None = None,
                    fit_intercept: bool = True):
    """Minimize J from W = 0, b = 0 (or from ``start=(W, b)``, a warm start) over the rows an
    engine serves (y: class indices in [0, K)).

    The engine is entered as a context manager for the whole run. ``validation_engine`` (say
    ``engine.sibling(validation_weights)``) adds held-out loss and accuracy to the history and
    enables early stopping (``settings.patience``). ``callback(EpochRecord)`` runs after each
    epoch; ``should_stop()`` returning True ends training after the current epoch (stop reason
    ``interrupted``). ``checkpoint(Checkpoint)`` is called after every full-batch epoch, and
    ``resume=Checkpoint`` continues a run from one (its weights, step, history and epoch count;
    momentum restarts from those weights, as after an adaptive restart). Raises
    :class:`TrainingDiverged` after ``settings.max_halvings`` halvings of a fixed step.
    
    ``gradient_reference`` is the max |gradient| that ``settings.tol`` is relative to (default:
    the first epoch's); a warm start along a penalty path passes the one at W = 0, b = 0, so
    that every point of the path is solved to the same accuracy as a cold start would be.
    ``first_step`` is where the step rule "auto" starts (default 1/L; never below it): a path
    passes the step its last solve ended with.
    ``l1 > 0`` adds the L1 term (``grouped``: the group lasso), solved by proximal steps.
    ``l2`` and ``l1`` may be (D,) strengths, one per feature (a penalty on raw coefficients
    while the engine serves standardized rows). ``fit_intercept=False`` keeps b where it starts.
    """
    import numpy as np

    from softreg.model.engines.base import FixedBias
    from softreg.model.math.penalty import penalty_or_none
    from softreg.model.solve.full_batch import full_batch
    from softreg.model.solve.minibatch import minibatch
    from softreg.model.solve.result import History, Validation

    validate_settings(settings)
    penalty = penalty_or_none(l1, grouped)
    if settings.batch_size is not None and not getattr(engine, "serves_minibatches", False):
        raise ValueError(f"batch_size (mini-batch SGD) needs rows in memory; engine {type(engine).__name__} runs "
                         "full batches only")
    if settings.batch_size is not None and (checkpoint is not None or resume is not None):
        raise ValueError("checkpoints and resume are for full-batch runs")
    if not fit_intercept:
        engine = FixedBias(engine)
    if start is None:
        W = np.zeros((engine.n_features, n_classes), dtype=engine.dtype)
        b = np.zeros(n_classes, dtype=engine.dtype)
    else:
        W, b = (np.array(part, dtype=engine.dtype) for part in start)
    # A too-large fixed step can overflow the logits; the loops test every objective for
    # finiteness and halve the step, so numpy's warnings about it would only be noise.
    with np.errstate(over="ignore", invalid="ignore"), ExitStack() as stack:
        stack.enter_context(engine)
        lipschitz = engine.lipschitz(l2)
        validate = Validation(stack.enter_context(validation_engine)) if validation_engine is not None else None
        history = History(settings, validate, callback)
        if settings.batch_size is None:
            return full_batch(engine, W, b, l2, settings, lipschitz, history, should_stop, checkpoint=checkpoint,
                              resume=resume, g0=gradient_reference, penalty=penalty, first_step=first_step)
        return minibatch(engine, W, b, l2, settings, lipschitz, history, should_stop, penalty)


def train_softmax(X, y: np.ndarray, n_classes: int, *, l2: float = 0.0, l1: float = 0.0, grouped: bool = False,
                  sample_weight: np.ndarray | None = None,
                  settings: OptimizerSettings = OptimizerSettings(), validation: tuple | None = None, callback=None,
                  should_stop=None, standardization=None):
    """:func:`train_on_engine` over a memory engine of X (N, D) dense or CSR, y (N,) class indices.

    ``standardization=(mean, scale)`` trains on (X - mean) / scale (and the same for the
    validation rows ``validation=(X_val, y_val)``) without forming it.
    """
    from softreg.model.engines import MemoryEngine

    # Mini-batch steps are many small passes: a pool costs more than it saves, BLAS keeps its threads.
    threads = 1 if settings.batch_size is not None else None
    engine = MemoryEngine(X, y, sample_weight, n_classes=n_classes, standardization=standardization, threads=threads)
    validation_engine = None
    if validation is not None and len(validation[1]):
        validation_engine = MemoryEngine(*validation[:2], n_classes=n_classes, standardization=standardization)
    return train_on_engine(engine, n_classes, l2=l2, l1=l1, grouped=grouped, settings=settings,
                           validation_engine=validation_engine,
                           callback=callback, should_stop=should_stop)
