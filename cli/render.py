"""Rich rendering helpers: tables and terminal line charts. Numbers arrive computed."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text

SERIES_STYLES = ("cyan", "magenta", "green", "yellow")
SERIES_MARKS = ("●", "◆", "▲", "■")


def fmt(value: float, digits: int = 4) -> str:
    """A number for a table cell: fixed when moderate, scientific when tiny or huge."""
    if value is None:
        return "-"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
        return f"{value:.{max(digits - 2, 1)}e}"
    return f"{value:.{digits}f}"


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
    Non-positive values are dropped from a log axis.
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

    for index, (name, pts) in enumerate(points.items()):
        style = SERIES_STYLES[index % len(SERIES_STYLES)]
        # One mark per column is enough to show the shape; later points win a column.
        for x, y in pts:
            place(x, y, "•", style)
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
    x_left = fmt(10**x_lo if log_x else x_lo, 3) if log_x else f"{x_lo:g}"
    x_right = fmt(10**x_hi if log_x else x_hi, 3) if log_x else f"{x_hi:g}"
    axis = " " * (label_width + 2) + x_left
    axis += x_label.center(max(width - len(x_left) - len(x_right), 0)) + x_right
    lines.append(Text(axis))
    legend = Text(" " * (label_width + 2))
    for index, name in enumerate(points):
        legend.append("• " + name + "   ", style=SERIES_STYLES[index % len(SERIES_STYLES)])
    for label, (_, _, mark) in (markers or {}).items():
        legend.append(f"{mark} {label}   ", style="bold red")
    lines.append(legend)
    return Group(*lines)


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
