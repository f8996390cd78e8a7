"""Choosing the penalty: k-fold cross-validation over a path of penalties, warm-started.

The path runs over a total strength lambda with a fixed mix ``l1_ratio`` = alpha, as glmnet's:
l1 = lambda alpha and l2 = lambda (1 - alpha) (alpha = 0: ridge, the L2 penalty alone; alpha = 1:
the lasso; ``grouped``: the L1 term is the group lasso).

For each fold, the training rows are the engine's rows with the held-out ones at weight 0, and
the held-out rows are a zero-copy view of the same blocks with the other weights (as validation
already is): no row is copied. Each fold is standardized on its own training rows (folded into
the weights), so no scaling is learned from the rows it is scored on. The penalties run from the
largest down, each solve starting from the previous solution (a warm start: near the next
optimum, so it takes a fraction of a cold start's epochs) and stopping at the same tolerance
relative to the gradient at W = 0 as a cold start would.

The score is the held-out log loss (a proper scoring rule: it rewards calibrated probabilities,
which accuracy does not see), its mean over folds and standard error (sd / sqrt(folds)); accuracy
is kept beside it, and with an L1 term the number of features in use. ``select="min"`` takes the
penalty of the least mean loss; ``"1se"``, glmnet's rule, the largest penalty whose mean is within
one standard error of that minimum.

The top of the default grid comes from the data, at the intercept-only model (W = 0, the
intercept at the log class priors), where the gradient is G0 = Xᵀ(P0 - Y)/N:
- with an L1 term, the least strength at which W = 0 stays optimal: max |G0| / alpha (the group
  lasso: the largest row norm of G0), as glmnet's lambda_max; the grid runs 4 decades down;
- for ridge (alpha = 0), where no strength gives W = 0 exactly: the minimizer for a large l2 is
  about -G0 / l2, so at l2 = 10 max_i |x_i G0| no row's logit moves by more than about 0.1, a model
  barely more than the priors; the grid runs 6 decades down.
When the least loss is at an edge, the path is extended past it (``max_extensions`` times at
most) and the result says so; a path is not extended above a top where every coefficient is
already 0 (an L1 path's default top), whose model is the intercept-only one.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from softreg.model.engines import MemoryEngine
from softreg.model.math.penalty import L1Penalty
from softreg.model.solve.result import Validation, max_abs
from softreg.model.solve.settings import OptimizerSettings

SELECTIONS = ("min", "1se")
LOWEST_STRENGTH = 1e-10  # below this the penalty no longer changes a float64 solution: extension stops
DECADES = {"ridge": 6.0, "l1": 4.0}  # the default grid's span below its top (see the module's docstring)
# Each solve of the path stops at this relative gradient (or settings.tol if looser): held-out
# losses then differ from the exact optima's by under 0.1% (digits, 10 folds: 0.10308 against
# 0.10316, the same choice) in 0.6x the time. The fit at the chosen penalty uses settings.tol.
PATH_TOL = 1e-4


def path_settings(settings: OptimizerSettings, path_tol: float | None = PATH_TOL) -> OptimizerSettings:
    """How the path's points are solved. Each is the optimum of its penalty, whatever reaches it,
    so every point is solved full batch with Armijo steps and Nesterov's momentum (the fastest
    warm-started solver here: digits, 10 folds, 20 values took 6.7 s against 16.3 s without
    momentum, with the same choice; mini-batch steps cannot reach an optimum to score), to the looser of ``tol`` and
    ``path_tol``. The caller's step rule, momentum and batch size are the final fit's."""
    tol = settings.tol if path_tol is None else max(settings.tol, path_tol)
    return replace(settings, lr="auto", momentum="nesterov", batch_size=None, schedule="constant", patience=None,
                   tol=tol)


@dataclass
class PenaltyPath:
    """The cross-validated path: per total strength (descending), the folds' held-out losses,
    their mean and standard error, the mean accuracy and features in use; the minimum, the 1se
    choice and the one taken. The strength lambda means l1 = lambda l1_ratio and l2 = lambda
    (1 - l1_ratio)."""

    strength: list
    fold_loss: list  # folds x len(strength)
    mean_loss: list
    se_loss: list
    mean_accuracy: list
    nonzero: list  # per strength, the folds' mean number of features with a nonzero coefficient
    n_features: int
    l1_ratio: float
    grouped: bool
    folds: int
    seed: int
    select: str
    best_index: int
    one_se_index: int
    notes: list = field(default_factory=list)  # extensions of the path, and a minimum left at an edge

    @property
    def chosen_index(self) -> int:
        return self.best_index if self.select == "min" else self.one_se_index

    @property
    def chosen(self) -> float:
        """The total strength lambda taken."""
        return self.strength[self.chosen_index]

    @property
    def chosen_l1(self) -> float:
        return self.chosen * self.l1_ratio

    @property
    def chosen_l2(self) -> float:
        return self.chosen * (1.0 - self.l1_ratio)

    def to_dict(self) -> dict:
        return {**asdict(self), "chosen": self.chosen, "chosen_index": self.chosen_index, "chosen_l1": self.chosen_l1,
                "chosen_l2": self.chosen_l2}


def strength_grid(top: float, n_values: int, decades: float) -> np.ndarray:
    """``n_values`` strengths on a log grid from ``top`` down ``decades`` decades."""
    return top * np.logspace(0.0, -decades, n_values)


def check_mix(l1_ratio, grouped) -> None:
    """ValueError unless l1_ratio is a number in [0, 1] and grouped a bool (with an L1 term)."""
    if not (isinstance(l1_ratio, (int, float, np.floating, np.integer)) and not isinstance(l1_ratio, bool)
            and 0.0 <= l1_ratio <= 1.0):
        raise ValueError(f"l1_ratio must be a number from 0 (ridge) to 1 (lasso), got {l1_ratio!r}")
    if grouped and l1_ratio == 0:
        raise ValueError("grouped makes the L1 term a group lasso, and l1_ratio 0 has no L1 term: give l1_ratio > 0")


def cross_validate_penalty(X, y: np.ndarray, n_classes: int, *, sample_weight=None, l1_ratio: float = 0.0,
                           grouped: bool = False, folds: int = 5, n_values: int = 20, decades: float | None = None,
                           select: str = "min", seed: int = 0, settings: OptimizerSettings = OptimizerSettings(),
                           standardize: bool = True, grid=None, max_extensions: int = 3,
                           path_tol: float | None = PATH_TOL) -> PenaltyPath:
    """The cross-validated path of the penalty's strength (the mix fixed by ``l1_ratio``: 0 ridge,
    1 lasso) over X (N, D) dense or CSR and y (N,) class indices; folds stratified and seeded (the
    same seed gives the same folds and choice). ``decades`` None: :data:`DECADES`."""
    def make_engine(weights):
        return MemoryEngine(X, y, weights, n_classes=n_classes, threads=1)

    return cross_validate_engine(make_engine, y, n_classes, sample_weight=sample_weight, l1_ratio=l1_ratio,
                                 grouped=grouped, folds=folds, n_values=n_values, decades=decades, select=select,
                                 seed=seed, settings=settings, standardize=standardize, grid=grid,
                                 max_extensions=max_extensions, sparse_rows=X if hasattr(X, "toarray") else None,
                                 path_tol=path_tol)


def cross_validate_engine(make_engine, y: np.ndarray, n_classes: int, *, sample_weight=None, l1_ratio: float = 0.0,
                          grouped: bool = False, folds: int = 5, n_values: int = 20, decades: float | None = None,
                          select: str = "min", seed: int = 0, settings: OptimizerSettings = OptimizerSettings(),
                          standardize: bool = True, grid=None, max_extensions: int = 3, sparse_rows=None,
                          path_tol: float | None = PATH_TOL) -> PenaltyPath:
    """:func:`cross_validate_penalty` over any engine: ``make_engine(weights)`` serves the same
    rows (y, class indices, one per row) with the given row weights; rows of weight 0 in
    ``sample_weight`` (those outside the training split) are in no fold. Every fold's engine is
    opened once for the whole path. ``path_tol`` (None: ``settings.tol`` alone) loosens each
    solve's tolerance to at least it (see PATH_TOL)."""
    from contextlib import ExitStack

    from sklearn.model_selection import StratifiedKFold

    check_mix(l1_ratio, grouped)
    mix = _Mix(float(l1_ratio), bool(grouped))
    if decades is None:
        decades = DECADES["l1" if mix.l1_ratio > 0 else "ridge"]
    settings = path_settings(settings, path_tol)
    weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    rows = np.flatnonzero(weights > 0)
    if select not in SELECTIONS:
        raise ValueError(f"select must be 'min' or '1se', got {select!r}")
    if not (isinstance(folds, (int, np.integer)) and folds >= 2):
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if len(rows) < folds:
        raise ValueError(f"folds={folds} needs at least {folds} rows; there are {len(rows)}: use fewer folds")
    counts = np.bincount(y[rows], minlength=n_classes)
    if counts.max() < folds:
        raise ValueError(f"folds={folds} is more than the rows of any class (the largest has {int(counts.max())}): "
                         "use fewer folds")
    smallest = int(counts.min())
    if smallest < folds:  # as StratifiedKFold: some folds then hold none of that class's rows out
        warnings.warn(f"the smallest class has {smallest} rows, fewer than folds={folds}: some folds score no row "
                      "of it", UserWarning, stacklevel=2)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_of = np.full(len(y), -1, dtype=np.int64)
    for index, (_, held) in enumerate(splitter.split(np.zeros((len(rows), 1)), y[rows])):
        fold_of[rows[held]] = index
    with ExitStack() as opened:
        states = []
        for f in range(folds):
            train, held = weights * ((fold_of != f) & (fold_of >= 0)), weights * (fold_of == f)
            states.append(_FoldState(make_engine(train), y, n_classes, train, held, standardize, sparse_rows))
            opened.enter_context(states[-1].engine)
        return _path_over_folds(states, mix, folds, n_values, decades, select, seed, settings, grid, max_extensions)


@dataclass(frozen=True)
class _Mix:
    """How a total strength splits into the two penalties."""

    l1_ratio: float
    grouped: bool

    def penalties(self, strength: float) -> tuple[float, float]:
        """(l1, l2) at ``strength``."""
        return strength * self.l1_ratio, strength * (1.0 - self.l1_ratio)


def _path_over_folds(states, mix, folds, n_values, decades, select, seed, settings, grid,
                     max_extensions) -> PenaltyPath:
    values = list(strength_grid(_path_top(states, mix), n_values, decades) if grid is None
                  else sorted(grid, reverse=True))
    scores = np.array([state.run(values, settings, mix) for state in states])  # (folds, grid, 3)
    notes = []
    step = values[-1] / values[-2] if len(values) > 1 else 0.1
    for _ in range(max_extensions):
        best = int(np.argmin(scores[:, :, 0].mean(axis=0)))
        if best == len(values) - 1 and values[-1] * step >= LOWEST_STRENGTH:
            more = [values[-1] * step ** (k + 1) for k in range(5) if values[-1] * step ** (k + 1) >= LOWEST_STRENGTH]
            notes.append(f"the least loss was at the smallest penalty ({values[-1]:.3g}); the path was extended "
                         f"down to {more[-1]:.3g}")
            scores = np.concatenate([scores, np.array([state.run(more, settings, mix) for state in states])], axis=1)
            values += more
        elif best == 0 and len(values) > 1 and scores[:, 0, 2].max() > 0:  # above an all-zero top: the same model
            more = [values[0] / step ** (k + 1) for k in range(5)][::-1]
            notes.append(f"the least loss was at the largest penalty ({values[0]:.3g}); the path was extended up "
                         f"to {more[0]:.3g}")
            scores = np.concatenate([np.array([state.run(more, settings, mix, cold=True) for state in states]),
                                     scores], axis=1)
            values = more + values
        else:
            break
    fold_loss, accuracy, nonzero = scores[:, :, 0], scores[:, :, 1], scores[:, :, 2]
    mean, se = fold_loss.mean(axis=0), fold_loss.std(axis=0, ddof=1) / np.sqrt(folds)
    best = int(np.argmin(mean))
    if best == 0 and len(values) > 1 and nonzero[:, 0].max() == 0:
        notes.append(f"the least loss is at the top of the path (strength {values[0]:.3g}), where every coefficient "
                     "is 0: no feature improves on the class priors")
    elif best in (0, len(values) - 1) and len(values) > 1:
        notes.append(f"the least loss is still at an edge of the path (strength {values[best]:.3g}) after "
                     f"{len(notes)} extension{'s' if len(notes) != 1 else ''} (at most {max_extensions}, and none "
                     f"below {LOWEST_STRENGTH:g})")
    within = np.flatnonzero(mean <= mean[best] + se[best])
    one_se = int(within.min())  # the largest penalty within one standard error (values descend)
    return PenaltyPath([float(v) for v in values], fold_loss.tolist(), mean.tolist(), se.tolist(),
                       accuracy.mean(axis=0).tolist(), nonzero.mean(axis=0).tolist(), int(states[0].engine.n_features),
                       mix.l1_ratio, mix.grouped, folds, seed, select, best, one_se, notes)


class _FoldState:
    """One fold: its training engine (held-out rows at weight 0, standardized on the training
    rows), the held-out view of the same blocks, and the last solution for the next warm start."""

    def __init__(self, engine, y, n_classes, train_weights, held_weights, standardize, sparse_rows=None):
        X = sparse_rows
        self.y, self.train_weights = y, train_weights
        mean, scale = np.zeros(engine.n_features), np.ones(engine.n_features)
        if standardize and X is not None:  # CSR in memory: the moments by sparse products, X never densified
            share = train_weights / train_weights.sum()
            mean = np.asarray(X.T @ share, dtype=np.float64).ravel()
            scale = np.sqrt(np.maximum(np.asarray(X.multiply(X).T @ share, dtype=np.float64).ravel() - mean ** 2, 0))
        elif standardize:
            with engine:
                mean = engine.column_moments()
                scale = np.sqrt(engine.column_moments(mean))
        if standardize:
            scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0
            engine.set_standardization(mean, scale)
        self.scaling = (mean, scale)
        self.engine, self.n_classes = engine, n_classes
        self.held = Validation(engine.sibling(held_weights))
        self.W = np.zeros((engine.n_features, n_classes), dtype=engine.dtype)
        with engine:
            at_zero = engine.objective(self.W, np.zeros(n_classes, dtype=engine.dtype), 0.0)
        self.gradient_at_zero = max_abs(at_zero.dW, at_zero.db)
        # The intercept-only optimum, b = log of the (weighted) class shares: where the path's
        # top is computed, and where its first solve starts (at an L1 top W stays exactly 0).
        shares = np.bincount(y, weights=train_weights, minlength=n_classes)
        self.b = np.log(np.maximum(shares / shares.sum(), 1e-12)).astype(engine.dtype)
        self.start = (self.W, self.b)  # the solution the next (smaller) penalty starts from

    def run(self, values, settings, mix: _Mix, cold: bool = False) -> list[tuple[float, float, int]]:
        """(held-out loss, accuracy, features in use) at each strength, solving in the order given."""
        from softreg.model.solve import train_on_engine

        scores, start = [], (self.W, self.b) if cold else self.start
        previous = step = None
        for index, strength in enumerate(values):
            l1, l2 = mix.penalties(float(strength))
            guess = start
            if previous is not None and _log_evenly_spaced(values, index):
                # The solutions move smoothly with log(strength): a straight line through the
                # last two is a closer start than the last alone (digits: 26% fewer epochs).
                guess = (2 * start[0] - previous[0], 2 * start[1] - previous[1])
            # The step the last solve ended with is a better first trial than 1/L, which the
            # rule would take ~10 epochs to grow back from (digits: another 20% fewer epochs).
            result = train_on_engine(self.engine, self.n_classes, l2=l2, l1=l1, grouped=mix.grouped,
                                     settings=settings, start=guess, gradient_reference=self.gradient_at_zero,
                                     first_step=step)
            step = result.step_sizes.get("last")
            previous, start = start, (result.W, result.b)
            with self.engine:
                scores.append((*self.held(result.W, result.b), int((result.W != 0).any(axis=1).sum())))
        if not cold:
            self.start = start
        return scores


def _log_evenly_spaced(values, index: int) -> bool:
    """values[index - 2 : index + 1] are evenly spaced in log (a straight-line guess fits)."""
    if index < 2:
        return False
    earlier, last, now = values[index - 2], values[index - 1], values[index]
    return bool(earlier > 0 and last > 0 and now > 0 and abs(np.log(earlier / last) - np.log(last / now)) < 1e-9)


def _path_top(states, mix: _Mix) -> float:
    """The largest strength of the default grid, over the folds (see the module's docstring).

    With an L1 term: the least strength at which W = 0 is optimal in every fold. Ridge: 10 max_i
    |x_i G0| over the folds' training rows (logits centred over the classes: a shift common to all
    classes changes no probability): at that penalty no logit moves by more than about 0.1. The
    logits come from the engine's own probabilities, since log softmax(t z) centred is t z centred."""
    top = 0.0
    for state in states:
        engine = state.engine
        G0 = engine.objective(state.W, state.b, 0.0).dW  # at the intercept-only optimum
        if mix.l1_ratio > 0:
            # A hair above the threshold, so that rounding in the prox cannot leave a 1e-17 there.
            top = max(top, (1 + 1e-9) * L1Penalty(1.0, mix.grouped).zero_threshold(G0) / mix.l1_ratio)
            continue
        size = max(float(np.abs(G0).max()), np.finfo(np.float64).tiny)
        log_p = np.log(np.maximum(engine.probabilities(G0 / size, np.zeros_like(state.b)), 1e-300))
        centred = (log_p - log_p.mean(axis=1, keepdims=True))[state.train_weights > 0]
        top = max(top, 10.0 * size * float(np.abs(centred).max(initial=0.0)))
    return top if np.isfinite(top) and top > 0 else 1.0
