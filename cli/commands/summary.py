"""softreg summary: a statistician's coefficient table of an unpenalized model, with standard errors."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from softreg.cli.console import out
from softreg.cli.errors import reported
from softreg.cli.options import AsJson, ModelFile


def summary(
    model: ModelFile,
    reference: Annotated[Optional[str], typer.Option(help="The class the others are compared with. \\[default: the first class, as statsmodels]",
                                                     show_default=False)] = None,
    robust: Annotated[bool, typer.Option("--robust", help="Sandwich (HC0) standard errors instead of the observed information's.")] = False,
    exp: Annotated[bool, typer.Option("--exp", help="Relative-risk ratios exp(coef), with their intervals.")] = False,
    as_json: AsJson = False,
) -> None:
    """Coefficients per class against a reference class, with standard errors, z, P>|z|, 95%
    intervals and the likelihood statistics, on the model's training rows (an l2 = 0 fit)."""
    from softreg.cli.coefficients import coefficient_tables
    from softreg.model.run.summary import summarize_saved_model

    with reported():
        table, header = summarize_saved_model(model, reference=reference, robust=robust)
    if as_json:
        out.print_json(json.dumps({"model": str(model), **table.to_dict(), **(table.relative_risks() if exp else {})}))
        return
    for renderable in coefficient_tables(table, header, exp):
        out.print(renderable, highlight=False, soft_wrap=True)
