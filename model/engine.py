"""Where the row sums of the objective are computed: the training loop asks an engine, not X.

J(W, b) and its gradient are sums over rows (step 4), so an engine splits the rows into
blocks, applies :func:`softreg.model.objective.block_sums` to each and adds the partial sums.
The training loop only calls ``evaluate(W, b, l2, gradient=..., count=...)``; engines differ
in where the blocks live and who computes them.

:class:`MemoryEngine` keeps X in memory and runs the blocks on a pool of threads, one BLAS
thread each. Why: for a skinny product (K of 10 or so) the softmax between the two matrix
products costs as much as the products, and BLAS threads parallelize only the products;
a pool over row blocks runs the whole pass on every core, and each block of X is read twice
(X W, then X^T G) while it is still in cache. Measured at 200,000 x 256 x 10 on a 2-core
machine: 66 ms per pass in float64 against 143 ms for the two whole-matrix products.

Reproducibility: block boundaries depend only on the shape and dtype of X (never on the
number of threads), and partial sums are added in block order (never in completion order),
so the same data gives bitwise the same weights on any machine with the same BLAS.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np

from softreg.model.objective import BlockSums, block_gram_product, block_sums, lipschitz_power_iteration, penalty
from softreg.model.softmax import normalized_weights

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
class Evaluation:
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


def fold_standardization(W: np.ndarray, b: np.ndarray, mean: np.ndarray, scale: np.ndarray):
    """Weights on raw rows that give the logits of (W, b) on standardized rows.

    z = ((x - mean) / scale) W + b = x W' + b'  with  W' = W / scale (row d divided by scale_d)
    and b' = b - mean W'. The chain rule back through this map is in :func:`add_block_sums`.
    """
    W_raw = W / scale[:, None].astype(W.dtype)  # (D, K)
    return W_raw, b - (mean.astype(W.dtype) @ W_raw)


def add_block_sums(parts: list[BlockSums], W: np.ndarray, l2: float, gradient: bool, count: bool,
                   standardization=None) -> Evaluation:
    """J and its gradient from the blocks' partial sums, added in the order given.

    dJ/dW = sum_B (X_B^T G_B) + l2 W and dJ/db = sum_B sum_{i in B} G_i (step 4 with the chain
    rule through Z = X W + b); the penalty is added once, after the sum. When the blocks were
    computed on raw rows with folded weights (:func:`fold_standardization`), the rows the
    gradient is taken for are X_s = (X - 1 mean^T) / scale, so
    X_s^T G = (X^T G - mean (1^T G)) / scale, row d divided by scale_d.
    """
    value = 0.0
    for part in parts:
        value += part.loss
    value += penalty(W, l2)
    dW = db = None
    if gradient:
        dW_t = parts[0].dW_t.copy()
        db = parts[0].db.copy()
        for part in parts[1:]:
            dW_t += part.dW_t
            db += part.db
        dW = np.ascontiguousarray(dW_t.T)  # (D, K)
        if standardization is not None:
            mean, scale = standardization
            dW -= np.outer(mean, db).astype(dW.dtype)
            dW /= scale[:, None].astype(dW.dtype)
        if l2 != 0:
            dW += l2 * W
    n_correct = n_unseparated = None
    if count:
        n_correct = sum(part.n_correct for part in parts)
        n_unseparated = sum(part.n_unseparated for part in parts)
    return Evaluation(value, dW, db, n_correct, n_unseparated)


class MemoryEngine:
    """Row-block sums of J over an in-memory X (dense or CSR), on a thread pool.

    ``standardization=(mean, scale)`` trains on the standardized rows (x - mean) / scale without
    forming them, by folding the map into the weights (see :func:`fold_standardization`): X
    is never copied, and sparse X is centered without being densified.

    Use as a context manager: inside it BLAS runs on one thread per call (the pool supplies
    the parallelism; BLAS workers spinning beside a pool were measured to slow the next
    computation by up to 2x), and the pool is shut down on exit.
    """

    def __init__(self, X, y: np.ndarray, sample_weight: np.ndarray | None = None, *, n_classes: int,
                 threads: int | None = None, block_rows: int | None = None, standardization=None):
        self.X, self.y = X, y
        self.standardization = None
        if standardization is not None:
            mean, scale = (np.asarray(a, dtype=np.float64) for a in standardization)
            self.standardization = (mean, scale)
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
        self.blocks = []
        for start, stop in row_blocks(X, block_rows):
            rows = csr_rows(X, start, stop) if sparse else X[start:stop]
            weight = self.dtype.type(1.0 / self.n_samples) if weights is None else weights[start:stop]
            self.blocks.append((rows, y[start:stop], weight))
        self.n_weighted = self.n_samples if weights is None else int(np.count_nonzero(weights > 0))
        if threads is None:
            threads = available_cores()
        self.threads = max(1, min(threads, len(self.blocks)))
        self._stack: ExitStack | None = None
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> "MemoryEngine":
        from threadpoolctl import threadpool_limits

        self._stack = ExitStack()
        self._stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        if self.threads > 1:
            self._pool = self._stack.enter_context(ThreadPoolExecutor(self.threads, thread_name_prefix="softreg"))
        return self

    def __exit__(self, *exc_info) -> None:
        stack, self._stack, self._pool = self._stack, None, None
        if stack is not None:
            stack.close()

    def _rows(self, source):
        """The rows of one block: in memory they are the block itself."""
        return source

    def _map(self, function) -> list:
        """function(block) for every block, results in block order (never completion order)."""
        if self._pool is None or len(self.blocks) == 1:
            return [function(block) for block in self.blocks]
        return list(self._pool.map(function, self.blocks))

    def lipschitz(self, l2: float = 0.0) -> float:
        """Böhning's L for these rows: power iteration whose products are block sums."""

        def raw_gram_product(v: np.ndarray) -> np.ndarray:
            parts = self._map(lambda block: block_gram_product(self._rows(block[0]), block[2], v))
            total = parts[0]
            for part in parts[1:]:
                total += part
            return total

        def gram_product(v: np.ndarray) -> np.ndarray:
            if self.standardization is None:
                return raw_gram_product(v)
            # X~_s v = X (v_w / scale) + (v_b - mean . v_w / scale); X_s^T u = (X^T u - mean sum u) / scale.
            mean, scale = self.standardization
            v_raw = np.empty_like(v)
            v_raw[:-1] = v[:-1] / scale
            v_raw[-1] = v[-1] - mean @ v_raw[:-1]
            out = raw_gram_product(v_raw)
            out[:-1] = (out[:-1] - mean * out[-1]) / scale
            return out

        return lipschitz_power_iteration(gram_product, self.n_features, self.dtype, l2)

    def evaluate(self, W: np.ndarray, b: np.ndarray, l2: float = 0.0, *, gradient: bool = True,
                 count: bool = False) -> Evaluation:
        """J(W, b) (and dJ/dW, dJ/db; and the row counts) from one pass over X's blocks."""
        W_raw, b_raw = (W, b) if self.standardization is None else fold_standardization(W, b, *self.standardization)
        W_t = np.ascontiguousarray(W_raw.T, dtype=self.dtype)  # (K, D)
        b_raw = np.asarray(b_raw, dtype=self.dtype)

        def one_block(block) -> BlockSums:
            source, y_block, weight = block
            return block_sums(W_t, b_raw, self._rows(source), y_block, weight, gradient=gradient, count=count)

        return add_block_sums(self._map(one_block), W, l2, gradient, count, self.standardization)


class StreamEngine(MemoryEngine):
    """Row-block sums over a row-major ``.npy`` file, read block by block: out of core.

    Each worker thread reads its block with ``os.pread`` into a buffer of its own, reused for
    every block, so memory stays at (threads x block) whatever the file's size; the sums are
    the same function of the same blocks as in memory. y and the row weights (N numbers) are
    held in memory; a weight of 0 leaves a row out (how the training split is chosen without
    copying rows).
    """

    def __init__(self, path, y: np.ndarray, sample_weight: np.ndarray | None = None, *, n_classes: int,
                 threads: int | None = None, block_rows: int | None = None, standardization=None):
        X = np.load(path, mmap_mode="r", allow_pickle=False)  # for the header: shape, dtype, offset
        if X.ndim != 2 or not X.flags.c_contiguous or X.dtype not in (np.float32, np.float64):
            raise ValueError(f"{path}: the stream engine reads a 2-D row-major float32/float64 .npy file, got "
                             f"shape {X.shape}, dtype {X.dtype}{'' if X.flags.c_contiguous else ', column-major'}")
        self.path, self.offset = str(path), int(X.offset)
        self.row_bytes = X.shape[1] * X.dtype.itemsize
        if block_rows is None:
            block_rows = block_rows_for(X.shape[1], X.dtype.itemsize)
        super().__init__(X, y, sample_weight, n_classes=n_classes, threads=threads, block_rows=block_rows,
                         standardization=standardization)
        # Blocks are row ranges, not views of the memory map: reading through the map would
        # leave every page it touched resident.
        self.blocks = [((start, stop), y_block, weight)
                       for (start, stop), (_, y_block, weight) in zip(row_blocks(X, block_rows), self.blocks)]
        self.block_rows = block_rows
        self._local = threading.local()
        self._descriptor: int | None = None

    def __enter__(self) -> "StreamEngine":
        self._descriptor = os.open(self.path, os.O_RDONLY)
        return super().__enter__()

    def __exit__(self, *exc_info) -> None:
        try:
            super().__exit__(*exc_info)
        finally:
            if self._descriptor is not None:
                os.close(self._descriptor)
                self._descriptor = None

    def read_blocks(self):
        """(start, rows) for every block in order, read into one reused buffer (valid until the next)."""
        for (start, stop), _, _ in self.blocks:
            yield start, self._rows((start, stop))

    def _rows(self, source) -> np.ndarray:
        start, stop = source
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = np.empty((min(self.block_rows, self.n_samples), self.n_features),
                                                   dtype=self.dtype)
        rows = buffer[: stop - start]
        view = memoryview(rows.reshape(-1).view(np.uint8))
        wanted, done = len(view), 0
        while done < wanted:  # pread may return fewer bytes than asked
            got = os.preadv(self._descriptor, [view[done:]], self.offset + start * self.row_bytes + done)
            if got == 0:
                raise OSError(f"{self.path}: the file ended at row {start + done // self.row_bytes}; it was "
                              "truncated or replaced while training")
            done += got
        return rows
