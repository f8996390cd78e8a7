"""`softreg prepare` and `train --engine stream`: out of core, the same model as in memory."""

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from softreg.cli.app import app

runner = CliRunner()


def write_csv(path, n=600, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.arange(1, d + 1) + np.arange(d)
    W = rng.standard_normal((d, 3))
    labels = np.array(["cat", "dog", "eel"])[np.argmax(X @ W + rng.gumbel(size=(n, 3)), axis=1)]
    weights = rng.uniform(0.5, 2.0, n)
    lines = [",".join([f"f{j}" for j in range(d)] + ["w", "animal"])]
    lines += [",".join([repr(float(v)) for v in row] + [repr(float(w)), str(label)]) for row, w, label in zip(X, weights, labels)]
    path.write_text("\n".join(lines) + "\n")
    return X, labels, weights


def test_prepare_writes_rows_labels_weights_and_names(tmp_path):
    X, labels, weights = write_csv(tmp_path / "data.csv")
    result = runner.invoke(app, ["prepare", str(tmp_path / "data.csv"), str(tmp_path / "d.npy"),
                                 "--target", "animal", "--weight-column", "w"])
    assert result.exit_code == 0, result.output
    stored = np.load(tmp_path / "d.npy", allow_pickle=False)
    assert stored.flags.c_contiguous and np.array_equal(stored, X)
    assert np.array_equal(np.load(tmp_path / "d.labels.npy", allow_pickle=False), labels)
    assert np.allclose(np.load(tmp_path / "d.weights.npy", allow_pickle=False), weights, rtol=1e-15)
    assert '"f0"' in (tmp_path / "d.features.json").read_text()


@pytest.mark.parametrize("extra", [[], ["--momentum", "nesterov", "--l2", "0"], ["--class-weight", "balanced"]])
def test_stream_engine_gives_the_memory_engines_model(tmp_path, extra):
    """Same data, same config: weights within 1e-10 after the same epochs, blocks smaller than the data."""
    write_csv(tmp_path / "data.csv")
    assert runner.invoke(app, ["prepare", str(tmp_path / "data.csv"), str(tmp_path / "d.npy"), "--target", "animal",
                               "--weight-column", "w"]).exit_code == 0
    models = {}
    for engine in ("memory", "stream"):
        out = tmp_path / f"{engine}.npz"
        args = ["train", str(tmp_path / "d.npy"), "--engine", engine, "--quiet", "--max-epochs", "40", "--tol", "0",
                "--out", str(out), *extra]
        if engine == "stream":
            args += ["--block-rows", "64"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        models[engine] = np.load(out, allow_pickle=False)
    memory, stream = models["memory"], models["stream"]
    for name in ("weights", "bias", "feature_mean", "feature_scale"):
        scale = max(np.max(np.abs(memory[name])), 1e-300)
        assert np.max(np.abs(stream[name] - memory[name])) / scale <= 1e-10, name
    assert list(stream["classes"]) == ["cat", "dog", "eel"]
    header_memory, header_stream = (str(m["header"]) for m in (memory, stream))
    assert '"engine": "stream"' in header_stream and '"engine": "memory"' in header_memory


def test_eval_and_predict_work_on_a_stream_trained_model(tmp_path):
    write_csv(tmp_path / "data.csv")
    runner.invoke(app, ["prepare", str(tmp_path / "data.csv"), str(tmp_path / "d.npy"), "--target", "animal"])
    assert runner.invoke(app, ["train", str(tmp_path / "d.npy"), "--engine", "stream", "--quiet",
                               "--out", str(tmp_path / "m.npz")]).exit_code == 0
    evaluated = runner.invoke(app, ["eval", str(tmp_path / "m.npz")])
    assert evaluated.exit_code == 0, evaluated.output
    predicted = runner.invoke(app, ["predict", str(tmp_path / "m.npz"), str(tmp_path / "data.csv")])
    assert predicted.exit_code == 0, predicted.output
    assert len(predicted.stdout.strip().splitlines()) == 601


def test_stream_training_memory_stays_near_a_block(tmp_path):
    """A 160 MB file trains with a peak resident size far below the file (blocks of 1,000 rows)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 100))
    np.save(tmp_path / "big.npy", X)
    np.save(tmp_path / "big.labels.npy", (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1))
    del X
    script = ("import sys; from softreg.cli.app import main; sys.argv = ['softreg'] + sys.argv[1:]\n"
              "try:\n    main()\nfinally:\n"
              "    print('PEAK', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0],"
              " file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", script, "train", str(tmp_path / "big.npy"), "--engine", "stream",
                             "--block-rows", "1000", "--max-epochs", "2", "--quiet", "--out", str(tmp_path / "m.npz")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    peak_mb = int(next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("PEAK"))) / 1024
    baseline = subprocess.run([sys.executable, "-c", "import softreg.cli.app, softreg.model, sklearn.linear_model, "
                               "sklearn.metrics; print([l.split()[1] for l in open('/proc/self/status') "
                               "if l.startswith('VmHWM')][0])"], capture_output=True, text=True)
    imports_mb = int(baseline.stdout) / 1024
    # y, weights and the (N, K) probabilities for the metrics are N-sized (about 15 MB here); X is 160 MB.
    assert peak_mb - imports_mb < 80, f"peak {peak_mb:.0f} MB, imports alone {imports_mb:.0f} MB"


@pytest.mark.parametrize("args, message", [
    (["prepare", "digits", "{tmp}/d.csv"], "must end in .npy"),
    (["prepare", "{tmp}/missing.csv", "{tmp}/d.npy"], "neither a built-in"),
    (["train", "digits", "--engine", "stream"], "prepare digits"),
    (["train", "digits", "--engine", "disk"], "engine"),
    (["train", "{tmp}/lonely.npy", "--engine", "stream"], "lonely.labels.npy"),
    (["train", "digits", "--engine", "stream", "--batch-size", "8"], "full batches"),
    (["train", "digits", "--block-rows", "0"], "block_rows"),
])
def test_stream_errors_are_one_paragraph_with_exit_2(tmp_path, args, message):
    np.save(tmp_path / "lonely.npy", np.ones((5, 2)))
    result = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
