"""softreg datasets: the built-in datasets, listed without loading them."""

from __future__ import annotations

import json

from softreg.cli.console import out, say
from softreg.cli.options import AsJson


def datasets(as_json: AsJson = False) -> None:
    """List the built-in datasets with their shapes and classes."""
    from softreg.cli import render
    from softreg.data import describe_builtins

    rows = describe_builtins()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    out.print(render.datasets_table(rows))
    say("synthetic[:samples=5000,features=20,classes=4,informative=10,seed=0] makes data of any size; files: "
        ".csv/.tsv (header row, --target column), .npz (X, y), .svm/.svmlight/.libsvm.", to=out)
