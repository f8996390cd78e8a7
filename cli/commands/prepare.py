"""softreg prepare: a dataset, once, into the row-major .npy that the stream and dask engines read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from softreg.cli.console import fail, plural, say
from softreg.cli.errors import EXIT_RUN_FAILED, reported
from softreg.cli.options import Dtype, Missing, Target, WeightColumn


def prepare(
    source: Annotated[str, typer.Argument(help="Dataset to convert: a built-in, synthetic:..., a .csv/.tsv/.npz/.parquet file, or a folder of .parquet or .csv/.tsv partitions with one schema.", show_default=False)],
    destination: Annotated[Path, typer.Argument(metavar="OUT.npy", help="Row-major .npy to write; labels go to OUT.labels.npy, feature names to OUT.features.json.", show_default=False)],
    target: Target = None,
    weight_column: WeightColumn = None,
    missing: Missing = "impute",
    dtype: Dtype = "float64",
) -> None:
    """Convert a dataset once into the row-major .npy that `train --engine stream` reads block by block."""
    from softreg.data.prepare import prepare_dataset

    with reported():
        try:
            prepared = prepare_dataset(source, destination, target=target, weight_column=weight_column, dtype=dtype,
                                       missing=missing)
        except OSError as error:
            fail(f"cannot write '{destination}': {error.strerror or error}.", code=EXIT_RUN_FAILED)
    if prepared.dropped:
        say(f"--missing drop: left out {prepared.dropped} {plural(prepared.dropped, 'row')} with missing values")
    say(f"wrote {prepared.rows} {plural(prepared.rows, 'row')} x {prepared.n_features} "
        f"{plural(prepared.n_features, 'feature')} ({dtype}) to {', '.join(str(p) for p in prepared.written.values())}")
