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

:class:`StreamEngine` and :class:`PartitionStreamEngine` read the same kind of blocks from a
prepared .npy file or from a folder of Parquet/CSV partitions, pass by pass (out of core);
:class:`DaskEngine` keeps them on the workers of a Dask cluster. :class:`WeightedView` serves an
engine's rows with other weights (the validation rows).

Reproducibility: block boundaries depend only on the shape and dtype of X (never on the
number of threads), and partial sums are added in block order (never in completion order),
so the same data gives bitwise the same weights on any machine with the same BLAS. (The Dask
engine's default blocks also depend on the number of workers; see DaskEngine._plan_blocks.)
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

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


class _Engine:
    """What every engine shares: it is opened on the first ``with`` and closed on the last (a
    caller's ``with`` and the training loop's may nest), and it serves its rows with other
    weights through :meth:`sibling`. Subclasses say how to open and close in ``_open`` and
    ``_close``; ``_open`` leaves nothing open when it fails."""

    _depth = 0  # entered this many times

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


class MemoryEngine(_Engine):
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

    def _open(self) -> None:
        from threadpoolctl import threadpool_limits

        self._stack = ExitStack()
        if self.threads > 1 or self._small:
            self._stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
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

        return lipschitz_power_iteration(_folded_gram(raw_gram_product, self._fold), self.n_features,
                                         self.dtype, l2)

    def column_moments(self, mean: np.ndarray | None = None) -> np.ndarray:
        """sum_i w_i x_i, or sum_i w_i (x_i - mean)^2 with ``mean``, over the weighted rows (the
        weights sum to 1, so these are the weighted mean and variance): (D,) float64, by blocks."""
        parts = self._map(lambda block: block_column_moments(self._rows(block[0]), block[2], mean))
        total = np.zeros(self.n_features)
        for part in parts:
            total += part
        return total

    def probabilities(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """softmax(X_s W + b) for every (served) row, (N, K), block by block; W, b as in evaluate."""
        W_raw, b_raw = (W, b) if self._fold is None else fold_standardization(W, b, *self._fold)
        return np.concatenate(self._map(lambda block: block_probabilities(self._rows(block[0]), W_raw, b_raw)))

    def evaluate(self, W: np.ndarray, b: np.ndarray, l2: float = 0.0, *, gradient: bool = True,
                 count: bool = False, row_weights: np.ndarray | None = None) -> Evaluation:
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
        return add_block_sums(self._map(one_block, blocks), W, l2, gradient, count, self._fold)


class _StandardizesItsCopies:
    """For engines whose blocks are fresh copies (read from a file): the rows are standardized
    in that copy, in X's dtype, instead of folding the map into the weights. Exact in float32
    too, where folding cancels catastrophically for columns with |mean| >> scale."""

    def set_standardization(self, mean, scale) -> None:
        super().set_standardization(mean, scale)
        self._mean, self._scale = (np.asarray(a, dtype=self.dtype) for a in self.standardization)

    @property
    def _fold(self):
        return None  # the rows come standardized from _rows

    def _standardized(self, rows: np.ndarray) -> np.ndarray:
        if self.standardization is not None:
            rows -= self._mean
            rows /= self._scale
        return rows


class StreamEngine(_StandardizesItsCopies, MemoryEngine):
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
                       for (start, stop), (_, y_block, weight) in zip(self.ranges, self.blocks)]
        self.block_rows = block_rows
        self._local = threading.local()
        self._descriptor: int | None = None

    def _open(self) -> None:
        self._descriptor = os.open(self.path, os.O_RDONLY)
        super()._open()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            if self._descriptor is not None:
                os.close(self._descriptor)
                self._descriptor = None

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
        return self._standardized(rows)


class PartitionStreamEngine(_StandardizesItsCopies, MemoryEngine):
    """The stream engine over a folder of Parquet or CSV partitions (:mod:`softreg.data.partitions`):
    each block (a Parquet row group or a CSV partition) is read when it is needed and dropped
    after, so memory is a few blocks; the rows are standardized in that fresh copy."""

    def __init__(self, rows, blocks, y: np.ndarray, sample_weight: np.ndarray | None = None, *, n_classes: int,
                 threads: int | None = None):
        self.X, self.y, self.folder = None, y, rows.folder
        self.n_samples, self.n_features = rows.shape
        self.dtype = rows.dtype
        self.ranges = [(block.start, block.stop) for block in blocks]
        self.blocks = [(block, y[block.start:block.stop], None) for block in blocks]
        self._set_weights(normalized_weights(sample_weight, self.n_samples, self.dtype))
        self.threads = max(1, min(threads or available_cores(), len(self.blocks)))
        self.standardization = None
        self._stack = self._pool = None
        self._small = False

    def _rows(self, source) -> np.ndarray:
        from softreg.data.partitions import read_block

        return self._standardized(read_block(self.folder, source, self.dtype.name))


# ----------------------------------------------------------------------------------- file blocks
def read_npy_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a row-major .npy file, read (not mapped): a loader task's whole job."""
    X = np.load(path, mmap_mode="r", allow_pickle=False)
    return np.array(X[start:stop])  # a copy in memory; the map is released with X


def block_column_moments(rows: np.ndarray, weight, mean: np.ndarray | None) -> np.ndarray:
    """sum_i w_i x_i (mean None) or sum_i w_i (x_i - mean)^2, in float64, for one block (D,)."""
    values = rows.astype(np.float64)
    if mean is not None:
        values -= mean
        values *= values
    weight = np.broadcast_to(np.asarray(weight, dtype=np.float64), (rows.shape[0],))
    return weight @ values


def block_probabilities(rows: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """softmax(X_B W + b) for one block, (B, K), max-shifted, in float64."""
    from softreg.model.softmax import softmax

    return softmax(np.asarray(rows @ W, dtype=np.float64) + b)


def environment_versions() -> dict:
    """The versions that must agree between this process and every worker."""
    import sys
    from importlib.metadata import version

    return {"python": f"{sys.version_info[0]}.{sys.version_info[1]}", "softreg": version("softreg"),
            "numpy": np.__version__}


@contextmanager
def _sigint_ignored():
    """Worker processes started inside inherit an ignored SIGINT (it survives exec), so a Ctrl-C
    in the terminal reaches only softreg, which stops after the epoch and saves; without this
    it also killed the workers, and the pass in progress waited for them for ever."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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

    def evaluate(self, W, b, l2: float = 0.0, *, gradient: bool = True, count: bool = False) -> Evaluation:
        return self.engine.evaluate(W, b, l2, gradient=gradient, count=count, row_weights=self.row_weights)


class EngineError(RuntimeError):
    """An engine cannot start: the message names the scheduler, worker or file at fault."""


class EngineLost(RuntimeError):
    """The engine went away during training (a lost scheduler); the run failed."""


class DaskEngine(_Engine):
    """Row-block sums on a Dask cluster, for data spread over several machines.

    Blocks are made on the workers by loader tasks (:func:`read_npy_rows` over a row range of
    a prepared .npy that every worker can read) and kept there; a block lost with its worker
    is recomputed from its task. Each pass sends W^T and b (D x K, small) with one task per
    block, and the partial sums are added in block order, never in completion order, so the
    result equals the in-memory engine's for the same blocks. Each line-search trial is one
    task per block, so workers keep no state beyond their blocks.

    Without ``scheduler`` an embedded local cluster (one worker process per core, one thread
    each) is started and stopped with the engine; with an address, the user's cluster is used.
    """

    def __init__(self, path, y: np.ndarray, sample_weight: np.ndarray | None = None, *, n_classes: int,
                 block_rows: int | None = None, standardization=None, scheduler: str | None = None,
                 n_workers: int | None = None, folder_rows=None):
        self.scheduler, self.n_workers, self.y = scheduler, n_workers, y
        self.standardization = None
        self._initial_standardization = standardization
        self.events: list[str] = []
        self._client = self._cluster = self._blocks = None
        self._workers: set[str] = set()
        if folder_rows is not None:  # a folder of partitions: one loader task per row group / CSV file
            from softreg.data.partitions import read_block

            self.path = str(folder_rows.folder.path.resolve())
            self.n_samples, self.n_features = folder_rows.shape
            self.dtype = folder_rows.dtype
            blocks = folder_rows.blocks()
            self.ranges = [(block.start, block.stop) for block in blocks]
            self._loaders = [(read_block, folder_rows.folder, block, self.dtype.name) for block in blocks]
        else:
            X = np.load(path, mmap_mode="r", allow_pickle=False)
            if X.ndim != 2 or not X.flags.c_contiguous or X.dtype not in (np.float32, np.float64):
                raise ValueError(f"{path}: the dask engine reads a 2-D row-major float32/float64 .npy file, got "
                                 f"shape {X.shape}, dtype {X.dtype}")
            self.path = str(Path(path).resolve())
            self.n_samples, self.n_features = X.shape
            self.dtype = X.dtype
            # Without block_rows, blocks are planned when the cluster's size is known (in __enter__).
            self.block_rows = block_rows
            self.ranges = row_blocks(X, block_rows) if block_rows else None
        self._set_weights(normalized_weights(sample_weight, self.n_samples, self.dtype))

    def _set_weights(self, weights: np.ndarray | None) -> None:
        self._weights = weights
        self._labelled = None  # the labelled blocks on the workers carry the old weights
        self.n_weighted = self.n_samples if weights is None else int(np.count_nonzero(weights > 0))
        self.labels = None if self.ranges is None else [
            (self.y[start:stop], self.dtype.type(1.0 / self.n_samples) if weights is None else weights[start:stop])
            for start, stop in self.ranges]

    def _plan_blocks(self, n_workers: int) -> None:
        """Blocks of about 200,000 rows, as many per worker on every worker.

        The prototype measured +0-21% per pass over one-process NumPy with 200,000-row blocks
        and +45-89% with 50,000-row blocks (task overhead); and 5 blocks on 2 workers leave one
        worker 3 blocks while the other waits (measured 171 ms per pass against 107 ms in
        memory at 1,000,000 x 100 x 10 float32), so the count is rounded up to a multiple of
        the workers. The blocks therefore depend on the cluster's size: results agree across
        cluster sizes to rounding (about 1e-16 relative per pass), not bitwise.
        """
        if self.ranges is None:
            per_worker = max(1, -(-self.n_samples // (200_000 * max(n_workers, 1))))
            n_blocks = min(per_worker * max(n_workers, 1), self.n_samples)
            self.block_rows = -(-self.n_samples // n_blocks)
            self.ranges = [(start, min(start + self.block_rows, self.n_samples))
                           for start in range(0, self.n_samples, self.block_rows)]
            self._set_weights(self._weights)
        if not hasattr(self, "_loaders"):
            self._loaders = [(read_npy_rows, self.path, start, stop) for start, stop in self.ranges]

    # ------------------------------------------------------------------ lifetime
    def _open(self) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise EngineError("engine 'dask' needs Dask: pip install \"softreg[dask]\"") from None
        import logging
        import warnings

        # Dask logs its own view of failures (a lost worker, a lost scheduler) as it recovers;
        # softreg reports them itself, once, in its own words.
        for name in ["distributed", *(n for n in logging.root.manager.loggerDict if n.startswith("distributed."))]:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            if self.scheduler is None:
                with warnings.catch_warnings(), _sigint_ignored():
                    # Another Dask cluster on this machine holds the default HTTP port; ours takes
                    # any other, which is fine and not worth a warning.
                    warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
                    self._cluster = LocalCluster(n_workers=self.n_workers or available_cores(), threads_per_worker=1,
                                                 processes=True, dashboard_address=None,
                                                 silence_logs=logging.CRITICAL)
                self._client = Client(self._cluster)
            else:
                self._client = Client(self.scheduler, timeout="5s")
        except (OSError, TimeoutError) as error:
            self._close()
            raise EngineError(f"cannot reach the Dask scheduler at {self.scheduler!r} ({error}); check the address "
                              "(for example tcp://host:8786) and that the scheduler is running.") from None
        try:
            self._check_workers()
            # Loader tasks: each block is made on a worker from the file and stays there.
            self._plan_blocks(len(self._client.scheduler_info()["workers"]))
            self._blocks = [self._client.submit(*loader, pure=True) for loader in self._loaders]
            self._labelled = self._block_owners = None
            if self._initial_standardization is not None:
                self.set_standardization(*self._initial_standardization)
            self._workers = set(self._client.scheduler_info()["workers"])
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        client, cluster, self._client, self._cluster, self._blocks = self._client, self._cluster, None, None, None
        for closable in (client, cluster):
            if closable is not None:
                try:
                    closable.close(timeout=2) if closable is client else closable.close()
                except Exception:  # noqa: BLE001 - shutting down a cluster that is already gone
                    pass

    def _check_workers(self) -> None:
        """One clear error before training when a worker differs from this process, or has none."""
        workers = self._client.scheduler_info()["workers"]
        if not workers:
            try:
                self._client.wait_for_workers(1, timeout=30)
            except Exception:  # noqa: BLE001 - distributed's own timeout error
                raise EngineError(f"the Dask scheduler at {self.scheduler!r} has no workers (waited 30 s); start "
                                  "some with `dask worker ADDRESS`.") from None
        here = environment_versions()
        try:
            theirs = self._client.run(environment_versions)
        except Exception as error:  # noqa: BLE001 - a worker that cannot import softreg fails here
            raise EngineError(f"the Dask workers cannot run softreg ({type(error).__name__}: {error}); install the "
                              f"same softreg {here['softreg']} and numpy {here['numpy']} on every worker.") from None
        for address, versions in sorted(theirs.items()):
            if versions != here:
                differing = ", ".join(f"{key} {versions.get(key)} (here {value})" for key, value in here.items()
                                      if versions.get(key) != value)
                raise EngineError(f"Dask worker {address} runs {differing}; every worker needs the same Python, "
                                  "softreg and numpy as this process (a mismatch would fail mid-training or give "
                                  "other numbers).")
        try:
            readable = self._client.run(os.access, self.path, os.R_OK)
        except Exception:  # noqa: BLE001
            readable = {}
        missing = sorted(address for address, ok in readable.items() if not ok)
        if missing:
            raise EngineError(f"Dask worker {missing[0]} cannot read {self.path}; every worker reads its blocks "
                              "from the file, so put it on storage they all share.")

    # ------------------------------------------------------------------ passes
    def _run(self, function, *args, labels: list | None = None) -> list:
        """function(rows_i, labels_i, *args) on the workers, one task per block;
        results in block order. Each block's own labels and weights live on its worker beside its
        rows (sent once, not with every pass: 12 bytes a row, 12 MB a pass at 1,000,000 rows);
        ``labels`` replaces them for one pass (the validation rows' weights)."""
        overrides = [None] * len(self._blocks) if labels is None else labels
        # Each task runs where its block lives. Without the hint the scheduler's work stealing
        # moved tasks, and so their blocks (80 MB each), between workers on every pass
        # (measured: 4 tasks on one worker and 2 on the other, 216 ms per pass against 150).
        # The hint is loose: if that worker is gone, the task runs elsewhere.
        labelled = self._labelled_blocks()
        owners = self._owners(labelled)
        futures = [self._client.submit(_on_block, function, block, override, *args, pure=False,
                                       workers=owner, allow_other_workers=owner is not None)
                   for block, override, owner in zip(labelled, overrides, owners)]
        try:
            self._wait_while_workers_remain(futures)
            results = self._client.gather(futures)
        except (EngineLost, EngineError):
            raise
        except Exception as error:  # noqa: BLE001 - distributed raises many kinds when its scheduler is gone
            if self._client.status != "running" or type(error).__name__ in ("CancelledError", "CommClosedError",
                                                                             "FutureCancelledError"):
                raise EngineLost(f"lost the Dask scheduler{'' if self.scheduler is None else ' at ' + self.scheduler} "
                                 f"({type(error).__name__}: {error})") from None
            if type(error).__name__ == "KilledWorker":
                raise EngineLost(f"a block's task killed worker after worker ({error}); the data or the workers' "
                                 "memory may be at fault") from None
            raise
        self._note_lost_workers()
        return results

    def _wait_while_workers_remain(self, futures, poll_seconds: float = 2.0) -> None:
        """Wait for the pass, but not for ever: a cluster with no workers left cannot finish it."""
        while True:
            _, not_done = self._wait_some(futures, poll_seconds)
            if not not_done:
                return
            if self._client.status != "running":
                return  # gather reports the lost scheduler
            if not self._client.scheduler_info()["workers"]:
                raise EngineLost(f"no Dask workers left{'' if self.scheduler is None else ' on ' + self.scheduler}; "
                                 "the pass cannot finish")

    @staticmethod
    def _wait_some(futures, seconds: float):
        from distributed import wait

        try:
            result = wait(futures, timeout=seconds)
        except TimeoutError:
            return [], futures
        return result.done, result.not_done

    def _labelled_blocks(self) -> list:
        """Futures of (rows, (y, weights)) per block, made on the workers from the rows' futures."""
        if getattr(self, "_labelled", None) is None:
            self._labelled = [self._client.submit(_with_labels, block, labels, pure=True)
                              for block, labels in zip(self._blocks, self.labels)]
            self._block_owners = None
        return self._labelled

    def _owners(self, blocks) -> list:
        """The worker holding each block (None where not known yet), asked once per cluster change."""
        if getattr(self, "_block_owners", None) is None or len(self._block_owners) != len(blocks):
            from distributed import wait

            wait(blocks)
            who_has = self._client.who_has(blocks)
            self._block_owners = [list(who_has.get(block.key, ())) or None for block in blocks]
        return self._block_owners

    def _note_lost_workers(self) -> None:
        workers = set(self._client.scheduler_info()["workers"])
        for address in sorted(self._workers - workers):
            self.events.append(f"worker {address} left the cluster; its blocks were recomputed from the file")
        if workers != self._workers:
            self._block_owners = None  # ask again where the blocks are
        self._workers = workers

    def evaluate(self, W: np.ndarray, b: np.ndarray, l2: float = 0.0, *, gradient: bool = True,
                 count: bool = False, row_weights: np.ndarray | None = None) -> Evaluation:
        W_t = np.ascontiguousarray(W.T, dtype=self.dtype)
        labels = None if row_weights is None else [(self.y[start:stop], row_weights[start:stop])
                                                    for start, stop in self.ranges]
        parts = self._run(_block_sums_task, W_t, np.asarray(b, dtype=self.dtype), gradient, count, labels=labels)
        return add_block_sums(parts, W, l2, gradient, count)

    def lipschitz(self, l2: float = 0.0) -> float:
        def raw_gram_product(v: np.ndarray) -> np.ndarray:
            parts = self._run(_gram_task, v)
            total = parts[0]
            for part in parts[1:]:
                total += part
            return total

        return lipschitz_power_iteration(raw_gram_product, self.n_features, self.dtype, l2)

    def set_standardization(self, mean, scale) -> None:
        """Standardized copies of the blocks, made on the workers by tasks that depend on the
        loader tasks (so a lost one is recomputed from the file too); the raw blocks are released."""
        self.standardization = (np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64))
        if self._blocks is not None:
            mean_x, scale_x = (a.astype(self.dtype) for a in self.standardization)
            self._blocks = [self._client.submit(standardized_rows, block, mean_x, scale_x, pure=True)
                            for block in self._blocks]
            self._labelled = self._block_owners = None

    def column_moments(self, mean: np.ndarray | None = None) -> np.ndarray:
        parts = self._run(_moments_task, mean)
        total = np.zeros(self.n_features)
        for part in parts:
            total += part
        return total

    def probabilities(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """softmax(X_s W + b) for every row, (N, K), the blocks' results in block order."""
        return np.concatenate(self._run(_probabilities_task, W, b))


def _with_labels(rows, labels):
    return rows, labels


def _on_block(function, labelled, override, *args):
    """function(rows, labels, *args) on a labelled block, with ``override`` for its labels if given."""
    rows, labels = labelled
    return function(rows, labels if override is None else override, *args)


def _block_sums_task(rows, labels, W_t, b, gradient, count) -> BlockSums:
    y_block, weight = labels
    return tiled_block_sums(W_t, b, rows, y_block, weight, gradient=gradient, count=count)


def tiled_block_sums(W_t, b, rows, y_block, weight, *, gradient: bool, count: bool) -> BlockSums:
    """:func:`block_sums` over a large block, one cache-sized tile (BLOCK_BYTES) at a time.

    A cluster's blocks are large (task overhead is per block), but each tile must stay in cache
    between its two products, as in memory; the tiles' sums are added in order.
    """
    tile = block_rows_for(rows.shape[1], rows.dtype.itemsize)
    if rows.shape[0] <= tile:
        return block_sums(W_t, b, rows, y_block, weight, gradient=gradient, count=count)
    parts = []
    for start in range(0, rows.shape[0], tile):
        stop = min(start + tile, rows.shape[0])
        part_weight = weight if np.ndim(weight) == 0 else weight[start:stop]
        parts.append(block_sums(W_t, b, rows[start:stop], y_block[start:stop], part_weight, gradient=gradient,
                                count=count))
    loss = 0.0
    for part in parts:
        loss += part.loss
    dW_t = db = None
    if gradient:
        dW_t, db = parts[0].dW_t.copy(), parts[0].db.copy()
        for part in parts[1:]:
            dW_t += part.dW_t
            db += part.db
    n_correct = sum(part.n_correct for part in parts) if count else None
    n_unseparated = sum(part.n_unseparated for part in parts) if count else None
    return BlockSums(loss, dW_t, db, n_correct, n_unseparated)


def _gram_task(rows, labels, v):
    return block_gram_product(rows, labels[1], v)


def _moments_task(rows, labels, mean):
    return block_column_moments(rows, labels[1], mean)


def _probabilities_task(rows, labels, W, b):
    return block_probabilities(rows, W, b)


def standardized_rows(rows: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(rows - mean) / scale in the rows' dtype, as a new array (task results are never changed)."""
    out = rows - mean
    out /= scale
    return out


def _folded_gram(raw_gram_product, standardization):
    """The gram product of the standardized rows from the raw one (see MemoryEngine.lipschitz)."""
    if standardization is None:
        return raw_gram_product
    mean, scale = standardization

    def gram_product(v: np.ndarray) -> np.ndarray:
        v_raw = np.empty_like(v)
        v_raw[:-1] = v[:-1] / scale
        v_raw[-1] = v[-1] - mean @ v_raw[:-1]
        out = raw_gram_product(v_raw)
        out[:-1] = (out[:-1] - mean * out[-1]) / scale
        return out

    return gram_product
