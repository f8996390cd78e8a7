"""Numerical proof of the derivation: central finite differences against every step.

``check_derivation`` compares each analytic result of DERIVATION.md with central
differences computed in float64,

    n_i = (f(theta + eps e_i) - f(theta - eps e_i)) / (2 eps)        error O(eps^2),

and judges each entry by |a - n| <= atol + rtol |n|. It returns a structured report
(one :class:`StepCheck` per step) and prints nothing; the CLI renders it.

Step 4 is checked on what training runs: a memory engine's block pass
(:meth:`softreg.model.engines.MemoryEngine.evaluate`: :func:`~softreg.model.math.linear.block_sums`
per block, with the one pointwise kernel
:func:`~softreg.model.math.softmax.cross_entropy_and_logit_gradient_t`, then the one reduction
:func:`~softreg.model.math.linear.add_block_sums` and
:func:`~softreg.model.math.linear.objective_from_sums`), over blocks smaller than the batch and
with the standardization folded into the weights, so the fold's chain rule
(:func:`~softreg.model.math.linear.unfold_gradient`) is checked too. The numeric side is
finite differences of :func:`~softreg.model.math.linear.objective` on the standardized rows,
which shares no code with that kernel. Steps 1-3 look their functions up in this module's
namespace at call time, so a test can monkeypatch them with a wrong formula.

Why one module of about 540 lines: the checks and the learner's walk (``explain_derivation``)
take each step's function from this one namespace, so a formula patched wrong here fails both
the check and the explanation, which is what the tests patching it rely on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from softreg.model.engines import MemoryEngine
from softreg.model.math.linear import loss_and_gradient, objective
from softreg.model.math.scaling import weighted_mean_and_scale
from softreg.model.math.softmax import (
    log_softmax,
    loss_grad_wrt_logits,
    loss_grad_wrt_softmax,
    softmax,
    softmax_jacobian,
)

__all__ = [
    "FLOAT32_TOLERANCE_FACTOR",
    "GradcheckReport",
    "StepCheck",
    "central_difference",
    "check_derivation",
    "eps_sweep",
    "explain_derivation",
    "random_problem",
]

# float32 carries ~7 significant digits against float64's ~16: an analytic float32 gradient
# summed over N rows is typically off by 1e-6..1e-5 relative, so float64 tolerances would
# report false failures. Scaling both tolerances by 1e3 still catches every real bug the
# check is for (a wrong sign, a missing 1/N or l2 term is off by order one).
FLOAT32_TOLERANCE_FACTOR = 1e3
# Step 4 runs two passes over the batch per checked entry (up to 1,000 of W's): beyond this many
# entries (N x D, dense) a check takes minutes, and a sparse file's index of 9,999,999 would be
# densified into gigabytes first.
MAX_BATCH_ENTRIES = 20_000_000


@dataclass(frozen=True)
class StepCheck:
    """The verdict on one derivation step: worst errors over all compared entries."""

    step: str
    formula: str
    max_abs_error: float
    max_rel_error: float
    atol: float
    rtol: float
    passed: bool
    worst_analytic: float
    worst_numeric: float
    entries: int


@dataclass
class GradcheckReport:
    """Every step's check, with the problem it ran on."""

    checks: list[StepCheck]
    eps: float
    dtype: str
    tolerance_note: str
    problem: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed_steps(self) -> list[str]:
        return [check.step for check in self.checks if not check.passed]

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "eps": self.eps,
            "dtype": self.dtype,
            "tolerance_note": self.tolerance_note,
            "problem": self.problem,
            "checks": [asdict(check) for check in self.checks],
        }


def central_difference(
    f, theta: np.ndarray, eps: float, entries: np.ndarray | None = None, *, relative: bool = False
) -> np.ndarray:
    """Numerical derivative of f at theta by central differences, in float64.

    f maps an array shaped like theta to a scalar or an array; the result has shape
    f(theta).shape + theta.shape (a gradient for scalar f, a Jacobian for vector f).
    With ``entries`` (indices into theta.ravel()) only those partial derivatives are
    computed, and the result has shape f(theta).shape + (len(entries),).
    With ``relative=True`` the step for entry i is eps |theta_i| (eps where theta_i = 0):
    for a probability of 1e-9, an absolute step of 1e-6 would leave the domain of log.
    """
    theta = np.array(theta, dtype=np.float64)
    flat = theta.reshape(-1)
    first = np.asarray(f(theta), dtype=np.float64)
    selected = np.arange(flat.size) if entries is None else np.asarray(entries)
    out = np.empty(first.shape + (selected.size,), dtype=np.float64)
    for j, i in enumerate(selected):
        saved = flat[i]
        h = eps * abs(saved) if relative and saved != 0 else eps
        flat[i] = saved + h
        f_plus = np.asarray(f(theta), dtype=np.float64)
        flat[i] = saved - h
        f_minus = np.asarray(f(theta), dtype=np.float64)
        flat[i] = saved
        out[..., j] = (f_plus - f_minus) / (2.0 * h)
    if entries is not None:
        return out
    return out.reshape(first.shape + theta.shape)


def _compare(step: str, formula: str, analytic, numeric, atol: float, rtol: float) -> StepCheck:
    """Judge analytic against numeric entry by entry: |a - n| <= atol + rtol |n|."""
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    if a.shape != n.shape:
        raise ValueError(f"{step}: analytic shape {a.shape} differs from numeric shape {n.shape}")
    abs_err = np.abs(a - n)
    finite = np.isfinite(abs_err).all()
    # Relative error only where the reference is well above the absolute noise floor.
    significant = np.abs(n) > 100 * atol
    rel_err = np.zeros_like(abs_err)
    rel_err[significant] = abs_err[significant] / np.abs(n[significant])
    worst = int(np.argmax(np.where(np.isfinite(abs_err), abs_err, np.inf))) if a.size else 0
    passed = bool(finite and np.all(abs_err <= atol + rtol * np.abs(n)))
    return StepCheck(
        step=step,
        formula=formula,
        max_abs_error=float(abs_err.max()) if a.size else 0.0,
        max_rel_error=float(rel_err.max()) if a.size else 0.0,
        atol=atol,
        rtol=rtol,
        passed=passed,
        worst_analytic=float(a[worst]) if a.size else 0.0,
        worst_numeric=float(n[worst]) if a.size else 0.0,
        entries=int(a.size),
    )


def random_problem(n_samples: int, n_features: int, n_classes: int, seed: int):
    """A random batch for the checks: X (N, D) with columns of other means and spreads (so
    standardizing it is not the identity), and labels covering the classes.

    Weights and parameters are drawn at a generic point (not W = 0, where many entries of
    the gradient coincide and a wrong formula can hide).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)) * rng.uniform(0.5, 3.0, n_features) + rng.normal(0, 2, n_features)
    y = rng.integers(0, n_classes, size=n_samples)
    y[: min(n_classes, n_samples)] = np.arange(min(n_classes, n_samples))
    return X, y


def _parameters(n_features: int, n_classes: int, seed: int):
    rng = np.random.default_rng(seed + 1)
    # Logits grow like sqrt(D): shrink W for wide problems so the softmax stays away from
    # exact 0 and 1, where step 2's log has no finite difference.
    W = 0.5 * min(1.0, (8.0 / n_features) ** 0.5) * rng.standard_normal((n_features, n_classes))
    b = 0.5 * rng.standard_normal(n_classes)
    return W, b


def _sample_weights(n_samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 2).uniform(0.5, 2.0, size=n_samples)


def check_batch_size(n_samples: int, n_features: int, source: str) -> None:
    """ValueError when a batch of n_samples x n_features is too large to check (MAX_BATCH_ENTRIES)."""
    if n_samples * n_features > MAX_BATCH_ENTRIES:
        raise ValueError(f"{source} is {n_samples:,} x {n_features:,} = {n_samples * n_features:,} entries when dense; "
                         f"gradcheck checks batches of at most {MAX_BATCH_ENTRIES:,} (two passes per checked entry): "
                         "check a smaller dataset or the random batch")


def check_settings(*, l2: float, seed: int, eps: float = 1e-6, rtol: float = 0.0, atol: float = 0.0) -> None:
    """ValueError naming the setting when one cannot give a meaningful check: an infinite
    penalty makes J infinite, not a wrong derivation."""
    if not (math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2}")
    if not (math.isfinite(eps) and 0 < eps <= 0.1):
        raise ValueError(f"eps must be a number in (0, 0.1], got {eps}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer from 0 to 4294967295 (2^32 - 1), got {seed}")


def check_derivation(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    l2: float = 0.1,
    eps: float = 1e-6,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    seed: int = 0,
    dtype: str = "float64",
    max_pointwise_samples: int = 20,
    max_weight_entries: int = 1000,
    standardize: bool = True,
) -> GradcheckReport:
    """Check steps 1-4 of the derivation on the batch (X, y) with K = n_classes.

    Steps 1-3 run on the logits of up to ``max_pointwise_samples`` rows; step 4 on the whole
    batch, with the L2 penalty and random positive sample weights, through a memory engine
    with blocks of about a third of the rows and, with ``standardize``, the rows' weighted
    standardization folded into the weights (training's own path). With ``dtype="float32"``
    the analytic side is computed in float32 and both tolerances are multiplied by
    FLOAT32_TOLERANCE_FACTOR; the numeric side is always float64.
    """
    check_settings(l2=l2, eps=eps, rtol=rtol, atol=atol, seed=seed)
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    analytic_dtype = np.dtype(dtype)
    if dtype == "float32":
        atol, rtol = atol * FLOAT32_TOLERANCE_FACTOR, rtol * FLOAT32_TOLERANCE_FACTOR
        note = f"float32: tolerances scaled x{FLOAT32_TOLERANCE_FACTOR:g} (float32 keeps ~7 digits, float64 ~16)"
    else:
        note = "float64"
    X_raw = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    n_samples, n_features = X_raw.shape
    W, b = _parameters(n_features, n_classes, seed)
    sample_weight = _sample_weights(n_samples, seed)
    standardization = weighted_mean_and_scale(X_raw, sample_weight) if standardize else None
    # The reference rows: standardized explicitly, as the fold promises to train on.
    X = X_raw if standardization is None else (X_raw - standardization[0]) / standardization[1]

    Z = X[:max_pointwise_samples] @ W + b  # (n, K) logits of the pointwise checks
    checks = _pointwise_checks(Z, y[:max_pointwise_samples], n_classes, eps, atol, rtol, analytic_dtype)
    batch, n_blocks = _batch_check(X_raw, X, y, n_classes, W, b, l2, sample_weight, standardization, eps, atol,
                                   rtol, analytic_dtype, np.random.default_rng(seed + 3), max_weight_entries)
    problem = {"samples": int(n_samples), "features": int(n_features), "classes": int(n_classes), "l2": float(l2),
               "seed": int(seed), "sample_weights": "uniform(0.5, 2.0)", "standardized": standardization is not None,
               "engine_blocks": n_blocks}
    return GradcheckReport(checks=[*checks, batch], eps=eps, dtype=dtype, tolerance_note=note, problem=problem)


def _pointwise_checks(Z, y, n_classes, eps, atol, rtol, analytic_dtype) -> list[StepCheck]:
    """Steps 1-3 on each row's logits z: the Jacobian, dL/ds, and both forms of dL/dz."""
    onehots = np.eye(n_classes)[y]  # (n, K), small: only for steps 1-3
    jac_a, jac_n, ds_a, ds_n, chain_a, chain_sy, chain_n = [], [], [], [], [], [], []
    for z, y_onehot in zip(Z, onehots):
        z_a = z.astype(analytic_dtype)
        s = softmax(z)
        jac_a.append(softmax_jacobian(z_a))
        jac_n.append(central_difference(softmax, z, eps))
        ds_a.append(loss_grad_wrt_softmax(s.astype(analytic_dtype), y_onehot))
        ds_n.append(central_difference(lambda s_: -np.sum(y_onehot * np.log(s_)), s, eps, relative=True))
        J = softmax_jacobian(z_a)
        chain_a.append(J.T @ loss_grad_wrt_softmax(s.astype(analytic_dtype), y_onehot))
        chain_sy.append(loss_grad_wrt_logits(z_a, y_onehot))
        chain_n.append(central_difference(lambda z_: -np.sum(y_onehot * log_softmax(z_)), z, eps))
    # Step 3: both analytic forms (J^T dL/ds and s - y) against the same finite differences in z.
    chain = (np.concatenate([np.ravel(chain_a), np.ravel(chain_sy)]), np.concatenate([np.ravel(chain_n)] * 2))
    return [
        _compare("1. softmax Jacobian", "J = diag(s) - s sᵀ", jac_a, jac_n, atol, rtol),
        _compare("2. loss in softmax", "dL/ds = -y / s", ds_a, ds_n, atol, rtol),
        _compare("3. chain rule", "Jᵀ dL/ds = s - y = dL/dz", *chain, atol, rtol),
    ]


def _batch_check(X_raw, X, y, n_classes, W, b, l2, sample_weight, standardization, eps, atol, rtol, analytic_dtype,
                 rng, max_weight_entries) -> tuple[StepCheck, int]:
    """Step 4: the engine's gradient against finite differences of J on the standardized rows X."""
    dW_a, db_a, n_blocks = _engine_gradient(X_raw, y, n_classes, sample_weight, standardization, W, b, l2,
                                            analytic_dtype)
    # Each numeric entry costs two passes over X, so a wide problem checks a random subset
    # of W's entries (every bias entry is always checked).
    checked = np.arange(W.size) if W.size <= max_weight_entries else np.sort(
        rng.choice(W.size, size=max_weight_entries, replace=False)
    )
    # A central difference of J carries a rounding error of about eps_machine |J| / eps, which
    # grows with |J| (a large L2 term on many features): no formula can beat that floor.
    rounding_floor = 4 * np.finfo(np.float64).eps * max(abs(objective(W, b, X, y, l2, sample_weight)), 1.0) / eps
    dW_n = central_difference(lambda W_: objective(W_, b, X, y, l2, sample_weight), W, eps, entries=checked)
    db_n = central_difference(lambda b_: objective(W, b_, X, y, l2, sample_weight), b, eps)
    check = _compare("4. batch gradient", "dJ/dW = Xᵀ(P - Y)/N + l2 W, dJ/db = mean(P - Y)",
                     np.concatenate([np.ravel(dW_a)[checked], np.ravel(db_a)]), np.concatenate([dW_n, db_n.ravel()]),
                     max(atol, rounding_floor), rtol)
    return check, n_blocks


def _engine_gradient(X_raw, y, n_classes, sample_weight, standardization, W, b, l2, dtype):
    """dJ/dW, dJ/db as training computes them: a memory engine's block pass over the raw rows,
    in blocks of about a third of the batch, standardization folded in. Returns (dW, db, blocks)."""
    X_a = X_raw.astype(dtype)
    block_rows = max(1, -(-X_a.shape[0] // 3))
    engine = MemoryEngine(X_a, y, sample_weight.astype(dtype), n_classes=n_classes, block_rows=block_rows,
                          threads=2, standardization=standardization)
    with engine:
        at = engine.objective(W.astype(dtype), b.astype(dtype), l2, gradient=True)
    return at.dW, at.db, len(engine.ranges)


def eps_sweep(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    l2: float = 0.1,
    seed: int = 0,
    eps_values: np.ndarray | None = None,
    standardize: bool = True,
) -> dict:
    """Worst absolute error of steps 3 and 4 against central differences, for each eps.

    Truncation error falls as eps^2 and rounding error grows as 1e-16 / eps, so the error
    curve is a V whose bottom is the best eps (about 1e-5 for well-scaled float64 problems).
    Returns {"eps": [...], "step3": [...], "step4": [...], "best_eps_step3", "best_eps_step4"}.
    """
    if eps_values is None:
        eps_values = np.logspace(-1, -10, 19)
    X = np.asarray(X, dtype=np.float64)
    W, b = _parameters(X.shape[1], n_classes, seed)
    sample_weight = _sample_weights(X.shape[0], seed)
    if standardize:  # the same rows as check_derivation's step 4
        mean, scale = weighted_mean_and_scale(X, sample_weight)
        X = (X - mean) / scale
    z = X[0] @ W + b
    y_onehot = np.eye(n_classes)[y[0]]
    grad_z = loss_grad_wrt_logits(z, y_onehot)
    _, dW_a, db_a = loss_and_gradient(W, b, X, y, l2, sample_weight)
    step3, step4 = [], []
    for eps in eps_values:
        fd_z = central_difference(lambda z_: -np.sum(y_onehot * log_softmax(z_)), z, eps)
        step3.append(float(np.max(np.abs(grad_z - fd_z))))
        dW_n = central_difference(lambda W_: objective(W_, b, X, y, l2, sample_weight), W, eps)
        db_n = central_difference(lambda b_: objective(W, b_, X, y, l2, sample_weight), b, eps)
        step4.append(float(max(np.max(np.abs(dW_a - dW_n)), np.max(np.abs(db_a - db_n)))))
    eps_list = [float(e) for e in eps_values]
    return {
        "eps": eps_list,
        "step3": step3,
        "step4": step4,
        "best_eps_step3": eps_list[int(np.argmin(step3))],
        "best_eps_step4": eps_list[int(np.argmin(step4))],
    }



# ----------------------------------------------------------------------------------------------
# The worked example: one sample with K = 3, every number of the derivation written out.

EXPLAIN_TOLERANCE = 1e-7  # central differences at eps = 1e-6 agree to about 1e-10 on these small problems


@dataclass
class ExplainedStep:
    """One step of the worked example: its formula, the numbers, and the check that ends it."""

    title: str
    formula: str
    numbers: dict
    check: str  # what was compared with what
    max_error: float
    passed: bool


def explain_derivation(logits=None, label: int | None = None, *, n_classes: int = 3, seed: int = 0,
                       l2: float = 0.1, eps: float = 1e-6) -> list[ExplainedStep]:
    """The derivation worked through for one sample (``logits`` and ``label`` a learner chose,
    or drawn from ``seed``), then one batch step on 4 rows and 2 features, each step checked.

    Every analytic number comes from the functions training runs (:func:`softmax`,
    :func:`softmax_jacobian`, :func:`loss_grad_wrt_softmax`, :func:`loss_grad_wrt_logits`, a
    memory engine's block pass); beside them the formula is evaluated term by term here, and
    central differences give the numeric side. Logits far apart are fine: s is computed with
    the max shift, L and log s from log-softmax, and where s underflows to 0 the product
    (dL/ds)(ds/dz) is formed after the s that cancels, as the algebra does.
    """
    rng = np.random.default_rng(seed)
    z = (np.round(rng.normal(0.0, 1.5, size=n_classes), 2) if logits is None
         else np.asarray(logits, dtype=np.float64))
    K = len(z)
    label = int(rng.integers(K)) if label is None else int(label)
    y = np.eye(K)[label]
    steps = [_explain_softmax(z), _explain_jacobian(z, eps)]
    steps.append(_explain_loss(z, y, label, eps))
    steps.append(_explain_chain_rule(z, y, label, eps))
    steps.append(_explain_batch(rng, K, l2, eps))
    return steps


def _explain_softmax(z: np.ndarray) -> ExplainedStep:
    top = float(z.max())
    terms = [math.exp(float(value) - top) for value in z]  # e^{z_n - max}, one by one
    total = math.fsum(terms)
    by_hand = np.array([term / total for term in terms])
    s = softmax(z)
    error = float(np.abs(s - by_hand).max())
    return ExplainedStep("1. softmax with the max shift", "sₙ = e^(zₙ − max z) / Σⱼ e^(zⱼ − max z), j = 0..K−1",
                         {"z": z.tolist(), "max": top, "shifted": (z - top).tolist(), "exp_shifted": terms,
                          "sum": total, "s": s.tolist(), "s_by_hand": by_hand.tolist(), "sum_s": float(s.sum())},
                         "softmax (the training kernel's) against the terms written out", error,
                         bool(error <= EXPLAIN_TOLERANCE))


def _explain_jacobian(z: np.ndarray, eps: float) -> ExplainedStep:
    s = softmax(z)
    J = softmax_jacobian(z)
    J_numeric = central_difference(softmax, z, eps)
    cases = [["n = m: sₙ(1 − sₙ)" if n == m else "n ≠ m: −sₙ sₘ" for m in range(len(z))] for n in range(len(z))]
    by_case = np.array([[s[n] * (1 - s[n]) if n == m else -s[n] * s[m] for m in range(len(z))] for n in range(len(z))])
    error = float(max(np.abs(J - J_numeric).max(), np.abs(J - by_case).max()))
    return ExplainedStep("2. the softmax Jacobian", "∂sₙ/∂zₘ = sₙ(δₙₘ − sₘ), so J = diag(s) − s sᵀ",
                         {"J": J.tolist(), "J_numeric": J_numeric.tolist(), "cases": cases,
                          "J_by_case": by_case.tolist(), "column_sums": J.sum(axis=0).tolist()},
                         "formula against central differences of softmax, entry by entry", error,
                         bool(error <= EXPLAIN_TOLERANCE))


def _rounding_floor(value: float, eps: float) -> float:
    """What a central difference of a function of size |value| cannot resolve: about
    eps_machine |value| / eps of rounding (large logits make |L| large)."""
    return 4 * np.finfo(np.float64).eps * max(1.0, abs(value)) / eps


def _explain_loss(z: np.ndarray, y: np.ndarray, label: int, eps: float) -> ExplainedStep:
    s = softmax(z)
    log_s = log_softmax(z)
    loss = float(-log_s[label])
    # -1/s_label overflows once s_label underflows (logits far apart): it is -e^{-log s_label}.
    exponent = float(-log_s[label])
    if s[label] > np.finfo(np.float64).tiny and exponent < 700:
        with np.errstate(divide="ignore", invalid="ignore"):
            ds = loss_grad_wrt_softmax(s, y)
        ds = np.where((s == 0) & (y == 0), 0.0, ds)  # 0 / 0 where s_n underflowed: the term y_n log s_n is 0
        inside = s > 2 * eps  # where s ± eps stays a probability, the difference is defined
        numeric = np.zeros_like(s)
        numeric[inside] = central_difference(lambda part: -np.sum(y[inside] * np.log(part)), s[inside], eps,
                                             relative=True)
        error = float(np.abs(ds - numeric).max() / max(1.0, np.abs(numeric).max()))
        check = "∂L/∂s against central differences of L(s) = −Σ yₙ log sₙ (relative)"
        tolerance = EXPLAIN_TOLERANCE
    else:
        # On the log scale the step is still checkable: L = −u with u = log s_label, and
        # ∂L/∂u = s_label · ∂L/∂s_label = −1.
        # The function at s_label scaled to 1 (−y/s is homogeneous: f(c s) = f(s) / c) gives
        # s_label ∂L/∂s_label, which central differences of L = −u in u = log s_label give as −1.
        scaled = float(loss_grad_wrt_softmax(np.array([1.0]), np.array([1.0]))[0])
        ds = np.where(y > 0, -np.inf if scaled < 0 else np.inf, 0.0)
        numeric = central_difference(lambda u: -u[0], np.array([log_s[label]]), eps)
        error = float(abs(numeric[0] - scaled))
        check = ("s_label underflows to 0: s_label · ∂L/∂s_label (the function at s_label scaled to 1) against "
                 "central differences of L = −log s_label in log s_label")
        tolerance = EXPLAIN_TOLERANCE + _rounding_floor(loss, eps)
    return ExplainedStep("3. the loss and its gradient in s", "L = −log s_label;  ∂L/∂sₙ = −yₙ / sₙ",
                         {"y": y.tolist(), "label": label, "loss": loss,
                          "dL_ds": [float(v) if np.isfinite(v) else None for v in ds],
                          "dL_ds_label_exponent": exponent, "tolerance": tolerance},
                         check, error, bool(error <= tolerance))


def _explain_chain_rule(z: np.ndarray, y: np.ndarray, label: int, eps: float) -> ExplainedStep:
    s = softmax(z)
    J = softmax_jacobian(z)
    other = (label + 1) % len(z)
    # Σₙ (∂L/∂sₙ)(∂sₙ/∂zₘ): only n = label is non-zero, and its s_label cancels:
    # (−1/s_label) · s_label (δ_label,m − sₘ) = sₘ − δ_label,m.
    representable = s[label] > np.finfo(np.float64).tiny
    scaled = float(loss_grad_wrt_softmax(np.array([1.0]), np.array([1.0]))[0])  # s_ℓ ∂L/∂s_ℓ, for s_ℓ ≈ 0
    rows = {}
    for m in (label, other):
        rows[str(m)] = {"dL_ds_label": float(-1.0 / s[label]) if representable else None,
                        "J_label_m": float(J[label, m]),
                        "product": float((-1.0 / s[label]) * J[label, m]) if representable
                        else float(scaled * ((1.0 if m == label else 0.0) - s[m]))}
    if representable:
        with np.errstate(divide="ignore", invalid="ignore"):
            ds = loss_grad_wrt_softmax(s, y)
        chain = J.T @ np.where((s == 0) & (y == 0), 0.0, ds)  # Jᵀ ∂L/∂s, multiplied out in full
    else:
        # s_label underflowed: (∂L/∂s_ℓ)(∂s_ℓ/∂zₘ) = (s_ℓ ∂L/∂s_ℓ)(δ_ℓm − sₘ), s_ℓ cancelled before multiplying
        chain = scaled * (y - s)
    kernel = loss_grad_wrt_logits(z, y)
    loss = float(-log_softmax(z)[label])
    numeric = central_difference(lambda z_: -log_softmax(z_)[label], z, eps)
    error = float(max(np.abs(chain - numeric).max(), np.abs(kernel - numeric).max()))
    tolerance = EXPLAIN_TOLERANCE + _rounding_floor(loss, eps)
    return ExplainedStep("4. the chain rule", "∂L/∂zₘ = Σₙ (∂L/∂sₙ)(∂sₙ/∂zₘ), n = 0..K−1  =  sₘ − yₘ",
                         {"label": label, "rows": rows, "other": other, "J_transpose_dL_ds": chain.tolist(),
                          "s_minus_y": kernel.tolist(), "numeric": numeric.tolist(), "tolerance": tolerance},
                         "Jᵀ ∂L/∂s and s − y against central differences of L(z)", error, bool(error <= tolerance))


def _explain_batch(rng, n_classes: int, l2: float, eps: float) -> ExplainedStep:
    X = np.round(rng.normal(size=(4, 2)), 2)
    y = np.array([0, 1, 2, 0])[:4] % n_classes
    W = np.round(rng.normal(0.0, 0.5, size=(2, n_classes)), 2)
    b = np.round(rng.normal(0.0, 0.5, size=n_classes), 2)
    P = softmax(X @ W + b)
    Y = np.eye(n_classes)[y]
    dW_by_hand = X.T @ (P - Y) / len(X) + l2 * W
    db_by_hand = (P - Y).mean(axis=0)
    dW, db, _ = _engine_gradient(X, y, n_classes, np.ones(len(X)), None, W, b, l2, np.float64)
    dW_numeric = central_difference(lambda W_: objective(W_, b, X, y, l2), W, eps)
    db_numeric = central_difference(lambda b_: objective(W, b_, X, y, l2), b, eps)
    error = float(max(np.abs(dW - dW_numeric).max(), np.abs(db - db_numeric).max(),
                      np.abs(dW - dW_by_hand).max(), np.abs(db - db_by_hand).max()))
    return ExplainedStep("5. the batch step", "∂J/∂W = Xᵀ(P − Y)/N + l2 W;  ∂J/∂b = mean(P − Y)",
                         {"X": X.tolist(), "y": y.tolist(), "W": W.tolist(), "b": b.tolist(), "l2": l2,
                          "P": P.tolist(), "P_minus_Y": (P - Y).tolist(), "dW": np.asarray(dW).tolist(),
                          "db": np.asarray(db).tolist(), "dW_numeric": dW_numeric.tolist(),
                          "db_numeric": db_numeric.tolist()},
                         "the engines' kernel against Xᵀ(P − Y)/N + l2 W by hand and central differences of J",
                         error, bool(error <= EXPLAIN_TOLERANCE))
