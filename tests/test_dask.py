"""The Dask engine on local clusters of worker processes, and checkpoints with --resume.

Each test that starts a cluster costs a few seconds; the clusters have two workers (one per
core here) with one thread each.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from softreg.cli.app import app

distributed = pytest.importorskip("distributed", reason="the dask extra is part of the test extra")

runner = CliRunner()


@pytest.fixture
def prepared(tmp_path):
    """A prepared 3,000 x 12 dataset with string labels (blocks of 300 rows: 10 blocks)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 12)) * np.arange(1, 13) + 5.0
    W = rng.standard_normal((12, 4))
    labels = np.array(["a", "b", "c", "d"])[np.argmax((X - 5.0) @ W + rng.gumbel(size=(3000, 4)), axis=1)]
    np.save(tmp_path / "d.npy", X)
    np.save(tmp_path / "d.labels.npy", labels)
    return tmp_path / "d.npy"


def relative(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def train(path, out, *extra):
    result = runner.invoke(app, ["train", str(path), "--quiet", "--max-epochs", "30", "--tol", "0", "--out", str(out),
                                 *extra])
    assert result.exit_code == 0, result.output
    return np.load(out, allow_pickle=False)


def test_dask_engine_gives_the_memory_engines_model(prepared, tmp_path):
    memory = train(prepared, tmp_path / "m.npz", "--engine", "memory", "--momentum", "nesterov")
    dask = train(prepared, tmp_path / "k.npz", "--engine", "dask", "--block-rows", "300", "--momentum", "nesterov")
    for name in ("weights", "bias", "feature_mean", "feature_scale"):
        assert relative(dask[name], memory[name]) <= 1e-10, name
    header = json.loads(str(dask["header"]))
    assert header["config"]["engine"] == "dask" and header["metrics"]["test"]["accuracy"] > 0.5


def engine_for(path, **options):
    """A DaskEngine over every row of ``path`` with the labels beside it."""
    from softreg.model.engines import DaskEngine

    labels = np.load(str(path).replace(".npy", ".labels.npy"))
    classes, y = np.unique(labels, return_inverse=True)
    return DaskEngine(path, y, n_classes=len(classes), **options), classes


def test_a_worker_killed_mid_training_costs_nothing_but_time(prepared):
    """Blocks lost with a worker are recomputed from the file; the weights are those of an
    undisturbed run, and the engine reports the event."""
    from softreg.model.estimator import SoftmaxRegression

    results, events = [], []
    for kill in (False, True):
        engine, classes = engine_for(prepared, block_rows=300, n_workers=2)

        def callback(record, engine=engine, kill=kill):
            if kill and record.epoch == 3:
                pids = engine._client.run(os.getpid)
                os.kill(sorted(pids.values())[0], signal.SIGKILL)

        model = SoftmaxRegression(max_epochs=12, tol=0).fit_engine(engine, classes, callback=callback)
        results.append(model)
        events.append(engine.events)
    assert relative(results[1].weights_, results[0].weights_) <= 1e-12
    assert events[0] == [] and any("left the cluster" in event for event in events[1])


def test_workers_with_other_versions_are_refused_before_training(prepared, monkeypatch):
    from softreg.model.engines import dask as engine_module

    real = engine_module.environment_versions
    here = os.getpid()

    def versions_with_an_old_numpy_here():
        versions = real()
        if os.getpid() == here:  # the workers run this function too, in their own processes
            versions["numpy"] = "1.0.0"
        return versions

    monkeypatch.setattr(engine_module, "environment_versions", versions_with_an_old_numpy_here)
    engine, _ = engine_for(prepared, n_workers=1)
    with pytest.raises(engine_module.EngineError, match=r"numpy .* \(here 1\.0\.0\)"):
        with engine:
            pass


def test_an_unreachable_scheduler_is_exit_2(prepared, tmp_path):
    result = runner.invoke(app, ["train", str(prepared), "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9",
                                 "--quiet", "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2, result.output
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in result.output
    assert not (tmp_path / "m.npz").exists()


def test_a_lost_scheduler_ends_the_run_with_exit_1_and_resume_continues(prepared, tmp_path, monkeypatch):
    """The scheduler is killed mid-training: exit 1 naming it and the checkpoint; --resume on a
    new cluster then finishes the run with the weights of an uninterrupted one."""
    from softreg.model.run import checkpoint as pipeline

    monkeypatch.setattr(pipeline, "CHECKPOINT_SECONDS", 0.0)
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.time() + 30
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from softreg.cli import progress

        original_update = progress.TrainingProgress.update

        def update(self, record):
            original_update(self, record)
            if record.epoch == 4:
                scheduler.kill()
                scheduler.wait()

        monkeypatch.setattr(progress.TrainingProgress, "update", update)
        out = tmp_path / "m.npz"
        args = ["train", str(prepared), "--quiet", "--max-epochs", "12", "--tol", "0", "--out", str(out),
                "--block-rows", "300"]
        result = runner.invoke(app, [*args, "--engine", "dask", "--scheduler", address])
        assert result.exit_code == 1, result.output
        assert "lost the Dask scheduler" in result.output and "--resume" in result.output
        assert not out.exists() and (tmp_path / "m.checkpoint.npz").exists()
        monkeypatch.setattr(progress.TrainingProgress, "update", original_update)
        resumed = runner.invoke(app, [*args, "--engine", "stream", "--resume"])
        assert resumed.exit_code == 0, resumed.output
        assert not (tmp_path / "m.checkpoint.npz").exists()
    finally:
        for process in (worker, scheduler):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    uninterrupted = train(prepared, tmp_path / "u.npz", "--max-epochs", "12", "--engine", "stream",
                          "--block-rows", "300")
    finished = np.load(out, allow_pickle=False)
    assert relative(finished["weights"], uninterrupted["weights"]) <= 1e-10
    history = json.loads(str(finished["header"]))["history"]
    assert history["epoch"] == list(range(13))


def test_resume_refuses_a_checkpoint_of_other_settings(prepared, tmp_path):
    from softreg.model.solve import Checkpoint
    from softreg.model.run.checkpoint import checkpoint_path, save_checkpoint

    out = tmp_path / "m.npz"
    history = {key: [] for key in ("epoch", "train_loss", "grad_norm", "step", "val_loss", "val_accuracy")}
    save_checkpoint(checkpoint_path(out), Checkpoint(np.zeros((12, 4)), np.zeros(4), 3, 0.1, 1.0, history),
                    {"config": {"l2": 0.5}, "dataset_sha256": "other", "classes": []})
    result = runner.invoke(app, ["train", str(prepared), "--engine", "stream", "--resume", "--quiet",
                                 "--out", str(out)])
    assert result.exit_code == 2 and "written for other data" in result.output
    # The memory engine resumes too: it finds no checkpoint beside x.npz.
    result = runner.invoke(app, ["train", str(prepared), "--resume", "--quiet", "--out", str(tmp_path / "x.npz")])
    assert result.exit_code == 2 and "no checkpoint" in result.output
    result = runner.invoke(app, ["train", str(prepared), "--engine", "stream", "--resume", "--quiet",
                                 "--out", str(tmp_path / "x.npz")])
    assert result.exit_code == 2 and "no checkpoint" in result.output


def test_a_bad_block_on_a_worker_is_reported_as_the_data_error(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "parts").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        X = rng.standard_normal((200, 3))
        if i == 1:
            X[50, 2] = np.nan
        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": rng.integers(0, 2, 200)}),
                       tmp_path / "parts" / f"p{i}.parquet")
    result = runner.invoke(app, ["train", str(tmp_path / "parts"), "--engine", "dask", "--quiet",
                                 "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2, result.output
    assert "p1.parquet: missing, NaN or infinite feature values" in " ".join(result.output.split())


def test_resume_continues_early_stopping_and_halved_steps_exactly(prepared):
    """Checkpoints carry the best validation state and the halved fixed step: a run resumed from
    any epoch ends like the uninterrupted one."""
    from softreg.model.engines import StreamEngine
    from softreg.model.solve import OptimizerSettings, train_on_engine

    labels = np.load(str(prepared).replace(".npy", ".labels.npy"))
    y = np.unique(labels, return_inverse=True)[1]
    train_weights = np.ones(len(y))
    train_weights[::4] = 0
    for settings in (OptimizerSettings(max_epochs=40, tol=0, patience=3), OptimizerSettings(lr=50.0, max_epochs=25, tol=0)):
        saved = []

        def run(resume=None, saved=saved, settings=settings):
            engine = StreamEngine(prepared, y, train_weights, n_classes=4, standardization=(np.full(12, 5.0), np.arange(1, 13.0)))
            validation = engine.sibling(1.0 - train_weights)
            return train_on_engine(engine, 4, l2=1e-3, settings=settings, validation_engine=validation,
                                   checkpoint=saved.append if resume is None else None, resume=resume)

        whole = run()
        assert len(saved) >= 6
        resumed = run(saved[4])
        assert whole.stop_reason == resumed.stop_reason and whole.best_epoch == resumed.best_epoch
        assert whole.n_epochs == resumed.n_epochs
        assert relative(resumed.W, whole.W) <= 1e-12 and resumed.halvings == whole.halvings


def test_fit_engine_refuses_an_engine_that_already_serves_standardized_rows(prepared):
    from softreg.model.estimator import SoftmaxRegression

    engine, classes = engine_for(prepared, n_workers=1)
    engine.standardization = (np.zeros(12), np.ones(12))
    with pytest.raises(ValueError, match="already serves standardized rows"):
        SoftmaxRegression().fit_engine(engine, classes)


def test_map_blocks_gives_the_summary_sums_of_every_block_in_order(prepared):
    """The summary's block sums, on the workers, added: numpy's own sums over all the rows."""
    from softreg.model.assess.summary import summary_block_sums
    from softreg.model.math.softmax import softmax

    engine, classes = engine_for(prepared, block_rows=300, n_workers=2)
    rng = np.random.default_rng(1)
    W, b = rng.standard_normal((12, 4)) * 0.1, rng.standard_normal(4)
    with engine:
        parts = engine.map_blocks(summary_block_sums, W, b, np.arange(12), 0, False)
    assert len(parts) == 10 and [part.n_rows for part in parts] == [300] * 10
    total = sum(parts[1:], parts[0])
    X, y = np.load(prepared), engine.y
    P = softmax(X @ W + b)
    assert abs(total.loglik - np.log(P[np.arange(len(y)), y]).sum()) <= 1e-9 * abs(total.loglik)
    assert np.allclose(total.column_sum, X.sum(axis=0), rtol=1e-12)
    assert np.array_equal(total.counts, np.bincount(y, minlength=4))
    q = P[:, 1:]  # the information's (class 1, class 1) block: sum_i q_i1 (1 - q_i1) x~_i x~_i^T
    Xt = np.hstack([np.ones((len(X), 1)), X])
    block = Xt.T @ (Xt * (q[:, 0] * (1 - q[:, 0]))[:, None])
    assert np.allclose(total.information[:13, :13], block, rtol=1e-10)
