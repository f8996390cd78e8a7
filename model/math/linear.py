"""The linear part of softmax regression: the batch objective of step 4 and its gradient.

    J(W, b) = sum_i w_i L_i + (l2 / 2) ||W||_F^2        (w_i = 1/N without sample weights)
    Z = X W + 1 b^T,   P = softmax(Z) row by row,   G = w_i (P_i - Y_i)
    dJ/dW = X^T G + l2 W
    dJ/db = sum_i G_i

Shapes: X (N, D) dense float64/float32 or scipy.sparse CSR, W (D, K), b (K,), y (N,)
integer class indices. The pointwise part (softmax, cross-entropy, G) lives in
:mod:`softreg.model.math.softmax`; here is only the chain rule through X W + b and the penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from softreg.model.math.softmax import cross_entropy, cross_entropy_and_logit_gradient_t, mean_weights


def logits(W: np.ndarray, b: np.ndarray, X) -> np.ndarray:
    """Z = X W + 1 b^T, shape (N, K): one matrix product, the bias added in place.

    For dense X the product is computed as Z^T = W^T X^T, a (K, N) array returned as its
    (N, K) transpose view: OpenBLAS runs this skinny product (K of 10 or so) about 1.3x faster
    in that orientation (measured 93 ms against 126 ms for a whole loss-and-gradient pass at
    200,000 x 256 x 10), and the softmax's per-row reductions then run along contiguous memory.
    """
    if isinstance(X, np.ndarray):
        Z = np.dot(np.ascontiguousarray(W.T), X.T).T  # (N, K) view of a C-ordered (K, N) array
        Z += b
        return Z
    Z = np.asarray(X @ W)  # a sparse X times a dense W is already dense; keep it an ndarray
    Z += b
    return Z


def penalty(W: np.ndarray, l2) -> float:
    """(l2 / 2) ||W||_F^2: the L2 term of J, on the weights only (the bias is unpenalized).

    ``l2`` may be (D,) strengths, one per feature: (1/2) sum_j l2_j ||W_j,:||^2. That is how a
    penalty on raw coefficients reads in standardized coordinates: with W_raw = W / scale,
    (l2/2) ||W_raw||^2 = (1/2) sum_j (l2 / scale_j^2) ||W_j,:||^2."""
    if np.ndim(l2):
        return 0.5 * float(np.einsum("j,jk,jk->", l2, W, W))
    if l2 == 0:
        return 0.0
    return 0.5 * l2 * float(np.vdot(W, W))


def penalty_gradient(W: np.ndarray, l2) -> np.ndarray | float:
    """d/dW of :func:`penalty`: l2 W, row j scaled by l2_j for per-feature strengths."""
    return l2[:, None] * W if np.ndim(l2) else l2 * W


def objective(W: np.ndarray, b: np.ndarray, X, y: np.ndarray, l2: float = 0.0, sample_weight=None) -> float:
    """J(W, b) alone: mean cross-entropy from the logits plus the L2 penalty (step 4)."""
    return cross_entropy(logits(W, b, X), y, sample_weight) + penalty(W, l2)


@dataclass(frozen=True)
class BlockSums:
    """The sums of one row block that the batch objective and its gradient are made of.

    loss = sum_{i in block} w_i L_i, dW_t = (X_B^T G_B)^T (K, D), db = sum_{i in block} G_i (K,),
    where G_i = w_i (P_i - Y_i). Summing these over disjoint blocks that cover all rows gives
    the data term of J and its gradient exactly (step 4 is a sum over rows). ``n_correct``
    counts weighted rows (w_i > 0) whose argmax is the true class (accuracy);
    ``n_unseparated`` counts weighted rows whose true class does not have the strictly largest
    logit: when it is 0 and l2 = 0, scaling (W, b) by c > 1 scales every margin by c and J falls
    toward 0 as c grows, so J has no minimizer (the data is linearly separable). Both are None
    unless asked for.
    """

    loss: float
    dW_t: np.ndarray | None
    db: np.ndarray | None
    n_correct: int | None = None
    n_unseparated: int | None = None


def block_sums(W_t: np.ndarray, b: np.ndarray, X_block, y_block: np.ndarray, row_weight, *,
               gradient: bool = True, count: bool = False) -> BlockSums:
    """Step 4 restricted to one block of rows, in one read of the block: what every engine runs.

    Z_B^T = W^T X_B^T + b 1^T is formed as a (K, B) array for the one pointwise kernel
    (:func:`~softreg.model.math.softmax.cross_entropy_and_logit_gradient_t`), and X_B is read a
    second time for X_B^T G_B while it is still in cache: this is what makes a pass over X cost
    about one read of X instead of two. ``W_t`` is W^T (K, D), contiguous; ``row_weight`` is 1/N
    (a number) or the block's normalized weights w_i / sum_j w_j (B,).
    """
    if isinstance(X_block, np.ndarray):
        Z_t = W_t @ X_block.T  # (K, B), C-ordered
    else:  # sparse rows: the product is dense (B, K); transposing it costs K x B, not B x D
        Z_t = np.ascontiguousarray(np.asarray(X_block @ W_t.T).T)
    Z_t += b[:, None]
    n_correct = n_unseparated = None
    if count:
        n_correct, n_unseparated = _margin_counts(Z_t, y_block, row_weight)
    loss, G_t = cross_entropy_and_logit_gradient_t(Z_t, y_block, row_weight, gradient=gradient)
    if not gradient:
        return BlockSums(loss, None, None, n_correct, n_unseparated)
    if isinstance(X_block, np.ndarray):
        dW_t = G_t @ X_block  # (K, D): X_B^T G_B, transposed
    else:
        dW_t = np.asarray(X_block.T @ G_t.T).T
    return BlockSums(loss, dW_t, G_t.sum(axis=1), n_correct, n_unseparated)


def _margin_counts(Z_t: np.ndarray, y_block: np.ndarray, row_weight) -> tuple[int, int]:
    """(weighted rows classified right, weighted rows not strictly separated) of one block."""
    n_rows = Z_t.shape[1]
    rows = np.arange(n_rows)
    row_max = Z_t.max(axis=0)  # (B,)
    right = Z_t.argmax(axis=0) == y_block
    n_correct = int(np.count_nonzero(right if np.ndim(row_weight) == 0 else right & (row_weight > 0)))
    # Strictly separated: the true logit is the maximum and no other logit ties it.
    strict = (Z_t[y_block, rows] >= row_max) & (np.count_nonzero(Z_t == row_max, axis=0) == 1)
    counted = strict | (np.asarray(row_weight) <= 0)
    return n_correct, int(n_rows - np.count_nonzero(counted))


def add_block_sums(parts: list[BlockSums]) -> BlockSums:
    """THE reduction: the sums of disjoint blocks added in the order given (never in completion
    order, so a result is a function of the blocks alone). Gradient and counts are kept when
    every part has them."""
    loss = 0.0
    for part in parts:
        loss += part.loss
    dW_t = db = None
    if parts[0].dW_t is not None:
        dW_t, db = parts[0].dW_t.copy(), parts[0].db.copy()
        for part in parts[1:]:
            dW_t += part.dW_t
            db += part.db
    n_correct = n_unseparated = None
    if parts[0].n_correct is not None:
        n_correct = sum(part.n_correct for part in parts)
        n_unseparated = sum(part.n_unseparated for part in parts)
    return BlockSums(loss, dW_t, db, n_correct, n_unseparated)


def fold_standardization(W: np.ndarray, b: np.ndarray, mean: np.ndarray, scale: np.ndarray):
    """Weights on raw rows that give the logits of (W, b) on standardized rows.

    z = ((x - mean) / scale) W + b = x W' + b'  with  W' = W / scale (row d divided by scale_d)
    and b' = b - mean W'. Its chain rule is :func:`unfold_gradient`.
    """
    W_raw = W / scale[:, None].astype(W.dtype)  # (D, K)
    return W_raw, b - (mean.astype(W.dtype) @ W_raw)


def unfold_gradient(dW: np.ndarray, db: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The chain rule back through :func:`fold_standardization`, in place on ``dW``.

    Sums over raw rows X give X^T G; the gradient is wanted for the standardized rows
    X_s = (X - 1 mean^T) / scale, and X_s^T G = (X^T G - mean (1^T G)) / scale, row d divided
    by scale_d (1^T G is db, unchanged by the fold).
    """
    dW -= np.outer(mean, db).astype(dW.dtype)
    dW /= scale[:, None].astype(dW.dtype)
    return dW


def objective_from_sums(total: BlockSums, W: np.ndarray, l2: float, standardization=None):
    """J, dJ/dW (D, K) and dJ/db (K,) from the rows' summed :class:`BlockSums`: the penalty is
    added once, after the sum, and the fold's chain rule applied when the sums were taken on
    raw rows with folded weights (``standardization=(mean, scale)``). dW, db are None when the
    sums hold no gradient."""
    value = total.loss + penalty(W, l2)
    if total.dW_t is None:
        return value, None, None
    dW = np.ascontiguousarray(total.dW_t.T)  # (D, K)
    if standardization is not None:
        unfold_gradient(dW, total.db, *standardization)
    if np.ndim(l2) or l2 != 0:
        dW += penalty_gradient(W, l2)
    return value, dW, total.db


def loss_and_gradient(
    W: np.ndarray, b: np.ndarray, X, y: np.ndarray, l2: float = 0.0, sample_weight=None
) -> tuple[float, np.ndarray, np.ndarray]:
    """J(W, b) of step 4 with dJ/dW and dJ/db: the engines' own pass with X as one block.

    :func:`block_sums` (one product for the logits, the pointwise kernel in that buffer, one
    product for X^T G) then :func:`objective_from_sums` (the penalty). Returns (J, dW, db).
    """
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    row_weight = mean_weights(sample_weight, X.shape[0], dtype)
    W_t = np.ascontiguousarray(np.asarray(W).T)
    sums = block_sums(W_t, np.asarray(b), X, np.asarray(y), row_weight)
    return objective_from_sums(sums, W, l2)
