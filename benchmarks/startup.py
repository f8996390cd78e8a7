"""Whole-process wall times of the `softreg` CLI, as a user sees them, measured in one sitting.

    python benchmarks/startup.py                      # 5 runs of each, about a minute
    python benchmarks/startup.py --repeats 9          # more runs, steadier medians
    python benchmarks/startup.py --json startup.json  # also write the numbers

What it measures (each a fresh process, started with the venv's own executables, output
thrown away, from `subprocess.run` to exit, timed with `time.perf_counter`):

- `softreg --help`, `softreg datasets`, `softreg info MODEL` and `softreg predict MODEL
  DATA.csv` (iris, 150 rows, a header of the model's feature names): the cost of starting
  the CLI, which is mostly imports. `info` has a target of 0.3 s; the ratio printed is its
  median over that target (<= 1.0 meets it). Beside them, in the same rounds, the floor: a
  Python that only imports numpy, typer and rich.table, which `info` cannot do without; on a
  machine where the floor alone is near 0.3 s, `info` minus the floor is softreg's own part.
- `softreg train digits --quiet --out DIR/d.npz` against a 12-line scikit-learn script (load
  digits, stratified train_test_split with test_size=0.15 and random_state=0, StandardScaler
  fit on train, LogisticRegression(max_iter=1000), accuracy and log loss on the test split)
  run by the same Python. The ratio is softreg / scikit-learn; the target is <= 1.0.

Why it is built this way: the machines here are noisy (up to 2x between runs), so a single
timing, or timings of one command taken minutes apart from another's, say little. Runs are
therefore interleaved -- the four short commands round-robin, and the two trainers in pairs
whose order alternates (softreg first, then scikit-learn first, ...) -- so that a slow
stretch of the machine hits both sides of a comparison alike, and each figure is the median
of its runs, which one outlier cannot move. Each command runs once untimed first (warm file
cache, compiled bytecode). Ratios to a target or to scikit-learn mean more than the seconds.

Bytecode: a user's Python caches compiled modules (__pycache__), so the children run with
PYTHONDONTWRITEBYTECODE removed from their environment even where it is set (it is on the
machines here, where it made every start compile softreg's ~60 modules again: about 0.1 s).

The model for `info` / `predict` is trained first into a temporary directory with
`softreg train iris --quiet --out DIR/iris.npz`; the feature names for the CSV header come
from `softreg info MODEL --json` (key "feature_names").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

PYTHON = Path(sys.executable)
SOFTREG = PYTHON.parent / "softreg"
INFO_TARGET_S = 0.3
TRAIN_TARGET_RATIO = 1.0
# What `info` cannot start without: numpy (the model's arrays), typer (the CLI), rich (its tables).
FLOOR = "python: import numpy, typer, rich.table"

# The scikit-learn side of the train comparison: 12 lines, the same split and metrics.
SKLEARN_SCRIPT = """\
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
X, y = load_digits(return_X_y=True)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.15, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_tr)
clf = LogisticRegression(max_iter=1000).fit(scaler.transform(X_tr), y_tr)
proba = clf.predict_proba(scaler.transform(X_te))
print(f"accuracy {accuracy_score(y_te, clf.classes_[proba.argmax(1)]):.4f}")
print(f"log loss {log_loss(y_te, proba, labels=clf.classes_):.4f}")
"""

console = Console(width=120)


class CommandFailed(RuntimeError):
    pass


def _describe(argv: list[str]) -> str:
    return " ".join(a if " " not in a else repr(a) for a in argv)


def _fail(argv: list[str], returncode: int) -> CommandFailed:
    """A clear error for a failed command: rerun it once with output captured to show why."""
    detail = ""
    try:
        again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        tail = (again.stderr or again.stdout or "").strip().splitlines()[-15:]
        if tail:
            detail = "\n  last lines of its output (from a rerun):\n    " + "\n    ".join(tail)
    except Exception as error:  # the diagnosis must not hide the failure itself
        detail = f"\n  (rerun to capture its output failed too: {error})"
    return CommandFailed(f"command failed with exit code {returncode}: {_describe(argv)}{detail}")


CHILD_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def run_timed(argv: list[str]) -> float:
    """Wall time in seconds of one whole process; raises CommandFailed on a non-zero exit."""
    t0 = time.perf_counter()
    completed = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=CHILD_ENV)
    elapsed = time.perf_counter() - t0
    if completed.returncode != 0:
        raise _fail(argv, completed.returncode)
    return elapsed


def run_output(argv: list[str]) -> str:
    """Stdout of a setup command (untimed); raises CommandFailed on a non-zero exit."""
    completed = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=CHILD_ENV)
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout or "").strip().splitlines()[-15:]
        raise CommandFailed(f"command failed with exit code {completed.returncode}: "
                            f"{_describe(argv)}\n    " + "\n    ".join(tail))
    return completed.stdout


def prepare(workdir: Path) -> tuple[Path, Path]:
    """Train the iris model and write iris features as a CSV headed by its feature names."""
    model = workdir / "iris.npz"
    run_output([str(SOFTREG), "train", "iris", "--quiet", "--out", str(model)])
    info = json.loads(run_output([str(SOFTREG), "info", str(model), "--json"]))
    names = info.get("feature_names")
    if not names:
        raise CommandFailed(f"`softreg info {model} --json` has no \"feature_names\"")

    from sklearn.datasets import load_iris

    X = load_iris().data
    if X.shape[1] != len(names):
        raise CommandFailed(f"the model has {len(names)} features, iris has {X.shape[1]}")
    data = workdir / "iris_features.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(X.tolist())
    return model, data


def measure(repeats: int) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="softreg-startup-") as tmp:
        workdir = Path(tmp)
        console.print(f"setup: training iris into {workdir} ...")
        model, data = prepare(workdir)

        # ---- the short commands, round-robin
        short = {
            "softreg --help": [str(SOFTREG), "--help"],
            "softreg datasets": [str(SOFTREG), "datasets"],
            "softreg info MODEL": [str(SOFTREG), "info", str(model)],
            "softreg predict MODEL DATA.csv": [str(SOFTREG), "predict", str(model), str(data)],
            FLOOR: [str(PYTHON), "-c", "import numpy, typer, rich.table"],
        }
        times: dict[str, list[float]] = {name: [] for name in short}
        for argv in short.values():  # warm-up, untimed
            run_timed(argv)
        for round_ in range(repeats):
            console.print(f"short commands: round {round_ + 1}/{repeats}")
            for name, argv in short.items():
                times[name].append(run_timed(argv))
        for name, argv in short.items():
            median = statistics.median(times[name])
            is_info = name == "softreg info MODEL"
            rows.append({
                "command": name,
                "argv": argv,
                "times_s": times[name],
                "median_s": median,
                "target": f"<= {INFO_TARGET_S} s" if is_info else "(floor)" if name == FLOOR else None,
                "ratio": median / INFO_TARGET_S if is_info else None,
            })

        # ---- train digits vs scikit-learn, in pairs of alternating order
        script = workdir / "sklearn_digits.py"
        script.write_text(SKLEARN_SCRIPT)
        train = {
            "softreg train digits": [str(SOFTREG), "train", "digits", "--quiet",
                                     "--out", str(workdir / "d.npz")],
            "scikit-learn script": [str(PYTHON), str(script)],
        }
        pair_times: dict[str, list[float]] = {name: [] for name in train}
        for argv in train.values():  # warm-up, untimed
            run_timed(argv)
        order = list(train)
        for pair in range(repeats):
            console.print(f"train pairs: {pair + 1}/{repeats}")
            for name in (order if pair % 2 == 0 else order[::-1]):
                pair_times[name].append(run_timed(train[name]))
        soft = statistics.median(pair_times["softreg train digits"])
        skl = statistics.median(pair_times["scikit-learn script"])
        rows.append({
            "command": "softreg train digits",
            "argv": train["softreg train digits"],
            "times_s": pair_times["softreg train digits"],
            "median_s": soft,
            "target": f"<= {TRAIN_TARGET_RATIO} x sklearn",
            "ratio": soft / skl,
        })
        rows.append({
            "command": "scikit-learn script",
            "argv": [str(PYTHON), "sklearn_digits.py"],
            "times_s": pair_times["scikit-learn script"],
            "median_s": skl,
            "target": "(reference)",
            "ratio": None,
        })
    return rows


def print_table(rows: list[dict], repeats: int) -> None:
    table = Table(title=f"softreg whole-process wall times (median of {repeats}, interleaved)")
    table.add_column("command")
    table.add_column("median_s", justify="right")
    table.add_column("target", justify="right")
    table.add_column("ratio", justify="right")
    for row in rows:
        ratio = row["ratio"]
        if ratio is None:
            ratio_text = "—"
        else:
            style = "green" if ratio <= 1.0 else "red"
            ratio_text = f"[{style}]{ratio:.2f}[/{style}]"
        table.add_row(row["command"], f"{row['median_s']:.3f}", row["target"] or "—", ratio_text)
    console.print(table)
    spread = ", ".join(f"{row['command']}: {min(row['times_s']):.3f}-{max(row['times_s']):.3f}"
                       for row in rows)
    console.print(f"[dim]range (min-max s) — {spread}[/dim]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs of each command (pairs for train) [default: 5]")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not SOFTREG.exists():
        parser.error(f"no softreg executable next to {PYTHON} (looked for {SOFTREG})")

    try:
        rows = measure(args.repeats)
    except CommandFailed as error:
        console.print(f"[red]benchmark aborted:[/red] {error}", markup=True, highlight=False)
        return 1
    print_table(rows, args.repeats)

    if args.json:
        document = {
            "benchmark": "startup",
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "repeats": args.repeats,
            "info_target_s": INFO_TARGET_S,
            "train_target_ratio": TRAIN_TARGET_RATIO,
            "results": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
