"""Choosing the L2 penalty: k-fold cross-validation over a path of penalties, warm-started.

For each fold, the training rows are the engine's rows with the held-out ones at weight 0, and
the held-out rows are a zero-copy view of the same blocks with the other weights (as validation
already is): no row is copied. Each fold is standardized on its own training rows (folded into
the weights), so no scaling is learned from the rows it is scored on. The penalties run from the
largest down, each solve starting from the previous solution (a warm start: near the next
optimum, so it takes a fraction of a cold start's epochs) and stopping at the same tolerance
relative to the gradient at W = 0 as a cold start would.

The score is the held-out log loss (a proper scoring rule: it rewards calibrated probabilities,
which accuracy does not see), its mean over folds and standard error (sd / sqrt(folds)); accuracy
is kept beside it. ``select="min"`` takes the penalty of the least mean loss; ``"1se"``, glmnet's
rule, the largest penalty whose mean is within one standard error of that minimum.

The top of the default grid comes from the data: at W = 0 the gradient is G0 = Xᵀ(P0 - Y)/N
with P0 the class priors (after the intercept has absorbed them), and the minimizer for a large
l2 is about -G0 / l2, so at l2 = 10 max_i |x_i G0| no row's logit moves by more than about 0.1:
a model barely more than the priors. The grid runs ``decades`` down from there. When the least
loss is at an edge, the path is extended past it (``max_extensions`` times at most) and the
result says so.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from softreg.model.engines import MemoryEngine
from softreg.model.solve.result import Validation, max_abs
from softreg.model.solve.settings import OptimizerSettings

SELECTIONS = ("min", "1se")
LOWEST_L2 = 1e-10  # below this the penalty no longer changes a float64 solution: extension stops
# Each solve of the path stops at this relative gradient (or settings.tol if looser): held-out
# losses then differ from the exact optima's by under 0.1% (digits, 10 folds: 0.10308 against
# 0.10316, the same choice) in 0.6x the time. The fit at the chosen penalty uses settings.tol.
PATH_TOL = 1e-4


@dataclass
class PenaltyPath:
    """The cross-validated path: per penalty (descending), the folds' held-out losses, their
    mean and standard error, the mean accuracy; the minimum, the 1se choice and the one taken."""

    l2: list
    fold_loss: list  # folds x len(l2)
    mean_loss: list
    se_loss: list
    mean_accuracy: list
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
        return self.l2[self.chosen_index]

    def to_dict(self) -> dict:
        return {**asdict(self), "chosen": self.chosen, "chosen_index": self.chosen_index}


def l2_grid(top: float, n_values: int, decades: float) -> np.ndarray:
    """``n_values`` penalties on a log grid from ``top`` down ``decades`` decades."""
    return top * np.logspace(0.0, -decades, n_values)


def cross_validate_l2(X, y: np.ndarray, n_classes: int, *, sample_weight=None, folds: int = 5, n_values: int = 20,
                      decades: float = 6.0, select: str = "min", seed: int = 0,
                      settings: OptimizerSettings = OptimizerSettings(), standardize: bool = True, grid=None,
                      max_extensions: int = 3, path_tol: float | None = PATH_TOL) -> PenaltyPath:
    """The cross-validated path of the L2 penalty over X (N, D) dense or CSR and y (N,) class
    indices; folds stratified and seeded (the same seed gives the same folds and choice)."""
    def make_engine(weights):
        return MemoryEngine(X, y, weights, n_classes=n_classes, threads=1)

    return cross_validate_engine(make_engine, y, n_classes, sample_weight=sample_weight, folds=folds,
                                 n_values=n_values, decades=decades, select=select, seed=seed, settings=settings,
                                 standardize=standardize, grid=grid, max_extensions=max_extensions,
                                 sparse_rows=X if hasattr(X, "toarray") else None, path_tol=path_tol)


def cross_validate_engine(make_engine, y: np.ndarray, n_classes: int, *, sample_weight=None, folds: int = 5,
                          n_values: int = 20, decades: float = 6.0, select: str = "min", seed: int = 0,
                          settings: OptimizerSettings = OptimizerSettings(), standardize: bool = True, grid=None,
                          max_extensions: int = 3, sparse_rows=None, path_tol: float | None = PATH_TOL) -> PenaltyPath:
    """:func:`cross_validate_l2` over any engine: ``make_engine(weights)`` serves the same rows
    (y, class indices, one per row) with the given row weights; rows of weight 0 in
    ``sample_weight`` (those outside the training split) are in no fold. Every fold's engine is
    opened once for the whole path. ``path_tol`` (None: ``settings.tol`` alone) loosens each
    solve's tolerance to at least it (see PATH_TOL)."""
    from contextlib import ExitStack
    from dataclasses import replace

    from sklearn.model_selection import StratifiedKFold

    if path_tol is not None:
        settings = replace(settings, tol=max(settings.tol, path_tol))
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
        return _path_over_folds(states, folds, n_values, decades, select, seed, settings, grid, max_extensions)


def _path_over_folds(states, folds, n_values, decades, select, seed, settings, grid, max_extensions) -> PenaltyPath:
    values = list(l2_grid(_path_top(states), n_values, decades) if grid is None else sorted(grid, reverse=True))
    losses = np.array([state.run(values, settings) for state in states])  # (folds, grid): loss, accuracy
    notes = []
    step = values[-1] / values[-2] if len(values) > 1 else 0.1
    for _ in range(max_extensions):
        best = int(np.argmin(losses[:, :, 0].mean(axis=0)))
        if best == len(values) - 1 and values[-1] * step >= LOWEST_L2:
            more = [values[-1] * step ** (k + 1) for k in range(5) if values[-1] * step ** (k + 1) >= LOWEST_L2]
            notes.append(f"the least loss was at the smallest penalty ({values[-1]:.3g}); the path was extended "
                         f"down to {more[-1]:.3g}")
            losses = np.concatenate([losses, np.array([state.run(more, settings) for state in states])], axis=1)
            values += more
        elif best == 0 and len(values) > 1:
            more = [values[0] / step ** (k + 1) for k in range(5)][::-1]
            notes.append(f"the least loss was at the largest penalty ({values[0]:.3g}); the path was extended up "
                         f"to {more[0]:.3g}")
            losses = np.concatenate([np.array([state.run(more, settings, cold=True) for state in states]), losses],
                                    axis=1)
            values = more + values
        else:
            break
    fold_loss, accuracy = losses[:, :, 0], losses[:, :, 1]
    mean, se = fold_loss.mean(axis=0), fold_loss.std(axis=0, ddof=1) / np.sqrt(folds)
    best = int(np.argmin(mean))
    if best in (0, len(values) - 1) and len(values) > 1:
        notes.append(f"the least loss is still at an edge of the path (l2 = {values[best]:.3g}) after "
                     f"{len(notes)} extension{'s' if len(notes) != 1 else ''}: the limit was reached")
    within = np.flatnonzero(mean <= mean[best] + se[best])
    one_se = int(within.min())  # the largest penalty within one standard error (values descend)
    return PenaltyPath([float(v) for v in values], fold_loss.tolist(), mean.tolist(), se.tolist(),
                       accuracy.mean(axis=0).tolist(), folds, seed, select, best, one_se, notes)


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
        self.b = np.zeros(n_classes, dtype=engine.dtype)
        with engine:
            at_zero = engine.objective(self.W, self.b, 0.0)
        self.gradient_at_zero = max_abs(at_zero.dW, at_zero.db)
        self.start = (self.W, self.b)  # the solution the next (smaller) penalty starts from

    def run(self, values, settings, cold: bool = False) -> list[tuple[float, float]]:
        """(held-out loss, accuracy) at each penalty, solving in the order given."""
        from softreg.model.solve import train_on_engine

        scores, start = [], (self.W, self.b) if cold else self.start
        for l2 in values:
            result = train_on_engine(self.engine, self.n_classes, l2=float(l2), settings=settings, start=start,
                                     gradient_reference=self.gradient_at_zero)
            start = (result.W, result.b)
            with self.engine:
                scores.append(self.held(result.W, result.b))
        if not cold:
            self.start = start
        return scores


def _path_top(states) -> float:
    """10 max_i |x_i G0| over the folds' training rows (logits centred over the classes: a shift
    common to all classes changes no probability), G0 the gradient at the priors (see the
    module's docstring): at that penalty no logit moves by more than about 0.1. The logits come
    from the engine's own probabilities, since log softmax(t z) centred is t z centred."""
    top = 0.0
    for state in states:
        engine = state.engine
        # The intercept-only optimum: b = log of the (weighted) class shares, W = 0.
        shares = np.bincount(state.y, weights=state.train_weights, minlength=state.n_classes)
        shares = np.maximum(shares / shares.sum(), 1e-12)
        G0 = engine.objective(state.W, np.log(shares).astype(engine.dtype), 0.0).dW
        size = max(float(np.abs(G0).max()), np.finfo(np.float64).tiny)
        log_p = np.log(np.maximum(engine.probabilities(G0 / size, np.zeros_like(state.b)), 1e-300))
        centred = (log_p - log_p.mean(axis=1, keepdims=True))[state.train_weights > 0]
        top = max(top, 10.0 * size * float(np.abs(centred).max(initial=0.0)))
    return top if np.isfinite(top) and top > 0 else 1.0
