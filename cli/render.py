"""Rich rendering helpers: the tables and reports of the commands (the charts are in
:mod:`softreg.cli.charts`). Numbers arrive computed."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from softreg.cli.charts import loss_curves, path_penalty_words, penalty_path_chart
from softreg.cli.console import fmt
from softreg.cli.errors import in_flags


def gradcheck_table(report) -> Table:
    """One row per derivation step: formula, worst errors, tolerance, PASS/FAIL."""
    table = Table(title=f"gradcheck: each step against central differences (eps={report.eps:g})")
    table.add_column("step", no_wrap=True)
    table.add_column("formula")
    table.add_column("max abs error", justify="right")
    table.add_column("max rel error", justify="right")
    table.add_column("tolerance", justify="right")
    table.add_column("result", justify="center")
    for check in report.checks:
        verdict = Text("PASS", style="bold green") if check.passed else Text("FAIL", style="bold red")
        table.add_row(
            check.step,
            check.formula,
            f"{check.max_abs_error:.2e}",
            f"{check.max_rel_error:.2e}",
            f"{check.atol:.0e} + {check.rtol:.0e}·|n|",
            verdict,
        )
    return table


def _number(value) -> str:
    """A number short enough to check with a pencil; None (an overflow) as such."""
    if value is None:
        return "−∞"
    return "0" if value == 0 else f"{value:.5g}"


def _matrix(title: str, rows, *, row_names=None, column_names=None) -> Table:
    table = Table(title=title, show_header=column_names is not None, title_justify="left", pad_edge=False)
    if row_names is not None:
        table.add_column("", style="dim")
    for name in (column_names or [""] * len(rows[0])):
        table.add_column(name, justify="right")
    for index, row in enumerate(rows):
        cells = [_number(value) for value in row]
        table.add_row(*([row_names[index]] if row_names is not None else []), *cells)
    return table


def explain_steps(steps) -> list:
    """`gradcheck --explain`: each step of the derivation with its numbers, then its verdict."""
    renderables = []
    numbers_of = {"1.": _softmax_step, "2.": _jacobian_step, "3.": _loss_step, "4.": _chain_rule_step}
    for step in steps:
        numbers = numbers_of.get(step.title[:2], _batch_step)(step.numbers)
        parts = [Text(step.title, style="bold"), Text(step.formula, style="cyan"), *numbers]
        verdict = Text("PASS", style="bold green") if step.passed else Text("FAIL", style="bold red")
        parts.append(Text.assemble(verdict, f"  worst error {step.max_error:.1e}: {step.check}"))
        renderables.append(Group(*parts, Text("")))
    return renderables


def _softmax_step(n: dict) -> list:
    """Step 1: the stable softmax of one row of logits, term by term."""
    table = Table(show_header=True, pad_edge=False)
    for name in ("n", "zₙ", "zₙ − max", "e^(zₙ − max)", "sₙ = e^(zₙ − max) / Σ"):
        table.add_column(name, justify="right")
    for k, z in enumerate(n["z"]):
        shifted = n["shifted"][k]
        term = f"e^({shifted:.5g})" + (f" = {n['exp_shifted'][k]:.5g}" if shifted > -700 else " ≈ 0")
        table.add_row(str(k), _number(z), _number(shifted), term, f"{n['exp_shifted'][k]:.5g} / {n['sum']:.5g} = {_number(n['s'][k])}")
    terms = " + ".join(f"{term:.5g}" for term in n["exp_shifted"])
    return [f"max z = {_number(n['max'])}; Σ = Σⱼ e^(zⱼ − max) = {terms} = {n['sum']:.5g} (j = 0..K−1: "
            "every class once, not one term repeated)", table, f"Σ sₙ = {n['sum_s']:.15g}"]


def _jacobian_step(n: dict) -> list:
    """Step 2: the softmax Jacobian, each entry's case against central differences."""
    K = len(n["J"])
    table = Table(show_header=True, pad_edge=False)
    table.add_column("n \\ m", style="dim")
    for m in range(K):
        table.add_column(f"m = {m}", justify="right")
    for row in range(K):
        table.add_row(str(row), *[f"{n['cases'][row][m]}\n= {_number(n['J'][row][m])}\nfd {_number(n['J_numeric'][row][m])}"
                                        for m in range(K)])
    table.add_row("Σ col", *[f"{total:.1e}" for total in n["column_sums"]])
    return ["formula (its case named) against central differences (fd); each column sums to 0, "
            "because Σₙ sₙ = 1 whatever z is", table]


def _loss_step(n: dict) -> list:
    """Step 3: the cross-entropy and its gradient in s."""
    label = n["label"]
    table = Table(show_header=True, pad_edge=False)
    for name in ("n", "yₙ", "∂L/∂sₙ = −yₙ / sₙ"):
        table.add_column(name, justify="right")
    for k, value in enumerate(n["dL_ds"]):
        shown = _number(value) if value is not None else f"−e^({n['dL_ds_label_exponent']:.5g}) (overflows)"
        table.add_row(str(k), _number(n["y"][k]), shown)
    return [f"label = class {label}, so y = {[int(v) for v in n['y']]} and "
            f"L = −log s_{label} = {_number(n['loss'])}; only the label's entry of ∂L/∂s is non-zero",
            table]


def _chain_rule_step(n: dict) -> list:
    """Step 4: the chain rule to dL/dz = s - y, the label's term written out."""
    lines = []
    label = n["label"]
    for m, row in n["rows"].items():
        m = int(m)
        ending = f"s_{m} − 1" if m == label else f"s_{m}"
        if row["dL_ds_label"] is None:  # s_ℓ underflowed: cancel it before multiplying, as the algebra does
            lines.append(f"∂L/∂z_{m} = (−1/s_ℓ) × s_ℓ(δ_ℓ{m} − s_{m}) = {ending} "
                         f"= {_number(row['product'])} (s_ℓ ≈ 0 cancels)")
        else:
            lines.append(f"∂L/∂z_{m} = (∂L/∂s_ℓ)(∂s_ℓ/∂z_{m}) = ({_number(row['dL_ds_label'])}) × "
                         f"({_number(row['J_label_m'])}) = {_number(row['product'])} = {ending}")
    table = Table(show_header=True, pad_edge=False)
    for name in ("m", "Jᵀ ∂L/∂s", "s − y", "central difference"):
        table.add_column(name, justify="right")
    for k in range(len(n["s_minus_y"])):
        table.add_row(str(k), _number(n["J_transpose_dL_ds"][k]), _number(n["s_minus_y"][k]),
                      _number(n["numeric"][k]))
    return [f"the sum runs over the K classes n = 0..K−1, and with one-hot y only n = ℓ = {label} (the "
            "label) survives:", *lines, table]


def _batch_step(n: dict) -> list:
    """Step 5: the batch gradient from the engine's kernel, X, W, P - Y and both gradients as matrices."""
    from rich.columns import Columns

    K = len(n["b"])
    classes = [f"k={k}" for k in range(K)]
    rows = [f"row {i + 1}" for i in range(len(n["X"]))]
    return [f"N = {len(n['X'])} rows, 2 features, labels y = {n['y']}, l2 = {n['l2']:g}",
            Columns([_matrix("X", n["X"], row_names=rows, column_names=["x1", "x2"]),
                     _matrix("W", n["W"], row_names=["x1", "x2"], column_names=classes),
                     _matrix("b", [n["b"]], column_names=classes)]),
            Columns([_matrix("P = softmax(XW + b)", n["P"], row_names=rows, column_names=classes),
                     _matrix("P − Y", n["P_minus_Y"], row_names=rows, column_names=classes)]),
            Columns([_matrix("∂J/∂W (engine kernel)", n["dW"], row_names=["x1", "x2"], column_names=classes),
                     _matrix("central difference", n["dW_numeric"], row_names=["x1", "x2"],
                             column_names=classes)]),
            Columns([_matrix("∂J/∂b (engine kernel)", [n["db"]], column_names=classes),
                     _matrix("central difference", [n["db_numeric"]], column_names=classes)])]


def metrics_table(metrics: dict) -> Table:
    """One column per split (validation, test, ...), one row per metric."""
    splits = list(metrics)
    table = Table(title="metrics")
    table.add_column("metric")
    for split in splits:
        table.add_column(f"{split} ({metrics[split]['samples']})", justify="right")
    rows = [("accuracy", "accuracy"), ("log loss", "log_loss")]
    first = metrics[splits[0]]
    if "top_k_accuracy" in first:
        rows.append((f"top-{first.get('top_k', 'k')} accuracy", "top_k_accuracy"))
    for average in ("macro", "weighted"):
        for name in ("precision", "recall", "f1"):
            rows.append((f"{name} ({average})", f"{name}_{average}"))
    for label, key in rows:
        table.add_row(label, *(fmt(metrics[s].get(key)) for s in splits))
    return table


def per_class_table(metrics: dict, title: str) -> Table:
    table = Table(title=title)
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in metrics["per_class"].items():
        table.add_row(Text(name), fmt(row["precision"], 3), fmt(row["recall"], 3), fmt(row["f1-score"], 3),
                      str(int(row["support"])))
    return table


def confusion_table(metrics: dict, title: str) -> Table:
    """Rows are true classes, columns predicted; the diagonal green, errors red by share of the row."""
    names = list(metrics["per_class"])
    matrix = metrics["confusion_matrix"]
    table = Table(title=title)
    table.add_column("true \\ predicted")
    for name in names:
        table.add_column(Text(name[:10]), justify="right")
    for i, name in enumerate(names):
        total = max(sum(matrix[i]), 1)
        cells = []
        for j, count in enumerate(matrix[i]):
            if count == 0:
                cells.append(Text("·", style="dim"))
            elif i == j:
                cells.append(Text(str(count), style="bold green"))
            else:
                cells.append(Text(str(count), style="bold red" if count / total >= 0.1 else "red"))
        table.add_row(Text(name[:16]), *cells)
    return table


def datasets_table(rows: list[dict]) -> Table:
    table = Table(title="built-in datasets (also: synthetic, and .csv/.tsv/.npz/svmlight files)")
    for column in ("name", "samples", "features", "classes", "description"):
        table.add_column(column, justify="right" if column in ("samples", "features", "classes") else "left")
    for row in rows:
        table.add_row(row["name"], str(row["samples"]), str(row["features"]), str(row["classes"]), row["description"])
    return table


def config_table(config: dict, title: str = "resolved config (defaults < config file < flags)") -> Table:
    table = Table(title=title)
    table.add_column("key")
    table.add_column("value")
    for key, value in config.items():
        table.add_row(key, Text("-" if value is None else str(value)))  # paths may hold [brackets]
    return table


def step_summary(estimator, config) -> str:
    """The step sizes in plain words: the 1/L bound and the steps actually used, in one line."""
    steps = estimator.step_sizes_
    # What 1/L is to the rule: the floor of auto's backtracking, the fixed step of "bound",
    # and for a fixed number the step known to be safe.
    role = {"auto": "step size floor", "bound": "fixed step size"}.get(str(config.lr), "safe step size")
    text = f"[bold]steps:[/] rule {config.lr}; {role} {steps['bound']:.4g} (1/L, the Lipschitz bound)"
    if "mean" in steps:
        text += f"; used {steps['min']:.4g} .. {steps['max']:.4g} (mean {steps['mean']:.4g}) over {estimator.n_iter_[0]} epochs"
    if estimator.restarts_:
        text += f"; {estimator.restarts_} momentum restarts"
    for epoch, new_step in estimator.halvings_:
        text += f"\n[yellow]divergence guard:[/] epoch {epoch}: objective rose or became non-finite; restored the last good weights and halved the step to {new_step:.4g}"
    return text


def penalty_path_table(found: dict) -> Table:
    """The table behind the CV curve: one row per penalty, the min and 1se rows marked; with an
    L1 term, the features in use (the folds' mean)."""
    table = Table(title=f"{found['folds']}-fold cross-validation (seed {found['seed']}), penalties from the largest")
    sparse = found["l1_ratio"] > 0
    axis = "l2" if not sparse else "strength"
    for name in (axis, "mean CV log loss", "standard error", "mean accuracy", *(["features"] if sparse else []), ""):
        table.add_column(name, justify="right" if name else "left")
    for index, value in enumerate(found["strength"]):
        marks = [name for name, at in (("min", found["best_index"]), ("1se", found["one_se_index"])) if at == index]
        if index == found["chosen_index"]:
            marks.append("chosen")
        used = [f"{found['nonzero'][index]:.1f}/{found['n_features']}"] if sparse else []
        table.add_row(f"{value:.3g}", f"{found['mean_loss'][index]:.4f}", f"{found['se_loss'][index]:.4f}",
                      f"{found['mean_accuracy'][index]:.4f}", *used, ", ".join(marks),
                      style="bold" if index == found["chosen_index"] else None)
    return table


def calibration_tables(calibration: dict, class_names: list[str]) -> Group:
    """Expected calibration error, the reliability table, and predicted vs observed class shares."""
    reliability = Table(title=f"calibration: expected calibration error {calibration['expected_calibration_error']:.4f}")
    for column in ("confidence bin", "rows", "mean confidence", "accuracy", "gap"):
        reliability.add_column(column, justify="left" if column == "confidence bin" else "right")
    for row in calibration["reliability"]:
        gap = row["accuracy"] - row["mean_confidence"]
        reliability.add_row(row["bin"], str(row["count"]), fmt(row["mean_confidence"], 3), fmt(row["accuracy"], 3),
                            Text(f"{gap:+.3f}", style="red" if abs(gap) > 0.1 else ""))
    shares = Table(title="class shares: mean predicted probability vs observed frequency")
    for column in ("class", "mean predicted", "observed"):
        shares.add_column(column, justify="left" if column == "class" else "right")
    for name, predicted, observed in zip(class_names, calibration["mean_predicted"], calibration["observed_frequency"]):
        shares.add_row(Text(name), fmt(predicted, 4), fmt(observed, 4))
    return Group(reliability, shares)


def comparison_table(result: dict) -> Table:
    """softreg and scikit-learn side by side: objective, test metrics, time, iterations."""
    sides = result["sides"]
    C = "infinite (no penalty)" if result["C"] is None else f"{result['C']:.6g}"
    table = Table(title=f"same problem: softreg l2 = {result['l2']:g}, scikit-learn C = {C}")
    table.add_column("")
    for name in sides:
        table.add_column(name, justify="right")
    rows = [("training objective", "objective", lambda v: f"{v:.10f}"),
            ("test accuracy", "test_accuracy", lambda v: f"{v:.4f}"),
            ("test log loss", "test_log_loss", lambda v: f"{v:.6f}"),
            ("seconds", "seconds", lambda v: f"{v:.3f}"),
            ("iterations (epochs)", "iterations", str)]
    for label, key, show in rows:
        table.add_row(label, *(show(side[key]) for side in sides.values()))
    return table


def comparison_summary(result: dict) -> str:
    endings = "; ".join(f"{name}: {side['ending']}" for name, side in result["sides"].items())
    return (f"{result['verdict']}\n{endings}\n"
            f"objective relative difference {result['objective_relative_difference']:.2e}; "
            f"max |coefficient difference| {result['max_coef_difference']:.2e} (standardized features); "
            f"max |intercept difference| {result['max_intercept_difference']:.2e} (centred); "
            f"max |probability difference| on the test rows {result['max_proba_difference']:.2e}")


MAX_CLASSES_SHOWN = 30  # beyond this a per-class table or a K x K matrix is a wall of text


def per_class_report(metrics: dict, where: str) -> list:
    """The per-class table and the confusion matrix of one split (a note instead for many classes)."""
    n_classes = len(metrics["per_class"])
    if n_classes > MAX_CLASSES_SHOWN:
        return [Text(f"per-class report and confusion matrix{where} omitted for {n_classes} classes (more than "
                     f"{MAX_CLASSES_SHOWN}); --json holds both.")]
    return [per_class_table(metrics, f"per-class report{where}"),
            confusion_table(metrics, f"confusion matrix{where}: rows true, columns predicted")]


def training_report(run, config, stop: str, log_scale: bool) -> list:
    """What train shows after a run: curves, the stop reason, the steps, metrics, the per-class report."""
    from rich.markup import escape

    estimator = run.estimator
    shown = {k: v for k, v in run.metrics.items() if k in ("validation", "test")} or run.metrics
    report_split = "test" if "test" in run.metrics else next(iter(shown))
    path = [penalty_path_chart(run.penalty_path.to_dict())] if run.penalty_path is not None else []
    header = run.header_written or {}
    sparsity = [sparsity_words(header["sparsity"], [str(c) for c in estimator.classes_])] if "sparsity" in header else []
    return [*path, loss_curves(estimator.history_, log_scale=log_scale), f"[bold]stop:[/] {escape(stop)}",
            step_summary(estimator, config), *sparsity, metrics_table(shown),
            *per_class_report(run.metrics[report_split], f" ({report_split})")]


def sparsity_words(sparsity: dict, class_names: list) -> Text:
    """With an L1 term: how many features each class uses, and the features no class uses."""
    total = sparsity["n_features"]
    per_class = ", ".join(f"{name} {count}" for name, count in zip(class_names, sparsity["per_class"]))
    unused = sparsity["unused"]
    from softreg.cli.console import abridged

    dropped = (f"; unused by every class ({len(unused)}): {abridged(unused)}" if unused
               else "; every feature is used by some class")
    return Text(f"features in use (of {total}) per class: {per_class}{dropped}")


def header_in_flags(header: dict) -> dict:
    """A model header for the shell: the notes of its table encoding name flags, not parameters."""
    encoding = header.get("encoding")
    if not encoding:
        return header
    columns = [{**column, "note": in_flags(column["note"])} for column in encoding["columns"]]
    return {**header, "encoding": {**encoding, "columns": columns}}


def schema_table(encoding, *, classes: int, standardize: bool, title: str) -> Table:
    """What was done with every column of a table: its type as read, its role, and how it was
    encoded (levels, the other bucket, imputed cells) or why it was left out."""
    table = Table(title=title, title_justify="left")
    for name in ("column", "read as", "role", "what was done"):
        table.add_column(name)
    scaled = "; standardized" if standardize else ""
    for column in encoding.columns:
        if column.kind == "categorical":
            done = f"one-hot, {len(column.levels)} {'level' if len(column.levels) == 1 else 'levels'}"
            if column.other:
                done += f" + other ({len(column.other)} rarer than {encoding.min_frequency} rows)"
            if column.missing_cells:
                done += f"; {column.missing_cells} missing: the level '(missing)'"
        elif column.kind in ("numeric", "boolean"):
            done = ("0/1" if column.kind == "boolean" else "numbers") + scaled
            if column.missing_cells and column.indicator:
                done += f"; {column.missing_cells} cells imputed (mean {column.fill:.4g}) + a 0/1 missing column"
            elif column.missing_cells:
                done += f"; {column.missing_cells} missing cells (--missing {encoding.missing})"
        else:
            done = in_flags(column.note)
        table.add_row(column.name, column.read_as, "left out" if column.kind == "ignored" else column.kind, done)
    table.add_row(encoding.target, "", "label", f"{classes} classes")
    if encoding.weight_column:
        table.add_row(encoding.weight_column, "", "row weights", "")
    return table
