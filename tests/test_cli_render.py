"""The training progress bar and the step summary, rendered without running a fit."""

from io import StringIO
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console

from softreg.cli import render
from softreg.cli.progress import TrainingProgress


def _record(epoch: int, max_epochs: int = 1000, step: float = 35.0):
    return SimpleNamespace(epoch=epoch, max_epochs=max_epochs, train_loss=1.0 / epoch, grad_norm=0.1, step=step,
                           val_loss=0.5, val_accuracy=0.9)


def _console() -> tuple[Console, StringIO]:
    buffer = StringIO()
    return Console(file=buffer, force_terminal=True, width=100), buffer


def test_an_early_stop_completes_the_bar_at_the_stop_epoch():
    console, buffer = _console()
    with TrainingProgress(console, enabled=True, max_epochs=1000) as progress:
        for epoch in (1, 2, 300, 664):
            progress.update(_record(epoch))
        (task,) = progress.progress.tasks
        assert (task.completed, task.total) == (664, 1000)  # while training: of max_epochs
    assert task.completed == task.total == 664
    assert task.finished and task.percentage == 100
    assert "664/664" in buffer.getvalue()


def test_finish_takes_an_explicit_epoch():
    console, _ = _console()
    with TrainingProgress(console, enabled=True, max_epochs=50) as progress:
        progress.update(_record(10, 50))
        progress.finish(12)
        (task,) = progress.progress.tasks
        assert task.completed == task.total == 12


def test_a_failed_run_keeps_the_bar_where_it_stopped():
    console, _ = _console()
    with pytest.raises(RuntimeError):
        with TrainingProgress(console, enabled=True, max_epochs=1000) as progress:
            progress.update(_record(40))
            raise RuntimeError("diverged")
    (task,) = progress.progress.tasks
    assert (task.completed, task.total) == (40, 1000)


def test_a_disabled_bar_does_nothing():
    console, buffer = _console()
    with TrainingProgress(console, enabled=False, max_epochs=1000) as progress:
        progress.update(_record(5))
    progress.finish()
    assert progress.task is None and progress.progress.tasks == []
    assert buffer.getvalue() == ""


def test_the_progress_line_says_step_not_lr():
    console, buffer = _console()
    with TrainingProgress(console, enabled=True, max_epochs=1000) as progress:
        progress.update(_record(7, step=35.0))
        (task,) = progress.progress.tasks
        assert "step 35" in task.fields["metrics"]
        assert "lr " not in task.fields["metrics"]
    assert "step 35" in buffer.getvalue()


def _fitted(**overrides):
    values = dict(step_sizes_={"bound": 0.27, "min": 0.5, "max": 34.7, "mean": 18.0}, n_iter_=np.array([664]), restarts_=0,
                  halvings_=[])
    values.update(overrides)
    return SimpleNamespace(**values)


def test_step_summary_says_step_size_and_floor_first():
    text = render.step_summary(_fitted(), SimpleNamespace(lr="auto"))
    assert text == ("[bold]steps:[/] rule auto; step size floor 0.27 (1/L, the Lipschitz bound); "
                    "used 0.5 .. 34.7 (mean 18) over 664 epochs")
    plain = text.split("[/]", 1)[1]
    assert plain.index("step size floor") < plain.index("1/L") < plain.index("Lipschitz")
    assert "Böhning" not in plain.split("(", 1)[0]
    assert "bound 1/L =" not in text


def test_step_summary_keeps_restarts_and_divergence_guard_lines():
    text = render.step_summary(_fitted(restarts_=3, halvings_=[(12, 0.125)]), SimpleNamespace(lr="auto"))
    first, guard = text.split("\n")
    assert first.endswith("over 664 epochs; 3 momentum restarts")
    assert guard.startswith("[yellow]divergence guard:[/] epoch 12:")
    assert guard.endswith("halved the step to 0.125")


@pytest.mark.parametrize("lr, role", [("bound", "fixed step size 0.27"), ("0.5", "safe step size 0.27")])
def test_step_summary_names_what_1_over_l_is_to_the_rule(lr, role):
    steps = {"bound": 0.27}  # a fixed step: no min/max/mean
    text = render.step_summary(_fitted(step_sizes_=steps), SimpleNamespace(lr=lr))
    assert text == f"[bold]steps:[/] rule {lr}; {role} (1/L, the Lipschitz bound)"
