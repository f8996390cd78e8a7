"""Engines compared in one run: memory, stream (page cache warm and cold) and dask (local cluster).

    python benchmarks/engines.py            # about 3-4 minutes on 2 cores
    python benchmarks/engines.py --quick    # 200,000 rows, about a minute

Data: make_classification(1,000,000 x 100, 10 classes), float32, written once as a prepared
.npy in a temporary folder. For each engine: the time of one objective-and-gradient pass (the
median of several, standardized rows, as training runs it), and the wall time for
`--lr auto` to come within relative 1e-4 of scikit-learn lbfgs's objective (C = 1), both as
ratios to the memory engine in the same run. "stream, cold" drops the file from the page cache
(posix_fadvise DONTNEED) before every pass, so each pass reads the disk. Results are printed
and written to benchmarks/engines.json (--json elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

console = Console(width=160)


def drop_from_page_cache(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def pass_seconds(engine, W, b, repeats: int, before=None) -> float:
    """Median seconds of one fused pass (after one warm-up pass)."""
    engine.objective(W, b, 1e-6)
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        engine.objective(W, b, 1e-6)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from softreg.model.engines import DaskEngine, MemoryEngine, StreamEngine
    from softreg.model.estimator import SoftmaxRegression
    from softreg.model.math.linear import objective

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=str(Path(__file__).with_name("engines.json")))
    args = parser.parse_args()
    n = 200_000 if args.quick else 1_000_000
    started = time.perf_counter()
    X, y = make_classification(n_samples=n, n_features=100, n_informative=50, n_classes=10, n_clusters_per_class=1,
                               random_state=0)
    X = X.astype(np.float32)
    mean, scale = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
    l2 = 1.0 / n  # C = 1
    results = {"rows": n, "features": 100, "classes": 10, "dtype": "float32", "cpus": os.cpu_count()}
    # The lbfgs objective, on the same standardized rows in float64.
    standardized = (X - mean) / scale
    start = time.perf_counter()
    reference = LogisticRegression(C=1.0, tol=1e-8, max_iter=2000).fit(standardized, y)
    results["lbfgs_seconds"] = time.perf_counter() - start
    target = objective(reference.coef_.T, reference.intercept_, standardized, y, l2)
    del standardized
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((100, 10)) * 0.01).astype(np.float32)
    b = np.zeros(10, dtype=np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.npy"
        np.save(path, X)
        configurations = [
            ("memory", lambda: MemoryEngine(X, y, n_classes=10, standardization=(mean, scale)), None),
            ("stream, in page cache", lambda: StreamEngine(path, y, n_classes=10, standardization=(mean, scale)), None),
            ("stream, cold (read from disk every pass)",
             lambda: StreamEngine(path, y, n_classes=10, standardization=(mean, scale)),
             lambda: drop_from_page_cache(path)),
        ]
        configurations.append(("dask, 2 workers, default blocks (a multiple of the workers)",
                               lambda: DaskEngine(path, y, n_classes=10, n_workers=2, standardization=(mean, scale)),
                               None))
        for workers in (1, 2):
            for block_rows in (200_000, 50_000):
                if block_rows >= n and workers == 2:
                    continue
                configurations.append((f"dask, {workers} worker{'s' if workers > 1 else ''}, {block_rows:,}-row blocks",
                                       lambda workers=workers, block_rows=block_rows: DaskEngine(
                                           path, y, n_classes=10, block_rows=block_rows, n_workers=workers,
                                           standardization=(mean, scale)), None))
        for name, make, before in configurations:
            engine = make()
            start = time.perf_counter()
            with engine:
                startup = time.perf_counter() - start
                seconds = pass_seconds(engine, W, b, repeats=5, before=before)
                row = {"engine": name, "pass_ms": 1e3 * seconds, "startup_s": startup}
                if before is None:
                    reached = {}

                    def stop_when_reached(record, reached=reached):
                        if record.train_loss <= target * (1 + 1e-4) and "epoch" not in reached:
                            reached["epoch"] = record.epoch

                    model = SoftmaxRegression(l2=l2, standardize=False, tol=0, max_epochs=500, dtype="float32")
                    start = time.perf_counter()
                    model.fit_engine(engine, np.arange(10), callback=stop_when_reached,
                                     should_stop=lambda reached=reached: "epoch" in reached)
                    row["to_1e-4_s"] = time.perf_counter() - start
                    row["epochs"] = reached.get("epoch")
            rows.append(row)
            console.print(f"{name}: {row['pass_ms']:.0f} ms per pass", highlight=False)
    memory = rows[0]
    for row in rows:
        row["pass/memory"] = row["pass_ms"] / memory["pass_ms"]
        if "to_1e-4_s" in row:
            row["time/memory"] = row["to_1e-4_s"] / memory["to_1e-4_s"]
    results["engines"] = rows
    results["seconds"] = time.perf_counter() - started
    table = Table(title=f"engines, {n:,} x 100 x 10 float32 (lbfgs to tol 1e-8: {results['lbfgs_seconds']:.1f} s)")
    columns = ["engine", "pass_ms", "pass/memory", "startup_s", "epochs", "to_1e-4_s", "time/memory"]
    for column in columns:
        table.add_column(column, justify="left" if column == "engine" else "right")
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c])
                        for c in columns))
    console.print(table)
    Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    console.print(f"{results['seconds']:.0f} s; results written to {args.json}")


if __name__ == "__main__":
    main()
