"""The pointwise part of softmax regression: softmax, its Jacobian, and cross-entropy.

Each function implements one step of ``docs/derivation.md`` (a copy of the project's
DERIVATION notes) and names things as the derivation does:

    z (K,) or Z (N, K)   logits
    s (K,) or P (N, K)   softmax outputs
    y                    integer class indices (N,), or a one-hot vector (K,) where stated
    L = logsumexp(z) - z_y     cross-entropy of one sample

Every function takes and returns arrays and prints nothing. The batch objective that
adds the linear part (Z = X W + b) and the L2 penalty lives in :mod:`softreg.model.math.linear`.
"""

from __future__ import annotations

import numpy as np


def _floating(a) -> np.ndarray:
    """float32/float64 arrays as they are (so float32 stays float32), anything else as float64."""
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def logsumexp(Z: np.ndarray) -> np.ndarray:
    """Row-wise log(sum_k exp(Z[:, k])) without overflow.

    logsumexp(z) = m + log(sum_k exp(z_k - m)) with m = max_k z_k: every exponent is <= 0,
    so exp cannot overflow, and the largest term is exactly 1, so the sum cannot underflow
    to 0 and the log is finite.
    """
    Z = np.asarray(Z)
    m = Z.max(axis=-1, keepdims=True)  # (N, 1)
    # max of a row of infinities would give inf - inf = nan; those rows keep m as is.
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.exp(Z - m).sum(axis=-1, keepdims=True)) + m
    return out[..., 0]


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax s_n = exp(z_n) / sum_k exp(z_k).

    softmax is unchanged when a constant is added to every logit of a row, so we subtract
    the row's max first: no exp can overflow and the denominator is at least 1.
    """
    Z = np.asarray(Z)
    E = np.exp(Z - Z.max(axis=-1, keepdims=True))  # (N, K), entries in (0, 1]
    E /= E.sum(axis=-1, keepdims=True)
    return E


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise log s_n = z_n - logsumexp(z), never log(softmax(z)).

    log(softmax(z)) underflows to log(0) = -inf once a probability drops below ~1e-308;
    z_n - logsumexp(z) stays finite for any finite logits.
    """
    Z = np.asarray(Z)
    shifted = Z - Z.max(axis=-1, keepdims=True)  # <= 0, so exp cannot overflow
    # Subtracting the max before the log keeps full relative precision even for huge logits.
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_jacobian(z: np.ndarray) -> np.ndarray:
    """Step 1: the Jacobian of softmax for one sample, J = diag(s) - s s^T.

    From s_n = exp(z_n) S^(-1) and the product rule,
    d s_n / d z_m = s_n (delta_nm - s_m). J is symmetric and each row sums to zero.
    Returns (K, K).
    """
    s = softmax(_floating(z))  # (K,)
    return np.diag(s) - np.outer(s, s)


def loss_grad_wrt_softmax(s: np.ndarray, y_onehot: np.ndarray) -> np.ndarray:
    """Step 2: dL/ds_n = -y_n / s_n for L = -sum_n y_n log s_n.

    Only the true class contributes (y is one-hot); s_n > 0 always, since softmax never
    returns an exact zero for finite logits unless exp underflows.
    """
    s = _floating(s)
    return -np.asarray(y_onehot, dtype=s.dtype) / s


def loss_grad_wrt_logits(z: np.ndarray, y_onehot: np.ndarray) -> np.ndarray:
    """Step 3: the chain rule collapses to dL/dz = softmax(z) - y.

    dL/dz_m = sum_n (-y_n / s_n) s_n (delta_nm - s_m) = -y_m + s_m sum_n y_n = s_m - y_m,
    because the one-hot y sums to one.
    """
    z = _floating(z)
    return softmax(z) - np.asarray(y_onehot, dtype=z.dtype)


def sample_losses(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy L_i = logsumexp(z_i) - z_{i, y_i}, shape (N,).

    Uses class indices directly: no one-hot matrix, no log of a probability.
    """
    Z = np.asarray(Z)
    return logsumexp(Z) - Z[np.arange(Z.shape[0]), y]


def normalized_weights(sample_weight: np.ndarray | None, n_samples: int, dtype) -> np.ndarray | None:
    """Per-sample weights w_i / sum_j w_j, or None for the plain mean (every w_i = 1/N)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=dtype)
    largest = w.max()
    if largest > 0:
        w = w / largest  # weights near the float limit would overflow the sum
    return w / w.sum()


def cross_entropy(Z: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Mean cross-entropy (1/N) sum_i L_i, or the weighted mean sum_i w_i L_i / sum_i w_i.

    This is the data term of the batch objective in step 4.
    """
    losses = sample_losses(Z, y)  # (N,)
    if sample_weight is None:
        return float(losses.mean())
    w = normalized_weights(sample_weight, losses.shape[0], losses.dtype)
    return float(w @ losses)


def cross_entropy_and_logit_gradient_t(Z_t: np.ndarray, y: np.ndarray, row_weight, *,
                                       gradient: bool = True) -> tuple[float, np.ndarray | None]:
    """THE pointwise kernel that training runs: the data term of step 4 and G = w_i (P_i - Y_i).

    Works on logits laid out class by row, ``Z_t`` (K, B) (column i is sample i), and
    overwrites that buffer: each sample's reductions then run over K entries along axis 0,
    which is how the engines form Z_t = W^T X_B^T. ``row_weight`` is 1/N (a number) or the
    samples' normalized weights w_i / sum_j w_j (B,). Returns (loss, G_t) with
    loss = sum_i w_i L_i, L_i = logsumexp(z_i) - z_{i, y_i}, summed in float64 whatever the
    dtype of Z_t, and G_t (K, B) = step 3 (dL/dz = s - y) for each sample scaled by its weight,
    made without a one-hot matrix by subtracting 1 at each sample's true class; G_t is None
    with ``gradient=False``.
    """
    n_samples = Z_t.shape[1]
    rows = np.arange(n_samples)
    # Subtract each sample's max so exp cannot overflow; the loss is shift-invariant.
    Z_t -= Z_t.max(axis=0)
    z_true = Z_t[y, rows]  # (B,) shifted logit of the true class (a copy)
    np.exp(Z_t, out=Z_t)  # (K, B), unnormalized probabilities
    row_sums = Z_t.sum(axis=0)  # (B,) >= 1: the max entry is exp(0) = 1
    losses = np.log(row_sums) - z_true  # L_i
    if np.ndim(row_weight) == 0:
        loss = float(losses.sum(dtype=np.float64)) * float(row_weight)
    else:
        loss = float(np.dot(losses.astype(np.float64, copy=False), row_weight))
    if not gradient:
        return loss, None
    Z_t /= row_sums  # P^T
    Z_t[y, rows] -= 1  # (P - Y)^T: step 3
    Z_t *= row_weight  # G^T = w_i (P_i - Y_i)
    return loss, Z_t


def mean_weights(sample_weight: np.ndarray | None, n_samples: int, dtype):
    """The row weights of the mean: w_i / sum_j w_j (N,), or the number 1/N without weights."""
    w = normalized_weights(sample_weight, n_samples, dtype)
    return np.dtype(dtype).type(1.0 / max(n_samples, 1)) if w is None else w


def cross_entropy_and_logit_gradient(
    Z: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, *, overwrite_logits: bool = False
) -> tuple[float, np.ndarray]:
    """The kernel :func:`cross_entropy_and_logit_gradient_t` for logits laid out (N, K).

    Returns (loss, G) with loss = sum_i w_i L_i (w_i = 1/N without weights) and
    G = w_i (P_i - Y_i), shape (N, K). With ``overwrite_logits=True`` G is written into Z's
    buffer (the caller owns its logits and so saves an N x K allocation).
    """
    Z = np.asarray(Z)
    Z = Z if overwrite_logits else Z.copy()  # (N, K)
    row_weight = mean_weights(sample_weight, Z.shape[0], Z.dtype)
    loss, G_t = cross_entropy_and_logit_gradient_t(Z.T, y, row_weight)  # Z.T is a view of the same buffer
    return loss, G_t.T
