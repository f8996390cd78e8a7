"""Choosing the penalty by cross-validation: softreg's warm-started path against scikit-learn's
LogisticRegressionCV (and R's cv.glmnet when Rscript with glmnet is installed), in one sitting.

    python benchmarks/penalty_path.py                  # digits, 10 folds, 20 penalties, ridge
    python benchmarks/penalty_path.py --folds 5        # quicker
    python benchmarks/penalty_path.py --l1-ratio 1     # the lasso path, against cv.glmnet(alpha = 1)

All sides see the same standardized digits rows and the same stratified folds (scikit-learn's
StratifiedKFold, shuffled, seed 0), and the same grid: softreg's own (20 values over 6 decades
from its data-derived top), mapped to C = 1 / (l2 N_train) for LogisticRegressionCV (the same
objective for K >= 3) and to glmnet's lambda = l2 (alpha = 0: glmnet's ridge objective is mean
deviance / 2 + lambda / 2 ||W||^2, softreg's). LogisticRegressionCV scores with neg_log_loss (its
default, accuracy, picks a penalty several times larger). Each side's choice is then scored the
same way: the mean held-out log loss over the folds, computed here from each side's own
per-fold fits. Times are whole fits of the path over all folds (imports excluded).

Targets (issue 16): softreg's penalty within 1.5x of LogisticRegressionCV's, CV log loss within
1%, in at most 0.1x its time; faster than cv.glmnet on a path that contains the optimum.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    from softreg.model.solve.path import cross_validate_penalty
    from softreg.model.solve.settings import OptimizerSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--values", type=int, default=20)
    parser.add_argument("--l1-ratio", type=float, default=0.0,
                        help="the mix (glmnet's alpha); above 0 scikit-learn (saga) is left out: it takes far longer")
    parser.add_argument("--glmnet-thresh", type=float, default=1e-7, help="cv.glmnet's thresh (its default 1e-7)")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    n_classes = len(np.unique(y))

    start = time.perf_counter()
    ours = cross_validate_penalty(X, y, n_classes, folds=args.folds, n_values=args.values, seed=0, standardize=False,
                                  settings=OptimizerSettings(momentum="nesterov"), max_extensions=0,
                                  l1_ratio=args.l1_ratio)
    ours_seconds = time.perf_counter() - start
    grid = np.array(ours.strength)
    n_train = len(y) * (args.folds - 1) / args.folds

    folds = list(StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0).split(X, y))
    if args.l1_ratio > 0:
        _against_glmnet_only(X, y, folds, grid, ours, ours_seconds, args)
        return
    start = time.perf_counter()
    # refit=False: both sides time the path over the folds only (train --l2 auto then fits once more).
    theirs = LogisticRegressionCV(Cs=1.0 / (grid * n_train), cv=folds, scoring="neg_log_loss", max_iter=10_000,
                                  tol=1e-6, refit=False).fit(X, y)
    sklearn_seconds = time.perf_counter() - start
    # scores_ (folds, Cs) per class (all equal for the multinomial fit): held-out neg log loss per fold
    sklearn_loss = -np.mean(next(iter(theirs.scores_.values())), axis=0)
    sklearn_l2 = float(grid[int(np.argmin(sklearn_loss))])
    rows = [("softreg (warm-started path)", ours.chosen, min(ours.mean_loss), ours_seconds),
            ("LogisticRegressionCV (lbfgs, neg_log_loss)", sklearn_l2, float(sklearn_loss.min()), sklearn_seconds)]
    glmnet = _cv_glmnet(X, y, folds, grid, 0.0, args.glmnet_thresh)
    if glmnet is not None:
        rows.append((f"cv.glmnet (R, alpha = 0, thresh {args.glmnet_thresh:g})", *glmnet))
        # glmnet's own density (nlambda = 100) over the same span, which contains the optimum
        dense = _cv_glmnet(X, y, folds, np.geomspace(grid[0], grid[-1], 100), 0.0, args.glmnet_thresh)
        rows.append(("cv.glmnet, 100 lambdas over the same span", *dense))
    print(f"digits: {len(y)} rows, {X.shape[1]} features, {n_classes} classes; {args.folds} folds, "
          f"{len(grid)} penalties from {grid[0]:.3g} to {grid[-1]:.3g}")
    for name, l2, loss, seconds in rows:
        print(f"  {name:44s} l2 {l2:9.3g}   CV log loss {loss:.4f}   {seconds:7.2f} s")
    print(f"softreg / LogisticRegressionCV: penalty ratio {ours.chosen / sklearn_l2:.2f} (target within 1.5x), "
          f"CV log loss {min(ours.mean_loss) / sklearn_loss.min() - 1:+.2%} (target within 1%), time "
          f"{ours_seconds / sklearn_seconds:.3f}x (target <= 0.1)")
    if glmnet is not None:
        print(f"softreg / cv.glmnet time: {ours_seconds / glmnet[2]:.2f}x on the same 20 lambdas, "
              f"{ours_seconds / dense[2]:.2f}x against its 100 (target < 1)")
    else:
        print("cv.glmnet: not run (Rscript with the glmnet package is not installed here; on Debian: "
              "apt-get install r-cran-glmnet)")


def _against_glmnet_only(X, y, folds, grid, ours, ours_seconds, args) -> None:
    print(f"digits: {len(y)} rows, {X.shape[1]} features; {args.folds} folds, {len(grid)} strengths from "
          f"{grid[0]:.3g} to {grid[-1]:.3g}, l1_ratio (alpha) {args.l1_ratio:g}")
    print(f"  {'softreg (warm-started proximal path)':44s} lambda {ours.chosen:9.3g}   CV log loss "
          f"{min(ours.mean_loss):.4f}   {ours_seconds:7.2f} s   features at the choice "
          f"{ours.nonzero[ours.chosen_index]:.1f}")
    glmnet = _cv_glmnet(X, y, folds, grid, args.l1_ratio, args.glmnet_thresh)
    if glmnet is None:
        print("cv.glmnet: not run (Rscript with the glmnet package is not installed here; on Debian: "
              "apt-get install r-cran-glmnet)")
        return
    print(f"  {'cv.glmnet (R, same lambdas and folds)':44s} lambda {glmnet[0]:9.3g}   CV log loss {glmnet[1]:.4f}   "
          f"{glmnet[2]:7.2f} s")
    print(f"softreg / cv.glmnet: time {ours_seconds / glmnet[2]:.2f}x (target < 1), lambda ratio "
          f"{ours.chosen / glmnet[0]:.2f}, CV log loss {min(ours.mean_loss) / glmnet[1] - 1:+.2%}")


def _cv_glmnet(X, y, folds, grid, alpha: float, thresh: float):
    """(lambda, CV multinomial deviance / 2 = mean log loss, seconds) from R, or None without R."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        fold_id = np.empty(len(y), dtype=int)
        for index, (_, held) in enumerate(folds):
            fold_id[held] = index + 1
        np.savetxt(folder / "X.csv", X, delimiter=",")
        np.savetxt(folder / "y.csv", y, fmt="%d")
        np.savetxt(folder / "folds.csv", fold_id, fmt="%d")
        np.savetxt(folder / "lambda.csv", grid)
        script = f"""
suppressMessages(library(glmnet))
X <- as.matrix(read.csv("{folder}/X.csv", header = FALSE)); y <- factor(scan("{folder}/y.csv", quiet = TRUE))
fold <- scan("{folder}/folds.csv", quiet = TRUE); lambda <- scan("{folder}/lambda.csv", quiet = TRUE)
start <- Sys.time()
fit <- cv.glmnet(X, y, family = "multinomial", alpha = {alpha!r}, lambda = lambda, foldid = fold,
                 standardize = FALSE, thresh = {thresh!r}, maxit = 1e6)
seconds <- as.numeric(difftime(Sys.time(), start, units = "secs"))
cat(sprintf('{{"lambda": %.17g, "loss": %.17g, "seconds": %.6f}}', fit$lambda.min, min(fit$cvm) / 2, seconds))
"""
        done = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"cv.glmnet failed: {done.stderr.strip()[:300]}")
            return None
        found = json.loads(done.stdout.strip().splitlines()[-1])
        return found["lambda"], found["loss"], found["seconds"]


if __name__ == "__main__":
    main()
