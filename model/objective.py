"""The linear part of softmax regression: the batch objective of step 4 and its gradient.

    J(W, b) = sum_i w_i L_i + (l2 / 2) ||W||_F^2        (w_i = 1/N without sample weights)
    Z = X W + 1 b^T,   P = softmax(Z) row by row,   G = w_i (P_i - Y_i)
    dJ/dW = X^T G + l2 W
    dJ/db = sum_i G_i

Shapes: X (N, D) dense float64/float32 or scipy.sparse CSR, W (D, K), b (K,), y (N,)
integer class indices. The pointwise part (softmax, cross-entropy, G) lives in
:mod:`softreg.model.softmax`; here is only the chain rule through X W + b and the penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from softreg.model.softmax import cross_entropy, cross_entropy_and_logit_gradient, normalized_weights


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


def penalty(W: np.ndarray, l2: float) -> float:
    """(l2 / 2) ||W||_F^2: the L2 term of J, on the weights only (the bias is unpenalized)."""
    if l2 == 0:
        return 0.0
    return 0.5 * l2 * float(np.vdot(W, W))


def parameter_gradient(G: np.ndarray, X, W: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """The chain rule through Z = X W + b: dW = X^T G + l2 W (D, K), db = sum_i G_i (K,).

    G already carries the 1/N (or w_i / sum w) of the mean, so no division here.
    """
    dW = np.asarray(X.T @ G)  # (D, K): one matrix product over X
    if l2 != 0:
        dW += l2 * W
    db = G.sum(axis=0)  # (K,)
    return dW, db


def objective(W: np.ndarray, b: np.ndarray, X, y: np.ndarray, l2: float = 0.0, sample_weight=None) -> float:
    """J(W, b) alone: mean cross-entropy from the logits plus the L2 penalty (step 4)."""
    return cross_entropy(logits(W, b, X), y, sample_weight) + penalty(W, l2)


def loss_and_gradient(
    W: np.ndarray, b: np.ndarray, X, y: np.ndarray, l2: float = 0.0, sample_weight=None
) -> tuple[float, np.ndarray, np.ndarray]:
    """J(W, b) of step 4 with dJ/dW and dJ/db, fused.

    One matrix product for the logits, softmax computed in place in that buffer,
    1 subtracted at each true class by indexing (G = P - Y scaled by the row weights),
    one matrix product for X^T G. Returns (J, dW (D, K), db (K,)).
    """
    Z = logits(W, b, X)  # (N, K), owned here, so G may overwrite it
    data_loss, G = cross_entropy_and_logit_gradient(Z, y, sample_weight, overwrite_logits=True)
    dW, db = parameter_gradient(G, X, W, l2)
    return data_loss + penalty(W, l2), dW, db


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
    """Step 4 restricted to one block of rows, in one read of the block.

    Z_B^T = W^T X_B^T + b 1^T is formed as a (K, B) array so each row's softmax reduces along
    axis 0 over K entries, and X_B is read a second time for X_B^T G_B while it is still in
    cache: this is what makes a pass over X cost about one read of X instead of two.
    ``W_t`` is W^T (K, D), contiguous; ``row_weight`` is 1/N (a number) or the block's
    normalized weights w_i / sum_j w_j (B,). Sums of the loss are taken in float64 whatever
    the dtype of X, so float32 training loses no accuracy in its objective.
    """
    n_rows = X_block.shape[0]
    if isinstance(X_block, np.ndarray):
        Z_t = W_t @ X_block.T  # (K, B), C-ordered
    else:  # sparse rows: the product is dense (B, K); transposing it costs K x B, not B x D
        Z_t = np.ascontiguousarray(np.asarray(X_block @ W_t.T).T)
    Z_t += b[:, None]
    rows = np.arange(n_rows)
    row_max = Z_t.max(axis=0)  # (B,)
    n_correct = n_unseparated = None
    if count:
        right = Z_t.argmax(axis=0) == y_block
        n_correct = int(np.count_nonzero(right if np.ndim(row_weight) == 0 else right & (row_weight > 0)))
        # Strictly separated: the true logit is the maximum and no other logit ties it.
        strict = (Z_t[y_block, rows] >= row_max) & (np.count_nonzero(Z_t == row_max, axis=0) == 1)
        counted = strict | (np.asarray(row_weight) <= 0)
        n_unseparated = int(n_rows - np.count_nonzero(counted))
    # Subtract each row's max so exp cannot overflow; the loss is shift-invariant.
    Z_t -= row_max
    z_true = Z_t[y_block, rows]  # (B,) shifted logit of the true class (a copy)
    np.exp(Z_t, out=Z_t)  # (K, B), now unnormalized probabilities
    row_sums = Z_t.sum(axis=0)  # (B,) >= 1: the max entry is exp(0) = 1
    losses = np.log(row_sums) - z_true  # L_i = logsumexp(z_i) - z_{i, y_i}
    if np.ndim(row_weight) == 0:
        loss = float(losses.sum(dtype=np.float64)) * float(row_weight)
    else:
        loss = float(np.dot(losses.astype(np.float64, copy=False), row_weight))
    if not gradient:
        return BlockSums(loss, None, None, n_correct, n_unseparated)
    Z_t /= row_sums  # P^T
    Z_t[y_block, rows] -= 1  # (P - Y)^T: step 3, dL/dz = s - y
    Z_t *= row_weight  # G^T = w_i (P_i - Y_i), (K, B)
    if isinstance(X_block, np.ndarray):
        dW_t = Z_t @ X_block  # (K, D): X_B^T G_B, transposed
    else:
        dW_t = np.asarray(X_block.T @ Z_t.T).T
    return BlockSums(loss, dW_t, Z_t.sum(axis=1), n_correct, n_unseparated)


def block_gram_product(X_block, row_weight, v: np.ndarray) -> np.ndarray:
    """X~_B^T Ω_B X~_B v for one block of rows, (D + 1,) in float64.

    X~ is X with a column of ones appended (the bias) and Ω = diag(w_i / sum w); summed over
    blocks this is the matrix-vector product of :func:`lipschitz_power_iteration`. The block
    is read twice while in cache (X_B v, then X_B^T u), in X's dtype: a float64 vector would
    upcast a float32 block on every pass.
    """
    dtype = X_block.dtype if X_block.dtype in (np.float32, np.float64) else np.float64
    v_x = v.astype(dtype)
    u = np.asarray(X_block @ v_x[:-1]).ravel() + v_x[-1]  # X~_B v, (B,)
    u *= row_weight  # Ω_B X~_B v
    out = np.empty(v.shape[0], dtype=np.float64)
    out[:-1] = np.asarray(X_block.T @ u).ravel()
    out[-1] = u.sum(dtype=np.float64)
    return out


def lipschitz_power_iteration(gram_product, n_features: int, dtype, l2: float = 0.0, *, n_iter: int = 100,
                              rtol: float = 1e-4) -> float:
    """Böhning's bound on the gradient's Lipschitz constant, L = 1/2 lambda_max(X~^T Ω X~) + l2.

    X~ is X with a column of ones appended (the bias) and Ω = diag(w_i / sum w) (1/N each
    without weights), so that H <= 1/2 (I - 1 1^T / K) kron X~^T Ω X~ (DERIVATION.md) and the
    largest eigenvalue of (I - 1 1^T/K) is 1. lambda_max comes from power iteration on
    ``gram_product(v)`` = X~^T Ω X~ v, one pass over X per iteration; its Rayleigh quotient
    approaches lambda_max from below, so the result is raised by the last iteration's
    relative change plus 1e-3 to stay an upper bound in practice. Stopping at a relative
    change of 1e-4 (not 1e-6) costs a few passes instead of dozens (0.8 s instead of 2.3 s at
    200,000 x 256), and the 1e-3 margin still dominates the remaining error.
    """
    rtol = max(rtol, 10 * float(np.finfo(dtype).eps))
    # A seeded random start: reproducible, and orthogonal to the top eigenvector with
    # probability zero (an all-ones start is orthogonal to it for, e.g., a standardized
    # one-hot pair of columns x and -x, and then converges to a smaller eigenvalue).
    v = np.random.default_rng(0).standard_normal(n_features + 1)
    v /= np.linalg.norm(v)
    estimate = 0.0
    change = 1.0
    for iteration in range(n_iter):
        Av = gram_product(v)  # X~^T Ω X~ v
        new_estimate = float(v @ Av)  # Rayleigh quotient, v has unit norm
        norm = float(np.linalg.norm(Av))
        if norm == 0.0:
            break
        v = Av / norm
        change = abs(new_estimate - estimate) / max(new_estimate, np.finfo(float).tiny)
        estimate = new_estimate
        if change < rtol and iteration >= 2:
            break
    lambda_max = estimate * (1.0 + change + 1e-3)
    return 0.5 * lambda_max + l2


def lipschitz_constant(X, l2: float = 0.0, sample_weight=None, *, n_iter: int = 100, rtol: float = 1e-4) -> float:
    """L = 1/2 lambda_max(X~^T Ω X~) + l2 for an in-memory X (see :func:`lipschitz_power_iteration`)."""
    n_samples, n_features = X.shape
    dtype = np.dtype(X.dtype if X.dtype in (np.float32, np.float64) else np.float64)
    w = normalized_weights(sample_weight, n_samples, dtype)
    row_weight = w if w is not None else dtype.type(1.0 / n_samples)
    return lipschitz_power_iteration(lambda v: block_gram_product(X, row_weight, v), n_features, dtype, l2,
                                     n_iter=n_iter, rtol=rtol)
