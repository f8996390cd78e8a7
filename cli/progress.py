"""A live Rich progress line for training: epoch of total, losses, accuracy, step, time."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainingProgress:
    """Context manager whose ``update(record)`` is the training callback; a no-op when disabled."""

    def __init__(self, console: Console, *, enabled: bool, max_epochs: int):
        self.enabled = enabled
        self.max_epochs = max_epochs
        self.progress = Progress(
            TextColumn("[bold]epoch"),
            MofNCompleteColumn(),
            BarColumn(bar_width=10),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not enabled,
        )
        self.task = None

    def __enter__(self):
        if self.enabled:
            self.progress.start()
            self.task = self.progress.add_task("train", total=self.max_epochs, metrics="")
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()
        return False

    def update(self, record) -> None:
        if not self.enabled:
            return
        parts = [f"loss {record.train_loss:.4f}"]
        if record.val_loss is not None:
            parts.append(f"val {record.val_loss:.4f} acc {record.val_accuracy:.3f}")
        parts.append(f"lr {record.step:.2g}")
        self.progress.update(self.task, completed=record.epoch, metrics=" ".join(parts))
