"""The dask engine: row blocks kept on the workers of a Dask cluster.

Why one module of about 530 lines: the client side (DaskEngine, DaskFold) and the tasks it
submits (module-level functions, which Dask sends to the workers by their qualified name) are
one protocol; the tasks are small and have no other caller.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from softreg.model.engines.base import (
    BlockSource,
    Engine,
    EngineError,
    EngineLost,
    ObjectiveValue,
    available_cores,
    block_column_moments,
    block_probabilities,
    block_rows_for,
    evaluation_from_parts,
    row_blocks,
)
from softreg.model.engines.stream import read_npy_rows
from softreg.model.math.linear import BlockSums, add_block_sums, block_sums, fold_standardization
from softreg.model.math.lipschitz import block_gram_product, folded_gram, lipschitz_power_iteration
from softreg.model.math.softmax import normalized_weights

MAX_BLOCKS = 1000
HANDSHAKE_SECONDS = 5.0
# A Dask scheduler's handshake (compression, python version, pickle protocol) is about 60
# bytes; the first frame's length prefix of anything else can claim exabytes.
MAX_HANDSHAKE_BYTES = 65536


def _read_exactly(connection, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def probe_scheduler(address: str, seconds: float = HANDSHAKE_SECONDS) -> None:
    """Check that ``address`` speaks Dask's protocol before ``Client`` is let near it.

    A Dask scheduler sends its handshake as soon as a connection opens: an 8-byte length, then
    a msgpack frame naming its pickle protocol. Anything else (a web server waiting for a
    request, a port that answers with noise) made ``Client`` wait for ever or allocate the
    length that noise claimed; here it is a bounded read and one error naming the address.
    Only plain tcp:// is probed: tls:// needs the cluster's certificates, which ``Client``
    brings.
    """
    import socket
    import struct

    if address.startswith("tls://"):
        return
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    wrong = (f"the address {address!r} answers, but not as a Dask scheduler ({{}}); check the host and port "
             "(a scheduler listens on 8786 by default; its dashboard port speaks HTTP, not Dask)")
    try:
        with socket.create_connection((host, int(port)), timeout=seconds) as connection:
            connection.settimeout(seconds)
            prefix = _read_exactly(connection, 8)
            if len(prefix) < 8:
                raise EngineError(wrong.format("it closed the connection without a Dask handshake"))
            (size,) = struct.unpack("<Q", prefix)
            if size > MAX_HANDSHAKE_BYTES:
                raise EngineError(wrong.format(f"its first message claims {size:,} bytes; a Dask handshake "
                                               f"is under {MAX_HANDSHAKE_BYTES:,}"))
            frame = _read_exactly(connection, size)
    except TimeoutError:
        raise EngineError(wrong.format(f"no Dask handshake within {seconds:g} s")) from None
    except OSError as error:
        raise EngineError(f"cannot reach the Dask scheduler at {address!r} ({error.strerror or error}); check "
                          "the address (for example tcp://host:8786) and that the scheduler is running.") from None
    if len(frame) < size or b"pickle-protocol" not in frame:
        raise EngineError(wrong.format("its first message is not a Dask handshake"))

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


class DaskEngine(Engine):
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

    config_keys = ("block_rows", "scheduler")

    def __init__(self, path, y: np.ndarray, sample_weight: np.ndarray | None = None, *, n_classes: int,
                 block_rows: int | None = None, standardization=None, scheduler: str | None = None,
                 n_workers: int | None = None):
        self.scheduler, self.n_workers, self.y = scheduler, n_workers, y
        self.standardization = None
        self._initial_standardization = standardization
        self.events: list[str] = []
        self._client = self._cluster = self._blocks = None
        self._workers: set[str] = set()
        if isinstance(path, BlockSource):  # say a folder of partitions: one loader task per block
            if block_rows is not None:
                raise ValueError(f"block_rows sets the blocks of a .npy file; {path.path} is read in its own blocks")
            self.path = path.path
            self.n_samples, self.n_features = path.shape
            self.dtype = np.dtype(path.dtype)
            self.ranges = [(start, stop) for start, stop, _ in path.blocks]
            self._loaders = [(read,) for _, _, read in path.blocks]
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
            self._check_task_count()
        self._set_weights(normalized_weights(sample_weight, self.n_samples, self.dtype))

    def _set_weights(self, weights: np.ndarray | None) -> None:
        self._weights = weights
        self._labelled = None  # the labelled blocks on the workers carry the old weights
        self.n_weighted = self.n_samples if weights is None else int(np.count_nonzero(weights > 0))
        self.labels_and_weights = None if self.ranges is None else [
            (self.y[start:stop], self.dtype.type(1.0 / self.n_samples) if weights is None else weights[start:stop])
            for start, stop in self.ranges]

    def _check_task_count(self) -> None:
        """One task per block per pass: beyond MAX_BLOCKS the scheduler's overhead is the run
        (2,000 one-row blocks did not finish a run in 120 s)."""
        if self.ranges is not None and len(self.ranges) > MAX_BLOCKS:
            raise EngineError(f"block_rows {self.ranges[0][1] - self.ranges[0][0]} splits {self.n_samples:,} rows into "
                              f"{len(self.ranges):,} blocks; the dask engine runs one task per block per pass, at most "
                              f"{MAX_BLOCKS:,}: raise block_rows (or leave it unset: about 200,000 rows a block).")

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
                probe_scheduler(self.scheduler, HANDSHAKE_SECONDS)
                self._client = Client(self.scheduler, timeout=f"{HANDSHAKE_SECONDS:g}s")
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
                              for block, labels in zip(self._blocks, self.labels_and_weights)]
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

    def objective(self, W: np.ndarray, b: np.ndarray, l2: float = 0.0, *, gradient: bool = True,
                 count: bool = False, row_weights: np.ndarray | None = None) -> ObjectiveValue:
        W_t = np.ascontiguousarray(W.T, dtype=self.dtype)
        labels = None if row_weights is None else [(self.y[start:stop], row_weights[start:stop])
                                                    for start, stop in self.ranges]
        parts = self._run(_block_sums_task, W_t, np.asarray(b, dtype=self.dtype), gradient, count, labels=labels)
        return evaluation_from_parts(parts, W, l2)

    def lipschitz(self, l2: float = 0.0) -> float:
        def raw_gram_product(v: np.ndarray) -> np.ndarray:
            parts = self._run(_gram_task, v)
            total = parts[0]
            for part in parts[1:]:
                total += part
            return total

        return lipschitz_power_iteration(raw_gram_product, self.n_features, self.dtype, l2)

    def for_fold(self, sample_weight: np.ndarray | None) -> "DaskFold":
        """These rows with a fold's weights and its own (folded) standardization, on this cluster
        and these blocks: no second cluster, no copy of the rows."""
        return DaskFold(self, sample_weight)

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

    def map_blocks(self, function, *args) -> list:
        """function(rows, y_block, weight, *args) on the workers, one task per block, in block
        order (``function`` must pickle: a module-level function)."""
        return self._run(_map_task, function, *args)

    def probabilities(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """softmax(X_s W + b) for every row, (N, K), the blocks' results in block order."""
        return np.concatenate(self._run(_probabilities_task, W, b))


class DaskFold(Engine):
    """The rows of a DaskEngine with other row weights and a standardization of their own, folded
    into the weights as the memory engine folds it (z = x (W / s) + (b - (m / s) W), and the
    chain rule back): one cluster and one copy of the blocks serve every fold of a
    cross-validated path. The DaskEngine must serve raw rows (no standardization of its own);
    a fold opens and closes it."""

    config_keys = ()

    def __init__(self, base: DaskEngine, sample_weight: np.ndarray | None):
        if base.standardization is not None:
            raise ValueError("a DaskFold folds its own standardization into raw rows; this DaskEngine already "
                             "serves standardized ones")
        self.base, self.y = base, base.y
        self.n_samples, self.n_features, self.dtype = base.n_samples, base.n_features, base.dtype
        self.events = base.events
        self.standardization = None
        self.row_weights = normalized_weights(sample_weight, self.n_samples, self.dtype)
        if self.row_weights is None:
            self.row_weights = np.full(self.n_samples, 1.0 / self.n_samples, dtype=self.dtype)
        self.n_weighted = int(np.count_nonzero(self.row_weights > 0))

    def _open(self) -> None:
        self.base.__enter__()

    def _close(self) -> None:
        self.base.__exit__(None, None, None)

    def set_standardization(self, mean, scale) -> None:
        self.standardization = (np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64))

    def _labels(self, row_weights=None) -> list:
        """Each block's (labels, weights) for one pass: this fold's weights, or ``row_weights``."""
        weights = self.row_weights if row_weights is None else row_weights
        return [(self.y[start:stop], weights[start:stop]) for start, stop in self.base.ranges]

    def _raw(self, W, b):
        return (W, b) if self.standardization is None else fold_standardization(W, b, *self.standardization)

    def objective(self, W: np.ndarray, b: np.ndarray, l2: float = 0.0, *, gradient: bool = True,
                  count: bool = False, row_weights: np.ndarray | None = None) -> ObjectiveValue:
        W_raw, b_raw = self._raw(W, b)
        parts = self.base._run(_block_sums_task, np.ascontiguousarray(W_raw.T, dtype=self.dtype),
                               np.asarray(b_raw, dtype=self.dtype), gradient, count, labels=self._labels(row_weights))
        return evaluation_from_parts(parts, W, l2, self.standardization)

    def lipschitz(self, l2: float = 0.0) -> float:
        def raw_gram_product(v: np.ndarray) -> np.ndarray:
            parts = self.base._run(_gram_task, v, labels=self._labels())
            total = parts[0]
            for part in parts[1:]:
                total += part
            return total

        return lipschitz_power_iteration(folded_gram(raw_gram_product, self.standardization), self.n_features,
                                         self.dtype, l2)

    def column_moments(self, mean: np.ndarray | None = None) -> np.ndarray:
        parts = self.base._run(_moments_task, mean, labels=self._labels())
        total = np.zeros(self.n_features)
        for part in parts:
            total += part
        return total

    def probabilities(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        W_raw, b_raw = self._raw(W, b)
        return np.concatenate(self.base._run(_probabilities_task, W_raw, b_raw))


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
    return add_block_sums(parts)


def _gram_task(rows, labels, v):
    return block_gram_product(rows, labels[1], v)


def _moments_task(rows, labels, mean):
    return block_column_moments(rows, labels[1], mean)


def _map_task(rows, labels, function, *args):
    return function(rows, labels[0], labels[1], *args)


def _probabilities_task(rows, labels, W, b):
    return block_probabilities(rows, W, b)


def standardized_rows(rows: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(rows - mean) / scale in the rows' dtype, as a new array (task results are never changed)."""
    out = rows - mean
    out /= scale
    return out


