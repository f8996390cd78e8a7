"""The coefficient table of `softreg summary`, laid out as statsmodels' MNLogit.summary() and
Stata's mlogit: a header of fit statistics, then one table per class against the reference."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text


def coefficient_tables(summary, header: dict, exp: bool) -> list:
    """Renderables: the header lines, then a table per non-reference class."""
    kind = "HC0 (sandwich) standard errors" if summary.robust else "standard errors from the observed information"
    lines = [
        f"Multinomial logit (maximum likelihood), {summary.n_obs} training rows of {header['dataset'].get('description', '')}",
        f"reference class: {summary.reference!s} (the first class unless --reference names another, as statsmodels); "
        f"raw feature scale; {kind}",
        f"log-likelihood {summary.llf:.6g}   null {summary.llnull:.6g}   LR chi2({summary.llr_df}) = {summary.llr:.6g}, "
        f"p = {summary.llr_pvalue:.4g}",
        f"McFadden pseudo R-squared {summary.prsquared:.4f}   AIC {summary.aic:.6g}   BIC {summary.bic:.6g}",
    ]
    renderables = [Text("\n".join(lines))]
    ratios = summary.relative_risks() if exp else None
    for k, name in enumerate(summary.classes):
        table = Table(title=f"{name!s} vs {summary.reference!s}" + (" (relative-risk ratios)" if exp else ""),
                      title_justify="left")
        table.add_column("")
        for column in ("RRR" if exp else "coef", "std err", "z", "P>|z|", "[0.025", "0.975]"):
            table.add_column(column, justify="right")
        for j, parameter in enumerate(summary.names):
            if exp:
                numbers = (ratios["rrr"][j][k], ratios["rrr_se"][j][k], summary.z[j, k], summary.p[j, k],
                           ratios["rrr_lower"][j][k], ratios["rrr_upper"][j][k])
            else:
                numbers = (summary.coef[j, k], summary.se[j, k], summary.z[j, k], summary.p[j, k],
                           summary.lower[j, k], summary.upper[j, k])
            table.add_row(parameter, *(f"{value:.4g}" if i != 3 else f"{value:.3f}" for i, value in enumerate(numbers)))
        renderables.append(table)
    return [Group(*renderables)]
