"""SoftmaxRegression: a scikit-learn style classifier over the derived gradient.

    fit:      standardize X on the training rows, then minimize
              J(W, b) = sum_i w_i L_i + (l2/2) ||W||_F^2 (+ l1 ||W||_1) by gradient descent
              (proximal with l1; softreg.model.solve)
    predict:  argmax_k of z = x coef_^T + intercept_

Training runs in standardized coordinates x' = (x - mu) / sigma; the fitted weights are folded
back so that ``coef_`` and ``intercept_`` apply to raw features:

    z = x' W + b = x (W / sigma) + (b - (mu / sigma) W)

so coef_ = (W / sigma)^T (K, D) and intercept_ = b - (mu / sigma) W (K,). Sparse float64
input trained full-batch is centered too, without densifying: the engine computes logits of
the standardized rows from the raw ones with exactly this map. Sparse float32 input and sparse
mini-batches are scaled but not centered (mu = 0).

``standardize`` says where the penalty is measured, not where the solver works: with
``standardize=False`` the objective is J's on raw features (the penalty on raw coefficients,
LogisticRegression's problem), and it is still solved in the standardized coordinates above (a
diagonal preconditioner: the same function, so the same minimizer), with the penalty mapped
to per-feature strengths l2 / sigma_j^2 and l1 / sigma_j. For that map sigma_j^2 is the
column's variance plus l2, so that neither the data nor the penalty makes any coordinate's
curvature exceed about 1. Raw features then converge in about the epochs of standardized
ones, where plain descent on them could take thousands of times more.

Two classes follow LogisticRegression's conventions: ``coef_`` (1, D) and ``intercept_`` (1,)
hold w_1 - w_0 and b_1 - b_0 (the log-odds of classes_[1]); ``weights_`` (D, K) and ``bias_``
(K,) keep both classes' weights in the solver's coordinates for every K.

Why one module of about 580 lines: it is two classes, and SoftmaxRegression (about 440 of them)
is scikit-learn's estimator contract (fit, predict*, score, the fitted attributes and their
checks) over one fitted state; its solving, standardization and penalty choice already live in
softreg.model.solve, softreg.model.math and softreg.model.solve.path.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from softreg.model.engines import MemoryEngine
from softreg.model.math.linear import fold_standardization
from softreg.model.math.scaling import weighted_mean_and_scale
from softreg.model.solve import OptimizerSettings, train_on_engine, validate_settings
from softreg.model.solve.result import max_abs
from softreg.model.solve.settings import is_real_number
from softreg.model.math.softmax import log_softmax, softmax

DTYPES = {"float64": np.float64, "float32": np.float32}


def _finite_check():
    """scikit-learn's NaN/inf check first sums X; values near the float limit overflow that sum
    (a warning, not an error) before the exact element-wise check runs."""
    return np.errstate(over="ignore", invalid="ignore")


def _check_grouped(grouped) -> None:
    if not isinstance(grouped, (bool, np.bool_)):
        raise ValueError(f"grouped must be True or False, got {grouped!r}")


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression trained by gradient descent on the hand-derived gradient.

    Parameters
    ----------
    l2 : L2 penalty on the weights (not the bias) in J = mean CE + (l2/2)||W||^2.
        On the same (standardized) features, scikit-learn's LogisticRegression(C) is the same
        objective with l2 = 1/(C N) (2/(C N) for two classes); see docs/equivalences.md.
    l1 : L1 penalty l1 ||W||_1 added to J (elastic net with l2 > 0; glmnet's lambda, alpha
        are l1 = lambda alpha, l2 = lambda (1 - alpha)), solved by proximal gradient steps.
    grouped : the L1 term as the group lasso l1 sum_j ||W_j,:||_2 (a feature's K coefficients
        are zero together; glmnet's type.multinomial = "grouped").
    lr : "auto" (Armijo backtracking, floor 1/L), "bound" (fixed 1/L) or a positive number.
    momentum : "auto" (Nesterov's for full-batch steps, none with ``batch_size``), "nesterov"
        (accelerated, with adaptive restart) or None/"none" (plain steps).
    batch_size : None for full-batch gradient descent, else mini-batch SGD.
    schedule : decay of a fixed step: "constant", "inverse-sqrt" or "cosine".
    max_epochs, tol : stop after max_epochs, or when max |gradient| <= tol x its first value.
    patience : early stopping on the validation loss (needs ``validation_data`` in fit).
    standardize : True: the penalty is on the coefficients of standardized features; False: on
        the raw coefficients (LogisticRegression's objective). Both are solved in standardized
        coordinates (see the module's docstring).
    class_weight : None or "balanced" (weights n / (K n_k), multiplied into sample_weight).
    dtype : "float64" or "float32"; every buffer of training uses it. None (the default): float32
        input trains and keeps float32 coefficients, anything else float64, as LogisticRegression.
    random_state : seed of mini-batch shuffling.
    warm_start : start from the previous fit's coefficients (same features and classes) instead of 0.
    fit_intercept : False fits no bias (intercept_ is 0, and features are scaled but not centered).
    """

    def __init__(
        self,
        l2: float = 1e-3,
        l1: float = 0.0,
        grouped: bool = False,
        lr="auto",
        momentum="auto",
        batch_size=None,
        schedule: str = "constant",
        max_epochs: int = 1000,
        tol: float = 1e-5,
        patience=None,
        standardize: bool = True,
        class_weight=None,
        dtype: str | None = None,
        random_state: int = 0,
        warm_start: bool = False,
        fit_intercept: bool = True,
    ):
        self.l2 = l2
        self.l1 = l1
        self.grouped = grouped
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.schedule = schedule
        self.max_epochs = max_epochs
        self.tol = tol
        self.patience = patience
        self.standardize = standardize
        self.class_weight = class_weight
        self.dtype = dtype
        self.random_state = random_state
        self.warm_start = warm_start
        self.fit_intercept = fit_intercept

    def _settings(self) -> OptimizerSettings:
        settings = OptimizerSettings(
            lr=self.lr,
            momentum=None if self.momentum in (None, "none") else self.momentum,
            batch_size=self.batch_size,
            schedule=self.schedule,
            max_epochs=self.max_epochs,
            tol=self.tol,
            patience=self.patience,
            seed=self.random_state,
        )
        validate_settings(settings)
        return settings

    def _check_params(self) -> None:
        self._check_penalty()
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be None, 'float64' or 'float32', got {self.dtype!r}")
        if not isinstance(getattr(self, "fit_intercept", True), (bool, np.bool_)):
            raise ValueError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        if not (self.class_weight in (None, "balanced") or isinstance(self.class_weight, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict {{class: weight}}, got {self.class_weight!r}")

    def fit(self, X, y, sample_weight=None, *, validation_data=None, callback=None, should_stop=None,
            overwrite_X: bool = False, checkpoint=None, resume=None):
        """Fit on (X, y). ``validation_data=(X_val, y_val)`` adds held-out curves and early stopping;
        ``callback(EpochRecord)`` is called after every epoch; ``should_stop()`` ends training early.
        ``overwrite_X=True`` standardizes a dense X (and X_val) in place instead of in a copy the
        size of X: pass it only for arrays nothing else will read afterwards. ``checkpoint`` and
        ``resume`` are passed to :func:`softreg.model.solve.train_on_engine`.

        The rows are served by a memory engine, and training is then the same code as
        :meth:`fit_engine`'s for any engine.
        """
        self._check_params()
        settings = self._settings()
        # None keeps float32 input float32 (validate_data takes the first of a list otherwise).
        dtype = DTYPES[self.dtype] if self.dtype is not None else [np.float64, np.float32]
        with _finite_check():
            X, y = validate_data(self, X, y, accept_sparse="csr", dtype=dtype, order="C")
        dtype = X.dtype.type
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"the training data has 1 class ({self.classes_[0]}); a classifier needs at least 2 classes"
            )
        weights = None
        if sample_weight is not None or self.class_weight is not None:
            weights = self.training_weights(_check_sample_weight(sample_weight, X, dtype=dtype), y).astype(dtype)
        if self.batch_size is not None and self.batch_size > X.shape[0]:
            raise ValueError(
                f"batch_size must be at most the number of training rows ({X.shape[0]}), got {self.batch_size}; "
                "leave it unset for full-batch gradient descent"
            )
        self._choose_penalty(X, y_index, weights)
        # The scaling is weighted like the objective, so weights equal repeated rows exactly.
        # Sparse float64 rows trained full-batch are centered too, without densifying: the engine
        # folds (mean, scale) into the weights. Not in float32, where x W' - mean W' cancels
        # catastrophically for columns with |mean| >> scale, nor for mini-batches (README: sparse
        # mini-batch runs are scaled, not centered): those rows are scaled, not centered. Dense
        # rows whose penalty stays raw (standardize=False) are folded too rather than copied: the
        # map only preconditions the solver, and a caller's X may be large.
        sparse_fold = self._fits_intercept() and hasattr(X, "toarray")
        dense_fold = not self.standardize and not overwrite_X and isinstance(X, np.ndarray)
        fold = (sparse_fold or dense_fold) and self.batch_size is None and X.dtype == np.float64
        self._fit_scaling(X, weights, center_sparse=fold)
        standardization = (self.feature_mean_, self.feature_scale_) if fold else None
        if fold:
            X_train = X
        else:
            X_train = self._standardize(X, in_place=overwrite_X and isinstance(X, np.ndarray) and X.flags.writeable)
        # Mini-batch steps are many small passes: a pool costs more than it saves, BLAS keeps its threads.
        threads = 1 if self.batch_size is not None else None
        engine = MemoryEngine(X_train, y_index, weights, n_classes=len(self.classes_), threads=threads,
                              standardization=standardization)
        validation_engine = None
        if validation_data is not None:
            X_val, y_val = self._validation_rows(validation_data, dtype, standardized=not fold, overwrite=overwrite_X)
            if len(y_val):
                validation_engine = MemoryEngine(X_val, y_val, n_classes=len(self.classes_),
                                                 standardization=standardization)
        return self._train(engine, settings, validation_engine, callback, should_stop, checkpoint, resume)

    def _validation_rows(self, validation_data, dtype, *, standardized: bool, overwrite: bool):
        """The validation rows whose labels the training rows have, standardized when asked, with
        their class indices."""
        X_val, y_val = validation_data
        with _finite_check():
            X_val = validate_data(self, X_val, accept_sparse="csr", dtype=dtype, reset=False)
        known = np.isin(y_val, self.classes_)
        # X_val[known] is a fresh copy unless every label is known and the mask is skipped.
        X_known = X_val if known.all() else X_val[known]
        in_place = (X_known is not X_val or overwrite) and isinstance(X_known, np.ndarray) and X_known.flags.writeable
        if standardized:
            X_known = self._standardize(X_known, in_place=in_place)
        return X_known, np.searchsorted(self.classes_, np.asarray(y_val)[known])

    def _train(self, engine, settings, validation_engine, callback, should_stop, checkpoint=None, resume=None):
        """The one training path of every engine: the solver's entry, then the result kept."""
        start = self._warm_start_point(engine)
        reference = None
        if start is not None:  # the tolerance stays relative to the gradient at 0, as for a cold start
            with engine:
                at_zero = engine.objective(np.zeros_like(start[0]), np.zeros_like(start[1]), 0.0)
            reference = max_abs(at_zero.dW, at_zero.db)
        l1, l2 = self._solver_penalties()
        result = train_on_engine(engine, len(self.classes_), l2=l2, l1=l1, grouped=bool(self.grouped), settings=settings,
                                 validation_engine=validation_engine, callback=callback, should_stop=should_stop,
                                 checkpoint=checkpoint, resume=resume, start=start, gradient_reference=reference,
                                 fit_intercept=self._fits_intercept())
        return self._store_result(result)

    def _fits_intercept(self) -> bool:
        return bool(getattr(self, "fit_intercept", True))

    def _solver_penalties(self):
        """(l1, l2) in the coordinates the solver works in: numbers on standardized coefficients,
        or with ``standardize=False`` the penalty on raw coefficients W / scale read there, (D,)
        strengths l1 / scale_j and l2 / scale_j^2 (see the module's docstring)."""
        l1, l2 = self._penalties()
        if self.standardize:
            return l1, l2
        scale = self.feature_scale_.astype(np.float64)
        return (l1 / scale if l1 else 0.0), ((l2 / scale) / scale if l2 else 0.0)

    def _solver_scale(self, std: np.ndarray) -> np.ndarray:
        """The scale of the solver's coordinates from the columns' standard deviations: those
        themselves, or with ``standardize=False`` sqrt(std^2 + l2), so that the mapped penalty
        l2 / scale^2 stays at most 1 on nearly constant columns (hypot: no overflow in the square)."""
        if self.standardize:
            return std
        return np.hypot(std, np.sqrt(self._penalties()[1])).astype(std.dtype)

    def _check_penalty(self) -> None:
        for name in ("l2", "l1"):
            value = getattr(self, name)
            if not (is_real_number(value) and value >= 0 and np.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        _check_grouped(self.grouped)

    def _penalties(self) -> tuple[float, float]:
        """(l1, l2) of the fit."""
        return float(self.l1), float(self.l2)

    def _choose_penalty(self, X, y_index, weights) -> None:
        """Where SoftmaxRegressionCV cross-validates; a fixed l2 has nothing to choose."""

    def _warm_start_point(self, engine):
        """coef_ and intercept_ as they stand (a previous fit's, or written by the caller, as
        LogisticRegression starts from them) mapped into this fit's coordinates: W = W_raw scale,
        b = b_raw + mean W_raw; None unless warm_start and their features and classes match."""
        if not self.warm_start or getattr(self, "coef_", None) is None:
            return None
        W_raw, b_raw = self._class_weights()
        if W_raw.shape != (engine.n_features, len(self.classes_)):
            return None
        W = W_raw * self.feature_scale_[:, None]
        b = b_raw + self.feature_mean_ @ W_raw if self._fits_intercept() else np.zeros_like(b_raw)
        return W, b

    def training_weights(self, sample_weight: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Row weights times class weights, scaled to a maximum of 1 (J is invariant to the scale;
        this keeps every sum finite). ValueError unless finite, non-negative, and some positive."""
        weights = np.asarray(sample_weight, dtype=np.float64)
        if self.class_weight is not None:
            # A dict names classes by label; "balanced" uses n / (K n_k).
            weights = weights * compute_sample_weight(self.class_weight, y)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
            raise ValueError("sample_weight must be finite and non-negative, with at least one positive weight")
        # A class of total weight 0 is absent from the objective, yet still has a logit: its
        # bias has no finite optimum (J falls as b_k -> -inf), so the descent would never stop.
        labels, index = np.unique(np.asarray(y), return_inverse=True)
        weightless = labels[np.bincount(index, weights=weights, minlength=len(labels)) == 0]
        if weightless.size:
            named = ", ".join(repr(label.item() if hasattr(label, "item") else label) for label in weightless)
            raise ValueError(f"class_weight and sample_weight give class {named} a total weight of 0: its intercept "
                             "has no finite optimum (the objective falls without end as that class's probability "
                             "goes to 0), so training would never converge; give its rows a positive weight, or "
                             "remove them")
        return weights / weights.max()

    def fit_engine(self, engine, classes, *, validation_weights=None, callback=None, should_stop=None,
                   checkpoint=None, resume=None):
        """Fit on the rows an engine serves (see :mod:`softreg.model.engines`), out of core or on a cluster.

        ``engine`` holds the class indices into ``classes`` and the training rows' weights
        (zero for rows outside the training split); ``validation_weights`` (N,) marks the
        validation rows. Standardization statistics are two passes of weighted column sums;
        the engine then serves standardized rows. ``checkpoint`` and ``resume`` are passed to
        :func:`softreg.model.solve.train_on_engine`.
        """
        self._check_params()
        settings = self._settings()
        if settings.batch_size is not None:
            raise ValueError("batch_size (mini-batch SGD) needs the rows in memory; this engine runs full batches")
        if self.dtype is not None and engine.dtype != DTYPES[self.dtype]:
            raise ValueError(f"the data holds {engine.dtype} rows but dtype is {self.dtype}; engines read rows as "
                             f"they are stored: prepare the file with dtype='{self.dtype}', or train with dtype "
                             f"{engine.dtype}")
        if self.standardize and engine.standardization is not None:
            raise ValueError("this engine already serves standardized rows (from an earlier fit, or its "
                             "standardization argument); give fit_engine a new engine, or use standardize=False")
        self.classes_ = np.asarray(classes)
        self.n_features_in_ = engine.n_features
        with engine:
            self.feature_mean_ = np.zeros(engine.n_features, dtype=engine.dtype)
            self.feature_scale_ = np.ones(engine.n_features, dtype=engine.dtype)
            # Rows an engine already serves standardized are the solver's coordinates as they are.
            if engine.standardization is None:
                # Weighted mean, then weighted squared deviations from it (the weights sum to 1).
                mean = engine.column_moments()
                scale = np.sqrt(engine.column_moments(mean))
                if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale))):
                    bad = int(np.argmax(~(np.isfinite(mean) & np.isfinite(scale))))
                    raise ValueError(f"feature column {bad} holds NaN or infinite values in the training rows; make "
                                     "a clean copy by preparing the data with missing='drop' and train on it")
                scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0  # as StandardScaler
                scale = self._solver_scale(scale)
                if not self._fits_intercept():
                    mean = np.zeros_like(mean)  # centering would move the bias
                self.feature_mean_, self.feature_scale_ = mean.astype(engine.dtype), scale.astype(engine.dtype)
                engine.set_standardization(mean, scale)
            validation_engine = None
            if validation_weights is not None and np.any(validation_weights > 0):
                validation_engine = engine.sibling(validation_weights)
            return self._train(engine, settings, validation_engine, callback, should_stop, checkpoint, resume)

    def _store_result(self, result):
        """Keep a training result: weights (folded into coef_), history and how it ended."""
        self._set_weights(result.W, result.b)
        self.n_iter_ = np.array([result.n_epochs], dtype=np.int32)  # as LogisticRegression's multinomial fit
        self.loss_curve_ = list(result.history["train_loss"])
        self.validation_loss_curve_ = list(result.history["val_loss"])
        self.history_ = result.history
        self.stop_reason_ = result.stop_reason
        self.stop_message_ = result.stop_message
        self.stop_details_ = result.stop_details
        self.best_epoch_ = result.best_epoch
        self.lipschitz_ = result.lipschitz
        self.step_sizes_ = result.step_sizes
        self.halvings_ = result.halvings
        self.restarts_ = result.restarts
        if result.stop_reason in ("separable", "max_epochs"):
            warnings.warn(result.stop_message, ConvergenceWarning, stacklevel=4)
        return self

    def _fit_scaling(self, X, sample_weight=None, *, center_sparse: bool = False) -> None:
        n_features = X.shape[1]
        self.feature_mean_ = np.zeros(n_features, dtype=X.dtype)
        self.feature_scale_ = np.ones(n_features, dtype=X.dtype)
        if hasattr(X, "toarray"):
            magnitude = np.asarray(abs(X).max(axis=0).todense()).ravel()
        else:
            magnitude = np.maximum(X.max(axis=0), -X.min(axis=0)) if X.shape[0] else np.zeros(n_features)
        magnitude = magnitude.astype(np.float64)  # thresholds below are float64 numbers
        # Squares of features beyond ~1e154 overflow in the variance; measure such columns in
        # units of their largest magnitude first (exact: mean and scale are linear in that unit).
        unit = np.ones(n_features, dtype=np.float64)
        huge = magnitude > 1e100
        unit[huge] = magnitude[huge]
        if hasattr(X, "toarray"):
            from scipy import sparse
            from sklearn.preprocessing import StandardScaler

            measured = X @ sparse.diags(1.0 / unit) if huge.any() else X
            scaler = StandardScaler(with_mean=False).fit(measured, sample_weight=sample_weight)
            scale = scaler.scale_
            if center_sparse:
                self.feature_mean_ = (scaler.mean_ * unit).astype(X.dtype)
        else:
            mean, scale = weighted_mean_and_scale(X, sample_weight, unit)
            self.feature_mean_ = (mean * unit).astype(X.dtype)
            # |x - mean| <= 2 max(|x|, |mean|): safe while that stays below the float limit.
            self._divide_first = bool(np.any(np.maximum(magnitude, np.abs(mean * unit)) > np.finfo(X.dtype).max / 4))
        # A zero variance maps to scale 1 (as in StandardScaler), so a constant column stays finite.
        self.feature_scale_ = self._solver_scale((scale * unit).astype(X.dtype))
        if not self._fits_intercept():
            self.feature_mean_ = np.zeros(n_features, dtype=X.dtype)  # centering would move the bias
            self._divide_first = False

    def _standardize(self, X, in_place: bool = False):
        """(X - mean) / scale, the solver's coordinates; with ``in_place`` a dense X is overwritten
        instead of copied."""
        if hasattr(X, "toarray"):
            from scipy import sparse

            # Scaled only, so it stays sparse: a sparse model's centering lives in its bias
            # (bias_ - (mean / scale) weights_ in these coordinates; see compare_with_sklearn).
            return (X @ sparse.diags(1.0 / self.feature_scale_)).tocsr().astype(X.dtype)
        if getattr(self, "_divide_first", False):
            # Values near the float limit with a mean of the other sign would overflow x - mean:
            # divide first. This loses a little precision when the mean dwarfs the spread, so
            # it is used only then.
            standardized = np.divide(X, self.feature_scale_, out=X if in_place else None)
            standardized -= self.feature_mean_ / self.feature_scale_
            return standardized
        standardized = np.subtract(X, self.feature_mean_, dtype=X.dtype, out=X if in_place else None)
        standardized /= self.feature_scale_  # in place: one N x D buffer, not two
        return standardized

    def _set_weights(self, W: np.ndarray, b: np.ndarray) -> None:
        """Keep the solver's weights and fold the scaling into coef_ and intercept_ (for two
        classes their difference, as LogisticRegression)."""
        self.weights_ = W  # (D, K), the solver's (standardized) coordinates
        self.bias_ = b  # (K,)
        W_raw, b_raw = fold_standardization(W, b, self.feature_mean_, self.feature_scale_)  # (D, K), (K,)
        if W.shape[1] == 2:  # z_1 - z_0 = x (w_1 - w_0) + (b_1 - b_0): the log-odds of classes_[1]
            self.coef_ = np.ascontiguousarray((W_raw[:, 1] - W_raw[:, 0])[None, :])  # (1, D)
            self.intercept_ = np.array([b_raw[1] - b_raw[0]], dtype=b_raw.dtype)  # (1,)
        else:
            self.coef_ = np.ascontiguousarray(W_raw.T)  # (K, D)
            self.intercept_ = b_raw

    def _class_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(W_raw (D, K), b_raw (K,)) from coef_ and intercept_: one column per class, for two
        classes the symmetric pair -/+ (w_1 - w_0)/2, which has the same logit differences."""
        coef = self.coef_.toarray() if hasattr(self.coef_, "toarray") else np.asarray(self.coef_)
        intercept = np.asarray(self.intercept_)
        if len(self.classes_) == 2 and coef.shape[0] == 1:
            return np.stack([-coef[0] / 2, coef[0] / 2], axis=1), np.array([-intercept[0] / 2, intercept[0] / 2])
        return coef.T.copy(), intercept.copy()

    def _logits(self, X) -> np.ndarray:
        """Logits z = X coef_^T + intercept_, shape (N, K); for two classes (-d/2, d/2) with d the
        log-odds, which have the softmax of (z_0, z_1) (softmax is invariant to a common shift;
        halving is exact, and a d that overflowed stays non-finite in both, so it is noticed)."""
        check_is_fitted(self)
        with _finite_check():
            X = validate_data(self, X, accept_sparse="csr", dtype=self.coef_.dtype, reset=False)
        scores = safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_
        if len(self.classes_) == 2:
            return np.hstack([-scores / 2, scores / 2])
        return scores

    def decision_function(self, X) -> np.ndarray:
        """The logits (N, K); for two classes scikit-learn's convention, z_1 - z_0 (N,), positive
        for classes_[1] (the log-odds, since softmax over two logits is the sigmoid of their difference)."""
        Z = self._logits(X)
        return Z[:, 1] - Z[:, 0] if Z.shape[1] == 2 else Z

    def sparsify(self):
        """coef_ as a scipy.sparse CSR matrix (as LinearClassifierMixin's SparseCoefMixin): worth it
        when most coefficients are 0 (an L1 fit); predictions are unchanged. Returns self."""
        from scipy import sparse

        check_is_fitted(self)
        self.coef_ = sparse.csr_matrix(self.coef_)
        return self

    def densify(self):
        """coef_ back to a dense array (the default after fit). Returns self."""
        check_is_fitted(self)
        if hasattr(self.coef_, "toarray"):
            self.coef_ = self.coef_.toarray()
        return self

    def predict_proba(self, X) -> np.ndarray:
        """softmax of the logits, row by row (max-shifted)."""
        return softmax(self._logits(X))

    def predict_log_proba(self, X) -> np.ndarray:
        """log softmax = z - logsumexp(z), never log(softmax(z))."""
        return log_softmax(self._logits(X))

    def predict(self, X) -> np.ndarray:
        best = np.argmax(self._logits(X), axis=1)
        return self.classes_[best]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class SoftmaxRegressionCV(SoftmaxRegression):
    """SoftmaxRegression whose penalty is chosen by stratified k-fold cross-validation over a
    warm-started path (:func:`softreg.model.solve.path.cross_validate_penalty`), then fitted on
    all rows at the choice, as LogisticRegressionCV and cv.glmnet do.

    Parameters beyond SoftmaxRegression's (which has ``l1`` and ``l2``; here they are chosen):

    l1_ratio : the mix of the total strength lambda: l1 = lambda l1_ratio, l2 = lambda (1 -
        l1_ratio); 0 (the default) is ridge, 1 the lasso (glmnet's alpha).
    folds : stratified folds, seeded by ``random_state``.
    select : "min" (the least mean held-out log loss) or "1se" (the largest penalty within one
        standard error of it).
    lambdas : the grid of total strengths (None: ``n_values`` strengths over ``decades`` decades
        (None: 6 for ridge, 4 with an L1 term) down from a top derived from the data); extended past
        an edge that holds the minimum.

    Attributes after fit: ``lambdas_`` (the grid, descending), ``cv_scores_`` (folds x grid,
    held-out log loss), ``lambda_`` (the choice), ``l1_`` and ``l2_`` (the penalties it means),
    ``path_`` (the PenaltyPath).
    """

    def __init__(self, l1_ratio: float = 0.0, grouped: bool = False, folds: int = 5, select: str = "min",
                 lambdas=None, n_values: int = 20, decades=None, lr="auto", momentum="auto", batch_size=None,
                 schedule: str = "constant", max_epochs: int = 1000, tol: float = 1e-5, patience=None,
                 standardize: bool = True, class_weight=None, dtype: str | None = None, random_state: int = 0,
                 warm_start: bool = False, fit_intercept: bool = True):
        # Not super().__init__: it would set l1 and l2, which here fit chooses (l1_, l2_).
        self.lr, self.momentum, self.batch_size, self.schedule = lr, momentum, batch_size, schedule
        self.max_epochs, self.tol, self.patience, self.standardize = max_epochs, tol, patience, standardize
        self.class_weight, self.dtype, self.random_state, self.warm_start = class_weight, dtype, random_state, warm_start
        self.fit_intercept = fit_intercept
        self.l1_ratio = l1_ratio
        self.grouped = grouped
        self.folds = folds
        self.select = select
        self.lambdas = lambdas
        self.n_values = n_values
        self.decades = decades

    def _check_penalty(self) -> None:
        from softreg.model.solve.path import SELECTIONS, check_mix

        _check_grouped(self.grouped)
        check_mix(self.l1_ratio, self.grouped)
        if self.fit_intercept is not True:
            raise ValueError(f"SoftmaxRegressionCV fits an intercept (its path is solved with one); got fit_intercept="
                             f"{self.fit_intercept!r}: choose the penalty with fit_intercept=True, or give "
                             "SoftmaxRegression(fit_intercept=False) an l2")
        if self.select not in SELECTIONS:
            raise ValueError(f"select must be 'min' or '1se', got {self.select!r}")
        if not (isinstance(self.n_values, (int, np.integer)) and self.n_values >= 1):
            raise ValueError(f"n_values must be a positive integer, got {self.n_values!r}")

    def _penalties(self) -> tuple[float, float]:
        return float(self.l1_), float(self.l2_)

    def _choose_penalty(self, X, y_index, weights) -> None:
        from softreg.model.solve.path import cross_validate_penalty

        path = cross_validate_penalty(X, y_index, len(self.classes_), sample_weight=weights, l1_ratio=self.l1_ratio,
                                      grouped=bool(self.grouped), folds=self.folds, n_values=self.n_values,
                                      decades=self.decades, select=self.select, seed=self.random_state,
                                      settings=self._settings(), standardize=self.standardize, grid=self.lambdas)
        self.path_ = path
        self.lambdas_ = np.asarray(path.strength)
        self.cv_scores_ = np.asarray(path.fold_loss)
        self.lambda_ = path.chosen
        self.l1_, self.l2_ = path.chosen_l1, path.chosen_l2

    def fit_engine(self, engine, classes, **kwargs):
        raise ValueError("SoftmaxRegressionCV cross-validates rows in memory (fit); on a storage engine, choose the "
                         "penalty with cross_validate_engine, or give SoftmaxRegression numbers")
