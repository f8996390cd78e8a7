"""softreg's benchmark suite: every figure is a ratio to something measured in the same run.

    python benchmarks/run.py                 # all sections, about 5-8 minutes on 2 cores
    python benchmarks/run.py --quick         # smaller shapes, about a minute
    python benchmarks/run.py --only epoch    # one section: bound, epoch, solution, memory, scaling

Sections:
- bound:    the machine's limits: read bandwidth (a sum over a large array) and the FLOP rate
            of a large matrix product; an epoch cannot beat max(bytes of X / bandwidth,
            4 N D K flops / rate).
- epoch:    one loss-and-gradient pass as training runs it (softreg's engine: row blocks on a
            thread pool, both products per block) vs softreg's whole-matrix formula
            (`loss_and_gradient`) vs a naive NumPy version vs PyTorch on the CPU (when
            installed), as ratios to the bound.
- solution: wall time and epochs for softreg (--lr auto, and with Nesterov) to come within
            relative 1e-4 and 1e-6 of scikit-learn lbfgs's objective; lbfgs (default threads
            and one thread) and SGDClassifier timed in the same run.
- memory:   peak resident memory of `softreg train` on float32 data against the size of X.
- scaling:  epoch time per row for N from 50k to 800k.

Results are printed as tables and written to benchmarks/results.json (--json elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

console = Console(width=200)


def best_time(function, repeats: int = 5, budget: float = 10.0) -> float:
    """The fastest of up to ``repeats`` runs (after one warm-up), stopping early past ``budget`` s."""
    function()
    times, start = [], time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return min(times)


# ----------------------------------------------------------------------------------- bound
def machine_bound(quick: bool) -> dict:
    big = np.ones(50_000_000 if not quick else 10_000_000, dtype=np.float64)
    read = best_time(lambda: big.sum())
    n = 2000 if not quick else 1200
    A = np.random.default_rng(0).standard_normal((n, n))
    gemm = best_time(lambda: A @ A)
    A32 = A.astype(np.float32)
    gemm32 = best_time(lambda: A32 @ A32)
    return {"read_GBps": big.nbytes / read / 1e9, "gflops64": 2 * n**3 / gemm / 1e9, "gflops32": 2 * n**3 / gemm32 / 1e9}


def epoch_bound(bound: dict, n: int, d: int, k: int, itemsize: int, nnz: int | None = None) -> float:
    """Seconds: reading X once, or the two products' FLOPs, whichever is slower."""
    if nnz is not None:  # CSR: values + column indices, and 2 flops per non-zero per class per product
        return max(nnz * (itemsize + 4) / (bound["read_GBps"] * 1e9), 4 * nnz * k / (bound["gflops64"] * 1e9))
    rate = bound["gflops32" if itemsize == 4 else "gflops64"] * 1e9
    return max(n * d * itemsize / (bound["read_GBps"] * 1e9), 4 * n * d * k / rate)


# ----------------------------------------------------------------------------------- epoch
def naive_loss_and_gradient(W, b, X, y, l2):
    """The formula as written, without fusion: one-hot Y, exp, normalize, two products."""
    n, k = X.shape[0], W.shape[1]
    Y = np.zeros((n, k), dtype=X.dtype)
    Y[np.arange(n), y] = 1
    Z = X @ W + b
    Z = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(P[np.arange(n), y])) + l2 / 2 * np.sum(W * W)
    G = (P - Y) / n
    return loss, X.T @ G + l2 * W, G.sum(axis=0)


def torch_pass(torch, X, y, W, b, l2):
    Z = X @ W + b
    P = torch.softmax(Z, dim=1)
    loss = torch.nn.functional.cross_entropy(Z, y) + l2 / 2 * torch.sum(W * W)
    P[torch.arange(X.shape[0]), y] -= 1
    P /= X.shape[0]
    return loss, X.T @ P + l2 * W, P.sum(dim=0)


def engine_pass(X, y, k: int):
    """softreg's training engine over (X, y); use as a context manager, as training does."""
    from softreg.model.engines import MemoryEngine

    return MemoryEngine(X, y, n_classes=k)


def epoch_section(bound: dict, quick: bool) -> list[dict]:
    from scipy import sparse

    from softreg.model import loss_and_gradient

    try:
        import torch
    except ImportError:
        torch = None
    shapes = [(200_000, 256, 10), (200_000, 784, 10), (50_000, 256, 100)]
    if quick:
        shapes = [(50_000, 256, 10), (20_000, 256, 100)]
    rng = np.random.default_rng(0)
    rows = []
    for n, d, k in shapes:
        for dtype in (np.float64, np.float32):
            X = rng.standard_normal((n, d)).astype(dtype)
            y = rng.integers(0, k, n)
            W = (rng.standard_normal((d, k)) * 0.01).astype(dtype)
            b = np.zeros(k, dtype=dtype)
            row = {"shape": f"{n} x {d} x {k}", "dtype": np.dtype(dtype).name,
                   "bound_ms": 1e3 * epoch_bound(bound, n, d, k, np.dtype(dtype).itemsize)}
            with engine_pass(X, y, k) as engine:
                row["softreg_ms"] = 1e3 * best_time(lambda: engine.objective(W, b, 1e-3))
            row["formula_ms"] = 1e3 * best_time(lambda: loss_and_gradient(W, b, X, y, 1e-3))
            row["naive_ms"] = 1e3 * best_time(lambda: naive_loss_and_gradient(W, b, X, y, 1e-3))
            if torch is not None:
                Xt, yt, Wt, bt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(W), torch.from_numpy(b)
                row["torch_ms"] = 1e3 * best_time(lambda: torch_pass(torch, Xt, yt, Wt, bt, 1e-3))
            rows.append(row)
            del X
    n, d, k = (200_000, 2_000, 10) if not quick else (50_000, 2_000, 10)
    X = sparse.random(n, d, density=0.01, format="csr", random_state=0, dtype=np.float64)
    y = rng.integers(0, k, n)
    W, b = rng.standard_normal((d, k)) * 0.01, np.zeros(k)
    row = {"shape": f"{n} x {d} x {k} CSR 1%", "dtype": "float64",
           "bound_ms": 1e3 * epoch_bound(bound, n, d, k, 8, nnz=X.nnz)}
    with engine_pass(X, y, k) as engine:
        row["softreg_ms"] = 1e3 * best_time(lambda: engine.objective(W, b, 1e-3))
    row["formula_ms"] = 1e3 * best_time(lambda: loss_and_gradient(W, b, X, y, 1e-3))
    row["naive_ms"] = 1e3 * best_time(lambda: naive_loss_and_gradient(W, b, X, y, 1e-3))
    rows.append(row)
    return rows


# -------------------------------------------------------------------------------- solution
def solution_section(quick: bool) -> list[dict]:
    from sklearn.datasets import load_digits, make_classification
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from softreg.model import SoftmaxRegression, objective

    problems = {"digits": load_digits(return_X_y=True)}
    samples = 200_000 if not quick else 40_000
    X, y = make_classification(n_samples=samples, n_features=256, n_informative=64, n_classes=10,
                               n_clusters_per_class=1, random_state=0)
    problems[f"make_classification {samples} x 256, 10 classes"] = (train_test_split(X, y, test_size=0.2, random_state=0)[0],
                                                                     train_test_split(X, y, test_size=0.2, random_state=0)[2])
    rows = []
    for name, (X, y) in problems.items():
        X = StandardScaler().fit_transform(X)
        n = X.shape[0]
        l2 = 1.0 / n  # C = 1
        y_index = np.unique(y, return_inverse=True)[1]

        def J(coef, intercept):
            return objective(coef.T, intercept, X, y_index, l2)

        start = time.perf_counter()
        reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(X, y)
        lbfgs_seconds = time.perf_counter() - start
        target = J(reference.coef_, reference.intercept_)
        with threadpool_limits(1):
            start = time.perf_counter()
            LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(X, y)
            lbfgs_one_thread = time.perf_counter() - start
        # lbfgs to its own default tolerance, as a user would run it
        start = time.perf_counter()
        default = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
        lbfgs_default_seconds = time.perf_counter() - start
        rows.append({"problem": name, "solver": "scikit-learn lbfgs (tol 1e-10, default threads)", "seconds": lbfgs_seconds,
                     "epochs": int(np.max(reference.n_iter_))})
        rows.append({"problem": name, "solver": "scikit-learn lbfgs (tol 1e-10, 1 thread)", "seconds": lbfgs_one_thread})
        rows.append({"problem": name, "solver": "scikit-learn lbfgs (default tol)", "seconds": lbfgs_default_seconds,
                     "epochs": int(np.max(default.n_iter_)),
                     "gap": (J(default.coef_, default.intercept_) - target) / abs(target)})
        start = time.perf_counter()
        sgd = SGDClassifier(loss="log_loss", alpha=l2, random_state=0).fit(X, y)
        rows.append({"problem": name, "solver": "SGDClassifier (one-vs-rest)", "seconds": time.perf_counter() - start,
                     "epochs": int(sgd.n_iter_)})
        for label, momentum in (("softreg --lr auto --momentum none", None), ("softreg --lr auto --momentum nesterov", "nesterov")):
            for relative in (1e-4, 1e-6):
                threshold = target * (1 + relative)
                reached = {}

                def stop_when_reached(record, reached=reached, threshold=threshold):
                    if record.train_loss <= threshold and "epoch" not in reached:
                        reached["epoch"] = record.epoch

                model = SoftmaxRegression(l2=l2, momentum=momentum, standardize=False, tol=0, max_epochs=5000)
                start = time.perf_counter()
                model.fit(X, y, callback=stop_when_reached, should_stop=lambda reached=reached: "epoch" in reached)
                seconds = time.perf_counter() - start
                rows.append({"problem": name, "solver": f"{label} to {relative:g}", "seconds": seconds,
                             "epochs": reached.get("epoch"), "reached": "epoch" in reached,
                             "ratio_to_lbfgs": seconds / lbfgs_seconds,
                             "ratio_to_lbfgs_default_tol": seconds / lbfgs_default_seconds})
    return rows


# ---------------------------------------------------------------------------------- memory
def memory_section(quick: bool) -> dict:
    n, d = (1_000_000, 256) if not quick else (200_000, 256)
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / "x.npz"
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, d), dtype=np.float32)
        y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
        np.savez(data, X=X, y=y)
        x_bytes = X.nbytes
        del X, y
        # VmHWM is the peak of this process image; ru_maxrss would carry the parent's over exec.
        script = ("import sys; from softreg.cli.app import main; sys.argv = ['softreg'] + sys.argv[1:]\n"
                  "try:\n    main()\nfinally:\n"
                  "    print('PEAK', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0],"
                  " file=sys.stderr)")
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", script, "train", str(data), "--dtype", "float32", "--max-epochs", "3",
                                 "--quiet", "--out", str(Path(directory) / "m.npz")], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        peak_kb = int(next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("PEAK")))
        baseline = subprocess.run([sys.executable, "-c", "import softreg.cli.app, softreg.model, sklearn.linear_model;"
                                   "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"],
                                  capture_output=True, text=True)
    return {"rows": n, "features": d, "x_MB": x_bytes / 1e6, "peak_MB": peak_kb * 1024 / 1e6,
            "peak_over_x": peak_kb * 1024 / x_bytes, "imports_MB": int(baseline.stdout) * 1024 / 1e6,
            "target_MB": 1.25 * x_bytes / 1e6 + 200, "seconds": seconds, "exit_code": result.returncode}


# --------------------------------------------------------------------------------- scaling
def scaling_section(quick: bool) -> list[dict]:
    sizes = [50_000, 100_000, 200_000, 400_000, 800_000] if not quick else [25_000, 50_000, 100_000]
    rng = np.random.default_rng(0)
    d, k = 256, 10
    W, b = rng.standard_normal((d, k)) * 0.01, np.zeros(k)
    rows = []
    for n in sizes:
        X = rng.standard_normal((n, d))
        y = rng.integers(0, k, n)
        with engine_pass(X, y, k) as engine:
            seconds = best_time(lambda: engine.objective(W, b, 1e-3), repeats=3)
        rows.append({"rows": n, "epoch_ms": 1e3 * seconds, "ns_per_row": 1e9 * seconds / n})
        del X
    smallest = rows[0]["ns_per_row"]
    for row in rows:
        row["relative_to_first"] = row["ns_per_row"] / smallest
    return rows


# ---------------------------------------------------------------------------------- output
def show(title: str, rows: list[dict]) -> None:
    table = Table(title=title)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(column, justify="left" if column in ("shape", "problem", "solver", "dtype") else "right")
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes, about a minute")
    parser.add_argument("--only", choices=["bound", "epoch", "solution", "memory", "scaling"], action="append")
    parser.add_argument("--json", default=str(Path(__file__).with_name("results.json")), help="where to write results")
    args = parser.parse_args()
    sections = args.only or ["bound", "epoch", "solution", "memory", "scaling"]
    results = {"machine": {"cpus": os.cpu_count(), "numpy": np.__version__}, "quick": args.quick}
    started = time.perf_counter()
    bound = machine_bound(args.quick)
    results["bound"] = bound
    console.print(f"machine bound: read {bound['read_GBps']:.1f} GB/s, matrix product {bound['gflops64']:.1f} GFLOP/s "
                  f"(float64), {bound['gflops32']:.1f} (float32)")
    if "epoch" in sections:
        rows = epoch_section(bound, args.quick)
        for row in rows:
            for key in ("softreg", "formula", "naive", "torch"):
                if f"{key}_ms" in row:
                    row[f"{key}/bound"] = row[f"{key}_ms"] / row["bound_ms"]
            if "torch_ms" in row:
                row["torch/softreg"] = row["torch_ms"] / row["softreg_ms"]
        results["epoch"] = rows
        show("one loss-and-gradient pass (ms; ratios to the machine bound)", rows)
    if "solution" in sections:
        results["solution"] = solution_section(args.quick)
        show("time to the lbfgs objective (C = 1, standardized)", results["solution"])
    if "memory" in sections:
        results["memory"] = memory_section(args.quick)
        show("peak memory of softreg train, float32", [results["memory"]])
    if "scaling" in sections:
        results["scaling"] = scaling_section(args.quick)
        show("epoch time per row (float64, D = 256, K = 10)", results["scaling"])
    results["seconds"] = time.perf_counter() - started
    Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    console.print(f"{results['seconds']:.0f} s; results written to {args.json}")


if __name__ == "__main__":
    main()
