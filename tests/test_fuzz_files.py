"""Property-based fuzzing of the files softreg writes and reads back: model files, checkpoints
and prepared datasets (issue 14). A real file is made once, then hypothesis replaces, deletes
or adds one field of its JSON header, or swaps one of its arrays for an array of another dtype
or shape. Whatever comes out, softreg either works (exit 0) or refuses the file (exit 2, one
"error:" paragraph naming it): never another exit code, an exception, a traceback, or an output
file after a refusal.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from softreg.cli.app import app

FUZZ = settings(max_examples=int(os.environ.get("SOFTREG_FUZZ_EXAMPLES", "30")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
runner = CliRunner()

json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                        st.text(max_size=12), st.integers().map(lambda v: v * 10**30))
json_values = st.recursive(json_leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                           max_leaves=12)



def _array(dtype: str, shape: list[int]) -> np.ndarray:
    if dtype[0] in "US":
        return np.full(shape, "a", dtype=dtype)
    return np.random.default_rng(len(shape)).integers(0, 3, size=shape).astype(dtype)


arrays = st.one_of(
    st.builds(_array, st.sampled_from(["f8", "f4", "i8", "u1", "?", "c16", "U3", "S2", "f2"]),
              st.lists(st.integers(0, 6), max_size=3)),
    st.just(np.array([np.nan, np.inf, 1.0])),
    st.just(np.zeros((4, 3, 2))),
)


@st.composite
def header_edits(draw, document: dict):
    """A copy of ``document`` with one field somewhere in it replaced, removed, or added."""
    edited = json.loads(json.dumps(document))
    parent, key = None, None
    node = edited
    # Walk down a random path; stop at a leaf or whenever hypothesis says so.
    while isinstance(node, (dict, list)) and node and (parent is None or draw(st.booleans())):
        keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, draw(st.sampled_from(keys))
        node = parent[key]
    action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    if parent is None:
        return draw(json_values)
    if action == "delete":
        del parent[key]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=8))] = draw(json_values)
    else:
        parent[key] = draw(json_values)
    return edited


def check_exit_0_or_2(result, output: Path | None = None) -> None:
    import traceback

    where = "".join(traceback.format_exception(*result.exc_info)[-8:]) if result.exc_info else ""
    assert result.exit_code in (0, 2), result.output[-1000:] + where
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert "error:" in result.output
    if output is not None:
        assert output.exists() == (result.exit_code == 0), result.output[-1000:]


_MADE: dict = {}


def _model() -> tuple[dict, dict]:
    """A small iris model's header (as JSON) and its other arrays, made once per session."""
    if "model" not in _MADE:
        path = Path(tempfile.mkdtemp()) / "iris.npz"
        result = runner.invoke(app, ["train", "iris", "--quiet", "--max-epochs", "30", "--out", str(path)])
        assert result.exit_code == 0, result.output
        contents = dict(np.load(path, allow_pickle=False))
        _MADE["model"] = (json.loads(str(contents.pop("header"))), contents)
    return _MADE["model"]


@FUZZ
@given(st.data())
def test_fuzzed_model_files_are_used_or_refused(data):
    header, contents = _model()
    contents = dict(contents)
    if data.draw(st.booleans()):
        header = data.draw(header_edits(header))
    else:
        contents[data.draw(st.sampled_from(sorted(contents)))] = data.draw(arrays)
    with tempfile.TemporaryDirectory() as directory:
        model = Path(directory) / "m.npz"
        np.savez(model, header=np.asarray(json.dumps(header)), **contents)
        check_exit_0_or_2(runner.invoke(app, ["info", str(model)]))
        out = Path(directory) / "p.csv"
        check_exit_0_or_2(runner.invoke(app, ["predict", str(model), "iris", "--out", str(out)]), out)


def _checkpoint() -> tuple[dict, dict]:
    """The checkpoint an iris run cut short after 5 epochs keeps, made once per session."""
    if "checkpoint" not in _MADE:
        from softreg.data import load_dataset
        from softreg.model.run import checkpoint as checkpoints
        from softreg.model.run.config import resolve_config
        from softreg.model.run.train import train_to_file

        model = Path(tempfile.mkdtemp()) / "iris.npz"
        interval, checkpoints.CHECKPOINT_SECONDS = checkpoints.CHECKPOINT_SECONDS, 0.0
        try:
            epochs = []
            train_to_file(load_dataset("iris"), resolve_config({}, {"dataset": "iris", "max_epochs": 40}), model,
                          callback=epochs.append, should_stop=lambda: len(epochs) > 5)
        finally:
            checkpoints.CHECKPOINT_SECONDS = interval
        contents = dict(np.load(checkpoints.checkpoint_path(model), allow_pickle=False))
        _MADE["checkpoint"] = (json.loads(str(contents.pop("header"))), contents)
    return _MADE["checkpoint"]


@FUZZ
@given(st.data())
def test_fuzzed_checkpoints_resume_or_are_refused(data):
    document, contents = _checkpoint()
    contents = dict(contents)
    if data.draw(st.booleans()):
        document = data.draw(header_edits(document))
    else:
        contents[data.draw(st.sampled_from(sorted(contents)))] = data.draw(arrays)
    with tempfile.TemporaryDirectory() as directory:
        model = Path(directory) / "iris.npz"
        np.savez(Path(directory) / "iris.checkpoint.npz", header=np.asarray(json.dumps(document)), **contents)
        result = runner.invoke(app, ["train", "iris", "--max-epochs", "40", "--resume", "--quiet", "--out", str(model)])
        check_exit_0_or_2(result, model)


@FUZZ
@given(features=arrays, labels=arrays, names=st.one_of(st.none(), json_values,
                                                       st.lists(st.text(max_size=4), min_size=3, max_size=3)))
def test_fuzzed_prepared_datasets_train_or_are_refused(features, labels, names):
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        np.save(folder / "p.npy", features)
        np.save(folder / "p.labels.npy", labels)
        if names is not None:
            (folder / "p.features.json").write_text(json.dumps(names if not isinstance(names, list) or
                                                               any(not isinstance(n, str) for n in names)
                                                               else {"names": names, "real": True}))
        model = folder / "m.npz"
        result = runner.invoke(app, ["train", str(folder / "p.npy"), "--quiet", "--max-epochs", "5",
                                     "--val-fraction", "0", "--test-fraction", "0", "--out", str(model)])
        check_exit_0_or_2(result, model)


cells_of_a_kind = {
    "numbers": st.one_of(st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.4g}"), st.integers(-99, 99).map(str)),
    "words": st.sampled_from(["red", "green", "blue", "Torgersen", "é", "a b", '"q,uoted"', "NA", "-"]),
    "booleans": st.sampled_from(["true", "false", "Yes", "no", "T", "f"]),
    "dates": st.dates().map(lambda d: d.isoformat()),
    "labels": st.sampled_from(["a", "b", "c", "1", "2.0", ""]),
}
table_columns = st.lists(st.sampled_from(["numbers", "words", "booleans", "dates"]), min_size=1, max_size=5)


@st.composite
def typed_tables(draw) -> tuple[bytes, str]:
    """A CSV of typed columns with some empty cells, plain or gzip, in UTF-8 or (sometimes) latin-1."""
    kinds = draw(table_columns) + ["labels"]
    rows = draw(st.integers(1, 40))
    lines = [",".join(f"c{j}" for j in range(len(kinds) - 1)) + ",y"]
    for _ in range(rows):
        cells = [draw(st.one_of(cells_of_a_kind[kind], st.just(""))) if draw(st.booleans()) else
                 draw(cells_of_a_kind[kind]) for kind in kinds]
        lines.append(",".join(cells))
    text = "\n".join(lines) + "\n"
    raw = text.encode("latin-1", errors="replace") if draw(st.booleans()) and draw(st.booleans()) else text.encode()
    suffix = draw(st.sampled_from([".csv", ".csv.gz"]))
    if suffix == ".csv.gz":
        import gzip

        raw = gzip.compress(raw)
    return raw, suffix


@FUZZ
@given(table=typed_tables(), missing=st.sampled_from(["impute", "drop", "error"]), other=typed_tables())
def test_fuzzed_typed_tables_train_and_predict_or_are_refused(table, missing, other):
    """The pyarrow reader and the column encoding (issue 15): any mix of types, empty cells,
    encodings and compression trains (exit 0) or is refused (exit 2); a model trained on one
    table predicts on another or refuses it."""
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        (raw, suffix), (other_raw, other_suffix) = table, other
        path, other_path = folder / f"t{suffix}", folder / f"o{other_suffix}"
        path.write_bytes(raw)
        other_path.write_bytes(other_raw)
        model = folder / "m.npz"
        result = runner.invoke(app, ["train", str(path), "--quiet", "--max-epochs", "5", "--missing", missing,
                                     "--out", str(model)])
        check_exit_0_or_2(result, model)
        if result.exit_code == 0:
            for data in (path, other_path):
                check_exit_0_or_2(runner.invoke(app, ["predict", str(model), str(data)]))
