"""Standard errors of the unpenalized fit, as statsmodels' MNLogit and Stata's mlogit give them.

The derivation's next step (docs/derivation.md). In the reference-category form the logits of a
row x~ = (1, x) (raw features) are z_r = 0 for the reference class r and z_k = x~ beta_k for the
other K - 1 classes, beta_k = (b_k - b_r, w_k - w_r): the same probabilities as softreg's
symmetric form, since softmax is invariant to a common shift. With q_i the probabilities of the
K - 1 non-reference classes and y_i their one-hot labels:

    score      g_i = (y_i - q_i) kron x~_i                       (step 3 of the derivation: s - y)
    Hessian    -sum_i (diag(q_i) - q_i q_i^T) kron x~_i x~_i^T   (step 1: the softmax Jacobian)

The observed information I is minus the Hessian of the log-likelihood; Cov = I^-1 (``robust``:
the sandwich I^-1 (sum_i g_i g_i^T) I^-1, White's HC0). Both, and everything else the table
needs (the log-likelihood, the class counts, the columns' spread), are sums over rows:
:func:`summary_block_sums` takes one block of rows, so an engine sums them where the rows live
(``engine.map_blocks``) and no (N, P) array, nor all of X, is ever formed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from softreg.model.math.softmax import softmax

# A coefficient whose standard error, in units of its column's standard deviation, exceeds this
# is not estimable from the data: its class is (nearly) separated by those features.
SEPARATED_SE = 1e3
# The information matrix is (K - 1)(D + 1) square; refused beyond this many bytes.
MAX_INFORMATION_BYTES = 1 << 30


class NotEstimable(ValueError):
    """The standard errors do not exist or mean nothing for this fit; the message says why."""


@dataclass
class CoefficientSummary:
    """Per non-reference class k (columns) and parameter j (rows: the intercept, then features):
    coefficients, standard errors, z, two-sided p and the 95% interval; and the fit's statistics."""

    classes: list  # the K - 1 non-reference classes, in order
    reference: object
    names: list[str]  # "const", then the feature names
    coef: np.ndarray  # (D + 1, K - 1)
    se: np.ndarray
    z: np.ndarray
    p: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_obs: int
    llf: float
    llnull: float
    llr: float
    llr_df: int
    llr_pvalue: float
    prsquared: float
    aic: float
    bic: float
    robust: bool

    def relative_risks(self) -> dict:
        """exp(coef) (the relative-risk ratios), their delta-method standard errors exp(coef) se and
        the interval's ends exponentiated (z and p are the coefficients')."""
        ratio = np.exp(self.coef)
        return {"rrr": ratio.tolist(), "rrr_se": (ratio * self.se).tolist(), "rrr_lower": np.exp(self.lower).tolist(),
                "rrr_upper": np.exp(self.upper).tolist()}

    def to_dict(self) -> dict:
        arrays = {key: getattr(self, key).tolist() for key in ("coef", "se", "z", "p", "lower", "upper")}
        return {"classes": [_plain(c) for c in self.classes], "reference": _plain(self.reference), "names": self.names,
                **arrays, "n_obs": self.n_obs, "llf": self.llf, "llnull": self.llnull, "llr": self.llr,
                "llr_df": self.llr_df, "llr_pvalue": self.llr_pvalue, "prsquared": self.prsquared,
                "aic": self.aic, "bic": self.bic,
                "covariance": "HC0 (sandwich)" if self.robust else "observed information"}


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def reference_coefficients(W_raw: np.ndarray, b_raw: np.ndarray, ref: int) -> np.ndarray:
    """beta (D + 1, K - 1): column k is (b_k - b_r, w_k - w_r) for each class k != r."""
    others = [k for k in range(W_raw.shape[1]) if k != ref]
    return np.vstack([b_raw[None, others] - b_raw[ref], W_raw[:, others] - W_raw[:, [ref]]])


@dataclass
class SummarySums:
    """What the table needs from the rows, as sums over them (added block by block)."""

    information: np.ndarray  # (P, P): sum_i (diag(q_i) - q_i q_i^T) kron x~_i x~_i^T
    meat: np.ndarray | None  # (P, P): sum_i g_i g_i^T (robust only)
    n_rows: int
    loglik: float  # sum_i log p_i[y_i]
    counts: np.ndarray  # (K,) rows per class
    lowest_own: np.ndarray  # (K,) min over class k's rows of p_ik (inf: none)
    highest_other: np.ndarray  # (K,) max over the other rows of p_ik (-inf: none)
    column_sum: np.ndarray  # (D,) sum_i x_i, and below sum_i x_i^2, min and max: the columns' spread
    column_squares: np.ndarray
    column_min: np.ndarray
    column_max: np.ndarray

    def __add__(self, other: "SummarySums") -> "SummarySums":
        return SummarySums(self.information + other.information,
                           None if self.meat is None else self.meat + other.meat, self.n_rows + other.n_rows,
                           self.loglik + other.loglik, self.counts + other.counts,
                           np.minimum(self.lowest_own, other.lowest_own),
                           np.maximum(self.highest_other, other.highest_other), self.column_sum + other.column_sum,
                           self.column_squares + other.column_squares, np.minimum(self.column_min, other.column_min),
                           np.maximum(self.column_max, other.column_max))

    def column_std(self) -> np.ndarray:
        mean = self.column_sum / self.n_rows
        return np.sqrt(np.clip(self.column_squares / self.n_rows - mean * mean, 0.0, None))


def summary_block_sums(rows, y_block: np.ndarray, weight, W_raw: np.ndarray, b_raw: np.ndarray, keep: np.ndarray,
                       ref: int, robust: bool) -> SummarySums:
    """The :class:`SummarySums` of one block of raw rows (dense or CSR, (B, D_all)) with labels
    ``y_block`` (class indices); rows of weight 0 are not training rows and are left out. The
    probabilities are the model's (all D_all columns, W_raw (D_all, K)); the design is the
    columns ``keep`` (each categorical column's base level left out)."""
    rows = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows)
    rows = np.asarray(rows, dtype=np.float64)
    if np.ndim(weight):
        training = np.asarray(weight) > 0
        rows, y_block = rows[training], np.asarray(y_block)[training]
    n_rows, n_classes = len(rows), len(b_raw)
    P = softmax(rows @ W_raw + b_raw)  # (B, K)
    X = rows[:, keep]
    others = [k for k in range(n_classes) if k != ref]
    m, width = len(others), X.shape[1] + 1
    information = np.zeros((m * width, m * width))
    Xt = np.hstack([np.ones((n_rows, 1)), X])  # (B, D + 1): x~
    q = P[:, others]  # (B, K - 1)
    for a in range(m):
        for c in range(a, m):
            curvature = q[:, a] * ((a == c) - q[:, c])  # (diag(q) - q q^T)_ac per row
            part = Xt.T @ (Xt * curvature[:, None])
            information[a * width:(a + 1) * width, c * width:(c + 1) * width] = part
            if c != a:
                information[c * width:(c + 1) * width, a * width:(a + 1) * width] = part.T
    meat = None
    if robust:
        residual = (y_block[:, None] == np.asarray(others)[None, :]) - q  # (B, K - 1): y - q
        scores = (residual[:, :, None] * Xt[:, None, :]).reshape(n_rows, m * width)  # g_i, class-major
        meat = scores.T @ scores
    own = y_block[:, None] == np.arange(n_classes)[None, :]  # (B, K)
    return SummarySums(
        information, meat, n_rows,
        float(np.sum(np.log(np.clip(P[np.arange(n_rows), y_block], np.finfo(float).tiny, None)))),
        np.bincount(y_block, minlength=n_classes), np.where(own, P, np.inf).min(axis=0, initial=np.inf),
        np.where(own, -np.inf, P).max(axis=0, initial=-np.inf), X.sum(axis=0), (X * X).sum(axis=0),
        X.min(axis=0, initial=np.inf), X.max(axis=0, initial=-np.inf))


def check_size(n_classes: int, n_features: int) -> None:
    side = (n_classes - 1) * (n_features + 1)
    if side * side * 8 > MAX_INFORMATION_BYTES:
        raise NotEstimable(f"the information matrix would be {side:,} x {side:,} ({_bytes(side * side * 8)}), more "
                           f"than the {_bytes(MAX_INFORMATION_BYTES)} a dense matrix may take here; select fewer "
                           "features or classes")


def _bytes(count: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:,} bytes"


def covariance(information: np.ndarray, meat: np.ndarray | None, names: list[str], constant: list[str]) -> np.ndarray:
    """I^-1 (or the sandwich); NotEstimable naming the columns when I is singular (``constant``:
    the columns that hold one value)."""
    values, vectors = np.linalg.eigh(information)
    if values[0] <= 1e-10 * max(values[-1], np.finfo(float).tiny):
        width = len(names)
        null = np.abs(vectors[:, 0]).reshape(-1, width).max(axis=0)  # per parameter row, over equations
        involved = constant or [names[j] for j in np.flatnonzero(null > 0.1)]
        raise NotEstimable(f"the information matrix is singular (smallest eigenvalue {values[0]:.3g} against "
                           f"{values[-1]:.3g}): {'constant' if constant else 'collinear'} columns "
                           f"{', '.join(repr(name) for name in involved)}; leave {'them' if len(involved) > 1 else 'it'} "
                           "out (for collinear columns, all but one) and train again")
    inverse = (vectors / values) @ vectors.T
    return inverse if meat is None else inverse @ meat @ inverse


def summary_sums(engine, W_raw: np.ndarray, b_raw: np.ndarray, keep: np.ndarray, reference: int,
                 robust: bool) -> SummarySums:
    """The :class:`SummarySums` of an engine's rows (those of weight > 0), one block at a time
    where the engine keeps them, added in block order."""
    parts = engine.map_blocks(summary_block_sums, W_raw, b_raw, keep, reference, robust)
    return sum(parts[1:], parts[0])


def summarize(X, y: np.ndarray, W_raw: np.ndarray, b_raw: np.ndarray, classes, feature_names: list[str], *,
              reference: int = 0, robust: bool = False) -> CoefficientSummary:
    """The coefficient table of an unpenalized fit at its estimate (W_raw (D, K), b_raw (K,) on raw
    features) on its training rows X (N, D), y (N,) class indices, in memory."""
    from softreg.model.engines import MemoryEngine

    check_size(len(b_raw), X.shape[1])
    with MemoryEngine(X, np.asarray(y), n_classes=len(b_raw)) as engine:
        sums = summary_sums(engine, W_raw, b_raw, np.arange(X.shape[1]), reference, robust)
    return summary_from_sums(sums, W_raw, b_raw, classes, feature_names, reference=reference, robust=robust)


def summary_from_sums(sums: SummarySums, W_raw: np.ndarray, b_raw: np.ndarray, classes, feature_names: list[str], *,
                      reference: int = 0, robust: bool = False) -> CoefficientSummary:
    """The coefficient table from the rows' :class:`SummarySums` (W_raw (D, K), b_raw (K,): the
    estimate on the design's raw columns ``feature_names``)."""
    from scipy import stats

    n_rows, n_features, n_classes = sums.n_rows, W_raw.shape[0], len(b_raw)
    check_size(n_classes, n_features)
    names = ["const", *feature_names]
    spread = sums.column_std()
    _refuse_separated_class(sums, W_raw, spread, feature_names, classes)
    others = [k for k in range(n_classes) if k != reference]
    beta = reference_coefficients(W_raw, b_raw, reference)  # (D + 1, K - 1)
    constant = [feature_names[j] for j in range(n_features) if sums.column_min[j] == sums.column_max[j]]
    cov = covariance(sums.information, sums.meat, names, constant)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None)).reshape(len(others), n_features + 1).T  # (D + 1, K - 1)
    _refuse_separated(se, spread, names, [classes[k] for k in others])
    z = beta / se
    p = 2 * stats.norm.sf(np.abs(z))
    half = stats.norm.ppf(0.975) * se
    counts = sums.counts
    llf = sums.loglik
    present = counts > 0
    llnull = float(np.sum(counts[present] * np.log(counts[present] / n_rows)))
    n_params = (n_classes - 1) * (n_features + 1)
    llr = 2 * (llf - llnull)
    df = (n_classes - 1) * n_features
    return CoefficientSummary(
        classes=[classes[k] for k in others], reference=classes[reference], names=names, coef=beta, se=se, z=z, p=p,
        lower=beta - half, upper=beta + half, n_obs=n_rows, llf=llf, llnull=llnull, llr=llr, llr_df=df,
        llr_pvalue=float(stats.chi2.sf(llr, df)), prsquared=1 - llf / llnull if llnull else math.nan,
        aic=-2 * llf + 2 * n_params, bic=-2 * llf + math.log(n_rows) * n_params, robust=robust)


def _refuse_separated_class(sums: SummarySums, W_raw: np.ndarray, spread: np.ndarray, feature_names: list[str],
                            classes) -> None:
    """A class whose every row the fit gives a higher probability of it than any other row has:
    the fitted scores separate it, the likelihood keeps rising along them, and the maximum does
    not exist (the descent only stopped at its tolerance). The features named are those whose
    coefficients for the class, in column standard deviations, are largest."""
    for k in range(len(sums.counts)):
        if 0 < sums.counts[k] < sums.n_rows and sums.lowest_own[k] > sums.highest_other[k]:
            weight = np.abs(W_raw[:, k] - W_raw.mean(axis=1)) * spread
            named = [feature_names[j] for j in np.argsort(-weight)[:3] if weight[j] >= 0.5 * weight.max()]
            raise NotEstimable(f"class {_plain(classes[k])!r} is separated from the others (every one of its rows has a higher "
                               f"fitted probability of it than any other row), mostly by {', '.join(map(repr, named))}: "
                               "the maximum-likelihood estimate does not exist (its coefficients grow without bound), "
                               "and neither do standard errors. Drop those features, merge the class, or fit a "
                               "penalized model (whose standard errors this does not give)")


def _refuse_separated(se: np.ndarray, column_std: np.ndarray, names: list[str], others) -> None:
    """Standard errors far beyond the columns' own spread: the likelihood is flat along them, the
    fit (nearly) separates a class, and the numbers would be noise (statsmodels prints them)."""
    spread = np.concatenate([[1.0], column_std])[:, None]  # the intercept in its own units
    scaled = se * np.where(spread > 0, spread, 1.0)
    if np.all(np.isfinite(scaled)) and scaled.max() <= SEPARATED_SE:
        return
    worst = int(np.nanargmax(np.where(np.isfinite(scaled), scaled, np.inf).max(axis=0)))
    features = [names[j] for j in np.flatnonzero(~(scaled[:, worst] <= SEPARATED_SE))]
    raise NotEstimable(f"class {_plain(others[worst])!r} is (nearly) separated from the reference by {', '.join(map(repr, features))}: "
                       f"standard errors reach {np.nanmax(np.where(np.isfinite(scaled), scaled, np.nan)):.3g} column "
                       "standard deviations, so the estimate is not determined by the data. Drop those features, merge "
                       "the class, or fit a penalized model (whose standard errors this does not give)")
