"""The stream engine: row blocks read from storage pass by pass, out of core.

Blocks come from a prepared row-major ``.npy`` (read with ``os.pread``) or from any block
reader the caller hands in (a folder of Parquet/CSV partitions); each block is a fresh copy,
so the rows are standardized in that copy instead of folding the map into the weights.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from softreg.model.engines.base import BlockSource, available_cores, block_rows_for
from softreg.model.engines.memory import MemoryEngine
from softreg.model.math.softmax import normalized_weights

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
    """Row-block sums over rows read block by block from storage: out of core.

    ``source`` is a row-major ``.npy`` file, or a :class:`~softreg.model.engines.base.BlockSource`
    (blocks with a reader each, say a folder's Parquet row groups or CSV partitions, read when
    needed and dropped after). From a ``.npy`` each worker thread reads its block with ``os.pread`` into a buffer of its own, reused for
    every block, so memory stays at (threads x block) whatever the file's size; the sums are
    the same function of the same blocks as in memory. y and the row weights (N numbers) are
    held in memory; a weight of 0 leaves a row out (how the training split is chosen without
    copying rows).
    """

    serves_minibatches = False  # rows in storage: a mini-batch would read scattered rows

    def __init__(self, source, y: np.ndarray, sample_weight: np.ndarray | None = None, *, n_classes: int,
                 threads: int | None = None, block_rows: int | None = None, standardization=None):
        self._local = threading.local()
        self._descriptor: int | None = None
        if isinstance(source, BlockSource):
            if block_rows is not None:
                raise ValueError(f"block_rows sets the blocks of a .npy file; {source.path} is read in its own blocks")
            self._serve_block_source(source, y, sample_weight, threads, standardization)
            return
        path = source
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

    def _serve_block_source(self, source: "BlockSource", y, sample_weight, threads, standardization) -> None:
        self.X, self.y, self.path = None, y, str(source.path)
        self.n_samples, self.n_features = source.shape
        self.dtype = np.dtype(source.dtype)
        self.ranges = [(start, stop) for start, stop, _ in source.blocks]
        self.blocks = [(read, y[start:stop], None) for start, stop, read in source.blocks]
        self._set_weights(normalized_weights(sample_weight, self.n_samples, self.dtype))
        self.threads = max(1, min(threads or available_cores(), len(self.blocks)))
        self.standardization = None
        self._stack = self._pool = None
        self._small = False
        if standardization is not None:
            self.set_standardization(*standardization)

    def _open(self) -> None:
        if self.X is not None:
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
        if callable(source):  # a block source's reader: a fresh array
            return self._standardized(source())
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


# ----------------------------------------------------------------------------------- file blocks
def read_npy_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a row-major .npy file, read (not mapped): a loader task's whole job."""
    X = np.load(path, mmap_mode="r", allow_pickle=False)
    return np.array(X[start:stop])  # a copy in memory; the map is released with X
