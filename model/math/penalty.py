"""The non-smooth penalties and their proximal maps: L1 (lasso) and the multinomial group lasso.

The objective with an L1 term is F(W, b) = f(W, b) + h(W): f is the smooth part of step 4 of
``docs/derivation.md`` (mean cross-entropy + l2/2 ||W||_F^2, whose gradient the engines compute)
and h the penalty on W (D, K), never on the bias b:

    lasso     h(W) = l1 sum_jk |W_jk|
    grouped   h(W) = l1 sum_j ||W_j,:||_2     (feature j's K coefficients enter or leave together)

h has no gradient where coefficients are 0, so the descent step is a proximal gradient step:

    W+ = prox_{t h}(W - t dW),   prox_{t h}(V) = argmin_U  1/2 ||U - V||^2 + t h(U)

which is the gradient step followed by the map below; with h = 0 it is the gradient step itself.
Both maps set coefficients to exactly 0, so a fitted model's zeros are zeros.

The convergence measure is the size of the gradient mapping G_t(W) = (W - prox_{t h}(W - t dW))/t:
it is 0 exactly at a minimizer of F (the optimality condition 0 in dW + dh(W)), and it is dW when
h = 0, so the stop test is the smooth one's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def soft_threshold(V: np.ndarray, threshold: float) -> np.ndarray:
    """prox of threshold |.|, entrywise: sign(v) max(|v| - threshold, 0).

    Per entry, argmin_u 1/2 (u - v)^2 + threshold |u|: for u != 0 the derivative u - v +
    threshold sign(u) = 0 gives u = v - threshold sign(v), which keeps the sign of v only while
    |v| > threshold; otherwise 0 is the minimizer (the subgradient [-threshold, threshold] of
    threshold |u| at 0 contains v)."""
    return np.sign(V) * np.maximum(np.abs(V) - threshold, 0.0)


def group_soft_threshold(V: np.ndarray, threshold: float) -> np.ndarray:
    """prox of threshold ||.||_2 on each row V_j,: (a feature's K coefficients): V_j (1 -
    threshold / ||V_j||)_+.

    The minimizer of 1/2 ||u - v||^2 + threshold ||u|| lies along v (any other direction only adds
    distance), so u = c v with c >= 0 minimizing 1/2 (c - 1)^2 ||v||^2 + threshold c ||v||:
    c = 1 - threshold / ||v|| when that is positive, else 0."""
    norms = np.sqrt(np.einsum("jk,jk->j", V, V))  # (D,)
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(norms > threshold, 1.0 - threshold / norms, 0.0)  # (D,)
    return V * shrink[:, None].astype(V.dtype)


@dataclass(frozen=True, eq=False)
class L1Penalty:
    """h(W) = strength sum_jk |W_jk| (lasso) or strength sum_j ||W_j,:||_2 (``grouped``).

    ``strength`` may be (D,), one per feature (row of W): a penalty on raw coefficients W / scale
    reads in standardized coordinates as strengths l1 / scale_j. Both maps stay exact per row."""

    strength: float | np.ndarray
    grouped: bool = False

    def value(self, W: np.ndarray) -> float:
        """h(W)."""
        if self.grouped:
            return float(np.sum(self.strength * np.sqrt(np.einsum("jk,jk->j", W, W))))
        return float(np.sum(self._per_row(self.strength) * np.abs(W)))

    def prox(self, V: np.ndarray, t: float) -> np.ndarray:
        """prox_{t h}(V): the map that follows a gradient step of size t."""
        if self.grouped:
            return group_soft_threshold(V, t * self.strength).astype(V.dtype, copy=False)
        return soft_threshold(V, self._per_row(t * self.strength)).astype(V.dtype, copy=False)

    @staticmethod
    def _per_row(strength):
        """A number as it is; per-feature strengths (D,) as a column that scales W's rows."""
        return strength[:, None] if np.ndim(strength) else strength

    def gradient_mapping(self, W: np.ndarray, dW: np.ndarray, t: float) -> np.ndarray:
        """G_t(W) = (W - prox_{t h}(W - t dW)) / t, with dW the smooth gradient at W: 0 exactly
        at the minimizer over W (see the module's docstring)."""
        return (W - self.prox(W - t * dW, t)) / t

    def zero_threshold(self, G0: np.ndarray) -> float:
        """The least strength at which W = 0 is optimal, given the smooth gradient G0 (D, K) at
        W = 0 (and the intercept at its optimum): 0 in G0 + dh(0) needs |G0_jk| <= strength for
        every entry (lasso), ||G0_j,:||_2 <= strength for every feature (grouped). glmnet's
        lambda_max is this divided by alpha."""
        if self.grouped:
            return float(np.sqrt(np.einsum("jk,jk->j", G0, G0)).max(initial=0.0))
        return float(np.abs(G0).max(initial=0.0))


def penalty_or_none(l1, grouped: bool = False) -> L1Penalty | None:
    """The L1 term of a run (``l1`` a number or (D,) per-feature strengths), or None when l1 = 0
    (the smooth objective alone)."""
    if np.ndim(l1):
        return L1Penalty(np.asarray(l1, dtype=np.float64), bool(grouped)) if np.any(np.asarray(l1) > 0) else None
    return L1Penalty(float(l1), bool(grouped)) if l1 > 0 else None


def features_in_use(W: np.ndarray) -> dict:
    """The zero pattern of W (D, K): per class, how many features have a nonzero coefficient,
    and the features no class uses (their rows are all exactly 0)."""
    nonzero = W != 0  # (D, K)
    return {"per_class": nonzero.sum(axis=0).astype(int).tolist(),
            "unused": np.flatnonzero(~nonzero.any(axis=1)).astype(int).tolist()}
