"""softreg predict: labels (and probabilities) for every row of DATA, streamed in chunks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from softreg.cli.console import err, fail, plural, reader_left, refuse_overwriting, unseen_levels_note
from softreg.cli.errors import EXIT_RUN_FAILED, in_flags, reported
from softreg.cli.options import ModelFile


def predict(
    model: ModelFile,
    data: Annotated[str, typer.Argument(
        help="Rows to predict: a .csv/.tsv (columns matched by name; others ignored), svmlight, .npz (X) or a built-in name.",
        show_default=False)],
    with_proba: Annotated[bool, typer.Option("--proba", help="Add one probability column per class (proba_CLASS).")] = False,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="Add the K most likely labels with their probabilities.",
                                                 show_default=False)] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Write to this .csv or .jsonl file (atomically). \\[default: CSV to stdout]",
                                                     show_default=False)] = None,
    output_format: Annotated[Optional[str], typer.Option("--format", help="csv or jsonl. \\[default: from --out's suffix, else csv]",
                                                         show_default=False)] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows read and predicted at a time (bounds memory).")] = 10_000,
    missing: Annotated[Optional[str], typer.Option("--missing", help="Missing cells of a table: impute|error. \\[default: the model's rule]",
                                                   show_default=False)] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse categories the model never saw (default: its other level, or all zeros).")] = False,
    data_format: Annotated[Optional[str], typer.Option("--data-format", help="Read DATA as csv or tsv (any extension; '-' is stdin).",
                                                       show_default=False)] = None,
) -> None:
    """Predict labels (and probabilities) for every row of DATA, streamed in chunks."""
    from softreg.data.chunks import feature_chunks
    from softreg.data.dataset import feature_names_are_real
    from softreg.model.run.persist import check_writable, read_model_file
    from softreg.model.run.predict import PredictionOptions, check_options

    from softreg.model.run.evaluate import stored_encoding

    if missing not in (None, "impute", "error"):
        fail(f"--missing must be 'impute' or 'error' for predict (it writes one row per input row, so 'drop' has no "
             f"place here), got '{missing}'.")
    if data_format not in (None, "csv", "tsv"):
        fail(f"--data-format must be 'csv' or 'tsv', got '{data_format}'; other formats are known by their extension.")
    with reported():
        model_file = read_model_file(model)
    header = model_file.header
    options = PredictionOptions(with_proba=with_proba, top_k=top_k, output_format=_format(output_format, out_path))
    _check_out(out_path, model, data)
    with reported():
        check_options(options, len(model_file.classes_))
        if out_path is not None:
            check_writable(out_path)
        stream = feature_chunks(data, header["feature_names"], by_name=feature_names_are_real(header["dataset"]),
                                chunk_rows=chunk_rows, dtype=header["config"]["dtype"],
                                zero_based=header["dataset"].get("zero_based"), encoding=stored_encoding(header),
                                missing=missing, strict=strict, data_format=data_format)
    rows = _write(model_file, stream, options, out_path)
    unseen_levels_note(stream.unseen_levels or {}, strict_words=" --strict refuses them.")
    err.print(f"{rows} {plural(rows, 'row')} predicted from {escape(stream.description)}"
              + (f", written to {escape(str(out_path))}" if out_path is not None else ""), highlight=False, soft_wrap=True)


def _format(output_format: str | None, out_path: Path | None) -> str:
    if output_format is not None:
        return output_format.lower()
    suffix = out_path.suffix.lower() if out_path is not None else ".csv"
    if suffix not in (".csv", ".jsonl"):
        fail(f"--out '{out_path}' has the suffix '{suffix or '(none)'}'; use .csv or .jsonl, or name the format with --format.")
    return suffix[1:]


def _check_out(out_path: Path | None, model: Path, data: str) -> None:
    if out_path is None:
        return
    from softreg.data.dataset import dataset_files

    refuse_overwriting("--out", out_path, {"the MODEL file": dataset_files(model), "DATA": dataset_files(data)})


def _write(model_file, stream, options, out_path: Path | None) -> int:
    """Write every chunk's predictions to stdout or, atomically, to ``out_path``."""
    from softreg.data.files import atomic_file
    from softreg.model.run.predict import write_predictions

    try:
        if out_path is None:
            rows = write_predictions(model_file, stream.chunks, sys.stdout, options)
            sys.stdout.flush()
            return rows
        with atomic_file(out_path, "w", encoding="utf-8", newline="") as handle:
            return write_predictions(model_file, stream.chunks, handle, options)
    except BrokenPipeError:  # caught here: Click's own handler would turn it into exit 1
        reader_left()
    except ValueError as error:  # DataError or PredictionError: a bad row
        if out_path is not None:
            kept = "nothing was written to --out"
        else:
            done = getattr(error, "rows_written", 0)
            kept = (f"the first {done} {plural(done, 'row')} had already been printed to stdout" if done
                    else "no row was printed")
        fail(f"{in_flags(str(error))} ({kept})")
    except OSError as error:
        fail(f"predictions could not be written to '{out_path or 'stdout'}' ({error.strerror or error}); "
             "nothing was written there.", code=EXIT_RUN_FAILED)
