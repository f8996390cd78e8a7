"""Mini-batch SGD over an engine: rows reshuffled each epoch from the seed, each batch's
gradient from the engine's own pass over those rows (``engine.objective_of_rows``); with an L1
term each step is followed by its proximal map (proximal SGD)."""

from __future__ import annotations

import math

import numpy as np

from softreg.model.solve.result import History, TrainingDiverged, TrainResult, make_result, max_abs, stop_check
from softreg.model.solve.settings import schedule_factor


def _epoch_of_batches(engine, W, b, l2: float, t: float, batch_size: int, rng,
                      penalty=None) -> tuple[np.ndarray, np.ndarray]:
    """One pass of steps over batches of a fresh permutation of the rows, from (W, b)."""
    W_new, b_new = W.copy(), b.copy()
    order = rng.permutation(engine.n_samples)
    for start in range(0, engine.n_samples, batch_size):
        rows = np.sort(order[start : start + batch_size])
        batch = engine.objective_of_rows(W_new, b_new, l2, rows)
        if batch is None:  # every row of the batch has weight 0
            continue
        W_new -= t * batch.dW
        b_new -= t * batch.db
        if penalty is not None:
            W_new = penalty.prox(W_new, t)
    return W_new, b_new


def _measures(penalty, lipschitz: float):
    """F from J, and the convergence measure (max |gradient|, or of the gradient mapping at 1/L)."""
    if penalty is None:
        return (lambda W, value: value), (lambda W, dW, db: max_abs(dW, db))
    return ((lambda W, value: value + penalty.value(W)),
            (lambda W, dW, db: max_abs(penalty.gradient_mapping(W, dW, 1.0 / lipschitz), db)))


def minibatch(engine, W, b, l2, settings, lipschitz, history: History, should_stop, penalty=None) -> TrainResult:
    """SGD with step 1/L (``lr`` a rule) or ``lr``, scheduled; every epoch is guarded: stochastic
    steps can overshoot with any step rule, so an epoch that raises the full objective is redone
    with half the step."""
    rng = np.random.default_rng(settings.seed)
    base = 1.0 / lipschitz if isinstance(settings.lr, str) else float(settings.lr)
    check_separable = not np.any(l2) and penalty is None
    composite, measure = _measures(penalty, lipschitz)
    at_x = engine.objective(W, b, l2, gradient=True)
    f_x, dW, db = composite(W, at_x.value), at_x.dW, at_x.db
    g0, grad_norm = max_abs(dW, db), measure(W, dW, db)  # tol relative to the smooth gradient, as full batch
    history.record(0, W, b, f_x, g0, 0.0)
    halvings: list[tuple[int, float]] = []
    steps: list[float] = []
    epoch = 0
    for epoch in range(1, settings.max_epochs + 1):
        while True:
            t = base * schedule_factor(settings.schedule, epoch, settings.max_epochs)
            W_new, b_new = _epoch_of_batches(engine, W, b, l2, t, settings.batch_size, rng, penalty)
            at_new = engine.objective(W_new, b_new, l2, gradient=True, count=check_separable)
            F_new = composite(W_new, at_new.value)
            if math.isfinite(F_new) and F_new <= f_x + 1e-12 * max(abs(f_x), 1.0):
                break
            base /= 2.0
            halvings.append((epoch, base))
            if len(halvings) > settings.max_halvings:
                result = make_result(W, b, "diverged", epoch - 1, history, lipschitz, halvings, 0, steps)
                raise TrainingDiverged(
                    f"mini-batch SGD kept making the objective non-finite or larger: the step was halved "
                    f"{settings.max_halvings} times down to {base:.3g} by epoch {epoch}. Use a smaller lr.",
                    result,
                )
        W, b, f_x, dW, db = W_new, b_new, F_new, at_new.dW, at_new.db
        steps.append(t)
        grad_norm = measure(W, dW, db)
        early = history.record(epoch, W, b, f_x, grad_norm, t)
        reason = stop_check(grad_norm, g0, settings.tol, early, should_stop, check_separable and at_new.separates)
        if reason is not None:
            return make_result(W, b, reason, epoch, history, lipschitz, halvings, 0, steps,
                               grad_norm=grad_norm, g0=g0, tol=settings.tol, proximal=penalty is not None)
    return make_result(W, b, "max_epochs", epoch, history, lipschitz, halvings, 0, steps,
                       grad_norm=grad_norm, g0=g0, tol=settings.tol, proximal=penalty is not None)
