"""Weighted column means and scales: the standardization that training runs in.

    mean_j = sum_i w_i x_ij / sum_i w_i,    scale_j = sqrt(sum_i w_i (x_ij - mean_j)^2 / sum_i w_i)
"""

from __future__ import annotations

import numpy as np


def weighted_mean_and_scale(X: np.ndarray, sample_weight=None, unit=None, block_rows: int | None = None):
    """Column means and standard deviations of X / unit, weighted, in float64, block by block.

        mean_j = sum_i w_i x_ij / sum_i w_i,    scale_j = sqrt(sum_i w_i (x_ij - mean_j)^2 / sum_i w_i)

    (two passes, so no cancellation), with scale 1 where the variance is zero, as
    scikit-learn's StandardScaler does. Blocks of ``block_rows`` rows (default: about 1 MB)
    keep the temporaries small: StandardScaler's own variance pass holds one the size of X.
    """
    n_samples, n_features = X.shape
    block_rows = block_rows or max(1, (1 << 20) // (8 * max(n_features, 1)))  # about 1 MB of float64 per block
    unit = np.ones(n_features) if unit is None else unit
    w = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    total = w.sum()
    sums = np.zeros(n_features)
    for start in range(0, n_samples, block_rows):
        block = np.asarray(X[start:start + block_rows], dtype=np.float64) / unit
        sums += w[start:start + block_rows] @ block
    mean = sums / total
    squares = np.zeros(n_features)
    for start in range(0, n_samples, block_rows):
        block = np.asarray(X[start:start + block_rows], dtype=np.float64) / unit
        block -= mean
        block *= block
        squares += w[start:start + block_rows] @ block
    scale = np.sqrt(squares / total)
    # Like StandardScaler: a spread at rounding level of the mean counts as zero.
    constant = scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    scale[constant] = 1.0
    return mean, scale
