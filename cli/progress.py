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
        self.last_epoch: int | None = None

    def __enter__(self):
        if self.enabled:
            self.progress.start()
            self.task = self.progress.add_task("train", total=self.max_epochs, metrics="")
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.enabled:
            # A run that converged (or was stopped) before max_epochs ends at 100%, not at,
            # say, 664/1000. A run that failed with an exception keeps the bar where it stopped.
            if exc_type is None:
                self.finish(self.last_epoch)
            self.progress.stop()
        return False

    def finish(self, epoch: int | None = None) -> None:
        """Complete the bar at ``epoch`` (default: the last epoch seen): total = completed = epoch."""
        if not self.enabled or self.task is None:
            return
        epoch = self.last_epoch if epoch is None else epoch
        if epoch is None or epoch <= 0:
            return
        self.progress.update(self.task, total=epoch, completed=epoch)

    def update(self, record) -> None:
        if not self.enabled:
            return
        parts = [f"loss {record.train_loss:.4f}"]
        if record.val_loss is not None:
            parts.append(f"val {record.val_loss:.4f} acc {record.val_accuracy:.3f}")
        parts.append(f"step {record.step:.2g}")
        self.last_epoch = record.epoch
        self.progress.update(self.task, completed=record.epoch, metrics=" ".join(parts))
