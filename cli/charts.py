"""Charts: terminal line charts drawn with Rich text (loss curves, the finite-difference sweep,
the penalty path) and the same curves as PNG/SVG files with matplotlib (the `plot` extra)."""

from __future__ import annotations

import math

from rich.console import Group
from rich.text import Text

from softreg.cli.console import fmt

SERIES_STYLES = ("cyan", "magenta", "green", "yellow")
SERIES_MARKS = ("•", "∘", "▴", "▪")


def line_chart(
    series: dict[str, tuple[list[float], list[float]]],
    *,
    title: str,
    width: int = 64,
    height: int = 14,
    log_x: bool = False,
    log_y: bool = False,
    x_label: str = "",
    markers: dict[str, tuple[float, float, str]] | None = None,
) -> Group:
    """Draw several (x, y) series on one character grid, with axis labels and a legend.

    ``markers`` adds single labelled points (for example the best eps of a sweep).
    Non-positive values are dropped from a log axis. Kept as one function of ~80 lines: the
    grid, the tick labels and the legend share one scale and one set of marks, and split up
    they would pass all of them between the pieces.
    """

    def tx(v: float) -> float:
        return math.log10(v) if log_x else v

    def ty(v: float) -> float:
        return math.log10(v) if log_y else v

    def usable(x: float, y: float) -> bool:
        ok = math.isfinite(x) and math.isfinite(y)
        return ok and (not log_x or x > 0) and (not log_y or y > 0)

    points = {
        name: [(tx(x), ty(y)) for x, y in zip(xs, ys) if usable(x, y)] for name, (xs, ys) in series.items()
    }
    every = [p for pts in points.values() for p in pts]
    if not every:
        return Group(Text(f"{title}: nothing to plot"))
    x_lo, x_hi = min(p[0] for p in every), max(p[0] for p in every)
    y_lo, y_hi = min(p[1] for p in every), max(p[1] for p in every)
    if x_hi == x_lo:
        x_hi = x_lo + 1
    if y_hi == y_lo:
        y_hi, y_lo = y_hi + 0.5, y_lo - 0.5

    grid: list[list[tuple[str, str]]] = [[(" ", "")] * width for _ in range(height)]

    def place(x: float, y: float, mark: str, style: str) -> None:
        col = round((x - x_lo) / (x_hi - x_lo) * (width - 1))
        row = height - 1 - round((y - y_lo) / (y_hi - y_lo) * (height - 1))
        grid[row][col] = (mark, style)

    # The first series is drawn last, so it stays visible where curves overlap.
    for index, (name, pts) in reversed(list(enumerate(points.items()))):
        style = SERIES_STYLES[index % len(SERIES_STYLES)]
        for x, y in pts:
            place(x, y, SERIES_MARKS[index % len(SERIES_MARKS)], style)
    for label, (x, y, mark) in (markers or {}).items():
        if usable(x, y):
            place(tx(x), ty(y), mark, "bold red")

    def y_tick(v: float) -> str:
        return fmt(10**v if log_y else v, 3)

    labels = {0: y_tick(y_hi), height // 2: y_tick((y_hi + y_lo) / 2), height - 1: y_tick(y_lo)}
    label_width = max(len(s) for s in labels.values())
    lines = [Text(title, style="bold")]
    for r, row in enumerate(grid):
        line = Text(labels.get(r, "").rjust(label_width) + " │")
        for mark, style in row:
            line.append(mark, style=style or None)
        lines.append(line)
    lines.append(Text(" " * label_width + " └" + "─" * width))
    # A log axis spans decades: both ends in the same significant-digit form (3.6e-05 .. 36.5).
    x_left = f"{10**x_lo:.3g}" if log_x else f"{x_lo:g}"
    x_right = f"{10**x_hi:.3g}" if log_x else f"{x_hi:g}"
    axis = " " * (label_width + 2) + x_left
    axis += x_label.center(max(width - len(x_left) - len(x_right), 0)) + x_right
    lines.append(Text(axis))
    legend = Text(" " * (label_width + 2))
    for index, name in enumerate(points):
        legend.append(f"{SERIES_MARKS[index % len(SERIES_MARKS)]} {name}   ", style=SERIES_STYLES[index % len(SERIES_STYLES)])
    for label, (_, _, mark) in (markers or {}).items():
        legend.append(f"{mark} {label}   ", style="bold red")
    lines.append(legend)
    return Group(*lines)


def eps_sweep_chart(sweep: dict) -> Group:
    """The V of a finite-difference sweep: truncation error on the right, rounding on the left."""
    chart = line_chart(
        {"step 3: dL/dz": (sweep["eps"], sweep["step3"]), "step 4: dJ/dW, dJ/db": (sweep["eps"], sweep["step4"])},
        title="worst |analytic - numeric| against eps (log-log)",
        log_x=True,
        log_y=True,
        x_label="eps",
        markers={
            f"best eps {sweep['best_eps_step4']:.0e} (step 4)": (
                sweep["best_eps_step4"],
                min(sweep["step4"]),
                "★",
            )
        },
    )
    caption = Text(
        "Right of the minimum the error is truncation, O(eps^2); left of it, rounding, "
        "O(1e-16 / eps): too small an eps is as wrong as too large a one.",
        style="dim",
    )
    return Group(chart, caption)


def loss_curves(history: dict, *, log_scale: bool = False, height: int = 14) -> Group:
    """Training (objective) and validation (data loss) curves against the epoch."""
    epochs = history["epoch"]
    series = {"train objective": (epochs, history["train_loss"])}
    if any(v is not None for v in history["val_loss"]):
        series["validation loss"] = (epochs, [v if v is not None else float("nan") for v in history["val_loss"]])
    return line_chart(series, title="loss curves" + (" (log scale)" if log_scale else ""), log_y=log_scale,
                      x_label="epoch", height=height)


PLOT_SUFFIXES = (".png", ".svg")


def check_plot_target(path) -> None:
    """Before training: the plot needs a .png/.svg name and matplotlib (the `plot` extra)."""
    from pathlib import Path

    if Path(path).suffix.lower() not in PLOT_SUFFIXES:
        raise ValueError(f"--plot '{path}' must end in .png or .svg")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError(
            "--plot needs matplotlib, which is not installed; install it with `pip install 'softreg[plot]'` "
            "(or `pip install matplotlib`), or drop --plot: the curves are drawn in the terminal anyway"
        ) from None


def save_loss_plot(path, history: dict, *, log_scale: bool = False) -> None:
    """Write the loss curves with matplotlib (Agg backend, no display needed)."""
    def draw(axes):
        axes.plot(history["epoch"], history["train_loss"], label="train objective")
        if any(v is not None for v in history["val_loss"]):
            axes.plot(history["epoch"], [float("nan") if v is None else v for v in history["val_loss"]],
                      label="validation loss")
        axes.set_xlabel("epoch")
        axes.set_ylabel("loss")
        if log_scale:
            axes.set_yscale("log")

    _save_figure(path, draw)


def save_path_plot(path, found: dict) -> None:
    """Write the CV curve of the penalty: mean held-out log loss, a one-standard-error band, min and 1se."""
    def draw(axes):
        values, mean, se = found["strength"], found["mean_loss"], found["se_loss"]
        axes.plot(values, mean, marker=".", label="mean CV log loss")
        axes.fill_between(values, [m - e for m, e in zip(mean, se)], [m + e for m, e in zip(mean, se)], alpha=0.25,
                          label="± 1 standard error")
        for index, name, style in ((found["best_index"], "min", "--"), (found["one_se_index"], "1se", ":")):
            axes.axvline(values[index], linestyle=style, color="grey", label=f"{name} {values[index]:.3g}")
        axes.set_xscale("log")
        axes.set_xlabel(path_penalty_words(found)[0])
        axes.set_ylabel("held-out log loss")

    _save_figure(path, draw)


def _save_figure(path, draw) -> None:
    """One matplotlib figure (Agg backend, no display needed), drawn by ``draw(axes)``, written
    atomically: a failed write leaves any old plot as it was."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from softreg.data.files import atomic_file

    figure, axes = plt.subplots(figsize=(7, 4))
    try:
        draw(axes)
        axes.legend()
        figure.tight_layout()
        with atomic_file(path, "wb") as handle:
            figure.savefig(handle, format=Path(path).suffix.lower().lstrip("."))
    finally:
        plt.close(figure)


def path_penalty_words(path: dict) -> tuple[str, str]:
    """(the path's axis, the flag that chose it): l2 for a ridge path, else the total strength of
    l1 (with its mix)."""
    if path["l1_ratio"] == 0:
        return "l2", "--l2 auto"
    kind = "group lasso" if path["grouped"] else "lasso" if path["l1_ratio"] == 1 else "elastic net"
    mix = "" if path["l1_ratio"] == 1 else f", l1_ratio {path['l1_ratio']:g}"
    return f"strength ({kind}{mix})", "--l1 auto"


def penalty_path_chart(path: dict) -> Group:
    """`l2 auto` or `l1 auto`: the mean CV log loss against the penalty (log axis) with a band of
    one standard error, the minimum and the 1se choice marked, and what was chosen (train and info)."""
    mean, se, values = path["mean_loss"], path["se_loss"], path["strength"]
    axis, flag = path_penalty_words(path)
    best, one_se = path["best_index"], path["one_se_index"]
    chart = line_chart(
        {"mean CV log loss": (values, mean), "± 1 standard error": (values + values,
                                                                   [m - e for m, e in zip(mean, se)]
                                                                   + [m + e for m, e in zip(mean, se)])},
        title=f"{flag}: {path['folds']}-fold cross-validation over {len(values)} penalties",
        log_x=True, x_label=axis, height=10,
        markers={f"min {values[best]:.3g}": (values[best], mean[best], "★"),
                 f"1se {values[one_se]:.3g}": (values[one_se], mean[one_se], "◆")})
    rule = "the least mean CV log loss" if path["select"] == "min" else "the 1se rule"
    chosen = (f"l2 = {path['chosen']:.3g}" if path["l1_ratio"] == 0 else
              f"strength {path['chosen']:.3g} (l1 = {path['chosen_l1']:.3g}, l2 = {path['chosen_l2']:.3g})")
    words = (f"chose {chosen} ({rule}): mean CV log loss "
             f"{mean[path['chosen_index']]:.4f} ± {se[path['chosen_index']]:.4f}, accuracy "
             f"{path['mean_accuracy'][path['chosen_index']]:.4f}; "
             + (f"the 1se rule would take {values[one_se]:.3g}" if path["select"] == "min"
                else f"the least loss is at {values[best]:.3g}"))
    return Group(chart, Text(words), *(Text(note, style="yellow") for note in path["notes"]))
