"""Full-batch gradient descent over an engine, as small named steps.

    (W, b) <- (W, b) - t (dJ/dW, dJ/db)

and with an L1 term h(W) (:mod:`softreg.model.math.penalty`) the proximal gradient step

    W <- prox_{t h}(W - t dJ/dW),   b <- b - t dJ/db

(J the smooth part; the objective F = J + h). The same step rules serve both: the sufficient
decrease J(x+) <= J(y) + <g, x+ - y> + (1 - c)/t ||x+ - y||^2 is Armijo's J(y) - c t ||g||^2 when
h = 0, and with the prox's optimality condition it gives F(x+) <= F(y) - c/t ||x+ - y||^2; the 1/L
floor satisfies it (the descent lemma) for any c <= 1/2. Nesterov's extrapolation with restarts
on a rise of F is then FISTA.

The step rule (:meth:`FullBatchDescent.first_trial`), Armijo backtracking
(:meth:`~FullBatchDescent.line_search`), Nesterov's extrapolation and its adaptive restart
(:meth:`~FullBatchDescent.advance`, :meth:`~FullBatchDescent.restart_momentum`) and the
divergence guard of a fixed step (:meth:`~FullBatchDescent.halve`) are each one method; every
objective comes from ``engine.objective``.

Near the optimum the decrease a step makes, about t ||g||^2 / 2, falls below what float64 can
measure in J (about eps |J|): a comparison of two objective values is then rounding noise, while
gradients are still exact to their own (much smaller) rounding. From the first step at 1/L whose
measured rise is within rounding (:meth:`~FullBatchDescent.within_rounding`) the run is in that
regime: the step 1/L needs no test (the descent lemma), and a longer step is tested on gradients
instead of values (:meth:`~FullBatchDescent.curvature_test`, the secant form of the same
sufficient decrease, as Hager and Zhang's approximate Wolfe conditions do), and Nesterov's
momentum restarts on the gradient (O'Donoghue and Candes) instead of on a rise of F. The run
stops on the gradient as before; only when the gradient has not reached a new low for
``STALL_EPOCHS`` epochs in that regime (it is at its own rounding floor) does it end with the
reason "precision".

Without momentum every trial point gets its objective and gradient from one fused pass (a
backtracking retry is accepted more often than not, so computing its gradient at once saves a
pass). With Nesterov momentum a trial x+ = y - t g(y) needs only J(x+); the gradient is taken at
the extrapolated y+ = x+ + beta (x+ - x), one fused pass.
"""

from __future__ import annotations

import math

import numpy as np

from softreg.model.solve.result import (
    Checkpoint,
    History,
    TrainingDiverged,
    TrainResult,
    make_result,
    max_abs,
    stop_check,
)
from softreg.model.solve.settings import schedule_factor, uses_nesterov

# A rise of J within this many units of rounding, eps(dtype) max(|J|, 1), is noise (a sum of N
# terms each rounded, plus the cancellation in the softmax), not an ascent.
ROUNDING_UNITS = 1000
# Steps at 1/L taken in the rounding regime without a new lowest gradient before "precision".
STALL_EPOCHS = 100


class FullBatchDescent:
    """The state of one full-batch run: x (the iterate) and y (where the next step starts; y = x
    without momentum), the step sizes taken, the momentum counter and the guard's halvings."""

    def __init__(self, engine, l2: float, settings, lipschitz: float, history: History, penalty=None):
        self.engine, self.l2, self.settings, self.history = engine, l2, settings, history
        self.penalty = penalty  # the L1 term (an L1Penalty), or None: J alone
        self.lipschitz, self.floor = lipschitz, 1.0 / lipschitz
        self.rule = settings.lr
        self.nesterov = uses_nesterov(settings)
        self.fixed_base = float(self.rule) if not isinstance(self.rule, str) else None
        self.check_separable = not np.any(l2) and penalty is None  # with a penalty, F always has a minimizer
        self.halvings: list[tuple[int, float]] = []
        self.steps: list[float] = []
        self.restarts = self.momentum_k = 0
        self.last_step = self.floor
        self.rounding = False  # J's decrease is below what the dtype can measure: steps are tested on gradients
        self.noise_unit = float(np.finfo(engine.dtype).eps) * ROUNDING_UNITS

    # ------------------------------------------------------------------ the point
    def start_at(self, W, b) -> None:
        """x = y = (W, b), with J and its gradient there."""
        at_x = self.engine.objective(W, b, self.l2, gradient=True)
        self.W, self.b, self.f_x = W, b, self.composite(W, at_x.value)
        self.W_y, self.b_y, self.f_y, self.dW, self.db = W, b, at_x.value, at_x.dW, at_x.db

    def resume_from(self, checkpoint: Checkpoint) -> None:
        """Continue a run from its checkpoint where it stood: x, and with momentum y and the
        counter, so that the resumed run takes the uninterrupted run's steps."""
        self.start_at(checkpoint.W.astype(self.engine.dtype), checkpoint.b.astype(self.engine.dtype))
        if self.nesterov and checkpoint.W_y is not None:
            self.W_y, self.b_y = checkpoint.W_y.astype(self.engine.dtype), checkpoint.b_y.astype(self.engine.dtype)
            at_y = self.engine.objective(self.W_y, self.b_y, self.l2, gradient=True)
            self.f_y, self.dW, self.db = at_y.value, at_y.dW, at_y.db
            self.momentum_k = checkpoint.momentum_k
        self.rounding = checkpoint.rounding
        self.last_step, self.restarts = checkpoint.last_step, checkpoint.restarts
        self.halvings, self.steps = [tuple(h) for h in checkpoint.halvings], list(checkpoint.steps)
        if self.fixed_base is not None:
            self.fixed_base /= 2.0 ** len(self.halvings)  # the step the run had halved to
        self.history.restore(checkpoint, self.engine.dtype)

    def composite(self, W, smooth_value: float) -> float:
        """F = J + h at W, from J there."""
        return smooth_value if self.penalty is None else smooth_value + self.penalty.value(W)

    @property
    def grad_norm(self) -> float:
        """max |dJ| at y, or with an L1 term max |gradient mapping| at y (step 1/L): 0 at the optimum."""
        if self.penalty is None:
            return max_abs(self.dW, self.db)
        return max_abs(self.penalty.gradient_mapping(self.W_y, self.dW, self.floor), self.db)

    def _sq_norm(self) -> float:
        return float(np.vdot(self.dW, self.dW) + np.vdot(self.db, self.db))

    # ------------------------------------------------------------------ one epoch
    def first_trial(self, epoch: int) -> float:
        """The step rule: a fixed (scheduled) step, 1/L, or growth x the last accepted step, never below 1/L."""
        if self.fixed_base is not None:
            return self.fixed_base * schedule_factor(self.settings.schedule, epoch, self.settings.max_epochs)
        if self.rule == "bound":
            return self.floor
        return max(self.last_step * self.settings.growth, self.floor)

    def sufficient_decrease(self, t: float, W_new, b_new, f_new: float, sq_norm: float) -> bool:
        """Armijo's test J(x+) <= J(y) - c t ||g||^2, or its proximal form (the module's docstring)."""
        c = self.settings.armijo
        if self.penalty is None:
            return f_new <= self.f_y - c * t * sq_norm
        dW, db = W_new - self.W_y, b_new - self.b_y
        model = float(np.vdot(self.dW, dW) + np.vdot(self.db, db)) + (1 - c) / t * float(np.vdot(dW, dW) + np.vdot(db, db))
        return f_new <= self.f_y + model

    def curvature_test(self, t: float, W_new, b_new, trial) -> bool:
        """The sufficient decrease in the rounding regime, from gradients: with J(x+) - J(y) =
        1/2 (g+ + g).d (exact for a quadratic; d = x+ - y), the test of the module's docstring
        becomes (g+ - g).d <= 2 (1 - c)/t ||d||^2, a bound on the curvature along the step."""
        dW, db = W_new - self.W_y, b_new - self.b_y
        curvature = float(np.vdot(trial.dW - self.dW, dW) + np.vdot(trial.db - self.db, db))
        return curvature <= 2 * (1 - self.settings.armijo) / t * float(np.vdot(dW, dW) + np.vdot(db, db))

    def line_search(self, epoch: int):
        """Trial steps from y until one is accepted: (t, W_new, b_new, trial evaluation, F there),
        or None when F rose at the guaranteed 1/L by more than rounding."""
        t = self.first_trial(epoch)
        sq_norm = self._sq_norm()
        while True:
            W_new, b_new = self.W_y - t * self.dW, self.b_y - t * self.db
            if self.penalty is not None:
                W_new = self.penalty.prox(W_new, t)
            trial = self.engine.objective(W_new, b_new, self.l2, gradient=self.rounding or not self.nesterov,
                                         count=self.check_separable)
            f_new = trial.value
            F_new = self.composite(W_new, f_new)
            searching = self.rule == "auto" and t > self.floor
            if self.rounding and self.within_rounding(F_new):
                if searching and not self.curvature_test(t, W_new, b_new, trial):
                    t = max(t * self.settings.shrink, self.floor)
                    continue
                return t, W_new, b_new, trial, F_new
            if searching and not self.sufficient_decrease(t, W_new, b_new, f_new, sq_norm):
                t = max(t * self.settings.shrink, self.floor)  # backtrack, never below 1/L
                continue
            # The monotonicity test is against F(x), the last accepted point.
            slack = 0.0 if self.fixed_base is None else 1e-12 * max(abs(self.f_x), 1.0)
            if math.isfinite(F_new) and F_new <= self.f_x + slack:
                return t, W_new, b_new, trial, F_new
            if self.nesterov and self.momentum_k > 0:
                self.restart_momentum()
                sq_norm = self._sq_norm()
                if self.fixed_base is None and self.rule == "auto":
                    t = max(self.last_step, self.floor)
                continue
            if self.fixed_base is None:
                # 1/L guarantees descent in exact arithmetic: a rise within rounding is noise,
                # so take the step and let the gradient decide from now on; a larger rise ends the run.
                if t <= self.floor and self.within_rounding(F_new):
                    self.rounding = True
                    return t, W_new, b_new, trial, F_new
                return None
            t = self.halve(epoch)

    def within_rounding(self, F_new: float) -> bool:
        """F(x+) - F(x) is no larger than the rounding error of computing F (the module's docstring)."""
        return math.isfinite(F_new) and F_new - self.f_x <= self.noise_unit * max(abs(self.f_x), 1.0)

    def restart_momentum(self) -> None:
        """Adaptive restart: discard the step, restart momentum from x."""
        self.restarts += 1
        self.momentum_k = 0
        self.start_at(self.W, self.b)

    def halve(self, epoch: int) -> float:
        """The divergence guard: halve a fixed step that made J non-finite or larger; give up
        after ``max_halvings``."""
        self.fixed_base /= 2.0
        self.halvings.append((epoch, self.fixed_base))
        if len(self.halvings) > self.settings.max_halvings:
            result = self.result("diverged", epoch - 1)
            raise TrainingDiverged(
                f"the fixed step kept making the objective non-finite or larger: halved "
                f"{self.settings.max_halvings} times down to {self.fixed_base:.3g} by epoch {epoch}. "
                "Use lr 'auto' (backtracking, never diverges) or a much smaller lr.",
                result,
            )
        return self.fixed_base * schedule_factor(self.settings.schedule, epoch, self.settings.max_epochs)

    def advance(self, t: float, W_new, b_new, trial, F_new: float) -> None:
        """Accept the step to x+ and set y+: x+ itself, or Nesterov's x+ + beta_k (x+ - x) with
        beta_k = k / (k + 3) and the gradient taken there."""
        self.steps.append(t)
        self.last_step = t
        if self.nesterov and self.rounding and self.momentum_k > 0 and self.uphill(W_new, b_new):
            self.restarts += 1  # the gradient restart: the step went against g(y), momentum is stale
            self.momentum_k = 0
            self.W_y, self.b_y, self.f_y, self.dW, self.db = W_new, b_new, trial.value, trial.dW, trial.db
        elif self.nesterov:
            self.momentum_k += 1
            beta = self.momentum_k / (self.momentum_k + 3.0)
            self.W_y, self.b_y = W_new + beta * (W_new - self.W), b_new + beta * (b_new - self.b)
            at_y = self.engine.objective(self.W_y, self.b_y, self.l2, gradient=True)
            self.f_y, self.dW, self.db = at_y.value, at_y.dW, at_y.db
        else:
            self.W_y, self.b_y, self.f_y, self.dW, self.db = W_new, b_new, trial.value, trial.dW, trial.db
        self.W, self.b, self.f_x = W_new, b_new, F_new

    def uphill(self, W_new, b_new) -> bool:
        """g(y).(x+ - x) > 0: the momentum carries the iterate where the gradient rises."""
        return float(np.vdot(self.dW, W_new - self.W) + np.vdot(self.db, b_new - self.b)) > 0

    def checkpoint(self, epoch: int, g0: float) -> Checkpoint:
        best_W, best_b = self.history.best_weights if self.history.best_weights is not None else (None, None)
        moving = self.nesterov and self.momentum_k > 0
        return Checkpoint(self.W, self.b, epoch, self.last_step, g0, self.history.columns, self.restarts,
                          list(self.halvings), list(self.steps), self.history.best_val, self.history.best_epoch,
                          best_W, best_b, self.momentum_k if moving else 0, self.W_y if moving else None,
                          self.b_y if moving else None, self.rounding)

    def result(self, reason: str, epoch: int, g0: float | None = None) -> TrainResult:
        return make_result(self.W, self.b, reason, epoch, self.history, self.lipschitz, self.halvings, self.restarts,
                           self.steps, grad_norm=self.grad_norm, g0=g0, tol=self.settings.tol,
                           proximal=self.penalty is not None)


def full_batch(engine, W, b, l2, settings, lipschitz, history: History, should_stop, *, checkpoint=None,
               resume: Checkpoint | None = None, g0: float | None = None, penalty=None,
               first_step: float | None = None) -> TrainResult:
    """Minimize J (+ ``penalty``, an L1Penalty) by full-batch steps from (W, b), or from
    ``resume``; ``checkpoint(Checkpoint)`` is called after every epoch. ``g0``: the gradient size
    the tolerance is relative to (default: the one at (W, b))."""
    descent = FullBatchDescent(engine, l2, settings, lipschitz, history, penalty)
    if first_step is not None:
        descent.last_step = max(first_step, descent.floor)
    if resume is None:
        descent.start_at(W, b)
        # tol is relative to the smooth gradient there (with an L1 term the gradient mapping
        # can be ~0 at the start, and a warm start's reference is the smooth one at 0 too).
        g0 = max_abs(descent.dW, descent.db) if g0 is None else g0
        history.record(0, W, b, descent.f_x, g0, 0.0)
        first_epoch = 1
    else:
        descent.resume_from(resume)
        g0, first_epoch = resume.g0, resume.epoch + 1
    epoch = first_epoch - 1
    if g0 == 0.0 or descent.grad_norm == 0.0:  # already optimal (say, balanced classes and no signal)
        return descent.result("converged", epoch, g0 or 1.0)
    lowest, stalled = math.inf, 0
    for epoch in range(first_epoch, settings.max_epochs + 1):
        accepted = descent.line_search(epoch)
        if accepted is None:
            return descent.result("precision", epoch - 1, g0)
        descent.advance(*accepted)
        if descent.rounding:  # the gradient, not J, says whether steps still help
            lowest, stalled = (descent.grad_norm, 0) if descent.grad_norm < lowest else (lowest, stalled + 1)
            if stalled >= STALL_EPOCHS:
                history.record(epoch, descent.W, descent.b, descent.f_x, descent.grad_norm, accepted[0])
                return descent.result("precision", epoch, g0)
        early = history.record(epoch, descent.W, descent.b, descent.f_x, descent.grad_norm, accepted[0])
        if checkpoint is not None:
            checkpoint(descent.checkpoint(epoch, g0))
        separable = descent.check_separable and accepted[3].separates
        reason = stop_check(descent.grad_norm, g0, settings.tol, early, should_stop, separable)
        if reason is not None:
            return descent.result(reason, epoch, g0)
    return descent.result("max_epochs", epoch, g0)
