"""What every engine shares: block plans, the evaluation a pass returns, lifetime, weighted views.

J(W, b) and its gradient are sums over rows (step 4), so an engine splits the rows into
blocks, applies :func:`softreg.model.math.linear.block_sums` to each and adds the partial sums
with :func:`softreg.model.math.linear.add_block_sums`. The training loop only calls
``objective(W, b, l2, gradient=..., count=...)``; engines differ in where the blocks live and
who computes them (:mod:`.memory`, :mod:`.stream`, :mod:`.dask`; the registry is in
:mod:`softreg.model.engines`).

Reproducibility: block boundaries depend only on the shape and dtype of X (never on the
number of threads), and partial sums are added in block order (never in completion order),
so the same data gives bitwise the same weights on any machine with the same BLAS. (The Dask
engine's default blocks also depend on the number of workers; see DaskEngine._plan_blocks.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from softreg.model.math import linear
from softreg.model.math.linear import BlockSums
from softreg.model.math.softmax import normalized_weights, softmax

# Below this many multiply-adds per matrix product (2 nnz K), threads cost more than they
# save: digits (1,500 x 64 x 10) trained about 8x faster on one thread than on two.
SMALL_PROBLEM_FLOPS = 2e7
# Rows per block: about this many bytes of X, so a block stays in the (2 MiB per core) L2 /
# shared L3 cache between its two products. Measured at 200,000 x 256 on 2 cores: 4 MiB blocks
# (2,048 rows float64, 4,096 float32) were the fastest; 2 MiB blocks lost up to 10% to per-block
# overhead, 8 MiB float64 blocks 5%, and 16 MiB blocks no longer fit (a single thread's pass
# took 1.4x as long).
BLOCK_BYTES = 4 * 2**20
MIN_BLOCK_ROWS = 1024


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def block_rows_for(n_features: int, itemsize: int, nnz_per_row: float | None = None) -> int:
    """Rows per block for X of this width and dtype: a function of the shape only."""
    bytes_per_row = itemsize * n_features if nnz_per_row is None else (itemsize + 4) * max(nnz_per_row, 1.0)
    return max(MIN_BLOCK_ROWS, int(BLOCK_BYTES // max(bytes_per_row, 1)))


def row_blocks(X, block_rows: int) -> list[tuple[int, int]]:
    """[start, stop) boundaries of consecutive blocks of ``block_rows`` rows covering X."""
    n_samples = X.shape[0]
    return [(start, min(start + block_rows, n_samples)) for start in range(0, n_samples, block_rows)]


def csr_rows(X, start: int, stop: int):
    """Rows [start, stop) of a CSR matrix as a CSR matrix sharing X's data and indices (no copy).

    ``X[start:stop]`` copies the rows' values; done for every block of every epoch that copy
    costs as much as the product itself.
    """
    from scipy import sparse

    begin, end = X.indptr[start], X.indptr[stop]
    return sparse.csr_matrix(
        (X.data[begin:end], X.indices[begin:end], X.indptr[start : stop + 1] - begin),
        shape=(stop - start, X.shape[1]),
    )

@dataclass(frozen=True)
class BlockSource:
    """Rows that live in storage as blocks: ``blocks`` holds (start, stop, read) with ``read()``
    returning rows [start, stop) as a fresh (B, D) array; ``read`` must pickle (Dask workers call
    it). ``path`` names the source in messages."""

    path: str
    shape: tuple[int, int]
    dtype: str
    blocks: list


@dataclass(frozen=True)
class ObjectiveValue:
    """J(W, b) at one point, with its gradient and row counts when asked for."""

    value: float  # J = data term + (l2/2) ||W||^2
    dW: np.ndarray | None  # (D, K)
    db: np.ndarray | None  # (K,)
    n_correct: int | None = None  # rows whose argmax is the true class
    n_unseparated: int | None = None  # weighted rows not strictly classified right

    @property
    def separates(self) -> bool:
        """Every weighted row strictly right: with l2 = 0, J then has no minimizer."""
        return self.n_unseparated == 0



def evaluation_from_parts(parts: list[BlockSums], W: np.ndarray, l2: float, standardization=None) -> ObjectiveValue:
    """An :class:`ObjectiveValue` from the blocks' partial sums: the one reduction, then the penalty
    and (for sums over raw rows with folded weights) the fold's chain rule."""
    # Looked up in the module at call time, like block_sums' kernel: what gradcheck checks (and a
    # test may replace) is what every engine runs.
    total = linear.add_block_sums(parts)
    value, dW, db = linear.objective_from_sums(total, W, l2, standardization)
    return ObjectiveValue(value, dW, db, total.n_correct, total.n_unseparated)


class Engine:
    """What every engine shares: it is opened on the first ``with`` and closed on the last (a
    caller's ``with`` and the training loop's may nest), and it serves its rows with other
    weights through :meth:`sibling`. Subclasses say how to open and close in ``_open`` and
    ``_close``; ``_open`` leaves nothing open when it fails."""

    _depth = 0  # entered this many times
    # The config keys an engine takes as constructor keywords (the run layer passes exactly these).
    config_keys: tuple[str, ...] = ("block_rows",)

    def sibling(self, sample_weight: np.ndarray | None) -> "WeightedView":
        """The same rows and blocks, on the same pool, file or cluster, with other row weights
        (for example the validation rows)."""
        return WeightedView(self, sample_weight)

    def __enter__(self):
        self._depth += 1
        if self._depth == 1:
            try:
                self._open()
            except BaseException:
                self._depth = 0
                raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._close()


class WeightedView:
    """An engine's rows with other row weights (the validation rows, say): evaluations run on the
    engine's own blocks, pool, file or cluster, opened and closed with it."""

    def __init__(self, engine, sample_weight: np.ndarray | None):
        self.engine = engine
        self.row_weights = normalized_weights(sample_weight, engine.n_samples, engine.dtype)
        if self.row_weights is None:
            self.row_weights = np.full(engine.n_samples, 1.0 / engine.n_samples, dtype=engine.dtype)
        self.n_samples, self.n_features, self.dtype = engine.n_samples, engine.n_features, engine.dtype
        self.n_weighted = int(np.count_nonzero(self.row_weights > 0))

    def __enter__(self) -> "WeightedView":
        self.engine.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.engine.__exit__(*exc_info)

    def objective(self, W, b, l2: float = 0.0, *, gradient: bool = True, count: bool = False) -> ObjectiveValue:
        return self.engine.objective(W, b, l2, gradient=gradient, count=count, row_weights=self.row_weights)


class FixedBias:
    """An engine whose bias stays where training starts it (``fit_intercept=False``): its
    gradient in b is reported as 0, so no step of any rule moves b. Everything else is the
    engine's own."""

    def __init__(self, engine):
        self.engine = engine

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def __enter__(self) -> "FixedBias":
        self.engine.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.engine.__exit__(*exc_info)

    @staticmethod
    def _without_bias_gradient(value: ObjectiveValue | None) -> ObjectiveValue | None:
        if value is None or value.db is None:
            return value
        return replace(value, db=np.zeros_like(value.db))

    def objective(self, W, b, l2=0.0, **kwargs) -> ObjectiveValue:
        return self._without_bias_gradient(self.engine.objective(W, b, l2, **kwargs))

    def objective_of_rows(self, W, b, l2, rows) -> ObjectiveValue | None:
        return self._without_bias_gradient(self.engine.objective_of_rows(W, b, l2, rows))


class EngineError(RuntimeError):
    """An engine cannot start: the message names the scheduler, worker or file at fault."""


class EngineLost(RuntimeError):
    """The engine went away during training (a lost scheduler); the run failed."""


def block_column_moments(rows: np.ndarray, weight, mean: np.ndarray | None) -> np.ndarray:
    """sum_i w_i x_i (mean None) or sum_i w_i (x_i - mean)^2, in float64, for one block (D,)."""
    values = rows.astype(np.float64)
    if mean is not None:
        values -= mean
        values *= values
    weight = np.broadcast_to(np.asarray(weight, dtype=np.float64), (rows.shape[0],))
    return weight @ values




def block_probabilities(rows, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """softmax(X_B W + b) for one block, (B, K), max-shifted, in float64."""
    return softmax(np.asarray(rows @ W, dtype=np.float64) + b)
