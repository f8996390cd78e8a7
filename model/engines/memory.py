"""The memory engine: X in memory (dense or CSR), its row blocks on a pool of threads.

Why a pool of threads, one BLAS thread each: for a skinny product (K of 10 or so) the softmax
between the two matrix products costs as much as the products, and BLAS threads parallelize
only the products; a pool over row blocks runs the whole pass on every core, and each block of
X is read twice (X W, then X^T G) while it is still in cache. Measured at 200,000 x 256 x 10
on a 2-core machine: 66 ms per pass in float64 against 143 ms for the two whole-matrix products.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import numpy as np

from softreg.model.engines.base import (
    SMALL_PROBLEM_FLOPS,
    Engine,
    ObjectiveValue,
    available_cores,
    block_column_moments,
    block_probabilities,
    block_rows_for,
    csr_rows,
    evaluation_from_parts,
    row_blocks,
)
from softreg.model.math.linear import BlockSums, block_sums, fold_standardization
from softreg.model.math.lipschitz import block_gram_product, folded_gram, lipschitz_power_iteration
from softreg.model.math.softmax import normalized_weights


@functools.cache
def blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, found once per process: finding them
    reads every mapped library's path (about 20 ms), which each engine opened paid before. A
    BLAS library first loaded after this call is not limited; the limit is for speed only."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class MemoryEngine(Engine):
    serves_minibatches = True  # objective_of_rows: X is at hand
    """Row-block sums of J over an in-memory X (dense or CSR), on a thread pool.

    ``standardization=(mean, scale)`` trains on the standardized rows (x - mean) / scale without
    forming them, by folding the map into the weights (see :func:`fold_standardization`): X
    is never copied, and sparse X is centered without being densified.

    Use as a context manager: with a pool, BLAS runs on one thread per call inside it (the pool
    supplies the parallelism; BLAS workers spinning beside a pool were measured to slow the
    next computation by up to 2x), and the pool is shut down on exit. With ``threads=1`` BLAS
    keeps its own threads, except on small problems.
    """

    def __init__(self, X, y: np.ndarray, sample_weight: np.ndarray | None = None, *, n_classes: int,
                 threads: int | None = None, block_rows: int | None = None, standardization=None):
        if not isinstance(X, np.ndarray) and X.format != "csr":
            X = X.tocsr()  # blocks of rows are slices of CSR's row pointers
        self.X, self.y = X, y
        self.standardization = None
        self.n_samples, self.n_features = X.shape
        self.dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        sparse = not isinstance(X, np.ndarray)
        nnz = X.nnz if sparse else X.shape[0] * X.shape[1]
        weights = normalized_weights(sample_weight, self.n_samples, self.dtype)
        if block_rows is None:
            if 2.0 * nnz * n_classes < SMALL_PROBLEM_FLOPS:
                block_rows = max(self.n_samples, 1)
            else:
                block_rows = block_rows_for(X.shape[1], X.dtype.itemsize,
                                            nnz / max(self.n_samples, 1) if sparse else None)
        self.ranges = row_blocks(X, block_rows)
        self.blocks = [(csr_rows(X, start, stop) if sparse else X[start:stop], y[start:stop], None)
                       for start, stop in self.ranges]
        self._set_weights(weights)
        if threads is None:
            threads = available_cores()
        self.threads = max(1, min(threads, len(self.blocks)))
        self._stack: ExitStack | None = None
        self._pool: ThreadPoolExecutor | None = None
        # Small problems run on one BLAS thread (thread start-up costs more than the work).
        self._small = 2.0 * nnz * n_classes < SMALL_PROBLEM_FLOPS
        if standardization is not None:
            self.set_standardization(*standardization)

    def set_standardization(self, mean, scale) -> None:
        """Serve the rows (x - mean) / scale from now on; in memory by folding the map into the
        weights (:func:`fold_standardization`), so X is neither copied nor changed."""
        self.standardization = (np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64))

    @property
    def _fold(self):
        """The (mean, scale) to fold into the weights, or None when the rows come standardized."""
        return self.standardization

    def _set_weights(self, weights: np.ndarray | None) -> None:
        """Per-block row weights w_i / sum_j w_j (a number 1/N for the plain mean)."""
        self.blocks = [(rows, y_block, self.dtype.type(1.0 / self.n_samples) if weights is None else weights[start:stop])
                       for (rows, y_block, _), (start, stop) in zip(self.blocks, self.ranges)]
        self.n_weighted = self.n_samples if weights is None else int(np.count_nonzero(weights > 0))
        self.row_weights = weights

    def _open(self) -> None:
        self._stack = ExitStack()
        if self.threads > 1 or self._small:
            self._stack.enter_context(blas_controller().limit(limits=1, user_api="blas"))
        if self.threads > 1:
            self._pool = self._stack.enter_context(ThreadPoolExecutor(self.threads, thread_name_prefix="softreg"))

    def _close(self) -> None:
        stack, self._stack, self._pool = self._stack, None, None
        if stack is not None:
            stack.close()

    def _rows(self, source):
        """The rows of one block: in memory they are the block itself."""
        return source

    def _map(self, function, blocks: list | None = None) -> list:
        """function(block) for every block, results in block order (never completion order)."""
        blocks = self.blocks if blocks is None else blocks
        if self._pool is None or len(blocks) == 1:
            return [function(block) for block in blocks]
        caller_errstate = np.geterr()  # numpy's error state is per thread: the workers take the caller's

        def with_caller_errstate(block):
            with np.errstate(**caller_errstate):
                return function(block)

        return list(self._pool.map(with_caller_errstate, blocks))

    def lipschitz(self, l2: float = 0.0) -> float:
        """Böhning's L for these rows: power iteration whose products are block sums."""

        def raw_gram_product(v: np.ndarray) -> np.ndarray:
            parts = self._map(lambda block: block_gram_product(self._rows(block[0]), block[2], v))
            total = parts[0]
            for part in parts[1:]:
                total += part
            return total

        return lipschitz_power_iteration(folded_gram(raw_gram_product, self._fold), self.n_features,
                                         self.dtype, l2)

    def column_moments(self, mean: np.ndarray | None = None) -> np.ndarray:
        """sum_i w_i x_i, or sum_i w_i (x_i - mean)^2 with ``mean``, over the weighted rows (the
        weights sum to 1, so these are the weighted mean and variance): (D,) float64, by blocks."""
        parts = self._map(lambda block: block_column_moments(self._rows(block[0]), block[2], mean))
        total = np.zeros(self.n_features)
        for part in parts:
            total += part
        return total

    def map_blocks(self, function, *args) -> list:
        """function(rows, y_block, weight, *args) for every block, in block order: rows as
        served (raw unless a standardization is set and the engine standardizes its copies),
        ``weight`` the block's normalized row weights (a number when all are equal). For sums
        beyond the objective's (the summary's information matrix), taken where the rows live."""
        return self._map(lambda block: function(self._rows(block[0]), block[1], block[2], *args))

    def probabilities(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """softmax(X_s W + b) for every (served) row, (N, K), block by block; W, b as in objective."""
        W_raw, b_raw = (W, b) if self._fold is None else fold_standardization(W, b, *self._fold)
        return np.concatenate(self._map(lambda block: block_probabilities(self._rows(block[0]), W_raw, b_raw)))

    def objective(self, W: np.ndarray, b: np.ndarray, l2: float = 0.0, *, gradient: bool = True,
                 count: bool = False, row_weights: np.ndarray | None = None) -> ObjectiveValue:
        """J(W, b) (and dJ/dW, dJ/db; and the row counts) from one pass over X's blocks;
        ``row_weights`` (N,), normalized, replaces the engine's own for this pass."""
        W_raw, b_raw = (W, b) if self._fold is None else fold_standardization(W, b, *self._fold)
        W_t = np.ascontiguousarray(W_raw.T, dtype=self.dtype)  # (K, D)
        b_raw = np.asarray(b_raw, dtype=self.dtype)

        def one_block(block) -> BlockSums:
            source, y_block, weight = block
            return block_sums(W_t, b_raw, self._rows(source), y_block, weight, gradient=gradient, count=count)

        blocks = None if row_weights is None else [
            (source, y_block, row_weights[start:stop]) for (source, y_block, _), (start, stop) in zip(self.blocks,
                                                                                                     self.ranges)]
        return evaluation_from_parts(self._map(one_block, blocks), W, l2, self._fold)

    def objective_of_rows(self, W: np.ndarray, b: np.ndarray, l2: float, rows: np.ndarray) -> ObjectiveValue | None:
        """J and its gradient over the rows ``rows`` (sorted indices) alone, their weights
        renormalized to sum to 1: one mini-batch, through the same block pass as a full one.
        None when every row of the batch has weight 0."""
        if self.row_weights is None:
            row_weight = self.dtype.type(1.0 / len(rows))
        else:
            row_weight = self.row_weights[rows]
            total = row_weight.sum()
            if total <= 0:
                return None
            row_weight = row_weight / total
        W_raw, b_raw = (W, b) if self._fold is None else fold_standardization(W, b, *self._fold)
        W_t = np.ascontiguousarray(W_raw.T, dtype=self.dtype)
        part = block_sums(W_t, np.asarray(b_raw, dtype=self.dtype), self.X[rows], self.y[rows], row_weight)
        return evaluation_from_parts([part], W, l2, self._fold)
