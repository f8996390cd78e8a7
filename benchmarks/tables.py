"""Loading a CSV table for `softreg train` against a bare pyarrow read, measured in one sitting.

    python benchmarks/tables.py                  # 200,000 x 64 floats (about 115 MB), 3 rounds
    python benchmarks/tables.py --rows 50000     # smaller and quicker
    python benchmarks/tables.py --mixed          # also two text columns and missing cells

Both sides run in fresh processes, each once per round, alternating which goes first, so that a
slow stretch of this noisy machine hits both alike; the figures are medians over rounds.

- the peer: `pyarrow.csv.read_csv(path)` and the conversion of every feature column to one
  float64 matrix (`Table.to_tensor`, row-major), which is the least any loader must do;
- softreg: what `softreg train` does before training: `softreg.data.load_dataset(path,
  target=...)`, which reads with the same pyarrow reader, types and plans the columns, fits the
  encoding and encodes one float64 matrix, then the default split and `refit_on_rows` (the
  encoding fitted again on the training rows alone), the table's columns released after it.

Time is from the call to the finished matrix (imports excluded). Memory is the growth of the
process's peak resident set over the call (`ru_maxrss`, which sees pyarrow's allocator too,
unlike tracemalloc), divided by the final matrix's bytes, and what it holds beyond twice the
matrix. Targets (issue 15): time ratio softreg / pyarrow <= 1.5; peak growth <= 2x the matrix
plus a constant (softreg parses SECTION_BYTES at a time: the constant is that parse's working set).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TIME_TARGET = 1.5
MEMORY_TARGET = 2.0

MEASURE = r"""
import json, resource, sys, time
import numpy as np
import pyarrow, pyarrow.csv, sklearn.preprocessing, sklearn.model_selection  # imports are not timed
from softreg.data import load_dataset, split_indices
from softreg.data.formats.table import refit_on_rows
path, target, side = sys.argv[1], sys.argv[2], sys.argv[3]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
if side == "pyarrow":
    table = pyarrow.csv.read_csv(path)
    numbers = [name for name, kind in zip(table.column_names, table.schema.types) if name != target
               and (pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind))]  # --mixed: text is not a matrix
    X = np.asarray(table.select(numbers).to_tensor(null_to_nan=True, row_major=True))
else:
    data = load_dataset(path, target=target)
    refit_on_rows(data, split_indices(data.y, val_fraction=0.15, test_fraction=0.15, seed=0)[0])
    data.table = None
    X = data.X
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "growth": peak - before, "nbytes": X.nbytes, "shape": list(X.shape)}))
"""


def write_table(path: Path, rows: int, columns: int, mixed: bool) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as handle:
        names = [f"x{j}" for j in range(columns)] + (["colour", "size"] if mixed else []) + ["y"]
        handle.write(",".join(names) + "\n")
        for start in range(0, rows, 10_000):
            block = rng.normal(size=(min(10_000, rows - start), columns))
            labels = rng.integers(0, 5, size=len(block))
            text = [",".join(f"{v:.6f}" for v in row) for row in block]
            if mixed:
                colours = rng.choice(["red", "green", "blue", ""], size=len(block))
                sizes = rng.choice(["S", "M", "L"], size=len(block))
                text = [f"{line},{c},{s}" for line, c, s in zip(text, colours, sizes)]
                text = [line.replace("0.1", "", 1) if i % 97 == 0 else line for i, line in enumerate(text)]
            handle.write("".join(f"{line},{label}\n" for line, label in zip(text, labels)))


def measure(path: Path, side: str) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path), "y", side], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--columns", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mixed", action="store_true", help="add two text columns and some empty cells")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        write_table(path, args.rows, args.columns, args.mixed)
        size = path.stat().st_size
        results = {"pyarrow": [], "softreg": []}
        for round_number in range(args.rounds):
            order = ("pyarrow", "softreg") if round_number % 2 == 0 else ("softreg", "pyarrow")
            for side in order:
                results[side].append(measure(path, side))
    seconds = {side: statistics.median(r["seconds"] for r in runs) for side, runs in results.items()}
    growth = {side: statistics.median(r["growth"] for r in runs) for side, runs in results.items()}
    nbytes = {side: runs[0]["nbytes"] for side, runs in results.items()}
    print(f"{args.rows:,} x {args.columns}{' + 2 text columns, some cells empty' if args.mixed else ''}: "
          f"{size / 1e6:.0f} MB CSV; medians of {args.rounds} rounds")
    for side in ("pyarrow", "softreg"):
        print(f"  {side:8s} {seconds[side]:6.2f} s   peak growth {growth[side] / 1e6:7.0f} MB "
              f"= {growth[side] / nbytes[side]:.2f}x its matrix ({nbytes[side] / 1e6:.0f} MB, shape "
              f"{results[side][0]['shape']})")
    ratio = seconds["softreg"] / seconds["pyarrow"]
    beyond = (growth["softreg"] - MEMORY_TARGET * nbytes["softreg"]) / 1e6
    print(f"time ratio softreg / pyarrow: {ratio:.2f} (target <= {TIME_TARGET}); softreg peak growth "
          f"{growth['softreg'] / nbytes['softreg']:.2f}x its matrix = {MEMORY_TARGET:g}x + {beyond:.0f} MB "
          f"(target <= {MEMORY_TARGET:g}x plus a constant: run --rows at two sizes to see the constant stay put)")


if __name__ == "__main__":
    main()
