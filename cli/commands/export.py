"""softreg export: a saved model as ONNX (runs anywhere onnxruntime does) or as plain JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from softreg.cli.console import fail, say
from softreg.cli.errors import EXIT_RUN_FAILED, reported
from softreg.cli.options import ModelFile


def export(
    model: ModelFile,
    to: Annotated[str, typer.Option("--to", help="onnx or json.")],
    out: Annotated[Optional[Path], typer.Option(help="The file to write. \\[default: MODEL with the format's suffix]",
                                                show_default=False)] = None,
    dtype: Annotated[str, typer.Option(help="ONNX: the input and arithmetic precision, float32 or float64.")] = "float32",
) -> None:
    """Write the model for use outside softreg: ONNX (inputs 'features' and, for categorical
    columns, 'categories'; outputs 'label' and 'probabilities'; imputation, one-hot encoding and
    standardization inside the graph) or plain JSON."""
    from softreg.data.files import atomic_file
    from softreg.model.run.export import EXPORT_FORMATS, json_document, onnx_model
    from softreg.model.run.persist import check_writable, read_model_file

    if to not in EXPORT_FORMATS:
        fail(f"--to must be one of {', '.join(EXPORT_FORMATS)}, got '{to}'.")
    target = out if out is not None else Path(model).with_suffix(f".{to}")
    with reported():
        model_file = read_model_file(model)
        check_writable(target)
        content = (onnx_model(model_file, dtype).SerializeToString() if to == "onnx"
                   else json.dumps(json_document(model_file), indent=1).encode("utf-8"))
    try:
        with atomic_file(target, "wb") as handle:
            handle.write(content)
    except OSError as error:
        fail(f"the export could not be written to '{target}' ({error.strerror or error}); nothing was written there.",
             code=EXIT_RUN_FAILED)
    say(f"{to} written to {target} ({len(content):,} bytes)")
